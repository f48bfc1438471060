"""The reconciler's first pass and policy statuses on a synthetic cluster, in process.

Builds `synthetic.generate(n)`'s inventory, runs the reconciler's evaluation of every
credential once (the first pass: records, tallies, plans queued; nothing is written) and
times each policy's status as the status task computes it. With `--reference DIR`, the
reconciler module of another tree (`DIR/credwarden/reconciler.py`, e.g. a checkout of an
older commit) computes every status from the same records, timed, and the two are
compared.

    python bench/status_bench.py --size 100000
    mkdir /tmp/cw-old && git archive c7b5b58 operator | tar -x -C /tmp/cw-old
    python bench/status_bench.py --size 100000 --reference /tmp/cw-old/operator
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import synthetic  # this script's folder is on sys.path
from credwarden.kube import KubeClient
from credwarden.reconciler import Reconciler
from credwarden.snapshot import inventory_from_objects


def load_reference(directory: str) -> Any:
    """Another tree's reconciler module, imported beside this tree's credwarden."""
    path = Path(directory) / "credwarden" / "reconciler.py"
    spec = importlib.util.spec_from_file_location("reference_reconciler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def main(args: argparse.Namespace) -> None:
    snapshot = synthetic.generate(args.size)
    inventory = inventory_from_objects(snapshot.objects(), b"k" * 32)
    now = synthetic.NOW
    reconciler = Reconciler(inventory, KubeClient(), clock=lambda: now)
    keys = set(inventory.credentials())
    started = time.perf_counter()
    await reconciler._evaluate(set(), keys, now)
    print(
        f"first pass: {len(keys):,} credentials evaluated in "
        f"{time.perf_counter() - started:.1f} s, {len(reconciler.queue):,} plans queued"
    )
    gc.freeze()  # as the operator does after its first pass
    timings = []
    for policy in inventory.policies.values():
        started = time.perf_counter()
        reconciler.policy_status(policy, now)
        timings.append((time.perf_counter() - started, policy.display_name))
    print(
        f"policy statuses from the tallies: {len(timings)} policies, "
        f"{1000 * sum(t for t, _ in timings):.1f} ms in all, the slowest "
        f"{1000 * max(timings)[0]:.1f} ms ({max(timings)[1]})"
    )
    if args.reference:
        reference = load_reference(args.reference).Reconciler(
            inventory, KubeClient(), clock=lambda: now
        )
        reference.records = dict(reconciler.records.items())
        started = time.perf_counter()
        theirs = reference.policy_statuses(now)
        print(f"reference policy_statuses: {1000 * (time.perf_counter() - started):.0f} ms")
        print("identical statuses:", theirs == reconciler.policy_statuses(now))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--reference", default="", help="another tree's operator/ directory")
    asyncio.run(main(parser.parse_args()))
