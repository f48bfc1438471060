"""`credwarden demo`: the real operator against an in-process Kubernetes API.

The emulated cluster is preloaded with the example MLOps cluster (or a snapshot); the
operator runs until it has converged (or for `--for` seconds) and the demo prints what a
platform engineer would see: the lifecycle table and the Events it posted.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from credwarden.facts import LAST_APPLIED
from credwarden.metrics import serve_metrics
from credwarden.records import Evaluation
from credwarden.report import render_table
from credwarden.sandbox import emulated_cluster, operator_on

DEMO_TIMEOUT = 25.0


def with_mode(policies: Iterable[Mapping[str, Any]], mode: str | None) -> list[dict[str, Any]]:
    """Policies with spec.mode forced (demo --mode), copied."""
    result: list[dict[str, Any]] = []
    for policy in policies:
        copied: dict[str, Any] = copy.deepcopy(dict(policy))
        if mode:
            copied.setdefault("spec", {})["mode"] = mode
        result.append(copied)
    return result


def redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """An object safe to print: Secret values emptied (keys kept), last-applied dropped."""
    copied: dict[str, Any] = copy.deepcopy(dict(body))
    if copied.get("kind") == "Secret":
        copied["data"] = dict.fromkeys(copied.get("data") or {}, "")
        copied.pop("stringData", None)
    annotations = (copied.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    return copied


def _events_table(events: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for event in sorted(events, key=lambda e: e["metadata"]["name"]):
        involved = event.get("involvedObject", {})
        target = (
            f"{involved.get('kind', '')}/{involved.get('namespace', '')}/{involved.get('name')}"
        )
        lines.append(f"{event.get('type', ''):8} {event.get('reason', ''):30} {target}")
        lines.append(f"{'':9}{event.get('message', '')}")
    return "\n".join(lines) + "\n"


async def run_demo(
    objects: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    seconds: float | None,
    dump: Path | None,
    out: TextIO | None = None,
    metrics_port: int | None = None,
) -> int:
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    started = time.monotonic()
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        reconciler = state.reconciler
        metrics = None
        if metrics_port is not None:
            # loopback only: the demo is local; stopped before the operator (kopf waits
            # for any connection task still open when it stops)
            metrics = await serve_metrics(state, metrics_port, host="127.0.0.1")
            print(f"credwarden demo: metrics at {metrics.url}", file=sys.stderr, flush=True)
        try:
            if seconds is None:
                await asyncio.wait_for(reconciler.converged.wait(), DEMO_TIMEOUT)
            else:
                # kopf takes SIGINT/SIGTERM and stops: end the demo then, not at --for
                waiting = asyncio.ensure_future(asyncio.sleep(seconds))
                stopped = sandbox.operator or asyncio.ensure_future(asyncio.Event().wait())
                await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
        finally:
            if metrics is not None:
                await metrics.stop()
        records = sorted(reconciler.records.values(), key=lambda r: r.key)
        evaluation = Evaluation(now=now, records=records)
        emulator = sandbox.emulator
        stored = [
            found.raw
            for key in list(emulator.objects)
            if (found := emulator.objects[key]) is not None and not found.deleted
        ]
        events = [body for body in stored if body.get("kind") == "Event"]
        elapsed = time.monotonic() - started
        out.write(render_table(evaluation))
        out.write(f"\nEvents posted by credwarden ({len(events)}):\n")
        out.write(_events_table(events))
        writes = reconciler.stats.writes
        out.write(
            f"\nConverged in {elapsed:.1f}s: {reconciler.stats.evaluations} evaluations, "
            f"{writes} writes, {reconciler.stats.events_posted} events.\n"
        )
        if dump is not None:
            document = {
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": ""},
                "items": [redacted(body) for body in stored],
            }
            dump.write_text(yaml.safe_dump(document, sort_keys=False))
            out.write(f"Wrote {len(stored)} objects and events to {dump}.\n")
    return 0
