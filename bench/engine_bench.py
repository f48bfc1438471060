"""Engine benchmark: throughput and memory of credwarden's facts, inventory and engine.

    .venv/bin/python bench/engine_bench.py --sizes 10000 100000 --repeat 5

For each size, a fresh worker process (so peak RSS is per size) pinned to one CPU:

1. generates the synthetic cluster's object dicts (bench/synthetic.py; not timed), each
   decoded from its own JSON document as a watch delivers it (--shared-strings: not);
2. times, `--repeat` times, (a) facts extraction + the bulk inventory load from the dicts
   with the cyclic GC paused, as `credwarden audit` loads a snapshot, (b)
   `engine.evaluate(inventory, now)`, (c) both together; and, apart, the operator's
   initial listing: facts with the GC on and one upsert per object; reports the medians;
3. times `evaluate_credential` for 1,000 random credentials of the inventory (the
   operator's per-event cost), and a whole Secret watch event: facts, upsert, then
   re-evaluation of every credential the upsert reports as affected;
4. measures the memory the inventory retains once the raw dicts are gone: tracemalloc
   traces from before the dicts are generated to after the inventory is built, the dicts
   deleted and gc.collect() run; and the peak RSS of the timed phase.

The parent prints a markdown table, the retained-memory slope between the smallest and
the largest size (the per-credential cost without the fixed base), and writes JSON to
bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import json
import linecache
import os
import platform
import pstats
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "operator"))

from credwarden.engine import evaluate, evaluate_credential  # noqa: E402
from credwarden.facts import (  # noqa: E402
    BindingFacts,
    NamespaceFacts,
    PolicyFacts,
    SecretFacts,
    ServiceAccountFacts,
    WorkloadFacts,
    binding_facts,
    namespace_facts,
    secret_facts,
    service_account_facts,
    workload_facts,
)
from credwarden.gcpause import paused_collection  # noqa: E402
from credwarden.inventory import Inventory  # noqa: E402
from credwarden.policies import policy_from_manifest  # noqa: E402
from synthetic import NOW, Snapshot, cert_pool, generate  # noqa: E402

TARGET_RATE = 20_000  # credentials/s, end to end, one core
TARGET_RETAINED = 2048  # bytes retained per credential
HASH_KEY = bytes(range(32))
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_SIZES = (10_000, 100_000)


# ---- the measured path -------------------------------------------------------------
@dataclass(slots=True)
class Facts:
    policies: list[PolicyFacts]
    namespaces: list[NamespaceFacts]
    service_accounts: list[ServiceAccountFacts]
    secrets: list[SecretFacts]
    bindings: list[BindingFacts]
    workloads: list[WorkloadFacts]


def extract(snapshot: Snapshot) -> Facts:
    """Every object dict reduced to facts (what the watch handlers do per event)."""
    return Facts(
        policies=[policy_from_manifest(body) for body in snapshot.policies],
        namespaces=[namespace_facts(body) for body in snapshot.namespaces],
        service_accounts=[service_account_facts(body) for body in snapshot.service_accounts],
        secrets=[secret_facts(body, HASH_KEY) for body in snapshot.secrets],
        bindings=[binding_facts(body) for body in snapshot.bindings],
        workloads=[workload_facts(body) for body in snapshot.workloads],
    )


def build(facts: Facts) -> Inventory:
    """The facts upserted into a new inventory, in the order an initial list arrives."""
    inventory = Inventory()
    for policy in facts.policies:
        inventory.upsert_policy(policy)
    for namespace in facts.namespaces:
        inventory.upsert_namespace(namespace)
    for account in facts.service_accounts:
        inventory.upsert_service_account(account)
    for secret in facts.secrets:
        inventory.upsert_secret(secret)
    for binding in facts.bindings:
        inventory.upsert_binding(binding)
    for workload in facts.workloads:
        inventory.upsert_workload(workload)
    return inventory


def load(facts: Facts) -> Inventory:
    """The same inventory through `Inventory.load`, the bulk path that skips working out
    what each object affects: the audit's (snapshot or live listing). The operator's
    watches upsert one object at a time (`build`)."""
    inventory = Inventory()
    inventory.load(
        [
            *facts.policies,
            *facts.namespaces,
            *facts.service_accounts,
            *facts.secrets,
            *facts.bindings,
            *facts.workloads,
        ]
    )
    return inventory


def inventory_from(snapshot: Snapshot) -> Inventory:
    return build(extract(snapshot))


# ---- helpers -----------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_now() -> int:
    """Current resident set size in bytes (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss() -> int:
    """Peak RSS of this process in bytes (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def pin(cpu: int | None) -> int | None:
    """Pin this process to one CPU; the CPU used, or None if pinning is unavailable."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return None
    return cpu


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


# ---- one size, in a worker process -------------------------------------------------
def measure_memory(size: int, seed: int, top: int, wire: bool) -> dict[str, Any]:
    """Bytes the inventory retains after the dicts are dropped (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    snapshot = generate(size, seed, wire=wire)  # traced: strings the facts keep count
    gc.collect()
    dicts = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()
    inventory = inventory_from(snapshot)
    del snapshot
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    retained -= base
    stats = tracemalloc.take_snapshot().statistics("lineno")
    tracemalloc.stop()
    where = [
        {
            "where": f"{Path(stat.traceback[0].filename).name}:{stat.traceback[0].lineno}",
            "code": linecache.getline(stat.traceback[0].filename, stat.traceback[0].lineno).strip(),
            "bytes": stat.size,
            "blocks": stat.count,
            "per_credential": stat.size / size,
        }
        for stat in stats[:top]
    ]
    counts = {
        "secrets": len(inventory.secrets),
        "service_accounts": len(inventory.service_accounts),
        "workloads": len(inventory.workloads),
        "bindings": len(inventory.bindings),
        "namespaces": len(inventory.namespaces),
        "hash_index": len(inventory._by_hash),
    }
    del inventory
    gc.collect()
    return {
        "dicts_bytes": dicts,
        "retained_bytes": retained,
        "retained_per_credential": retained / size,
        "build_peak_traced_bytes": peak - base,
        "inventory": counts,
        "top_allocations": where,
    }


def _distribution(microseconds: list[float]) -> dict[str, float]:
    return {
        "median": median(microseconds),
        "p90": percentile(microseconds, 0.9),
        "p99": percentile(microseconds, 0.99),
        "max": max(microseconds),
        "samples": len(microseconds),
    }


def _secret_events(inventory: Inventory, bodies: list[dict[str, Any]]) -> dict[str, float]:
    """A Secret watch event for each body: facts, upsert, then re-evaluation of every
    credential the upsert reports as affected; the times, and how many were affected."""
    times: list[float] = []
    fanout: list[int] = []
    for body in bodies:
        started = time.perf_counter_ns()
        affected = inventory.upsert_secret(secret_facts(body, HASH_KEY))
        for key in affected:
            evaluate_credential(inventory, key, NOW)
        times.append((time.perf_counter_ns() - started) / 1000)
        fanout.append(len(affected))
    return {
        **_distribution(times),
        "affected_mean": statistics.fmean(fanout),
        "affected_max": max(fanout),
    }


def incremental(
    inventory: Inventory, snapshot: Snapshot, samples: int, seed: int
) -> dict[str, Any]:
    """Per-event costs on the full inventory."""
    rng = random.Random(seed)
    keys = rng.sample(sorted(inventory.credentials()), min(samples, len(inventory)))
    one: list[float] = []
    for key in keys:
        started = time.perf_counter_ns()
        evaluate_credential(inventory, key, NOW)
        one.append((time.perf_counter_ns() - started) / 1000)
    # a Secret MODIFIED event with unchanged values (a resync, an annotation change)
    unchanged = rng.sample(snapshot.secrets, min(samples, len(snapshot.secrets)))
    # a Secret whose first value changes (a rotation): it leaves the Secrets that shared
    # the old value, which are re-evaluated too
    rotated: list[dict[str, Any]] = []
    with_data = [body for body in snapshot.secrets if body.get("data")]
    for body in rng.sample(with_data, min(samples, len(with_data))):
        data = dict(body["data"])
        data[sorted(data)[0]] = base64.b64encode(rng.randbytes(24)).decode()
        rotated.append({**body, "data": data})
    return {
        "evaluate_credential_us": _distribution(one),
        "secret_event_us": _secret_events(inventory, unchanged),
        "secret_value_change_us": _secret_events(inventory, rotated),
    }


def profile(snapshot: Snapshot, size: int, lines: int) -> dict[str, str]:
    """cProfile one build and one evaluation; pstats files in bench/results/."""
    RESULTS_DIR.mkdir(exist_ok=True)
    paths: dict[str, str] = {}
    inventory: Inventory | None = None
    for phase in ("build", "evaluate"):
        profiler = cProfile.Profile()
        if phase == "build":
            inventory = profiler.runcall(inventory_from, snapshot)
        else:
            assert inventory is not None
            profiler.runcall(evaluate, inventory, NOW)
        path = RESULTS_DIR / f"profile-{size}-{phase}.pstats"
        profiler.dump_stats(str(path))
        paths[phase] = str(path)
        log(f"\n--- cProfile {phase}, {size} credentials (tottime) ---")
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(lines)
        log(f"--- cProfile {phase}, {size} credentials (cumulative) ---")
        stats.sort_stats("cumulative").print_stats(lines)
    return paths


def worker(args: argparse.Namespace) -> dict[str, Any]:
    size: int = args.worker
    cpu = pin(args.cpu)
    log(
        f"[{size}] worker pid {os.getpid()}, "
        + (f"pinned to CPU {cpu}" if cpu is not None else "not pinned")
    )
    # warm-up: imports, the certificate pool, regex and pydantic caches
    cert_pool()
    small = generate(1000, args.seed + 1)
    evaluate(inventory_from(small), NOW)
    del small
    gc.collect()
    rss_base = rss_now()

    seconds, snapshot = timed(lambda: generate(size, args.seed, wire=args.wire))
    objects = len(snapshot.objects())
    log(f"[{size}] generated {objects} objects in {seconds:.1f}s (not timed)")
    # the input dicts are fixture, not state the operator holds: keep them out of the
    # cyclic GC's way so collections cost what they would with the inventory alone
    gc.collect()
    gc.freeze()
    rss_dicts = rss_now()

    runs: list[dict[str, float]] = []
    inventory: Inventory | None = None
    for run in range(args.repeat):
        inventory = None
        gc.collect()
        # (c) the audit's path, as `credwarden audit` takes it: facts extraction, the bulk
        # load (`snapshot.load_snapshot`) and the evaluation, the cyclic GC paused for the
        # whole run (cli.cmd_audit; gcpause)
        with paused_collection():
            started = time.perf_counter()
            facts = extract(snapshot)
            extracted = time.perf_counter()
            inventory = load(facts)
            loaded = time.perf_counter()
            evaluation = evaluate(inventory, NOW)
            evaluated = time.perf_counter()
        t_extract, t_load, t_evaluate = extracted - started, loaded - extracted, evaluated - loaded
        assert len(evaluation.records) == size, (len(evaluation.records), size)
        del evaluation, facts
        # the operator's initial listing: one object at a time through its watch handler,
        # each upsert working out what it affects, the cyclic GC on (timed apart)
        gc.collect()
        listing = time.perf_counter()
        facts = extract(snapshot)
        extracted_gc = time.perf_counter()
        built = build(facts)
        t_extract_gc, t_upsert = extracted_gc - listing, time.perf_counter() - extracted_gc
        # both paths build the same inventory
        assert built.secrets == inventory.secrets
        assert built._by_hash == inventory._by_hash
        assert built._consumers == inventory._consumers
        del facts, built
        total = t_extract + t_load + t_evaluate
        runs.append(
            {
                "extract": t_extract,
                "bulk_load": t_load,
                "build": t_extract + t_load,
                "evaluate": t_evaluate,
                "total": total,
                "extract_gc_on": t_extract_gc,
                "upsert": t_upsert,
                "operator_listing": t_extract_gc + t_upsert,
                "operator_total": t_extract_gc + t_upsert + t_evaluate,
            }
        )
        log(
            f"[{size}] run {run + 1}/{args.repeat}: facts {t_extract:.2f}s + bulk load "
            f"{t_load:.2f}s + evaluate {t_evaluate:.2f}s: {size / total:,.0f} credentials/s; "
            f"operator listing (GC on, upserts) {t_extract_gc:.2f}s + {t_upsert:.2f}s"
        )
    assert inventory is not None
    rss_peak = peak_rss()
    medians = {phase: median([run[phase] for run in runs]) for phase in runs[0]}

    log(f"[{size}] incremental: {args.samples} evaluate_credential calls and Secret events")
    per_event = incremental(inventory, snapshot, args.samples, args.seed)
    profiles = profile(snapshot, size, args.profile_lines) if args.profile else {}

    del inventory
    gc.unfreeze()
    del snapshot
    gc.collect()
    log(f"[{size}] memory: tracemalloc over generate + build, dicts dropped")
    memory = measure_memory(size, args.seed, args.top_allocations, args.wire)
    return {
        "credentials": size,
        "objects": objects,
        "cpu": cpu,
        "repeat": args.repeat,
        "wire": args.wire,
        "runs": runs,
        "median_seconds": medians,
        "credentials_per_second": {
            "end_to_end": size / medians["total"],
            "operator_path": size / medians["operator_total"],
            "build": size / medians["build"],
            "evaluate": size / medians["evaluate"],
        },
        "incremental": per_event,
        "memory": {
            **memory,
            "rss_baseline_bytes": rss_base,
            "rss_with_dicts_bytes": rss_dicts,
            "peak_rss_bytes": rss_peak,
        },
        "profiles": profiles,
    }


# ---- the parent: one worker per size, then the report ------------------------------
def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
    }


def source_state() -> dict[str, Any]:
    """The commit benchmarked and any uncommitted changes to the engine (read-only git)."""

    def git(*command: str) -> str:
        try:
            done = subprocess.run(
                ["git", *command],
                cwd=BENCH_DIR.parent,
                capture_output=True,
                text=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError):
            return ""
        return done.stdout.rstrip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted": git("status", "--porcelain", "--", "operator").splitlines(),
    }


def run_worker(size: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(size),
        "--repeat",
        str(args.repeat),
        "--seed",
        str(args.seed),
        "--samples",
        str(args.samples),
        "--top-allocations",
        str(args.top_allocations),
        "--profile-lines",
        str(args.profile_lines),
    ]
    command += ["--cpu", str(args.cpu)] if args.cpu is not None else ["--no-pin"]
    if args.profile:
        command.append("--profile")
    if not args.wire:
        command.append("--shared-strings")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def kib(value: float) -> str:
    return f"{value / 1024:,.2f} KiB"


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def report(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    cpu = results[0]["cpu"]
    pinned = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    lines = [
        f"credwarden engine benchmark, {info['date']}: Python {info['machine']['python']}, "
        f"{info['machine']['nproc']} CPUs ({info['machine']['cpu_model']}), {pinned}, "
        f"repeat {results[0]['repeat']} (medians); commit "
        f"{info['source']['commit']}"
        + (
            f" + uncommitted {', '.join(line[3:] for line in info['source']['uncommitted'])}"
            if info["source"]["uncommitted"]
            else ""
        ),
        "",
        "| credentials | objects | facts + inventory (a) | evaluate (b) | end to end (c) "
        "| credentials/s | retained/credential (d) | peak RSS | evaluate_credential "
        "| Secret event |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        seconds = result["median_seconds"]
        memory = result["memory"]
        one = result["incremental"]["evaluate_credential_us"]
        event = result["incremental"]["secret_event_us"]
        lines.append(
            f"| {result['credentials']:,} | {result['objects']:,} "
            f"| {seconds['build']:.2f} s | {seconds['evaluate']:.2f} s "
            f"| {seconds['total']:.2f} s "
            f"| {result['credentials_per_second']['end_to_end']:,.0f} "
            f"| {kib(memory['retained_per_credential'])} | {mib(memory['peak_rss_bytes'])} "
            f"| {one['median']:.0f} µs (p99 {one['p99']:.0f}) "
            f"| {event['median']:.0f} µs (p99 {event['p99']:.0f}) |"
        )
    lines += [
        "",
        "| credentials | facts extraction (GC paused) | bulk load | evaluate "
        "| operator listing: facts (GC on) + upserts | operator path, end to end "
        "| dicts generated (traced) | retained total |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        seconds = result["median_seconds"]
        size = result["credentials"]
        memory = result["memory"]
        lines.append(
            f"| {size:,} | {seconds['extract']:.2f} s ({size / seconds['extract']:,.0f}/s) "
            f"| {seconds['bulk_load']:.2f} s ({size / seconds['bulk_load']:,.0f}/s) "
            f"| {seconds['evaluate']:.2f} s ({size / seconds['evaluate']:,.0f}/s) "
            f"| {seconds['extract_gc_on']:.2f} s + {seconds['upsert']:.2f} s "
            f"| {seconds['operator_total']:.2f} s "
            f"({result['credentials_per_second']['operator_path']:,.0f}/s) "
            f"| {mib(memory['dicts_bytes'])} | {mib(memory['retained_bytes'])} |"
        )
    lines += [
        "",
        "| credentials | Secret event, unchanged values: median / p90 / p99 / max "
        "| affected mean / max | Secret event, one value changed: median / p90 / p99 / max "
        "| affected mean / max |",
        "|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        same = result["incremental"]["secret_event_us"]
        changed = result["incremental"]["secret_value_change_us"]
        lines.append(
            f"| {result['credentials']:,} "
            + "".join(
                f"| {event['median']:,.0f} / {event['p90']:,.0f} / {event['p99']:,.0f} / "
                f"{event['max']:,.0f} µs | {event['affected_mean']:.1f} / {event['affected_max']} "
                for event in (same, changed)
            )
            + "|"
        )
    lines.append("")
    slope = info.get("retained_slope_per_credential")
    if slope is not None:
        lines.append(
            f"(e) retained-memory slope {info['slope_between'][0]:,} -> "
            f"{info['slope_between'][1]:,}: {kib(slope)} per credential"
        )
    largest = results[-1]
    rate = largest["credentials_per_second"]["end_to_end"]
    retained = largest["memory"]["retained_per_credential"]
    lines += [
        f"target >= {TARGET_RATE:,} credentials/s: {rate:,.0f} at "
        f"{largest['credentials']:,} -> {'met' if rate >= TARGET_RATE else 'MISSED'} "
        f"({rate / TARGET_RATE:.2f}x of target)",
        f"target <= {kib(TARGET_RETAINED)} retained/credential: {kib(retained)} at "
        f"{largest['credentials']:,} -> {'met' if retained <= TARGET_RETAINED else 'MISSED'} "
        f"({retained / TARGET_RETAINED:.2f}x of target)",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per size (median)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument(
        "--cpu",
        type=int,
        default=max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        help="CPU to pin each worker to (default: the highest allowed one)",
    )
    parser.add_argument("--no-pin", dest="cpu", action="store_const", const=None)
    parser.add_argument("--samples", type=int, default=1000, help="per-event samples")
    parser.add_argument(
        "--json", type=Path, help="where to write results (default: bench/results/)"
    )
    parser.add_argument("--no-json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile build and evaluate")
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument("--top-allocations", type=int, default=15)
    parser.add_argument(
        "--shared-strings",
        dest="wire",
        action="store_false",
        help="skip the per-object JSON round trip: objects share the generator's strings",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        json.dump(worker(args), sys.stdout)
        return 0
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "source": source_state(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    results = [run_worker(size, args) for size in sorted(set(args.sizes))]
    if len(results) > 1:
        small, large = results[0], results[-1]
        delta = large["memory"]["retained_bytes"] - small["memory"]["retained_bytes"]
        info["retained_slope_per_credential"] = delta / (
            large["credentials"] - small["credentials"]
        )
        info["slope_between"] = (small["credentials"], large["credentials"])
    text = report(results, info)
    print(text)
    for result in results:
        print(f"\nretained memory by allocation site, {result['credentials']:,} credentials:")
        for site in result["memory"]["top_allocations"]:
            print(
                f"  {site['per_credential']:6.0f} B/credential {site['blocks']:>9,} blocks  "
                f"{site['where']:<18} {site['code'][:60]}"
            )
    if not args.no_json:
        path = args.json or RESULTS_DIR / f"engine-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**info, "results": results}, indent=2) + "\n")
        print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
