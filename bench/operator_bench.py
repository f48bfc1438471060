"""The operator benchmark over HTTP: credwarden against a kopf-idiomatic baseline.

For each size, repetition and implementation, in three processes:

1. `bench/apiserver.py` serves the synthetic cluster of `bench/synthetic.py`
   (`generate(n)`, timestamps shifted to the wall clock) plus two probe namespaces;
2. `bench/run_operator.py` runs credwarden (`--impl credwarden`) or the baseline
   (`bench/baseline_operator.py`, `--impl baseline`) against it;
3. this harness watches both: the server's log of every write and the operator's
   /stats (RSS, CPU, asyncio tasks, progress).

Figures per run (all from the same run, so ratios compare like with like):

- time from the operator's process start to every credential evaluated and to the last
  annotation written; the writes, their rate, the busiest 1-second and 10-second windows,
  and whether they stayed within `--qps` and `--burst` (credwarden's client);
- writes during `--quiet-seconds` once converged, as writes per hour;
- creation -> annotation and -> Event latency for `--create-probes` new Secrets;
- with `--backlog-probes N` (credwarden), the same for N Secrets created as soon as every
  credential has been evaluated, while the first start's writes are still being carried
  out, and how many operator writes came after the last of them was annotated and got
  its Event (the backlog left; the probes' own writes count among those while converging);
- deadline precision: `--deadline-probes` Secrets whose `credwarden.io/last-rotated`
  puts their expiry a few seconds ahead; expiry -> annotation and -> Event;
- RSS and peak RSS (VmRSS/VmHWM) after convergence, asyncio tasks after convergence and
  the most seen while converging;
- CPU per watch event: `--touch-events` label-only patches of existing Secrets, sent by
  this harness; the operator's CPU time over them, less its idle rate, divided by count.

    python bench/operator_bench.py --sizes 1000 --repeat 1
    python bench/operator_bench.py --sizes 1000 10000 --repeat 3 --quiet-seconds 65
    python bench/operator_bench.py --sizes 100000 --repeat 1 --baseline-timeout 1800

JSON goes to bench/results/operator-<time>.json; a markdown table of medians and
baseline/credwarden ratios is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HARNESS_HEADERS = {"X-Bench-Source": "harness", "User-Agent": "credwarden-bench"}
OWNED_NAMESPACE = "bench-owned"  # has an owner: its probes' only finding is the expiry
UNOWNED_NAMESPACE = "bench-unowned"  # no owner: a new Secret there is MissingOwner
LAST_ROTATED = "credwarden.io/last-rotated"
SECRETS_MAX_AGE = timedelta(days=180)  # the built-in baseline policy's limits.secrets.maxAge
TOUCH_LABEL = "bench.credwarden.io/touch"


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most events in any interval of `window` seconds (times sorted)."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# ---- the processes --------------------------------------------------------------------
@dataclass
class Process:
    proc: asyncio.subprocess.Process
    first_line: dict[str, Any]

    async def stop(self, grace: float = 20.0) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def spawn(argv: list[str], stderr_path: Path, timeout: float) -> Process:
    """Start a process whose first stdout line is a JSON object, and read that line."""
    stderr = stderr_path.open("ab")
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=HERE.parent
    )
    stderr.close()
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"{argv[1]} gave no first line within {timeout}s") from None
    if not line:
        await proc.wait()
        raise RuntimeError(f"{argv[1]} exited ({proc.returncode}); see {stderr_path}")
    return Process(proc, json.loads(line))


class WriteLog:
    """The server's write log, fetched incrementally; the operator's writes apart."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.rows: list[dict[str, Any]] = []
        self.next = 0

    async def fetch(self) -> None:
        while True:
            async with self.http.get(f"{self.url}/bench/writes", params={"after": self.next}) as r:
                page = await r.json()
            fields = page["fields"]
            self.rows.extend(dict(zip(fields, row, strict=True)) for row in page["rows"])
            self.next = page["next"]
            if not page["rows"]:
                return

    def operator(self, since: float = 0.0, until: float = math.inf) -> list[dict[str, Any]]:
        return [
            row
            for row in self.rows
            if row["source"] != "harness" and since <= row["time"] < until and row["code"] < 400
        ]

    def last_operator_write(self) -> float:
        for row in reversed(self.rows):
            if row["source"] != "harness":
                return float(row["time"])
        return 0.0


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with http.get(url, params=params) as response:
        return await response.json()


