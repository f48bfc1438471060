"""The operator under benchmark, alone in its process, pointed at bench/apiserver.py.

    python bench/run_operator.py --impl credwarden --server http://127.0.0.1:PORT --qps 20

`--impl credwarden` runs the real operator in-process, as `credwarden run` does
(`credwarden.runner.running` with kopf's default settings plus credwarden's own, and a
`KubeClient` with the given QPS and burst), logged in to the server without credentials
as `credwarden.sandbox.operator_on` does. `--impl baseline` runs
`bench/baseline_operator.py`'s kopf-idiomatic operator instead.

The first stdout line is `{"stats_url": ...}`: a side endpoint that answers
`GET /stats` (add `?full=1` for the costlier figures) with the process's RSS and peak RSS
(VmRSS/VmHWM), CPU time, asyncio task count and the operator's own progress counters.
`import_rss` holds the RSS after each import stage, so the cost of kopf, of the
`kubernetes` client kopf imports when it is installed, and of credwarden can be told
apart. credwarden imports kopf without that client (`credwarden/kopfimport.py`), as
`credwarden run` does; `--block-kubernetes-import` makes the import fail for the
baseline too (kopf then works without it).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

IMPORT_RSS: list[tuple[str, int]] = []  # (stage, RSS KiB) in import order


def proc_status() -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and friends, in KiB."""
    values: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "VmData:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values


