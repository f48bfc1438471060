"""Behaviour check for engine optimisations: SHA-256 over everything `evaluate` produces.

    .venv/bin/python bench/equivalence.py                      # this tree
    .venv/bin/python bench/equivalence.py --src /tmp/head/operator   # a reference copy

For each seeded synthetic cluster (10k and 30k credentials by default) it extracts the
facts, upserts them, runs `engine.evaluate` and prints one SHA-256 each over the records,
the plan, the policy errors and the facts. Values are serialised field by field (slots,
recursively), not through `repr` or `to_json`, so every field counts, including ones
`to_json` leaves out (uid, next_review_at, resource versions). Run it on the reference
tree and on this one: the lines must match. The facts line leaves out the keyed value
hashes themselves (their bytes depend on the hash function) but keeps which Secrets share
a value.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def canon(value: Any) -> Any:
    """A JSON-like, type-tagged rendering of any record (slots classes, tuples, maps)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return ["dt", value.isoformat()]
    if isinstance(value, bytes):
        return ["bytes", value.hex()]
    if isinstance(value, (list, tuple)):
        return [canon(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canon(item) for item in value), key=repr)
    if hasattr(value, "items"):
        return {str(k): canon(v) for k, v in value.items()}
    slots: list[str] = []
    for klass in type(value).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if not slot.startswith("__") and slot not in slots:
                slots.append(slot)
    if not slots and hasattr(value, "__dict__"):
        slots = sorted(vars(value))
    if hasattr(value, "model_dump"):
        return [type(value).__name__, canon(value.model_dump())]
    kind = type(value).__name__
    fields = {}
    for slot in slots:
        if slot in PACKED_PARTS:
            continue
        view = PACKED_VIEWS.get((kind, slot), PACKED_VIEWS.get(slot, slot))
        for name in (view,) if isinstance(view, str) else view:
            fields[name] = canon(getattr(value, name))
    for name in DERIVED_VIEWS.get(kind, ()):
        fields[name] = canon(getattr(value, name))
    order = FIELD_ORDER.get(kind)
    if order is not None and set(order) == set(fields):
        fields = {name: fields[name] for name in order}
    return [kind, fields]


# Fields kept packed for memory, compared as what they stand for: the packed slot is
# rendered through the properties that read it (and the slots it reads with it left out),
# so a tree that packs them and one that does not give the same digests. Keyed by slot,
# or by (class, slot) where one class reads a slot differently.
PACKED_VIEWS: dict[Any, str | tuple[str, ...]] = {
    "packed_uid": "uid",
    "packed_version": "resource_version",
    "identity": ("uid", "resource_version"),
    ("LifecycleRecord", "identity"): "uid",
    "marks": ("owner_annotation_manager", "deleting"),
    "annotation_keys": "annotations",
    "text": "message",  # Finding: a dated one keeps its instant apart
    # LifecycleRecord: the fields it shares with other records, in one shared object
    "traits": ("type", "owner_source", "status", "policy", "mode", "policies"),
}
# fields a tree reads from other fields rather than keeps (SecretFacts: from annotations
# and labels): rendered as the fields they were
DERIVED_VIEWS = {
    "SecretFacts": (
        *("service_account", "service_account_uid", "legacy_last_used", "legacy_invalid_since"),
    )
}
# classes whose fields moved into a shared part, or derived: rendered in their first order
FIELD_ORDER = {
    "Meta": (
        *("namespace", "name", "uid", "resource_version", "created_at", "labels"),
        *("annotations", "owner_references", "owner_annotation_manager", "data_changed_at"),
        "deleting",
    ),
    "SecretFacts": (
        *("meta", "type", "digests", "cert_not_after", "cert_error", "service_account"),
        *("service_account_uid", "legacy_last_used", "legacy_invalid_since", "data_keys"),
    ),
    "LifecycleRecord": (
        *("key", "type", "uid", "owner", "owner_source", "created_at", "last_rotated_at"),
        *("expires_at", "status", "policy", "mode", "policies", "consumers", "findings"),
        "next_review_at",
    ),
}
PACKED_PARTS = frozenset({"annotation_values", "at"})


def _as_bytes(digest: bytes | int) -> bytes:
    """A keyed value hash as its bytes, whether a tree keeps it as bytes or as an int."""
    return digest if isinstance(digest, bytes) else digest.to_bytes(16, "big")


def digest(value: Any) -> str:
    return hashlib.sha256(repr(canon(value)).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", default=str(BENCH_DIR.parent / "operator"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000])
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    sys.path.insert(0, args.src)
    import credwarden

    assert Path(credwarden.__file__).resolve().is_relative_to(Path(args.src).resolve())
    from credwarden.engine import evaluate
    from engine_bench import build, extract
    from synthetic import NOW, generate

    for size in args.sizes:
        snapshot = generate(size)
        facts = extract(snapshot)
        inventory = build(facts)
        evaluation = evaluate(inventory, NOW)
        # which Secrets share a value, without the hash bytes themselves
        groups: dict[bytes, list[tuple[str, str, str]]] = {}
        for secret in facts.secrets:
            for key, value in secret.value_hashes.items():
                groups.setdefault(value, []).append((*secret.key, key))
        sharing = sorted(sorted(group) for group in groups.values())
        plain_secrets = [
            [
                canon(secret.meta),
                secret.type,
                canon(secret.cert_not_after),
                secret.cert_error,
                secret.service_account,
                secret.service_account_uid,
                canon(secret.legacy_last_used),
                canon(secret.legacy_invalid_since),
                list(secret.data_keys),
                sorted(secret.value_hashes),
            ]
            for secret in facts.secrets
        ]
        other_facts = [facts.namespaces, facts.service_accounts, facts.bindings, facts.workloads]
        print(f"{size} records       {digest(evaluation.records)} ({len(evaluation.records)})")
        print(f"{size} plan          {digest(evaluation.plan)} ({len(evaluation.plan)})")
        print(f"{size} policy_errors {digest(evaluation.policy_errors)}")
        print(f"{size} describe      {digest([a.describe() for a in evaluation.plan])}")
        print(f"{size} to_json       {digest([r.to_json() for r in evaluation.records])}")
        print(f"{size} facts         {digest([plain_secrets, sharing, other_facts])}")
        # TLS Secrets left out: the pool's ECDSA signatures differ from run to run
        hashes = [
            sorted((key, _as_bytes(digest)) for key, digest in secret.value_hashes.items())
            for secret in facts.secrets
            if secret.type != "kubernetes.io/tls"
        ]
        print(f"{size} value_hashes  {digest(hashes)}")


if __name__ == "__main__":
    main()