# ---- one run --------------------------------------------------------------------------
@dataclass
class RunResult:
    size: int
    impl: str
    repeat: int
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def probe_namespaces() -> list[dict[str, Any]]:
    owned = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": OWNED_NAMESPACE,
            "labels": {"env": "bench"},
            "annotations": {"credwarden.io/owner": "team-bench"},
        },
    }
    unowned = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": UNOWNED_NAMESPACE, "labels": {"env": "bench"}},
    }
    return [owned, unowned]


def probe_secret(name: str, namespace: str, annotations: dict[str, str]) -> dict[str, Any]:
    value = base64.b64encode(secrets.token_bytes(24)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "data": {"password": value},
    }


class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir

    def log(self, message: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)

    async def run(self, size: int, impl: str, repeat: int) -> RunResult:
        result = RunResult(size, impl, repeat)
        tag = f"{impl}-{size}-{repeat}"
        server = await spawn(
            [sys.executable, str(HERE / "apiserver.py"), "--synthetic", str(size), "--retime"],
            self.workdir / f"server-{tag}.err",
            timeout=600,
        )
        url = server.first_line["url"]
        result.figures["server_load_seconds"] = round(server.first_line["load_seconds"], 2)
        connector = aiohttp.TCPConnector(force_close=True, limit=50)
        http = aiohttp.ClientSession(
            headers=HARNESS_HEADERS,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=60),
        )
        shim: Process | None = None
        try:
            for body in probe_namespaces():
                async with http.post(f"{url}/api/v1/namespaces", json=body) as response:
                    response.raise_for_status()
            writes = WriteLog(http, url)
            shim, started = await self._start_shim(impl, url, tag)
            stats_url = shim.first_line["stats_url"]
            converged_at = await self._converge(result, shim, http, stats_url, writes, started)
            if converged_at is None:
                return result
            await self._quiet(result, http, stats_url, writes)
            await self._probes(result, http, url, stats_url, writes)
            await self._touch(result, http, url, stats_url, writes)
            final = await get_json(http, stats_url, full="1")
            result.figures["peak_rss_mib"] = round(final["peak_rss_kib"] / 1024, 1)
            result.figures["tasks_end"] = final["asyncio_tasks"]
            # what RSS remains once the allocator gives back what is free (last: it
            # changes the process)
            trimmed = await get_json(http, stats_url, trim="1")
            result.figures["rss_after_trim_mib"] = round(trimmed["rss_kib"] / 1024, 1)
            summary = await get_json(http, f"{url}/bench/summary")
            result.figures["server_handler_mean_ms"] = summary["handler_mean_ms"]
            result.figures["server_requests"] = summary["requests"]
        finally:
            if shim is not None:
                await shim.stop()
                if shim.proc.returncode not in (0, -signal.SIGINT, None):
                    result.notes.append(f"operator exited with {shim.proc.returncode}")
            await server.stop(grace=5)
            await http.close()
        return result

    async def _start_shim(self, impl: str, url: str, tag: str) -> tuple[Process, float]:
        args = self.args
        argv = [
            sys.executable,
            str(HERE / "run_operator.py"),
            "--impl",
            impl,
            "--server",
            url,
            "--qps",
            str(args.qps),
            "--burst",
            str(args.burst),
            "--timer-interval",
            str(args.timer_interval),
            "--log-file",
            str(self.workdir / f"operator-{tag}.log"),
        ]
        if args.block_kubernetes_import:
            argv.append("--block-kubernetes-import")
        if not args.stock_kopf:
            argv.append("--fix-kopf-toggles")
        if args.tracemalloc:
            argv.append("--tracemalloc")
        started = time.time()
        shim = await spawn(argv, self.workdir / f"operator-{tag}.err", timeout=120)
        return shim, started

    async def _converge(
        self,
        result: RunResult,
        shim: Process,
        http: aiohttp.ClientSession,
        stats_url: str,
        writes: WriteLog,
        started: float,
    ) -> float | None:
        """Wait until every credential is evaluated and the writes have stopped."""
        args = self.args
        figures = result.figures
        timeout = args.baseline_timeout if result.impl == "baseline" else args.timeout
        deadline = started + timeout
        evaluated_at: float | None = None
        peak_tasks = 0
        stats: dict[str, Any] = {}
        backlog_probes: asyncio.Task[dict[str, float]] | None = None
        while True:
            await asyncio.sleep(args.poll)
            now = time.time()
            if shim.proc.returncode is not None:
                result.notes.append(f"operator exited ({shim.proc.returncode}) while converging")
                figures["converged"] = False
                return None
            try:
                stats = await get_json(http, stats_url)
                await writes.fetch()
            except (TimeoutError, aiohttp.ClientError) as error:
                # e.g. the operator out of file descriptors: keep waiting, within the bound
                if not any("unanswered" in note for note in result.notes):
                    result.notes.append(f"stats unanswered at {now - started:.0f} s: {error!r}")
                if now > deadline:
                    figures["converged"] = False
                    result.notes.append(f"did not converge within {timeout:.0f} s")
                    return None
                continue
            peak_tasks = max(peak_tasks, stats["asyncio_tasks"])
            if result.impl == "credwarden":
                evaluated_at = stats.get("all_evaluated_at")
                done = bool(stats.get("converged")) and evaluated_at is not None
                if evaluated_at is not None and backlog_probes is None and args.backlog_probes:
                    backlog_probes = asyncio.create_task(
                        self._create_probes(http, writes.url, "backlog", args.backlog_probes)
                    )
                if backlog_probes is not None and not backlog_probes.done():
                    done = False
            else:
                baseline = stats.get("baseline") or {}
                total = baseline.get("inventory_credentials") or 0
                if evaluated_at is None and total and stats.get("evaluated", 0) >= total:
                    evaluated_at = now  # sampled: within --poll of the moment
                done = evaluated_at is not None
            last_write = max(writes.last_operator_write(), evaluated_at or 0.0)
            if done and now - last_write >= args.settle:
                break
            if now > deadline:
                figures["converged"] = False
                figures["timeout_seconds"] = timeout
                figures["evaluated_at_timeout"] = stats.get("evaluated") or stats.get("evaluations")
                figures["writes_at_timeout"] = len(writes.operator())
                figures["rss_at_timeout_mib"] = round(stats["rss_kib"] / 1024, 1)
                figures["tasks_at_timeout"] = stats["asyncio_tasks"]
                result.notes.append(f"did not converge within {timeout:.0f} s")
                self.log(f"{result.impl} {result.size}: did not converge within {timeout:.0f} s")
                return None
        converged_at = time.time()
        figures["converged"] = True
        figures["t_evaluated_s"] = round(evaluated_at - started, 2) if evaluated_at else None
        ours = [row for row in writes.operator(started) if row["ours_changed"]]
        figures["annotation_writes"] = len(ours)
        figures["t_annotated_s"] = round(ours[-1]["time"] - started, 2) if ours else None
        during = writes.operator(started, converged_at)
        figures["writes_converging"] = len(during)
        figures["writes_by_kind"] = _by_kind(during)
        times = [row["time"] for row in during]
        if len(times) > 1:
            span = times[-1] - times[0]
            figures["write_rate_per_s"] = round(len(times) / span, 1) if span > 0 else None
        limited = sorted(row["time"] for row in during if row["source"] == "credwarden")
        figures["max_client_writes_1s"] = max_in_window(limited, 1.0)
        figures["max_client_writes_10s"] = max_in_window(limited, 10.0)
        if args.qps > 0 and result.impl == "credwarden":
            figures["qps_respected"] = (
                figures["max_client_writes_1s"] <= args.qps * 1 + args.burst
                and figures["max_client_writes_10s"] <= args.qps * 10 + args.burst
            )
        if backlog_probes is not None:
            self._backlog_figures(figures, await backlog_probes, writes, during)
        full = await get_json(http, stats_url, full="1")
        figures["rss_converged_mib"] = round(full["rss_kib"] / 1024, 1)
        figures["tasks_converged"] = full["asyncio_tasks"]
        figures["peak_tasks_sampled"] = peak_tasks
        figures["import_rss_kib"] = full.get("import_rss_kib")
        if "records_by_status" in full:
            figures["records_by_status"] = full["records_by_status"]
        if "pymalloc" in full:
            figures["pymalloc"] = full["pymalloc"]
        if "tracemalloc_by_package" in full:
            figures["tracemalloc_by_package_mib"] = full["tracemalloc_by_package"]
            figures["tracemalloc_top_lines"] = full.get("tracemalloc_top_lines")
            figures["decoded_strings_by_holder"] = full.get("decoded_strings_by_holder")
        figures["annotated_objects"] = (await get_json(http, f"{writes.url}/bench/summary"))[
            "annotated"
        ]
        self.log(
            f"{result.impl} {result.size}: converged in {converged_at - started:.1f} s, "
            f"{len(during)} writes, RSS {figures['rss_converged_mib']} MiB"
        )
        return converged_at

    async def _quiet(
        self, result: RunResult, http: aiohttp.ClientSession, stats_url: str, writes: WriteLog
    ) -> None:
        """Writes and CPU while nothing changes."""
        before = await get_json(http, stats_url)
        since = time.time()
        await asyncio.sleep(self.args.quiet_seconds)
        after = await get_json(http, stats_url)
        until = time.time()
        await writes.fetch()
        quiet = writes.operator(since, until)
        window = until - since
        result.figures["quiet_window_s"] = round(window, 1)
        result.figures["quiet_writes"] = len(quiet)
        result.figures["writes_per_hour_converged"] = round(len(quiet) * 3600 / window, 1)
        result.figures["idle_cpu_percent"] = round(
            100 * (after["cpu_seconds"] - before["cpu_seconds"]) / window, 2
        )
        result.figures["rss_steady_mib"] = round(after["rss_kib"] / 1024, 1)
        result.figures["tasks_steady"] = after["asyncio_tasks"]

    async def _probes(
        self,
        result: RunResult,
        http: aiohttp.ClientSession,
        url: str,
        stats_url: str,
        writes: WriteLog,
    ) -> None:
        """Creation -> annotation/Event latency, and expiry -> annotation/Event precision."""
        args = self.args
        run_id = secrets.token_hex(3)
        # deadline probes: expiry at whole seconds (the annotation's precision), a few
        # seconds ahead, two per second
        first = math.ceil(time.time()) + args.deadline_lead
        targets: dict[str, float] = {}
        for index in range(args.deadline_probes):
            target = first + index // 2
            name = f"deadline-{run_id}-{index}"
            rotated = datetime.fromtimestamp(target, UTC) - SECRETS_MAX_AGE
            body = probe_secret(name, OWNED_NAMESPACE, {LAST_ROTATED: _ts(rotated)})
            async with http.post(
                f"{url}/api/v1/namespaces/{OWNED_NAMESPACE}/secrets", json=body
            ) as response:
                response.raise_for_status()
            targets[name] = target
        created = await self._create_probes(http, url, f"create-{run_id}", args.create_probes)
        # wait for every probe's annotation and Event, within a bound
        slack = args.timer_interval + 30 if result.impl == "baseline" else args.probe_timeout
        give_up = max(max(targets.values(), default=0), time.time()) + slack
        create_found: dict[str, tuple[float | None, float | None]] = {}
        deadline_found: dict[str, tuple[float | None, float | None]] = {}
        while True:
            await asyncio.sleep(args.poll)
            await writes.fetch()
            create_found = _first_after(writes, UNOWNED_NAMESPACE, created, status_change=False)
            deadline_found = _first_after(writes, OWNED_NAMESPACE, targets, status_change=True)
            pending = [
                name
                for found in (create_found, deadline_found)
                for name, (annotated, evented) in found.items()
                if annotated is None or evented is None
            ]
            if not pending or time.time() > give_up:
                break
        _creation_times(created, writes)
        figures = result.figures
        figures.update(
            _latencies("create", create_found, created),
            **_latencies("deadline", deadline_found, targets),
        )

    async def _create_probes(
        self, http: aiohttp.ClientSession, url: str, prefix: str, count: int
    ) -> dict[str, float]:
        """`count` new Secrets without an owner, at --create-rate; name -> time sent."""
        created: dict[str, float] = {}
        interval = 1 / self.args.create_rate
        for index in range(count):
            name = f"{prefix}-{index}"
            body = probe_secret(name, UNOWNED_NAMESPACE, {})
            sent = time.time()
            async with http.post(
                f"{url}/api/v1/namespaces/{UNOWNED_NAMESPACE}/secrets", json=body
            ) as response:
                response.raise_for_status()
            created[name] = sent
            await asyncio.sleep(max(0.0, sent + interval - time.time()))
        return created

    def _backlog_figures(
        self,
        figures: dict[str, Any],
        created: dict[str, float],
        writes: WriteLog,
        during: list[dict[str, Any]],
    ) -> None:
        """Latencies of the probes created during the first start, and the backlog left."""
        _creation_times(created, writes)
        found = _first_after(writes, UNOWNED_NAMESPACE, created, status_change=False)
        figures.update(_latencies("backlog", found, created))
        done = [max(a, e) for a, e in found.values() if a is not None and e is not None]
        if done:
            last = max(done)
            figures["backlog_writes_after_probes"] = sum(
                1 for row in during if row["time"] > last and row["name"] not in created
            )

    async def _touch(
        self,
        result: RunResult,
        http: aiohttp.ClientSession,
        url: str,
        stats_url: str,
        writes: WriteLog,
    ) -> None:
        """CPU per watch event: label-only patches of existing Secrets, at a steady rate."""
        args = self.args
        count = args.touch_events
        if count <= 0:
            return
        page = await get_json(http, f"{url}/api/v1/secrets", limit=str(4 * count))
        names = [
            (item["metadata"]["namespace"], item["metadata"]["name"])
            for item in page["items"]
            if not item["metadata"]["namespace"].startswith("bench-")
        ]
        random.Random(count).shuffle(names)
        chosen = (names * (1 + count // max(1, len(names))))[:count]
        idle_rate = result.figures.get("idle_cpu_percent", 0.0) / 100
        before = await get_json(http, stats_url)
        since = time.time()
        interval = 1 / args.touch_rate
        gate = asyncio.Semaphore(20)

        async def touch(index: int, namespace: str, name: str) -> None:
            async with gate:
                patch = {"metadata": {"labels": {TOUCH_LABEL: str(index)}}}
                async with http.patch(
                    f"{url}/api/v1/namespaces/{namespace}/secrets/{name}",
                    data=json.dumps(patch),
                    headers={"Content-Type": "application/merge-patch+json"},
                ) as response:
                    response.raise_for_status()

        sent: list[asyncio.Task[None]] = []
        for index, (namespace, name) in enumerate(chosen):
            sent.append(asyncio.create_task(touch(index, namespace, name)))
            await asyncio.sleep(max(0.0, since + (index + 1) * interval - time.time()))
        await asyncio.gather(*sent)
        # then until the operator is done with them: its CPU back to idle, no writes
        give_up = time.time() + args.touch_timeout
        previous = before
        while time.time() < give_up:
            await asyncio.sleep(1.0)
            current = await get_json(http, stats_url)
            await writes.fetch()
            busy = (current["cpu_seconds"] - previous["cpu_seconds"]) / max(
                1e-6, current["time"] - previous["time"]
            )
            previous = current
            if busy <= idle_rate + 0.02 and time.time() - writes.last_operator_write() > 2:
                break
        after = previous
        elapsed = after["time"] - before["time"]
        spent = after["cpu_seconds"] - before["cpu_seconds"]
        figures = result.figures
        figures["touch_events"] = count
        figures["cpu_per_event_ms"] = round(1000 * (spent - idle_rate * elapsed) / count, 3)
        figures["cpu_per_event_raw_ms"] = round(1000 * spent / count, 3)
        figures["writes_per_touch_event"] = round(
            len(writes.operator(since, after["time"])) / count, 3
        )


def _by_kind(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        key = f"{row['source']} {row['method']} {row['resource']}"
        if row["subresource"]:
            key += f"/{row['subresource']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _creation_times(created: dict[str, float], writes: WriteLog) -> None:
    """Creation times from the server's log of the harness's own POSTs."""
    for row in writes.rows:
        if row["source"] == "harness" and row["method"] == "POST" and row["name"] in created:
            created[row["name"]] = row["time"]


def _first_after(
    writes: WriteLog, namespace: str, since: dict[str, float], *, status_change: bool
) -> dict[str, tuple[float | None, float | None]]:
    """Per probe: the first operator annotation (a change of credwarden.io/status if
    `status_change`, else any change of credwarden's annotations) and the first Event
    about it, at or after its moment."""
    found: dict[str, list[float | None]] = {name: [None, None] for name in since}
    for row in writes.operator():
        if row["resource"] == "events" and row["involved"]:
            kind, involved_ns, involved_name = row["involved"]
            slot = found.get(involved_name)
            if (
                kind == "Secret"
                and involved_ns == namespace
                and slot is not None
                and slot[1] is None
                and row["time"] >= since[involved_name]
            ):
                slot[1] = row["time"]
            continue
        if row["resource"] != "secrets" or row["namespace"] != namespace:
            continue
        slot = found.get(row["name"])
        if slot is None or slot[0] is not None or row["time"] < since[row["name"]]:
            continue
        changed = (
            row["status_after"] != row["status_before"] if status_change else row["ours_changed"]
        )
        if changed:
            slot[0] = row["time"]
    return {name: (slot[0], slot[1]) for name, slot in found.items()}


def _latencies(
    prefix: str, found: dict[str, tuple[float | None, float | None]], since: dict[str, float]
) -> dict[str, Any]:
    annotation = [a - since[n] for n, (a, _) in found.items() if a is not None]
    event = [e - since[n] for n, (_, e) in found.items() if e is not None]
    both = [max(a, e) - since[n] for n, (a, e) in found.items() if a is not None and e is not None]
    figures: dict[str, Any] = {f"{prefix}_probes": len(found), f"{prefix}_complete": len(both)}
    for label, values in (("annotation", annotation), ("event", event), ("both", both)):
        for q in (50, 99):
            value = percentile(values, q)
            figures[f"{prefix}_to_{label}_p{q}_ms"] = (
                round(1000 * value, 1) if value is not None else None
            )
    return figures


# ---- the report -------------------------------------------------------------------------
ROWS: tuple[tuple[str, str], ...] = (
    ("t_evaluated_s", "start -> every credential evaluated (s)"),
    ("t_annotated_s", "start -> last annotation written (s)"),
    ("writes_converging", "writes while converging"),
    ("write_rate_per_s", "write rate while converging (/s)"),
    ("max_client_writes_1s", "busiest second, credwarden client writes"),
    ("max_client_writes_10s", "busiest 10 s, credwarden client writes"),
    ("writes_per_hour_converged", "writes per hour once converged"),
    ("create_to_annotation_p50_ms", "creation -> annotation p50 (ms)"),
    ("create_to_annotation_p99_ms", "creation -> annotation p99 (ms)"),
    ("create_to_event_p50_ms", "creation -> Event p50 (ms)"),
    ("create_to_event_p99_ms", "creation -> Event p99 (ms)"),
    ("backlog_to_both_p50_ms", "creation during the first start -> annotation+Event p50 (ms)"),
    ("backlog_to_both_p99_ms", "creation during the first start -> annotation+Event p99 (ms)"),
    ("backlog_writes_after_probes", "first-start writes still to come once the probes were done"),
    ("deadline_to_both_p50_ms", "expiry -> annotation+Event p50 (ms)"),
    ("deadline_to_both_p99_ms", "expiry -> annotation+Event p99 (ms)"),
    ("rss_steady_mib", "RSS once converged (MiB)"),
    ("peak_rss_mib", "peak RSS (MiB)"),
    ("rss_after_trim_mib", "RSS after gc + malloc_trim at the end (MiB)"),
    ("tasks_steady", "asyncio tasks once converged"),
    ("peak_tasks_sampled", "asyncio tasks, most seen while converging"),
    ("cpu_per_event_ms", "CPU per watch event (ms, net of idle)"),
    ("writes_per_touch_event", "writes per label-only watch event"),
    ("idle_cpu_percent", "idle CPU once converged (%)"),
    ("server_handler_mean_ms", "API server: mean handler time (ms)"),
)


def median_of(results: list[RunResult], key: str) -> float | None:
    values = [r.figures[key] for r in results if isinstance(r.figures.get(key), int | float)]
    values = [v for v in values if not isinstance(v, bool)]
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")


def report(results: list[RunResult], sizes: Sequence[int], impls: Sequence[str]) -> str:
    lines: list[str] = []
    for size in sizes:
        runs = {impl: [r for r in results if r.size == size and r.impl == impl] for impl in impls}
        header = f"| {size:,} credentials |"
        rule = "|---|"
        for impl in impls:
            done = sum(1 for r in runs[impl] if r.figures.get("converged"))
            header += f" {impl} (median of {done}/{len(runs[impl])}) |"
            rule += "---:|"
        if len(impls) == 2:
            header += f" {impls[1]} / {impls[0]} |"
            rule += "---:|"
        lines += ["", header, rule]
        for key, title in ROWS:
            cells = [median_of(runs[impl], key) for impl in impls]
            row = f"| {title} | " + " | ".join(_fmt(c) for c in cells) + " |"
            if len(impls) == 2:
                first, second = cells
                ratio = second / first if first and second is not None else None
                row += f" {_fmt(ratio)}x |" if ratio is not None else " – |"
            lines.append(row)
        for impl in impls:
            for run in runs[impl]:
                for note in run.notes:
                    lines.append(f"\n- {impl} run {run.repeat}: {note}")
    slopes = []
    for impl in impls:
        rss = {
            size: median_of(
                [r for r in results if r.size == size and r.impl == impl], "rss_steady_mib"
            )
            for size in sizes
        }
        known = sorted((size, value) for size, value in rss.items() if value is not None)
        if len(known) >= 2:
            (small, low), (big, high) = known[-2], known[-1]
            slope = (high - low) * 1024 / (big - small)
            slopes.append(
                f"- {impl}: RSS slope {small:,} -> {big:,}: {slope:.2f} KiB per credential"
            )
    if slopes:
        lines += ["", *slopes]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--impls", nargs="+", default=["credwarden", "baseline"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--qps", type=float, default=500.0, help="credwarden's client QPS")
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--timer-interval", type=float, default=60.0, help="baseline timers")
    parser.add_argument("--timeout", type=float, default=1800.0, help="credwarden convergence")
    parser.add_argument("--baseline-timeout", type=float, default=900.0)
    parser.add_argument("--settle", type=float, default=3.0, help="no writes for this long")
    parser.add_argument("--quiet-seconds", type=float, default=20.0)
    parser.add_argument("--create-probes", type=int, default=50)
    parser.add_argument("--create-rate", type=float, default=10.0, help="probes per second")
    parser.add_argument(
        "--backlog-probes",
        type=int,
        default=0,
        help="Secrets created while the first start's writes are carried out (credwarden)",
    )
    parser.add_argument("--deadline-probes", type=int, default=20)
    parser.add_argument("--deadline-lead", type=int, default=8, help="seconds to first expiry")
    parser.add_argument("--probe-timeout", type=float, default=30.0)
    parser.add_argument("--touch-events", type=int, default=1000)
    parser.add_argument("--touch-rate", type=float, default=200.0)
    parser.add_argument("--touch-timeout", type=float, default=120.0)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--block-kubernetes-import", action="store_true")
    parser.add_argument(
        "--stock-kopf",
        action="store_true",
        help="do not patch kopf's startup barrier (O(N^2) wake-ups; see bench/README.md)",
    )
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--json", default="", help="results file (default bench/results/)")
    return parser.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="credwarden-operator-bench-"))
    runner = Runner(args, workdir)
    runner.log(f"logs in {workdir}")
    results: list[RunResult] = []
    started = datetime.now(UTC)
    for size in args.sizes:
        for repeat in range(args.repeat):
            for impl in args.impls:  # interleaved: both see about the same machine load
                runner.log(f"{impl} {size} run {repeat + 1}/{args.repeat}")
                try:
                    results.append(await runner.run(size, impl, repeat))
                except Exception as error:  # one broken run must not lose the others
                    failed = RunResult(size, impl, repeat)
                    failed.notes.append(f"failed: {type(error).__name__}: {error}")
                    results.append(failed)
                    runner.log(f"{impl} {size}: failed: {error}")
    RESULTS.mkdir(exist_ok=True)
    path = Path(args.json) if args.json else RESULTS / f"operator-{started:%Y%m%dT%H%M%SZ}.json"
    document = {
        "started": started.isoformat(),
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg(), "python": sys.version},
        "runs": [vars(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=1, default=str))
    print(report(results, args.sizes, args.impls))
    print(f"\nJSON: {path}")
    return 0


def main() -> None:
    raise SystemExit(asyncio.run(amain(parse_args())))


if __name__ == "__main__":
    main()
