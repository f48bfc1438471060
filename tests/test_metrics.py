"""Prometheus metrics: the series, their labels, the served endpoint, and the cost at scale.

Run as a script to measure a scrape at any size (docs/metrics.md has the numbers):

    .venv/bin/python tests/test_metrics.py 100000
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import build_inventory
from credwarden import scenario
from credwarden.controller import OperatorState
from credwarden.demo import with_mode
from credwarden.emulator import wait_until
from credwarden.engine import evaluate
from credwarden.inventory import Inventory
from credwarden.kube import KubeClient
from credwarden.metrics import (
    CHUNK,
    FAMILIES,
    OperatorMetrics,
    count_blocked,
    count_revocation,
    count_rotation,
    exported_sample_names,
    label_token,
    metrics_of,
    serve_metrics,
)
from credwarden.records import EXEMPT, UNGOVERNED, Evaluation, LifecycleRecord
from credwarden.sandbox import emulated_cluster, operator_on

pytestmark = pytest.mark.timeout(120)

NOW = scenario.REFERENCE_NOW
Labels = frozenset[tuple[str, str]]


# ---- helpers -------------------------------------------------------------------------------
def example() -> tuple[Inventory, Evaluation]:
    inventory = build_inventory([*scenario.build_objects(NOW), *scenario.example_policies()])
    return inventory, evaluate(inventory, NOW)


def state_with(records: Iterable[LifecycleRecord], inventory: Inventory | None = None):
    state = OperatorState(client=KubeClient(), inventory=inventory or Inventory())
    for record in records:
        state.reconciler.records[record.key] = record
    return state


def parse(text: str | bytes) -> dict[str, dict[Labels, float]]:
    """sample name -> {label set: value}; a duplicate series fails the test."""
    found: dict[str, dict[Labels, float]] = {}
    body = text.decode() if isinstance(text, bytes) else text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            series = found.setdefault(sample.name, {})
            labels = frozenset(sample.labels.items())
            assert labels not in series, f"duplicate series {sample.name}{dict(labels)}"
            series[labels] = sample.value
    return found


async def rendered(metrics: OperatorMetrics) -> bytes:
    return b"".join([chunk async for chunk in metrics.render()])


def render(metrics: OperatorMetrics) -> dict[str, dict[Labels, float]]:
    return parse(asyncio.run(rendered(metrics)))


def by_name(series: dict[Labels, float]) -> dict[tuple[str, str, str], list[dict[str, str]]]:
    out: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for labels in series:
        d = dict(labels)
        out.setdefault((d["kind"], d["namespace"], d["name"]), []).append(d)
    return out


def fixed_clock() -> float:
    return NOW.timestamp()


# ---- the series ------------------------------------------------------------------------------
def test_per_credential_series_follow_the_records_with_the_issues_labels() -> None:
    inventory, evaluation = example()
    metrics = OperatorMetrics(state_with(evaluation.records, inventory), clock=fixed_clock)
    found = render(metrics)
    records = {(r.key.kind, r.key.namespace, r.key.name): r for r in evaluation.records}

    status = found["credwarden_credential_status"]
    assert len(status) == len(records)  # one series per credential: its current status
    for labels, value in status.items():
        d = dict(labels)
        assert set(d) == {"namespace", "name", "kind", "status"}
        assert value == 1
        assert records[(d["kind"], d["namespace"], d["name"])].status == d["status"]

    expiration = found["credwarden_credential_expiration_timestamp_seconds"]
    with_expiry = {k: r for k, r in records.items() if r.expires_at is not None}
    assert len(expiration) == len(with_expiry) > 0
    for labels, value in expiration.items():
        d = dict(labels)
        assert set(d) == {"namespace", "name", "kind", "type", "policy"}
        record = with_expiry[(d["kind"], d["namespace"], d["name"])]
        assert record.expires_at is not None
        assert value == record.expires_at.timestamp()
        assert (d["type"], d["policy"]) == (record.type, record.policy)

    rotation = found["credwarden_credential_last_rotation_timestamp_seconds"]
    governed = {
        k
        for k, r in records.items()
        if r.last_rotated_at is not None and r.status not in (EXEMPT, UNGOVERNED)
    }
    assert set(by_name(rotation)) == governed

    findings = found["credwarden_credential_findings"]
    for key, record in records.items():
        exported = Counter()
        for d in by_name(findings).get(key, []):
            assert set(d) == {"namespace", "name", "kind", "policy", "rule", "severity"}
            assert d["policy"] == (record.policy or "")
            exported[(d["rule"], d["severity"])] += int(findings[frozenset(d.items())])
        assert exported == Counter((f.rule, f.severity) for f in record.findings), key


def test_aggregates_add_up_to_the_records() -> None:
    inventory, evaluation = example()
    found = render(OperatorMetrics(state_with(evaluation.records, inventory), clock=fixed_clock))
    records = evaluation.records
    tracked = {dict(k)["kind"]: v for k, v in found["credwarden_tracked_credentials"].items()}
    assert tracked == dict(Counter(r.key.kind for r in records))
    by_status = Counter()
    for labels, value in found["credwarden_namespace_credentials"].items():
        d = dict(labels)
        assert set(d) == {"namespace", "kind", "status"}
        by_status[(d["namespace"], d["kind"], d["status"])] += int(value)
    assert by_status == Counter((r.key.namespace, r.key.kind, r.status) for r in records)
    findings = found["credwarden_findings"]
    assert all(set(dict(k)) == {"policy", "rule", "severity", "namespace"} for k in findings)
    assert sum(findings.values()) == sum(len(r.findings) for r in records)
    # the earliest expiry per namespace, kind and type
    next_expiry = found["credwarden_namespace_next_expiration_timestamp_seconds"]
    for labels, value in next_expiry.items():
        d = dict(labels)
        assert value == min(
            r.expires_at.timestamp()
            for r in records
            if r.expires_at is not None
            and (r.key.namespace, r.key.kind, r.type) == (d["namespace"], d["kind"], d["type"])
        )
    # expired / within 7d / within 30d, at the scrape's now
    windows = Counter()
    for labels, value in found["credwarden_namespace_expiring_credentials"].items():
        windows[dict(labels)["window"]] += int(value)
    left = [r.expires_at.timestamp() - NOW.timestamp() for r in records if r.expires_at]
    assert windows["expired"] == sum(1 for s in left if s <= 0) > 0
    assert windows["7d"] == sum(1 for s in left if 0 < s <= 7 * 86400)
    assert windows["30d"] == sum(1 for s in left if 0 < s <= 30 * 86400) > 0


def test_the_served_text_equals_prometheus_clients_own_exposition() -> None:
    """The fast renderer /metrics uses and the standard registry give the same samples."""
    inventory, evaluation = example()
    metrics = OperatorMetrics(state_with(evaluation.records, inventory), clock=fixed_clock)
    metrics.count_rotation("financial-ml/ml-platform-rotation", "error")
    metrics.reconcile_duration.observe(0.02)
    fast = render(metrics)
    standard = parse(metrics.generate())
    own = {name for name in standard if name.startswith("credwarden_")}
    assert own == {name for name in fast if name.startswith("credwarden_")}
    for name in own:
        assert fast[name] == standard[name], name
    assert {name for name in standard if name.startswith("process_")}  # the process collector


def test_without_per_credential_series_only_aggregates_remain() -> None:
    inventory, evaluation = example()
    metrics = OperatorMetrics(
        state_with(evaluation.records, inventory), per_credential=False, clock=fixed_clock
    )
    for found in (render(metrics), parse(metrics.generate())):
        assert not [name for name in found if name.startswith("credwarden_credential_")]
        for name in ("credwarden_findings", "credwarden_namespace_credentials"):
            assert found[name]
        assert set(found) <= exported_sample_names(per_credential=False) | {
            n for n in found if not n.startswith("credwarden_")
        }


def test_a_deleted_credential_has_no_series_at_the_next_scrape() -> None:
    inventory, evaluation = example()
    state = state_with(evaluation.records, inventory)
    metrics = OperatorMetrics(state, clock=fixed_clock)
    gone = next(r for r in evaluation.records if r.key.name == "grafana-creds")
    assert 'name="grafana-creds"' in asyncio.run(rendered(metrics)).decode()
    for record in evaluation.records:
        if record.key.name == "grafana-creds":
            del state.reconciler.records[record.key]
    text = asyncio.run(rendered(metrics)).decode()
    assert 'name="grafana-creds"' not in text
    assert f'namespace="{gone.key.namespace}"' in text  # the namespace's aggregates remain


def test_label_values_are_escaped_and_parse_back() -> None:
    _, evaluation = example()
    odd = 'odd"type\\with\nnewline'
    record = next(r for r in evaluation.records if r.expires_at and r.last_rotated_at)
    found = render(
        OperatorMetrics(
            state_with([replace(record, traits=replace(record.traits, type=odd))]),
            clock=fixed_clock,
        )
    )
    for name in (
        "credwarden_credential_expiration_timestamp_seconds",
        "credwarden_credential_last_rotation_timestamp_seconds",
        "credwarden_namespace_next_expiration_timestamp_seconds",
    ):
        assert {dict(labels)["type"] for labels in found[name]} == {odd}, name


def test_every_family_is_documented_in_docs_metrics() -> None:
    text = (Path(__file__).parents[1] / "docs" / "metrics.md").read_text(encoding="utf-8")
    for family in FAMILIES:
        assert f"`{family.samples[0]}" in text or f"`{family.name}" in text, family.name


# ---- counters -------------------------------------------------------------------------------
def test_counters_count_per_operator_and_sanitize_their_labels() -> None:
    inventory, _ = example()
    one, other = state_with([], inventory), state_with([], inventory)
    first = OperatorMetrics(one).attach()
    second = OperatorMetrics(other).attach()
    try:
        count_rotation("financial-ml/ml-platform-rotation", "error", source=one.reconciler)
        count_revocation("platform-baseline", "success", source=other.reconciler.enforcer)
        count_blocked("platform-baseline", "budget")  # no source: every operator of the process
        count_blocked("platform-baseline", "a message, with spaces and a value s3cr3t")
        assert metrics_of(one.client) is first
        found = render(first)
        rotations = found["credwarden_rotations_total"]
        key = frozenset({("policy", "financial-ml/ml-platform-rotation"), ("result", "error")})
        assert rotations[key] == 1
        # every current policy shows its zero, so increase() sees the first failure
        assert rotations[frozenset({("policy", "platform-baseline"), ("result", "error")})] == 0
        revocations = found["credwarden_revocations_total"]
        assert sum(revocations.values()) == 0  # counted by the other operator
        assert sum(render(second)["credwarden_revocations_total"].values()) == 1
        blocked = found["credwarden_actions_blocked_total"]
        assert {dict(k)["reason"] for k in blocked} == {"budget", "other"}
    finally:
        first.close()
        second.close()
    count_rotation("x", "error")  # nobody attached: nothing to count, no error
    assert label_token("financial-ml/ml-platform-rotation") == "financial-ml/ml-platform-rotation"
    assert label_token("two words") == "other"


def test_the_enforcers_listeners_feed_the_counters() -> None:
    inventory, _ = example()
    state = state_with([], inventory)
    metrics = OperatorMetrics(state).attach()
    try:
        for listener in state.reconciler.enforcer.listeners:
            listener("revocation", "platform-baseline", "success")
            listener("rotation", "platform-baseline", "conflict")
            listener("blocked", "platform-baseline", "budget")
        found = render(metrics)
        assert (
            found["credwarden_revocations_total"][
                frozenset({("policy", "platform-baseline"), ("result", "success")})
            ]
            == 1
        )
        assert (
            found["credwarden_rotations_total"][
                frozenset({("policy", "platform-baseline"), ("result", "conflict")})
            ]
            == 1
        )
        assert found["credwarden_actions_blocked_total"] == {
            frozenset({("policy", "platform-baseline"), ("reason", "budget")}): 1
        }
    finally:
        metrics.close()
    assert metrics._enforced not in state.reconciler.enforcer.listeners


def test_close_restores_the_clients_error_hook() -> None:
    seen: list[tuple[str, str]] = []
    state = state_with([])
    state.client.on_error = lambda verb, code: seen.append((verb, code))
    metrics = OperatorMetrics(state).attach()
    assert state.client.on_error is not None
    state.client.on_error("patch", "503")
    assert seen == [("patch", "503")]  # chained, not replaced
    assert render(metrics)["credwarden_api_errors_total"] == {
        frozenset({("verb", "patch"), ("code", "503")}): 1
    }
    metrics.close()
    state.client.on_error("patch", "503")
    assert len(seen) == 2 and metrics.api_errors[("patch", "503")] == 1


# ---- the endpoint on a running operator -------------------------------------------------------
async def test_a_running_operator_serves_its_metrics() -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    objects = [*scenario.build_objects(at), *with_mode(scenario.example_policies(), "Audit")]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        # a failed write, to be counted by verb and code
        sandbox.emulator.fail(
            lambda r: r.method.value == "POST" and r.resource.plural == "events",
            __import__("kmock").KubernetesError(status=500),
        )
        server = await serve_metrics(state, 0, host="127.0.0.1")
        try:
            await asyncio.wait_for(state.reconciler.converged.wait(), 20)
            async with aiohttp.ClientSession() as session:
                async with session.get(server.url, headers={"Accept-Encoding": "identity"}) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                    plain = await r.read()
                async with session.get(
                    server.url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False
                ) as r:
                    assert r.headers.get("Content-Encoding") == "gzip"
                    zipped = await r.read()
            found = parse(plain)
            assert parse(gzip.decompress(zipped)).keys() == found.keys()
            status = by_name(found["credwarden_credential_status"])
            assert len(status) == len(state.reconciler.records)
            assert found["credwarden_ready"] == {frozenset(): 1}
            # converged: nothing waits to be written, in either lane
            assert found["credwarden_write_queue_plans"] == {
                frozenset({("lane", "fresh")}): 0,
                frozenset({("lane", "backlog")}): 0,
            }
            assert found["credwarden_reconcile_duration_seconds_count"][frozenset()] >= 1
            assert found["credwarden_evaluations_total"][frozenset()] >= len(status)
            last = found["credwarden_last_event_timestamp_seconds"][frozenset()]
            assert abs(last - time.time()) < 60
            errors = found["credwarden_api_errors_total"]
            assert errors[frozenset({("verb", "post"), ("code", "500")})] == 1
            # optimistic concurrency shows too (code 409): the reconciler re-reads and retries
            assert {dict(k)["code"] for k in errors} <= {"500", "409", "404"}

            # a Secret deleted on the cluster: its series are gone at the next scrape
            assert ("Secret", "monitoring", "grafana-creds") in status
            await sandbox.emulator.delete("/api/v1/namespaces/monitoring/secrets/grafana-creds")
            await wait_until(
                lambda: all(
                    k.name != "grafana-creds" or k.namespace != "monitoring"
                    for k in state.reconciler.records
                ),
                10,
            )
            async with aiohttp.ClientSession() as session, session.get(server.url) as r:
                after = parse(await r.read())
            names = by_name(after["credwarden_credential_status"])
            assert ("Secret", "monitoring", "grafana-creds") not in names
            assert len(names) == len(status) - 1
        finally:
            await server.stop()
        assert metrics_of(state.reconciler) is None  # stopped: hooks detached


def test_render_yields_to_the_event_loop_while_it_works() -> None:
    """At scale a scrape must not stall the watches: the renderer gives the loop a turn at
    least once per CHUNK records and family."""
    _, evaluation = example()
    many = [
        replace(record, key=replace(record.key, name=f"{record.key.name}-{index}"))
        for index in range(CHUNK * 3 // len(evaluation.records) + 1)
        for record in evaluation.records
    ]
    metrics = OperatorMetrics(state_with(many), clock=fixed_clock)

    async def measure() -> int:
        turns = 0
        done = False

        async def ticker() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await rendered(metrics)
        done = True
        await task
        return turns

    per_credential_families = sum(1 for family in FAMILIES if family.per_credential)
    assert asyncio.run(measure()) >= (len(many) // CHUNK) * (per_credential_families + 1)


# ---- scale -------------------------------------------------------------------------------------
def synthetic_records(credentials: int) -> tuple[list[LifecycleRecord], Inventory, datetime]:
    bench = Path(__file__).parents[1] / "bench"
    sys.path.insert(0, str(bench))
    try:
        import synthetic  # type: ignore[import-not-found]
        from engine_bench import inventory_from  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(bench))
    inventory = inventory_from(synthetic.generate(credentials))
    now: datetime = synthetic.NOW
    return evaluate(inventory, now).records, inventory, now


def series_counts(
    records: list[LifecycleRecord], inventory: Inventory, now: datetime, per_credential: bool
) -> dict[str, Any]:
    metrics = OperatorMetrics(
        state_with(records, inventory), per_credential=per_credential, clock=now.timestamp
    )

    async def timed() -> tuple[bytes, float, float]:
        longest = 0.0
        done = False

        async def ticker() -> None:
            nonlocal longest
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0)
                now_ = time.perf_counter()
                longest = max(longest, now_ - last)
                last = now_

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.perf_counter()
        body = await rendered(metrics)
        elapsed = time.perf_counter() - started
        done = True
        await task
        return body, elapsed, longest

    body, elapsed, longest = asyncio.run(timed())
    found = parse(body)
    families = {
        name: len(series) for name, series in found.items() if name.startswith("credwarden_")
    }
    return {
        "families": families,
        "credwarden_series": sum(families.values()),
        "seconds": elapsed,
        "longest_block": longest,
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body, 1)),
    }


@pytest.mark.timeout(180)
def test_series_count_and_scrape_cost_at_10k_credentials() -> None:
    records, inventory, now = synthetic_records(10_000)
    full = series_counts(records, inventory, now, per_credential=True)
    aggregates = series_counts(records, inventory, now, per_credential=False)
    per_credential = full["credwarden_series"] - aggregates["credwarden_series"]
    # docs/metrics.md: about 3.7 per-credential series per credential (status, expiry, last
    # rotation, findings), whatever the namespaces; aggregates grow with namespaces instead
    assert 3.0 * len(records) <= per_credential <= 4.5 * len(records), per_credential
    assert full["families"]["credwarden_credential_status"] == len(records)
    assert aggregates["credwarden_series"] < 2.0 * len(records)
    # generous bounds (shared CI machines): a whole scrape, and the longest stall of the loop
    assert full["seconds"] < 5.0, full
    assert full["longest_block"] < 1.0, full


def main(argv: list[str]) -> None:
    credentials = int(argv[1]) if len(argv) > 1 else 100_000
    records, inventory, now = synthetic_records(credentials)
    # steady state: building the cluster left a full collection pending, which the first
    # allocations would set off (in the operator that follows the initial listing, scraped
    # or not); measure the scrape, not that
    gc.collect()
    for per_credential in (True, False):
        result = series_counts(records, inventory, now, per_credential)
        print(
            f"{credentials} credentials, per_credential={per_credential}: "
            f"{result['credwarden_series']} credwarden series, scrape {result['seconds']:.2f}s, "
            f"longest loop stall {result['longest_block'] * 1000:.0f}ms, "
            f"{result['bytes'] / 1e6:.1f} MB ({result['gzip_bytes'] / 1e6:.1f} MB gzip)"
        )
        for name, count in sorted(result["families"].items()):
            print(f"    {name:60} {count:>9}")
    state = state_with(records, inventory)
    started = time.perf_counter()
    OperatorMetrics(state, clock=now.timestamp).generate()
    print(f"prometheus-client's generate_latest on the same: {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv)
