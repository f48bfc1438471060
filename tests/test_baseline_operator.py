"""bench/baseline_operator.py: the kopf-idiomatic baseline the operator benchmark compares
credwarden with (issue 7). It must do credwarden's job, so the ratios compare machinery
and not rules, and it must be the untuned, documented kopf way of doing it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import policy_manifest
from credwarden import scenario
from credwarden.demo import with_mode
from credwarden.emulator import ClusterEmulator, wait_until
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import baseline_operator

pytestmark = pytest.mark.timeout(60)

CW = "credwarden.io/"
LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
CREDENTIAL_RESOURCES = {"secrets": "Secret", "serviceaccounts": "ServiceAccount"}
Key = tuple[str, str, str]  # kind, namespace, name


# ---- helpers ---------------------------------------------------------------------------
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def credentials(emulator: ClusterEmulator) -> dict[Key, dict[str, Any]]:
    """Every live Secret and ServiceAccount, by (kind, namespace, name)."""
    found: dict[Key, dict[str, Any]] = {}
    for key in list(emulator.objects):
        resource, namespace, name = key
        stored = emulator.objects[key]
        kind = CREDENTIAL_RESOURCES.get(resource.plural or "")
        if kind and resource.group == "" and stored is not None and not stored.deleted:
            found[(kind, namespace or "", name or "")] = stored.raw
    return found


def annotations_of(body: Mapping[str, Any]) -> dict[str, str]:
    return dict(body.get("metadata", {}).get("annotations") or {})


def ours(emulator: ClusterEmulator) -> dict[Key, dict[str, str]]:
    """credwarden.io/* annotations of every credential (no kopf state, no Secret data)."""
    return {
        key: {k: v for k, v in annotations_of(body).items() if k.startswith(CW)}
        for key, body in credentials(emulator).items()
    }


def event_pairs(emulator: ClusterEmulator) -> list[tuple[str, str, str, str]]:
    pairs = []
    for key in list(emulator.objects):
        stored = emulator.objects[key]
        if key[0].plural == "events" and stored is not None and not stored.deleted:
            involved = stored.raw["involvedObject"]
            pairs.append(
                (involved["kind"], involved["namespace"], involved["name"], stored.raw["reason"])
            )
    return sorted(pairs)


@contextlib.asynccontextmanager
async def baseline_on(sandbox: Sandbox, *, timer_interval: float = 60.0) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        baseline_operator.run_baseline(sandbox.url, stop_flag=stop, timer_interval=timer_interval)
    )
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def all_evaluated(count: int, timeout: float = 10.0) -> None:
    await wait_until(lambda: baseline_operator.evaluated_count() >= count, timeout)


def example_objects(at: datetime) -> list[dict[str, Any]]:
    """The example cluster, every policy in Audit (the baseline does not enforce)."""
    return [*scenario.build_objects(at), *with_mode(scenario.example_policies(), "Audit")]


def opaque_secret(name: str, namespace: str, created: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(created)},
        "data": {"password": "bm90LWEtcmVhbC1wYXNzd29yZA=="},  # base64 of a test value
    }


def service_account(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


def differences(
    got: Mapping[Key, Mapping[str, str]], wanted: Mapping[Key, Mapping[str, str]]
) -> dict[Key, Any]:
    return {
        key: {"baseline": dict(got.get(key, {})), "credwarden": dict(wanted.get(key, {}))}
        for key in sorted({*got, *wanted})
        if got.get(key) != wanted.get(key)
    }


async def credwarden_result(
    objects: Iterable[Mapping[str, Any]],
) -> tuple[dict[Key, dict[str, str]], list[tuple[str, str, str, str]]]:
    """credwarden's own operator on these objects: its annotations and Events."""
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        await asyncio.wait_for(state.reconciler.converged.wait(), 15)
        return ours(sandbox.emulator), event_pairs(sandbox.emulator)


# ---- the same job as credwarden ------------------------------------------------------------
async def test_it_writes_the_annotations_and_events_credwarden_writes_on_the_example_cluster() -> (
    None
):
    objects = example_objects(now())
    wanted, wanted_events = await credwarden_result(objects)
    governed = [key for key, found in wanted.items() if CW + "status" in found]
    assert len(governed) > 20  # the example cluster, not an empty comparison

    async with emulated_cluster(objects) as sandbox, baseline_on(sandbox):
        emulator = sandbox.emulator
        await all_evaluated(len(wanted))
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: ours(emulator) == wanted, 15)
        assert differences(ours(emulator), wanted) == {}
        for key in governed:  # status and expiry, spelled out: what the benchmark relies on
            assert ours(emulator)[key][CW + "status"] == wanted[key][CW + "status"]
            assert ours(emulator)[key].get(CW + "expires-at") == wanted[key].get(CW + "expires-at")
        # kopf posts Events in the background: wait for the last ones (a loaded machine
        # can take longer than 15 s: seen once with a benchmark beside the tests)
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: event_pairs(emulator) == wanted_events, 45)
        pairs = event_pairs(emulator)
        assert set(pairs) == set(wanted_events)
        assert len(pairs) == len(set(pairs)), "one Event per finding, not one per handler"
        stats = baseline_operator.baseline_stats()
        assert stats["events_posted"] == len(wanted_events)
        # a timer per credential: kopf's design, the cost the benchmark measures
        assert stats["timer_tasks"] == len(wanted)


# ---- the idiomatic, untuned kopf ---------------------------------------------------------
async def test_it_keeps_kopfs_default_state_on_every_credential() -> None:
    at = now()
    objects = [
        policy_manifest("base", {"limits": {"secrets": {"maxAge": "90d"}}}),
        opaque_secret("db-password", "team", at - timedelta(days=1)),
        service_account("builder", "team"),
    ]
    async with emulated_cluster(objects) as sandbox, baseline_on(sandbox):
        emulator = sandbox.emulator
        await all_evaluated(2)

        def persisted() -> bool:
            return all(
                LAST_HANDLED in annotations_of(body) and CW + "status" in annotations_of(body)
                for body in credentials(emulator).values()
            )

        await wait_until(persisted, 10)
        for key, body in credentials(emulator).items():
            # kopf's default diffbase storage: the last handled essence, as an annotation
            essence = json.loads(annotations_of(body)[LAST_HANDLED])
            if key[0] == "Secret":
                # ...which copies the Secret's data (compared by key: no value printed)
                assert sorted(essence.get("data", {})) == ["password"]
            # a timer per object: kopf puts its finalizer on each one
            assert KOPF_FINALIZER in body["metadata"].get("finalizers", []), key


# ---- the timer notices an expiry ---------------------------------------------------------
async def test_its_timer_notices_a_credential_crossing_its_expiry_and_posts_an_event() -> None:
    created = now()
    max_age = 6
    deadline = created + timedelta(seconds=max_age)
    objects = [
        policy_manifest("short", {"limits": {"secrets": {"maxAge": f"{max_age}s"}}}),
        opaque_secret("soon", "team", created),
    ]
    async with emulated_cluster(objects) as sandbox, baseline_on(sandbox, timer_interval=0.5):
        emulator = sandbox.emulator
        key = ("Secret", "team", "soon")

        def status() -> str | None:
            return ours(emulator).get(key, {}).get(CW + "status")

        await wait_until(lambda: status() is not None, 10)
        assert ours(emulator)[key][CW + "expires-at"] == rfc3339(deadline)
        await wait_until(lambda: status() == "NonCompliant", max_age + 10)
        noticed = time.time() - deadline.timestamp()
        # no change to the object in between: only the timer re-evaluates it
        assert 0 <= noticed <= 3.0, f"noticed {noticed:.2f}s after its deadline"
        await wait_until(lambda: (*key, "CredentialExpired") in event_pairs(emulator), 10)
        stats = baseline_operator.baseline_stats()
        # compliant at start, so every Event came later, from the timer
        assert stats["events_posted"] >= 1
        assert stats["events_by_trigger"] == {"timer": stats["events_posted"]}
        assert stats["evaluations_by_trigger"]["timer"] > max_age  # every 0.5 s
