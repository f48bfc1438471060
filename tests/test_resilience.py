"""Failures a real API server and real operations produce, while credentials are tracked."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import kmock
import pytest

from credwarden.emulator import wait_until
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on

pytestmark = pytest.mark.timeout(120)

CW = "credwarden.io/"
OLD = "the-old-password-value-0001"


def secret(name: str, namespace: str, value: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "data": {"password": base64.b64encode(value.encode()).decode()},
    }


def stored(sandbox: Sandbox, namespace: str, name: str) -> Any:
    try:
        found = sandbox.emulator.objects["v1/secrets", namespace, name]
    except KeyError:
        return None
    return None if found is None or found.deleted else found.raw


def annotations(sandbox: Sandbox, namespace: str, name: str) -> dict[str, str]:
    body = stored(sandbox, namespace, name) or {}
    return (body.get("metadata") or {}).get("annotations") or {}


async def converged(sandbox: Sandbox) -> None:
    assert sandbox.state is not None
    await asyncio.wait_for(sandbox.state.reconciler.converged.wait(), 20)


async def test_a_namespace_deleted_while_tracked_leaves_everything_else_governed() -> None:
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in ("doomed", "kept")
    ]
    objects += [secret(f"s{i}", "doomed", f"value-doomed-{i}-xyz") for i in range(3)]
    objects.append(secret("app", "kept", "value-kept-app-xyz"))
    objects.append(
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": "p"},
            "spec": {"limits": {"secrets": {}}},
        }
    )
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        await converged(sandbox)
        emulator = sandbox.emulator
        # what kube-apiserver's namespace deletion does: the namespace, then its contents
        await emulator.delete("/api/v1/namespaces/doomed")
        for i in range(3):
            await emulator.delete(f"/api/v1/namespaces/doomed/secrets/s{i}")
        await wait_until(
            lambda: not [k for k in state.reconciler.records if k.namespace == "doomed"], 10
        )
        policy = emulator.objects["credwarden.io/v1alpha1/clustercredentialpolicies", None, "p"]
        await wait_until(lambda: policy.raw["status"]["matched"] == 1, 10)
        # and the operator still governs the rest
        await emulator.post(
            "/api/v1/namespaces/kept/secrets", json=secret("new", "kept", "value-kept-new-xyz")
        )
        await wait_until(lambda: CW + "status" in annotations(sandbox, "kept", "new"), 10)
        assert state.reconciler.stats.write_errors == 0


async def test_an_event_the_api_refused_is_posted_again_before_the_annotation_records_it() -> None:
    objects = [
        secret("orphan", "team", "value-of-the-orphan-xyz"),
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": "p"},
            "spec": {"limits": {"secrets": {}}, "ownership": {}},
        },
    ]
    async with emulated_cluster(objects) as sandbox:
        refused = kmock.KubernetesError(status=500, reason="InternalError", message="etcd down")

        def posting_an_event(request: kmock.Request) -> bool:
            return request.method.value == "POST" and "MissingOwner" in str(request.data)

        # more failures than the client's retries: the first plan's Event is lost
        sandbox.emulator.fail(posting_an_event, *[refused] * 4)
        async with operator_on(sandbox) as state:
            await wait_until(lambda: state.reconciler.stats.write_errors >= 1, 10)
            # not annotated as announced while the Event is missing ...
            assert CW + "findings" not in annotations(sandbox, "team", "orphan")
            # ... and once the API takes Events again, both come, the Event first
            await wait_until(
                lambda: (
                    annotations(sandbox, "team", "orphan").get(CW + "findings") == "missing-owner"
                ),
                15,
            )
            events = [
                found.raw
                for key, found in list(sandbox.emulator.objects.items())
                if key[0].plural == "events" and found is not None and not found.deleted
            ]
            assert [event["reason"] for event in events] == ["MissingOwner"]


async def test_a_rotation_finishes_even_when_its_policy_is_deleted_meanwhile() -> None:
    objects = [
        secret("db", "team", OLD, creationTimestamp="2020-01-01T00:00:00Z"),
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": "rotate"},
            "spec": {
                "mode": "Enforce",
                "limits": {"secrets": {"maxAge": "30d", "action": "Rotate"}},
                "rotation": {"keys": ["password"]},
            },
        },
    ]
    async with emulated_cluster(objects) as sandbox:

        def keeping_the_old_values(request: kmock.Request) -> bool:
            return request.method.value == "POST" and "db-previous" in str(request.data)

        # the operator dies at this write: until it stops, every attempt at it fails (a
        # single failure would be retried and the rotation finished before it stops)
        dying = True
        died = kmock.KubernetesError(status=403, reason="Forbidden", message="operator killed")
        sandbox.emulator.fail(
            lambda request: dying and keeping_the_old_values(request), *[died] * 100
        )
        async with operator_on(sandbox):
            await wait_until(lambda: any(keeping_the_old_values(r) for r in sandbox.emulator), 15)
        dying = False
        assert CW + "rotation-pending" in annotations(sandbox, "team", "db")
        # the policy goes while the rotation is half done
        await sandbox.emulator.delete(
            "/apis/credwarden.io/v1alpha1/clustercredentialpolicies/rotate"
        )
        async with operator_on(sandbox):
            await wait_until(
                lambda: CW + "rotation-pending" not in annotations(sandbox, "team", "db"), 15
            )
            await converged(sandbox)
        db = stored(sandbox, "team", "db")
        new = base64.b64decode(db["data"]["password"]).decode()
        assert new != OLD
        assert db["metadata"]["annotations"][CW + "rotations"] == "1"
        previous = stored(sandbox, "team", "db-previous")
        assert base64.b64decode(previous["data"]["password"]).decode() == OLD


def _junk(rng: Any, depth: int = 0) -> Any:
    """Values of every JSON shape, biased towards the spec's own field names."""
    fields = [
        "mode",
        "limits",
        "secrets",
        "maxAge",
        "warnBefore",
        "action",
        "identity",
        "personNamePatterns",
        "selector",
        "matchLabels",
        "rotation",
        "keys",
        "enforcement",
        "budget",
        "namespaceSelector",
        "secretTypes",
        "exemptions",
        "names",
    ]
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 7, 10**12])
    if kind == 2:
        return rng.choice(["", "90d", "9x", "Enforce", "Rotate", "(", "a" * 300, "ü"])
    if kind == 3:
        return rng.choice([1.5, "Audit", "15m"])
    if kind == 4:
        return []
    if kind == 5:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(fields): _junk(rng, depth + 1) for _ in range(rng.randrange(1, 4))}


