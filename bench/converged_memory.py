"""The operator's converged memory, offline: traced bytes per credential by source line.

    .venv/bin/python bench/converged_memory.py 30000        # ~20 s; 100000: ~2 min

Builds `synthetic.generate(n)` as the operator holds it once converged: the engine's
annotations applied to every object (each value a string of its own, as decoded from a
watch event), the inventory built from those objects, the reconciler's pass over every
credential (records, tallies, schedule), its queue dropped. Then it prints the traced
memory still held per credential, in all and by allocating line (tracemalloc, one frame).
It runs in one process and in seconds, so a change to what is kept per credential can
be compared before and after (the operator benchmark over HTTP takes ten minutes at
100k). It does not see what only the live operator keeps (a second copy of a name from
a watch event, the write queue's tables): `run_operator.py --tracemalloc` does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc
from pathlib import Path

import synthetic  # this script's folder is on sys.path
from credwarden import facts, records
from credwarden.engine import evaluate
from credwarden.kube import KubeClient
from credwarden.reconciler import Reconciler
from credwarden.records import Annotate
from credwarden.snapshot import inventory_from_objects
from credwarden.writequeue import WriteQueue

HASH_KEY = b"k" * 32


async def converged_memory(size: int, top: int) -> None:
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    snapshot = synthetic.generate(size)
    objects = snapshot.objects()
    # what the operator's first start writes, applied to the objects
    first = evaluate(inventory_from_objects(objects, HASH_KEY), synthetic.NOW)
    by_key = {
        (b.get("kind"), b["metadata"].get("namespace"), b["metadata"]["name"]): b for b in objects
    }
    for action in first.plan:
        if isinstance(action, Annotate):
            target = action.target
            body = by_key.get((target.kind, target.namespace, target.name))
            if body is not None:
                annotations = body["metadata"].setdefault("annotations", {})
                for name in action.remove:
                    annotations.pop(name, None)
                for name, value in action.set.items():
                    annotations[name] = "".join(value)  # a copy of its own, as decoded
    del first, by_key
    facts._LABEL_SETS.clear()  # shared as the operator would share them: from scratch
    records._SHARED_FINDINGS.clear()
    gc.collect()
    inventory = inventory_from_objects(objects, HASH_KEY)
    reconciler = Reconciler(inventory, KubeClient(), clock=lambda: synthetic.NOW)
    await reconciler._evaluate(set(), set(inventory.credentials()), synthetic.NOW)
    reconciler.queue = WriteQueue()  # converged: nothing left to write
    del objects, snapshot
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    print(f"{size:,} credentials: {held / size:,.0f} B traced per credential")
    for stat in tracemalloc.take_snapshot().statistics("lineno")[:top]:
        frame = stat.traceback[0]
        print(
            f"{stat.size / size:8.1f} B {stat.count / size:6.2f} blocks  "
            f"{Path(frame.filename).name}:{frame.lineno}"
        )
    del reconciler, inventory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size", type=int, nargs="?", default=30_000)
    parser.add_argument("--top", type=int, default=30)
    arguments = parser.parse_args()
    asyncio.run(converged_memory(arguments.size, arguments.top))
