"""Turning policy manifests into PolicyFacts: a parsed spec, or a one-line reason why not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from credwarden.durations import parse_duration
from credwarden.facts import PolicyFacts
from credwarden.identity import invalid_patterns
from credwarden.models import API_VERSION, KINDS, CredentialPolicySpec

POLICY_KINDS = tuple(KINDS)


def describe_validation_error(error: ValidationError, prefix: str = "spec") -> str:
    """The first problem of a pydantic error as `spec.limits.secrets.maxAge: <why>`."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{location}: {message}{suffix}"


def semantic_problem(spec: CredentialPolicySpec) -> str | None:
    """Cross-field rules that the CRD also enforces with CEL, plus regex validity."""
    for name in ("serviceAccountTokens", "secrets", "certificates"):
        limit = getattr(spec.limits, name)
        if limit is None or not limit.maxAge or not limit.warnBefore:
            continue
        if parse_duration(limit.warnBefore) >= parse_duration(limit.maxAge):
            return (
                f"spec.limits.{name}.warnBefore: must be shorter than "
                f"spec.limits.{name}.maxAge ({limit.warnBefore} >= {limit.maxAge})"
            )
    if spec.limits.secrets and spec.limits.secrets.action == "Rotate" and spec.rotation is None:
        return "spec.rotation: required when spec.limits.secrets.action is Rotate"
    if spec.identity:
        bad = invalid_patterns(spec.identity.personNamePatterns)
        if bad:
            return f"spec.identity.personNamePatterns: invalid regular expression {bad[0]!r}"
    return None


def policy_from_manifest(manifest: Mapping[str, Any]) -> PolicyFacts:
    """A policy manifest as PolicyFacts. Never raises: an invalid one carries `error`."""
    kind = manifest.get("kind")
    raw_metadata = manifest.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else ""
    namespace = metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else ""
    generation = metadata.get("generation")
    base: dict[str, Any] = {
        "kind": kind if isinstance(kind, str) else "",
        "namespace": namespace if kind == "CredentialPolicy" else "",
        "name": name,
        "uid": metadata.get("uid") if isinstance(metadata.get("uid"), str) else "",
        "generation": generation if isinstance(generation, int) else None,
    }
    if not isinstance(kind, str) or kind not in KINDS:
        return PolicyFacts(**base, error=f"kind: expected one of {', '.join(KINDS)}")
    if manifest.get("apiVersion") != API_VERSION:
        return PolicyFacts(
            **base, error=f"apiVersion: expected {API_VERSION}, got {manifest.get('apiVersion')!r}"
        )
    if not name:
        return PolicyFacts(**base, error="metadata.name: required")
    if kind == "CredentialPolicy" and not namespace:
        return PolicyFacts(**base, error="metadata.namespace: required for a CredentialPolicy")
    raw_spec = manifest.get("spec")
    if raw_spec is None:
        raw_spec = {}
    if not isinstance(raw_spec, dict):
        return PolicyFacts(**base, error="spec: expected a mapping")
    try:
        spec = KINDS[kind].model_validate(raw_spec)
    except ValidationError as error:
        return PolicyFacts(**base, error=describe_validation_error(error))
    problem = semantic_problem(spec)
    if problem:
        return PolicyFacts(**base, error=problem)
    return PolicyFacts(**base, spec=spec)