async def test_random_policy_specs_become_conditions_never_a_crash() -> None:
    import random

    rng = random.Random(20261122)
    policies = [
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": f"junk-{i}"},
            "spec": _junk(rng) if i % 5 else {"limits": _junk(rng)},
        }
        for i in range(40)
    ]
    valid = {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": "valid"},
        "spec": {"limits": {"secrets": {}}},
    }
    objects = [secret("app", "team", "value-team-app-xyz"), valid, *policies]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        await converged(sandbox)
        for policy in [valid, *policies]:
            body = sandbox.emulator.objects[
                "credwarden.io/v1alpha1/clustercredentialpolicies", None, policy["metadata"]["name"]
            ].raw
            (ready, *_) = body["status"]["conditions"]
            assert ready["type"] == "Ready" and ready["status"] in ("True", "False")
            if ready["status"] == "False":
                assert ready["reason"] == "InvalidSpec" and "\n" not in ready["message"]
        # the valid policy governs the Secret, whatever junk sits beside it
        assert CW + "status" in annotations(sandbox, "team", "app")
        governing = sandbox.emulator.objects[
            "credwarden.io/v1alpha1/clustercredentialpolicies", None, "valid"
        ].raw["status"]
        assert governing["matched"] == 1
        assert sandbox.operator is not None and not sandbox.operator.done()
        assert state.reconciler.ready.is_set()
