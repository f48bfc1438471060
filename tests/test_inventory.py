"""The inventory's change tracking and value index: what an upsert reports as affected,
and the cached holders of a shared value that duplicate-secret reads."""

from __future__ import annotations

import random

from conftest import (
    CANARY,
    HASH_KEY,
    NOW,
    add_object,
    baseline_policy,
    build_inventory,
    dockerconfig_secret,
    opaque_secret,
    record_of,
)
from credwarden.engine import evaluate, evaluate_credential
from credwarden.facts import SA_NAME_ANNOTATION, secret_facts
from credwarden.inventory import CredentialKey, Inventory
from credwarden.records import LifecycleRecord

OWNED = {"credwarden.io/owner": "team-a"}
COPIES = 40


def pull_secret(namespace: str, *, password: str = CANARY, **annotations: str):
    return dockerconfig_secret(
        "registry",
        namespace,
        password=password,
        annotations={**OWNED, SA_NAME_ANNOTATION: "builder", **annotations},
    )


def test_unchanged_reupsert_of_a_widely_shared_secret_marks_only_itself_and_its_account() -> None:
    copies = [pull_secret(f"ns-{i}") for i in range(COPIES)]
    inventory = build_inventory(copies, [baseline_policy()])
    itself = {CredentialKey("Secret", "ns-0", "registry")}
    account = {CredentialKey("ServiceAccount", "ns-0", "builder")}

    # the same body again (a resync), and an annotation-only change (credwarden's own
    # Annotate patch): the other copies see nothing new
    assert add_object(inventory, copies[0]) == itself | account
    annotated = pull_secret("ns-0", **{"credwarden.io/status": "Compliant"})
    assert add_object(inventory, annotated) == itself | account

    # a new value: every copy that shared the old one loses a duplicate
    everyone = {CredentialKey("Secret", f"ns-{i}", "registry") for i in range(COPIES)}
    rotated = pull_secret("ns-0", password="a-brand-new-password")
    assert add_object(inventory, rotated) == everyone | account
    # back to the shared value: every copy gains it back
    assert add_object(inventory, copies[0]) == everyone | account
    # removed: the copies lose it
    assert inventory.remove_secret("ns-0", "registry") == everyone | account


POOL = [f"shared-value-{i}-0123456789" for i in range(4)]


def _objects(rng: random.Random, count: int) -> dict[tuple[str, str], dict]:
    """Secrets over a few namespaces whose values come from a small pool."""
    found = {}
    for i in range(count):
        namespace, name = f"ns-{rng.randrange(3)}", f"s-{i}"
        data = {key: rng.choice(POOL) for key in rng.sample(["a", "b", "c"], rng.randint(1, 2))}
        found[(namespace, name)] = opaque_secret(name, namespace, data=data, annotations=OWNED)
    return found


def test_records_kept_up_to_date_from_affected_keys_match_a_fresh_evaluation() -> None:
    """The operator re-evaluates only what each upsert reports: after any sequence of
    value changes, annotation changes, additions and removals, those records must be
    what a full evaluation of the final objects gives."""
    rng = random.Random(7)
    objects = _objects(rng, 30)
    policies = [baseline_policy()]
    inventory = build_inventory(objects.values(), policies)
    records: dict[CredentialKey, LifecycleRecord] = {
        record.key: record for record in evaluate(inventory, NOW).records
    }
    for step in range(300):
        namespace, name = rng.choice(sorted(objects))
        operation = rng.choice(["value", "annotation", "remove", "add"])
        if operation == "remove":
            del objects[(namespace, name)]
            affected = inventory.remove_secret(namespace, name)
        else:
            annotations = {**OWNED, "note": str(step)}
            if operation == "annotation":  # same values, new annotations
                previous = objects[(namespace, name)]
                metadata = {**previous["metadata"], "annotations": annotations}
                body = {**previous, "metadata": metadata}
            else:  # "value": a new value for an existing Secret; "add": a new Secret
                if operation == "add":
                    namespace, name = f"ns-{rng.randrange(3)}", f"new-{step}"
                data = {"a": rng.choice(POOL)}
                body = opaque_secret(name, namespace, data=data, annotations=annotations)
            objects[(namespace, name)] = body
            affected = inventory.upsert_secret(secret_facts(body, HASH_KEY))
        for key in affected:
            result = evaluate_credential(inventory, key, NOW)
            if result is None:
                records.pop(key, None)
            else:
                records[key] = result[0]
    fresh = evaluate(build_inventory(objects.values(), policies), NOW)
    assert records == {record.key: record for record in fresh.records}