def _stage(name: str) -> None:
    IMPORT_RSS.append((name, proc_status()["VmRSS"]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=("credwarden", "baseline"), default="credwarden")
    parser.add_argument("--server", required=True, help="the API server's URL")
    parser.add_argument("--qps", type=float, default=20.0, help="credwarden's client QPS limit")
    parser.add_argument("--burst", type=int, default=50, help="credwarden's client burst")
    parser.add_argument("--timer-interval", type=float, default=60.0, help="baseline timers")
    parser.add_argument("--stats-port", type=int, default=0)
    parser.add_argument(
        "--fix-kopf-toggles",
        action="store_true",
        help="patch kopf's ToggleSet to wake its waiters only when its state changes "
        "(stock kopf wakes every waiting worker on each object indexed at startup: "
        "O(N^2); see bench/README.md). Only the baseline watches through kopf.",
    )
    parser.add_argument("--heartbeat", metavar="NAMESPACE", default="")
    parser.add_argument("--block-kubernetes-import", action="store_true")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace allocations from the start; /stats?full=1 groups them by package",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-file", default="", help="operator logs (default: stderr)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _stage("python")
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(1)
    if args.block_kubernetes_import:
        # kopf's thirdparty.py treats an ImportError as "not installed"
        sys.modules["kubernetes"] = None  # type: ignore[assignment]
    import asyncio

    import aiohttp  # noqa: F401 (its cost is counted apart from kopf's)

    _stage("aiohttp")
    import pydantic  # noqa: F401

    _stage("pydantic")
    if args.impl == "credwarden":
        # as `credwarden run` imports it: without the `kubernetes` client (kopfimport.py)
        from credwarden.kopfimport import kopf
    else:
        import kopf  # noqa: F401

    _stage("kopf (+ kubernetes)" if "kubernetes" in sys.modules else "kopf")
    from credwarden import controller, runner  # noqa: F401

    _stage("credwarden")
    if args.fix_kopf_toggles:
        fix_kopf_toggles()
    if args.impl == "baseline":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import baseline_operator  # noqa: F401

        _stage("baseline")
    asyncio.run(run(args))


def fix_kopf_toggles() -> None:
    """Make kopf's startup barrier O(1) per object instead of O(waiting workers).

    kopf (1.45.2, _cogs/aiokits/aiotoggles.py) keeps one "not yet indexed" toggle per
    object in `operator_indexed = ToggleSet(all)`; every worker, once it has indexed its
    object, drops its toggle (`drop_toggle` -> `notify_all`) and waits for the set to turn
    on. Each drop wakes every waiting worker, which re-takes the condition's lock in turn
    only to find the set still off: N drops x N waiters. Waiters wait only for the set's
    overall state, so waking them when that state has not changed is useless; this
    notifies only on a change. Toggle.turn_to (peering pauses) is left as it is.
    """
    from kopf._cogs.aiokits import aiotoggles

    toggle_set: Any = aiotoggles.ToggleSet

    async def make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> Any:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            if self.is_on() != before:
                self._condition.notify_all()
        return toggle

    async def drop_toggles(self: Any, toggles: Any) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            if self.is_on() != before:
                self._condition.notify_all()

    async def drop_toggle(self: Any, toggle: Any) -> None:
        await drop_toggles(self, (toggle,))

    toggle_set.make_toggle = make_toggle
    toggle_set.drop_toggle = drop_toggle
    toggle_set.drop_toggles = drop_toggles


class Probe:
    """What /stats reports."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.time()
        self.state: Any = None  # credwarden's OperatorState
        # when every credential listed at startup had been evaluated once (its plans are
        # carried out from the write queue meanwhile and afterwards)
        self.all_evaluated_at: float | None = None
        self.first_pass_done_at: float | None = None

    def on_evaluated(self, _record: Any, _key: Any) -> None:
        # one call per evaluation (not removed: the reconciler iterates its listeners)
        if self.all_evaluated_at is not None:
            return
        state = self.state
        if state.reconciler.stats.evaluations >= len(state.inventory):
            self.all_evaluated_at = time.time()

    def on_pass(self, _seconds: float, _count: int) -> None:
        if self.first_pass_done_at is None and self.all_evaluated_at is not None:
            self.first_pass_done_at = time.time()

    def stats(self, full: bool) -> dict[str, Any]:
        import asyncio
        import resource

        status = proc_status()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats: dict[str, Any] = {
            "time": time.time(),
            "impl": self.args.impl,
            "rss_kib": status["VmRSS"],
            "peak_rss_kib": status["VmHWM"],
            "rss_anon_kib": status.get("RssAnon"),
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "cpu_user_seconds": usage.ru_utime,
            "asyncio_tasks": len(asyncio.all_tasks()),
            "kubernetes_imported": "kubernetes" in sys.modules
            and sys.modules["kubernetes"] is not None,
            "import_rss_kib": IMPORT_RSS,
        }
        if self.state is not None:
            state = self.state
            reconciler = state.reconciler
            stats.update(
                ready=reconciler.ready.is_set(),
                converged=reconciler.converged.is_set(),
                evaluations=reconciler.stats.evaluations,
                inventory_credentials=len(state.inventory),
                records=len(reconciler.records),
                all_evaluated_at=self.all_evaluated_at,
                first_pass_done_at=self.first_pass_done_at,
                client_requests=state.client.requests,
                annotation_writes=reconciler.stats.writes,
                events_posted=reconciler.stats.events_posted,
                write_errors=reconciler.stats.write_errors,
                plans_waiting=len(reconciler.queue),
                plans_in_flight=reconciler.queue.in_flight,
            )
            if full:
                governed: dict[str, int] = {}
                for record in reconciler.records.values():
                    governed[record.status] = governed.get(record.status, 0) + 1
                stats["records_by_status"] = governed
        elif self.args.impl == "baseline":
            import baseline_operator

            stats.update(
                evaluated=baseline_operator.evaluated_count(),
                baseline=baseline_operator.baseline_stats(),
            )
        if full:
            stats["pymalloc"] = pymalloc_use()
        if full and self.args.tracemalloc:
            stats["tracemalloc_by_package"] = traced_by_package()
            stats["tracemalloc_top_lines"] = traced_top_lines()
            stats["decoded_strings_by_holder"] = decoded_strings_by_holder()
        return stats


def pymalloc_use() -> dict[str, float]:
    """pymalloc's arenas: MiB allocated in them, and the share of their blocks in use
    (fragmentation shows as a low share), read from `sys._debugmallocstats()`."""
    import os
    import re
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as captured:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(captured.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read()

    def figure(label: str) -> int:
        found = re.search(rf"^{re.escape(label)}\s*=\s*([\d,]+)", text, re.MULTILINE)
        return int(found.group(1).replace(",", "")) if found else 0

    allocated = figure("# bytes in allocated blocks")
    available = figure("# bytes in available blocks")
    arenas = figure("Total")
    return {
        "arenas_mib": round(arenas / 2**20, 1),
        "blocks_in_use_mib": round(allocated / 2**20, 1),
        "blocks_free_mib": round(available / 2**20, 1),
        "in_use_share": round(allocated / arenas, 3) if arenas else 0.0,
    }


def decoded_strings_by_holder(top: int = 30) -> list[tuple[str, int, int]]:
    """Strings the JSON decoder made that are still alive, by what holds them: a slot
    (`Meta.name`), an item of a container in a slot (`Meta.annotation_values[]`), or the
    type of any other container. (holder, count, bytes), each string counted once."""
    import gc
    import tracemalloc

    def decoded(value: Any) -> bool:
        if type(value) is not str:
            return False
        traceback = tracemalloc.get_object_traceback(value)
        return traceback is not None and traceback[0].filename.endswith("decoder.py")

    counts: dict[str, list[int]] = {}
    seen: set[int] = set()

    def note(holder: str, value: Any) -> None:
        if id(value) not in seen and decoded(value):
            seen.add(id(value))
            entry = counts.setdefault(holder, [0, 0])
            entry[0] += 1
            entry[1] += sys.getsizeof(value)

    gc.unfreeze()  # frozen objects (the operator freezes what it keeps) are not listed
    objects = gc.get_objects()
    gc.freeze()
    containers = (tuple, list, dict, set, frozenset)
    for obj in objects:  # first the slots of credwarden's own classes
        slots = getattr(type(obj), "__slots__", None)
        if not slots or not type(obj).__module__.startswith("credwarden"):
            continue
        for slot in slots:
            value = getattr(obj, slot, None)
            name = f"{type(obj).__name__}.{slot}"
            if isinstance(value, containers):
                items = value.items() if isinstance(value, dict) else value
                for item in items:
                    for part in item if isinstance(item, tuple) else (item,):
                        note(name + "[]", part)
            else:
                note(name, value)
    for obj in objects:  # then anything else that holds one
        for ref in gc.get_referents(obj):
            note(type(obj).__name__, ref)
    ranked = sorted(counts.items(), key=lambda item: -item[1][1])[:top]
    return [(holder, count, size) for holder, (count, size) in ranked]


def traced_by_package(top: int = 25) -> list[tuple[str, float]]:
    """Traced memory still allocated, grouped by the top-level package that allocated it."""
    import tracemalloc

    totals: dict[str, int] = {}
    for stat in tracemalloc.take_snapshot().statistics("filename"):
        filename = stat.traceback[0].filename
        if "site-packages/" in filename:
            package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/credwarden/" in filename:
            package = "credwarden." + Path(filename).stem
        elif "/bench/" in filename:
            package = "bench." + Path(filename).stem
        elif "/lib/python3" in filename:
            package = "stdlib." + filename.split("/lib/python3", 1)[1].split("/", 2)[1]
        else:
            package = filename
        totals[package] = totals.get(package, 0) + stat.size
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [(package, round(size / 1024 / 1024, 2)) for package, size in ranked]


def traced_top_lines(top: int = 60) -> list[tuple[str, float, int]]:
    """The source lines holding the most traced memory: (file:line, MiB, blocks)."""
    import tracemalloc

    stats = tracemalloc.take_snapshot().statistics("lineno")[:top]
    return [
        (
            f"{Path(stat.traceback[0].filename).name}:{stat.traceback[0].lineno}",
            round(stat.size / 1024 / 1024, 2),
            stat.count,
        )
        for stat in stats
    ]


def release_free_memory() -> None:
    """gc, then glibc's malloc_trim: the RSS that remains is memory still in use (or
    pinned by fragmentation), not free memory the allocator kept."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


