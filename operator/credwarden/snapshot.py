"""Reading snapshots and policy files into an Inventory, with one-line errors.

A snapshot is what `kubectl get ... -A -o yaml` writes (a `v1 List`), multi-document
YAML, or JSON. Every problem is reported as `FILE: document N[, item M]: FIELD: why`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from credwarden.facts import (
    WORKLOAD_KINDS,
    PolicyFacts,
    binding_facts,
    namespace_facts,
    secret_facts,
    service_account_facts,
    workload_facts,
)
from credwarden.gcpause import paused_collection
from credwarden.inventory import CredentialKey, Inventory, ObjectFacts
from credwarden.policies import POLICY_KINDS, policy_from_manifest

OBJECT_KINDS = (
    "ServiceAccount",
    "Secret",
    "RoleBinding",
    "ClusterRoleBinding",
    "Namespace",
    *WORKLOAD_KINDS,
)
CLUSTER_SCOPED = ("Namespace", "ClusterRoleBinding", "ClusterCredentialPolicy")


class InputError(Exception):
    """Bad input, described in one line naming the file, the document and the field."""


@dataclass(frozen=True, slots=True)
class Located:
    """A document with where it came from, for error messages."""

    body: dict[str, Any]
    where: str


def _documents(path: Path) -> Iterator[Located]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {error}") from None
    try:
        if path.suffix == ".json":
            documents: list[Any] = [json.loads(text)]
        else:
            documents = list(yaml.safe_load_all(text))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: line {error.lineno}: malformed JSON: {error.msg}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or "malformed YAML"
        raise InputError(f"{path}: {line}malformed YAML: {problem}") from None
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path}: document {index}"
        if not isinstance(document, dict):
            raise InputError(f"{where}: expected a mapping, got {type(document).__name__}")
        kind = document.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in document:
            items = document.get("items")
            if not isinstance(items, list):
                raise InputError(f"{where}: items: expected a list")
            for number, item in enumerate(items, start=1):
                if not isinstance(item, dict):
                    raise InputError(f"{where}, item {number}: expected a mapping")
                yield Located(item, f"{where}, item {number}")
        else:
            yield Located(document, where)


def _check_object(located: Located, allowed: Iterable[str]) -> str:
    body, where = located.body, located.where
    kind = body.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{where}: kind: required")
    if kind not in allowed:
        raise InputError(f"{where}: kind: unknown kind {kind!r}")
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise InputError(f"{where}: metadata: required")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: metadata.name: required")
    namespace = metadata.get("namespace")
    if kind not in CLUSTER_SCOPED and (not isinstance(namespace, str) or not namespace):
        raise InputError(f"{where}: metadata.namespace: required for a {kind}")
    return kind


def load_objects(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every object of snapshot files, checked (kind, name, namespace), as dicts."""
    objects = []
    for path in paths:
        for located in _documents(Path(path)):
            kind = _check_object(located, (*OBJECT_KINDS, *POLICY_KINDS))
            if kind in POLICY_KINDS:
                parse_policy(located.body, located.where)
            objects.append(located.body)
    return objects


def policy_documents_of(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Policy manifests of files, each checked (an invalid one is an InputError)."""
    for path in paths:
        for located in _documents(Path(path)):
            _check_object(located, POLICY_KINDS)
            parse_policy(located.body, located.where)
            yield located.body


def load_policy_files(paths: Iterable[Path]) -> list[PolicyFacts]:
    """Policies from files; any invalid policy is an InputError naming its field."""
    policies: list[PolicyFacts] = []
    for path in paths:
        for located in _documents(Path(path)):
            _check_object(located, POLICY_KINDS)
            policies.append(parse_policy(located.body, located.where))
    return policies


def parse_policy(body: Mapping[str, Any], where: str) -> PolicyFacts:
    """A valid policy, or an InputError naming where it came from and the field."""
    policy = policy_from_manifest(body)
    if policy.error:
        raise InputError(f"{where} ({policy.kind} {policy.name}): {policy.error}")
    return policy


@dataclass(slots=True)
class Snapshot:
    inventory: Inventory
    objects: int
    policies: list[PolicyFacts]


Facts = ObjectFacts


def facts_of(body: Mapping[str, Any], hash_key: bytes, kind: str | None = None) -> Facts | None:
    """One Kubernetes object reduced to its facts by kind; None for kinds not read.
    `kind` for bodies that do not carry it (items of a list)."""
    kind = kind or body.get("kind")
    if kind == "Secret":
        return secret_facts(body, hash_key)
    if kind == "ServiceAccount":
        return service_account_facts(body)
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        return binding_facts(body)
    if kind == "Namespace":
        return namespace_facts(body)
    if kind in WORKLOAD_KINDS:
        return workload_facts(body)
    if kind in POLICY_KINDS:
        return policy_from_manifest(body)
    return None


def add_object(
    inventory: Inventory, body: Mapping[str, Any], hash_key: bytes, kind: str | None = None
) -> set[CredentialKey]:
    """Route one Kubernetes object into the inventory; the credentials it affects."""
    facts = facts_of(body, hash_key, kind)
    return inventory.upsert(facts) if facts is not None else set()


def inventory_from_objects(objects: Iterable[Mapping[str, Any]], hash_key: bytes) -> Inventory:
    inventory = Inventory()
    with paused_collection():
        inventory.load(facts for body in objects if (facts := facts_of(body, hash_key)) is not None)
    return inventory


def load_snapshot(paths: Iterable[Path], hash_key: bytes) -> Snapshot:
    """Objects (and any policies) from snapshot files. Secret values are hashed on the way in."""
    inventory = Inventory()
    count = 0
    policies: list[PolicyFacts] = []
    with paused_collection():
        for path in paths:
            for located in _documents(Path(path)):
                kind = _check_object(located, (*OBJECT_KINDS, *POLICY_KINDS))
                if kind in POLICY_KINDS:
                    policies.append(parse_policy(located.body, located.where))
                    continue
                facts = facts_of(located.body, hash_key)
                if facts is not None:
                    inventory.add(facts)  # the audit evaluates everything next
                count += 1
    return Snapshot(inventory, count, policies)