def test_duplicate_holders_stay_right_as_copies_come_and_go() -> None:
    inventory = build_inventory(
        [
            opaque_secret("ghcr", f"env-{i}", data={"token": CANARY}, annotations=OWNED)
            for i in range(6)
        ],
        [baseline_policy()],
    )

    def message(namespace: str) -> str:
        return record_of(evaluate(inventory, NOW), "ghcr", namespace).findings[0].message

    digest = next(iter(inventory.secrets[("env-0", "ghcr")].value_hashes.values()))
    assert message("env-0").endswith("env-1/ghcr, env-2/ghcr, env-3/ghcr and 2 more")
    assert inventory.secrets_holding(digest) == tuple((f"env-{i}", "ghcr") for i in range(6))

    inventory.remove_secret("env-2", "ghcr")
    assert message("env-0").endswith("env-1/ghcr, env-3/ghcr, env-4/ghcr and 1 more")
    # a copy that also holds the value under a second key counts once
    add_object(
        inventory,
        opaque_secret("ghcr", "env-2", data={"token": CANARY, "copy": CANARY}, annotations=OWNED),
    )
    assert message("env-0").endswith("env-1/ghcr, env-2/ghcr, env-3/ghcr and 2 more")
    assert inventory.sharing_value(digest)[:3] == [
        ("env-0", "ghcr", "token"),
        ("env-1", "ghcr", "token"),
        ("env-2", "ghcr", "copy"),
    ]
    assert message("env-2") == (
        "value of key copy, token also stored in Secret env-0/ghcr, env-1/ghcr, env-3/ghcr "
        "and 2 more"
    )
    for i in (1, 2, 3, 4):
        inventory.remove_secret(f"env-{i}", "ghcr")
    assert message("env-0") == "value of key token also stored in Secret env-5/ghcr"
    inventory.remove_secret("env-5", "ghcr")
    assert "duplicate-secret" not in {
        finding.rule for finding in record_of(evaluate(inventory, NOW), "ghcr", "env-0").findings
    }
    assert inventory.secrets_holding(digest) == (("env-0", "ghcr"),)
    # the one holder left, read again (a label changed): still the one holder
    add_object(
        inventory,
        opaque_secret(
            "ghcr", "env-0", data={"token": CANARY}, annotations=OWNED, labels={"tier": "a"}
        ),
    )
    assert inventory.secrets_holding(digest) == (("env-0", "ghcr"),)
    inventory.remove_secret("env-0", "ghcr")
    assert inventory.secrets_holding(digest) == ()
    assert inventory.sharing_value(digest) == []


def test_bulk_load_builds_the_same_inventory_as_upserts() -> None:
    objects = list(_objects(random.Random(3), 40).values())
    upserted = build_inventory(objects, [baseline_policy()])
    loaded = Inventory()
    loaded.load([baseline_policy(), *(secret_facts(body, HASH_KEY) for body in objects)])
    assert loaded.secrets == upserted.secrets
    assert loaded.in_namespace("ns-1") == upserted.in_namespace("ns-1")
    assert evaluate(loaded, NOW).records == evaluate(upserted, NOW).records


def test_a_credential_read_again_keeps_one_copy_of_its_name() -> None:
    # every version decoded from JSON brings its own copy of the name; the credential's
    # key, kept as long as it is tracked, holds the first one
    import json

    from credwarden.facts import service_account_facts

    def as_received(body: dict) -> dict:
        return json.loads(json.dumps(body))  # type: ignore[no-any-return]

    inventory = Inventory()
    secret = opaque_secret("db-password", "team", annotations=OWNED)
    inventory.upsert_secret(secret_facts(as_received(secret), HASH_KEY))
    (key,) = inventory.credentials()
    again = secret_facts(as_received(secret), HASH_KEY)
    assert again.meta.name is not key.name
    inventory.upsert_secret(again)
    stored_key, stored = next(iter(inventory.secrets.items()))
    assert stored.meta.name is key.name and stored_key[1] is key.name
    assert stored.meta.name == "db-password"

    account = {"kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "team"}}
    inventory.upsert_service_account(service_account_facts(as_received(account)))
    first = inventory.service_accounts[("team", "builder")].meta.name
    inventory.upsert_service_account(service_account_facts(as_received(account)))
    assert inventory.service_accounts[("team", "builder")].meta.name is first
