"""The operator on a first start whose writes take long: changes do not wait for them.

The client is limited to a low QPS and every credential of the cluster has writes to
wait for (an Event and its annotations), as on a first start on a large cluster. The
real operator runs against the emulated API (see conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from credwarden.emulator import ClusterEmulator, wait_until
from credwarden.engine import evaluate
from credwarden.kube import KubeClient
from credwarden.reconciler import STATUS_INTERVAL, WORST_OFFENDERS
from credwarden.records import COMPLIANT, EXPIRING, NON_COMPLIANT, STATUS_ORDER
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on
from credwarden.snapshot import inventory_from_objects
from credwarden.writequeue import Lane

pytestmark = pytest.mark.timeout(120)

CW = "credwarden.io/"
SECRETS = "v1/secrets"
CCP = "credwarden.io/v1alpha1/clustercredentialpolicies"
BACKLOG = 150  # Secrets without an owner: an Event and an annotation patch each
QPS = 30  # the first start's 300 writes take 10 s (the emulator makes it longer)


def secret(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": "team", **metadata},
        "data": {"password": base64.b64encode(f"value-of-{name}-0123".encode()).decode()},
    }


def owners_required(name: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": name},
        "spec": {"limits": {"secrets": {}}, "ownership": {}},
    }


def backlog_cluster() -> list[dict[str, Any]]:
    return [*(secret(f"s{number:03d}") for number in range(BACKLOG)), owners_required()]


def stored(emulator: ClusterEmulator, resource: str, namespace: str | None, name: str) -> Any:
    try:
        found = emulator.objects[resource, namespace, name]
    except KeyError:  # never created
        return None
    return None if found is None or found.deleted else found.raw


def status_of(emulator: ClusterEmulator, name: str) -> str | None:
    body = stored(emulator, SECRETS, "team", name)
    annotations = (body or {}).get("metadata", {}).get("annotations") or {}
    return annotations.get(CW + "status")


def annotated(emulator: ClusterEmulator) -> int:
    return sum(status_of(emulator, f"s{number:03d}") is not None for number in range(BACKLOG))


def event_pairs(emulator: ClusterEmulator) -> list[tuple[str, str]]:
    return sorted(
        (found.raw["involvedObject"]["name"], found.raw["reason"])
        for key in list(emulator.objects)
        if key[0].plural == "events"
        and (found := emulator.objects[key]) is not None
        and not found.deleted
    )


def credwarden_writes(emulator: ClusterEmulator, plural: str, name: str) -> list[Any]:
    return [
        request
        for request in emulator
        if request.method.value in ("PATCH", "POST", "PUT", "DELETE")
        and request.headers.get("User-Agent", "").startswith("credwarden")
        and request.resource is not None
        and request.resource.plural == plural
        and request.name == name
    ]


def slow_client(qps: float = QPS) -> KubeClient:
    return KubeClient(qps=qps, burst=1, backoffs=(0.05, 0.1, 0.2))


async def first_pass_evaluated(sandbox: Sandbox, credentials: int = BACKLOG) -> None:
    """Every credential evaluated once, and the Secrets watch open: the emulator, unlike
    an API server, does not replay a deletion made before a watch starts."""
    state = sandbox.state
    assert state is not None
    await wait_until(lambda: len(state.reconciler.records) >= credentials, 20)
    await wait_until(
        lambda: any(
            r.method.value == "GET"
            and r.resource is not None
            and r.resource.plural == "secrets"
            and r.params.get("watch")
            for r in sandbox.emulator
        ),
        10,
    )


async def converged(sandbox: Sandbox, timeout: float = 60) -> None:
    assert sandbox.state is not None
    await asyncio.wait_for(sandbox.state.reconciler.converged.wait(), timeout)


# ---- fresh changes go before the first start's backlog ----------------------------------
async def test_a_secret_created_during_a_long_first_start_is_annotated_at_once() -> None:
    async with (
        emulated_cluster(backlog_cluster()) as sandbox,
        operator_on(sandbox, client=slow_client()),
    ):
        emulator = sandbox.emulator
        await first_pass_evaluated(sandbox)
        created = time.monotonic()
        await emulator.post("/api/v1/namespaces/team/secrets", json=secret("late"))
        await wait_until(lambda: status_of(emulator, "late") == NON_COMPLIANT, 10)
        await wait_until(lambda: ("late", "MissingOwner") in event_pairs(emulator), 5)
        latency = time.monotonic() - created
        waiting = BACKLOG - annotated(emulator)
        assert waiting > BACKLOG // 2, f"the backlog was nearly drained ({waiting} left)"
        assert latency < 5, f"annotated {latency:.1f}s after its creation"

        # the backlog drains after it, each Event posted once
        await converged(sandbox)
        assert annotated(emulator) == BACKLOG
        pairs = event_pairs(emulator)
        assert len(pairs) == len(set(pairs)) == BACKLOG + 1
        assert {reason for _, reason in pairs} == {"MissingOwner"}


async def test_the_backlog_holds_credentials_not_plans_and_plans_each_when_its_turn_comes() -> None:
    # a first start on a large cluster queues a write for nearly every credential: the
    # backlog keeps only which credential (its plan, half a KiB, is made again when
    # taken), so the operator's memory does not grow with the backlog
    async with (
        emulated_cluster(backlog_cluster()) as sandbox,
        operator_on(sandbox, client=slow_client()),
    ):
        emulator = sandbox.emulator
        await first_pass_evaluated(sandbox)
        assert sandbox.state is not None
        queue = sandbox.state.reconciler.queue
        assert len(queue) > BACKLOG // 2
        assert queue.planned_ahead == 0
        # what credwarden_write_queue_plans shows: the backlog, and no fresh change waiting
        waiting = queue.waiting_by_lane()
        assert waiting[Lane.BACKLOG] > BACKLOG // 2
        assert waiting[Lane.FRESH] == 0
        await converged(sandbox)
        assert annotated(emulator) == BACKLOG
        pairs = event_pairs(emulator)
        assert len(pairs) == len(set(pairs)) == BACKLOG
        # planned from the version current at its turn: one patch each, on that version
        for number in (0, BACKLOG - 1):
            (patch,) = credwarden_writes(emulator, "secrets", f"s{number:03d}")
            assert patch.data["metadata"]["annotations"][CW + "status"] == NON_COMPLIANT


async def test_a_plan_outdated_while_it_waits_is_never_carried_out() -> None:
    async with (
        emulated_cluster(backlog_cluster()) as sandbox,
        operator_on(sandbox, client=slow_client()),
    ):
        emulator = sandbox.emulator
        await first_pass_evaluated(sandbox)
        # the last two plans of the backlog: one credential gets an owner (its plan
        # would annotate NonCompliant and post MissingOwner), the other is deleted
        await emulator.patch(
            "/api/v1/namespaces/team/secrets/s149",
            json={"metadata": {"annotations": {CW + "owner": "team-a"}}},
        )
        await emulator.delete("/api/v1/namespaces/team/secrets/s148")
        await wait_until(lambda: status_of(emulator, "s149") == COMPLIANT, 10)
        assert BACKLOG - annotated(emulator) > BACKLOG // 2  # fresh: ahead of the backlog

        await converged(sandbox)
        assert annotated(emulator) == BACKLOG - 1
        pairs = event_pairs(emulator)
        assert [(n, r) for n, r in pairs if n in ("s148", "s149")] == []
        # one patch for s149, from the newer plan; nothing at all for s148
        (patch,) = credwarden_writes(emulator, "secrets", "s149")
        assert patch.data["metadata"]["annotations"][CW + "status"] == COMPLIANT
        assert credwarden_writes(emulator, "secrets", "s148") == []
        assert len(pairs) == len(set(pairs)) == BACKLOG - 2


async def test_a_deadline_falling_due_during_a_long_first_start_is_acted_on_at_once() -> None:
    soon = {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": "short"},
        "spec": {
            "selector": {"matchLabels": {"lifetime": "short"}},
            "limits": {"secrets": {"maxAge": "8s"}},
            "ownership": {},
        },
    }
    async with emulated_cluster([*backlog_cluster(), soon]) as sandbox:
        emulator = sandbox.emulator
        # 300 writes at 20 QPS: the backlog takes 15 s, the deadline falls 8 s after creation
        async with operator_on(sandbox, client=slow_client(qps=20)):
            await first_pass_evaluated(sandbox)
            response = await emulator.post(
                "/api/v1/namespaces/team/secrets",
                json=secret(
                    "brief",
                    labels={"lifetime": "short"},
                    annotations={CW + "owner": "team-a"},
                ),
            )
            created = (await response.json())["metadata"]["creationTimestamp"]
            await wait_until(lambda: status_of(emulator, "brief") == NON_COMPLIANT, 15)
            expired_at = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() + 8
            lateness = time.time() - expired_at
            assert lateness < 3, f"annotated {lateness:.1f}s after its deadline"
            assert BACKLOG - annotated(emulator) > 0  # the backlog was still draining
            assert ("brief", "CredentialExpired") in event_pairs(emulator)


# ---- policy status -------------------------------------------------------------------
def expected_status(objects: list[Mapping[str, Any]], policy: str) -> dict[str, Any]:
    """The counts and worst offenders, from an evaluation of the objects from scratch."""
    records = [
        r
        for r in evaluate(inventory_from_objects(objects, b"k" * 32), datetime.now(UTC)).records
        if policy in r.policies
    ]
    worst = sorted(
        (r for r in records if r.status in (NON_COMPLIANT, EXPIRING)),
        key=lambda r: (STATUS_ORDER[r.status], -len(r.findings), r.key),
    )[:WORST_OFFENDERS]
    return {
        "matched": len(records),
        "compliant": sum(r.status == COMPLIANT for r in records),
        "expiring": sum(r.status == EXPIRING for r in records),
        "violating": sum(r.status == NON_COMPLIANT for r in records),
        "worstOffenders": [r.key.name for r in worst],
    }


def shown(emulator: ClusterEmulator, policy: str) -> dict[str, Any]:
    status = (stored(emulator, CCP, None, policy) or {}).get("status") or {}
    counts = {field: status.get(field) for field in ("matched", "compliant", "expiring")}
    return {
        **counts,
        "violating": status.get("violating"),
        "worstOffenders": [o["name"] for o in status.get("worstOffenders", [])],
    }


def cluster_objects(emulator: ClusterEmulator) -> list[dict[str, Any]]:
    return [
        found.raw
        for key in list(emulator.objects)
        if key[0].plural in ("secrets", "clustercredentialpolicies", "namespaces")
        and (found := emulator.objects[key]) is not None
        and not found.deleted
    ]


async def test_policy_status_counts_follow_credentials_added_changed_and_removed() -> None:
    objects = [
        *(secret(f"s{number:02d}") for number in range(15)),
        *(secret(f"owned{number}", annotations={CW + "owner": "x"}) for number in range(3)),
        owners_required(),
    ]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        emulator = sandbox.emulator
        await converged(sandbox)
        assert shown(emulator, "p") == expected_status(cluster_objects(emulator), "p")
        assert shown(emulator, "p")["matched"] == 18
        for number in range(5):
            await emulator.post("/api/v1/namespaces/team/secrets", json=secret(f"new{number}"))
        for number in range(0, 15, 3):
            await emulator.delete(f"/api/v1/namespaces/team/secrets/s{number:02d}")
        await emulator.patch(
            "/api/v1/namespaces/team/secrets/s01",
            json={"metadata": {"annotations": {CW + "owner": "team-a"}}},
        )
        await emulator.delete("/api/v1/namespaces/team/secrets/owned0")
        want = {"matched": 17, "compliant": 3, "violating": 14}
        await wait_until(
            lambda: {k: shown(emulator, "p")[k] for k in want} == want,
            15,
        )
        await converged(sandbox)
        assert shown(emulator, "p") == expected_status(cluster_objects(emulator), "p")


async def test_a_burst_of_new_credentials_rewrites_the_status_about_once_a_second() -> None:
    async with emulated_cluster([owners_required()]) as sandbox, operator_on(sandbox):
        emulator = sandbox.emulator
        await converged(sandbox)
        before = len(credwarden_writes(emulator, "clustercredentialpolicies", "p"))
        started = time.monotonic()
        for number in range(60):
            await emulator.post("/api/v1/namespaces/team/secrets", json=secret(f"n{number:02d}"))
            await asyncio.sleep(0.03)
        await wait_until(lambda: shown(emulator, "p")["matched"] == 60, 10)
        elapsed = time.monotonic() - started
        await converged(sandbox)
        written = len(credwarden_writes(emulator, "clustercredentialpolicies", "p")) - before
        assert 1 <= written <= elapsed / STATUS_INTERVAL + 2, f"{written} in {elapsed:.1f}s"
        assert shown(emulator, "p") == expected_status(cluster_objects(emulator), "p")
