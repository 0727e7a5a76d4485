"""Many batches from one Python process: what start-up costs after the first call.

The fork server outlives a call, so later batches in the same process fork their
workers from it at once; an Executor given by the caller is also left open and
can serve call after call. This measures N consecutive batches of the collection
benchmark's 2,000 files (``benchmarks/collection.py`` writes them), first with a
new executor per call, then with one reused executor.

Usage::

    python benchmarks/warm_batches.py [--files 2000] [--batches 5] [--workdir /tmp/tilewise-bench]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    """Time consecutive batches, cold and warm; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench"))
    args = parser.parse_args()

    import tilewise
    from tilewise.executors.local import LocalExecutor

    listing = args.workdir / f"collection-{args.files}" / "files.txt"
    if not listing.exists():
        raise SystemExit(f"{listing} is missing: run benchmarks/collection.py --files {args.files}")
    out = args.workdir / "warm-batches.npy"
    common = {"stack": out, "ops": ["resize:shape=256x256"], "overwrite": True}

    cold = []
    for _ in range(args.batches):
        start = time.perf_counter()
        assert tilewise.batch(f"@{listing}", workers=2, **common).ok
        cold.append(time.perf_counter() - start)
    executor = LocalExecutor(2, preload=("tilewise.collection.work", "tilewise.io._tiff_whole"))
    warm = []
    try:
        for _ in range(args.batches):
            start = time.perf_counter()
            assert tilewise.batch(f"@{listing}", executor=executor, **common).ok
            warm.append(time.perf_counter() - start)
    finally:
        executor.close()
    print(f"{args.batches} batches of {args.files} files, 2 workers, in one process")
    print(f"  first call (imports, fork server): {cold[0]:.2f} s")
    print(f"  later calls, a new executor each:  median {statistics.median(cold[1:]):.2f} s")
    print(f"  calls on one reused executor:      median {statistics.median(warm):.2f} s")


if __name__ == "__main__":
    main()