async def serve_stats(probe: Probe, port: int) -> Any:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        full = request.query.get("full") in ("1", "true")
        if request.query.get("trim") in ("1", "true"):
            release_free_memory()
        return web.json_response(probe.stats(full))

    app = web.Application()
    app.router.add_get("/stats", handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server: Any = site._server
    return runner, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/stats"


def configure_logging(args: argparse.Namespace) -> None:
    import logging

    from credwarden import logs

    stream = open(args.log_file, "a", encoding="utf-8") if args.log_file else None  # noqa: SIM115
    logs.configure("json", level=getattr(logging, args.log_level), stream=stream)


async def run(args: argparse.Namespace) -> None:
    import asyncio
    import contextlib
    import json
    import signal

    probe = Probe(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    configure_logging(args)
    # the side endpoint starts before kopf, so kopf does not count it among its tasks
    stats_runner, stats_url = await serve_stats(probe, args.stats_port)
    print(json.dumps({"stats_url": stats_url, "pid": __import__("os").getpid()}), flush=True)
    try:
        if args.impl == "credwarden":
            await run_credwarden(args, probe, stop)
        else:
            import baseline_operator

            await baseline_operator.run_baseline(
                args.server, stop_flag=stop, timer_interval=args.timer_interval
            )
    finally:
        with contextlib.suppress(Exception):
            await stats_runner.cleanup()


async def run_credwarden(args: argparse.Namespace, probe: Probe, stop: Any) -> None:
    import asyncio

    import kopf

    from credwarden.controller import OperatorState
    from credwarden.health import Heartbeat
    from credwarden.kube import KubeClient
    from credwarden.runner import running

    heartbeat = Heartbeat(args.heartbeat) if args.heartbeat else None
    client = KubeClient(qps=args.qps, burst=args.burst)
    state = OperatorState(client=client, instance="bench", heartbeat=heartbeat)
    probe.state = state
    state.reconciler.pass_listeners.append(probe.on_pass)
    state.reconciler.listeners.append(probe.on_evaluated)

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=args.server)

    heartbeat_task: asyncio.Task[None] | None = None
    async with running(state, login=login) as operator:
        if heartbeat is not None:
            heartbeat_task = asyncio.create_task(heartbeat.run(client))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({operator, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if heartbeat_task is not None:
            heartbeat_task.cancel()


if __name__ == "__main__":
    main()
