"""Scheduler load: tens of thousands of tiny tiles through the local executor.

Measures, for N tiles of a cheap op (``invert``) on a small image:
- wall time and tiles/s with the supervised local executor (2 workers),
- the same tiles through the serial executor (in-process, no supervision),
- the per-tile supervision overhead in ms: (local wall x workers - serial wall) / N,
- the main process's peak RSS (sampled), which must stay bounded as N grows.

    python benchmarks/many_tiles.py --tiles 5000 50000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

import tilewise


def peak_rss_during(func):  # type: ignore[no-untyped-def]
    """Run ``func`` while sampling this process's RSS every 20 ms; return (result, peak MiB)."""
    proc = psutil.Process()
    peak = proc.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = func()
    finally:
        done.set()
        thread.join()
    return result, peak / 2**20


def run_case(tiles: int, tile: int, workdir: Path, workers: int) -> dict[str, float]:
    side = math.ceil(math.sqrt(tiles)) * tile
    rows = math.ceil(tiles / (side // tile)) * tile
    image = np.random.default_rng(0).integers(0, 255, (rows, side), dtype=np.uint8)
    src = workdir / f"in-{tiles}.npy"
    np.save(src, image)
    base_rss = psutil.Process().memory_info().rss / 2**20
    out = workdir / f"out-{tiles}.npy"
    start = time.perf_counter()
    report, peak = peak_rss_during(
        lambda: tilewise.run(src, out, ["invert"], tile=tile, workers=workers, overwrite=True)
    )
    local_s = time.perf_counter() - start
    assert report.ok, report.failures[:3]
    assert np.array_equal(np.load(out), 255 - image)
    start = time.perf_counter()
    serial = tilewise.run(src, out, ["invert"], tile=tile, executor="serial", overwrite=True)
    serial_s = time.perf_counter() - start
    assert serial.ok
    return {
        "tiles": report.total,
        "image": f"{rows}x{side}",
        "local_wall_s": round(local_s, 2),
        "tiles_per_s": round(report.total / local_s),
        "serial_wall_s": round(serial_s, 2),
        "overhead_ms_per_tile": round((local_s * workers - serial_s) / report.total * 1000, 3),
        "main_rss_before_mib": round(base_rss, 1),
        "main_rss_peak_mib": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--tile", type=int, default=16, help="tile side in pixels")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"nproc={os.cpu_count()}, tilewise {tilewise.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.tiles:
            print(json.dumps(run_case(count, args.tile, Path(tmp), args.workers)), flush=True)


if __name__ == "__main__":
    main()
