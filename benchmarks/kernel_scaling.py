"""The machine's own scaling for one kernel: N processes running it on tiles in memory.

Usage::

    python benchmarks/kernel_scaling.py --processes 2 --tiles 256 [--tile 1024] [--halo 4]

No input file, no tilewise: each of ``--processes`` processes (forked once) makes one
photo-like uint8 tile of ``tile + 2 * halo`` pixels a side and runs
``cv2.medianBlur(tile, 9)`` on it ``tiles / processes`` times, one OpenCV thread per
process, as tilewise's ``median:size=9`` does on 1024² tiles. Prints the seconds of the
kernel phase (from all processes ready to all done) as JSON.

Run with 1 and 2 processes, the ratio is the most a CPU-bound pipeline can gain from a
second worker on this machine: if two processes that share nothing gain 1.65x, tilewise's
1 → 2 worker speed-up cannot reach 1.8x here (two vCPUs that are one core's hyperthreads
on the host, or a shared clock or memory bus, cost what no scheduling wins back).
``tilewise_suite.py scaling`` runs it beside tilewise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from typing import Any

import cv2
import numpy as np

from tilewise.testing.samples import photo_mosaic


def _work(args: tuple[int, int, Any, Any]) -> None:
    side, count, ready, go = args
    cv2.setNumThreads(1)
    tile = np.ascontiguousarray(photo_mosaic((side, side), seed=1))
    ready.wait()
    go.wait()
    for _ in range(count):
        cv2.medianBlur(tile, 9)


def run(processes: int, tiles: int, side: int) -> float:
    """Seconds for ``processes`` processes to filter ``tiles`` tiles between them."""
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(processes + 1)
    go = ctx.Barrier(processes + 1)
    shares = [tiles // processes + (p < tiles % processes) for p in range(processes)]
    workers = [ctx.Process(target=_work, args=((side, share, ready, go),)) for share in shares]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    go.wait()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=256)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--halo", type=int, default=4)
    args = parser.parse_args(argv)
    seconds = run(args.processes, args.tiles, args.tile + 2 * args.halo)
    print(json.dumps({"processes": args.processes, "tiles": args.tiles, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
