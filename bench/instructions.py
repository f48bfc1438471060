"""Instructions per credential of the engine's pipelines, counted by callgrind: a figure
that does not move with the load of a shared machine, for comparing two trees.

    .venv/bin/python bench/instructions.py                       # this tree
    .venv/bin/python bench/instructions.py --src /tmp/head       # a reference copy (its
                                                                 # bench/ and operator/)

For each path it runs, under `valgrind --tool=callgrind`, a process that generates a
seeded synthetic cluster (bench/synthetic.py) and then runs the path; a second process
that only generates is subtracted. Both end with `os._exit`, so teardown is not counted.
Paths:
- `audit`: facts extraction, `Inventory.load` and `evaluate`, the cyclic GC paused
  throughout (as `credwarden audit` runs);
- `one-at-a-time`: facts extraction and one upsert per object with the GC on, then
  `evaluate` (the operator's path for watch events; also what trees before the bulk
  path did for everything).
A 5,000-credential run takes about a minute per path.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PATHS = ("audit", "one-at-a-time")


def child(src: Path, size: int, path: str) -> None:
    """The process callgrind counts."""
    import gc
    import os

    sys.path[:0] = [str(src / "bench"), str(src / "operator")]
    import engine_bench
    from synthetic import NOW, generate

    snapshot = generate(size, 1, wire=True)
    gc.collect()
    gc.freeze()
    if path == "audit":
        gc.disable()
        engine_bench.evaluate(engine_bench.load(engine_bench.extract(snapshot)), NOW)
    elif path == "one-at-a-time":
        engine_bench.evaluate(engine_bench.build(engine_bench.extract(snapshot)), NOW)
    os._exit(0)


def count(src: Path, size: int, path: str) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        path,
        "--src",
        str(src),
        "--size",
        str(size),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = re.search(r"Collected : (\d+)", output)
    if found is None:
        raise SystemExit(f"callgrind printed no count for {path}:\n{output[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--src", type=Path, default=BENCH_DIR.parent)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--child", choices=(*PATHS, "generate"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.src, args.size, args.child)
        return
    base = count(args.src, args.size, "generate")
    for path in args.paths:
        spent = count(args.src, args.size, path) - base
        print(f"{path:14} {spent / args.size:>10,.0f} instructions per credential")


if __name__ == "__main__":
    main()
