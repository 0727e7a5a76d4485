"""Regions on a large image: tilewise measure against whole-image skimage and dask-image.

Steps, each in a fresh process whose tree's peak PSS is sampled from here:

1. ``run``: ``tilewise.run`` of the ops to ``filtered.npy`` (the memory baseline);
2. ``measure``: ``tilewise measure`` of the same ops + regions to a Parquet table;
3. ``whole``: ``skimage.measure.label`` + ``regionprops_table`` on ``filtered.npy`` loaded whole
   (the reference the table must equal, after sorting by label);
4. ``dask``: ``dask_image.ndmeasure.label`` on ``filtered.npy`` as a Dask array (2048² chunks)
   + ``ndmeasure.area`` / ``center_of_mass`` over every label — dask-image's regionprops route —
   stopped after ``--dask-timeout`` seconds.

The input is generated in row blocks (uint8 smoothed noise), nothing is downloaded.

    .venv/bin/python benchmarks/measure_regions.py [--size 16384] [--tile 2048] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

OPS = ["gaussian:sigma=1"]
THRESHOLD = 150


def _tree_pss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            info = p.memory_full_info()
            total += int(getattr(info, "pss", info.rss))
        except psutil.Error:
            continue
    return total


def _timed(args: list[str], timeout: float) -> tuple[float, int, bool, str]:
    """Wall seconds, tree peak PSS, finished, stdout of ``python THIS args``."""
    start = time.perf_counter()
    proc = psutil.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss(proc))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
        finished = proc.returncode == 0
    except subprocess.TimeoutExpired:
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
        out, finished = "", False
    done.set()
    sampler.join()
    return time.perf_counter() - start, peak, finished, out


def make_input(path: Path, size: int) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(size, size))
    for top in range(0, size, 1024):
        rows = min(1024, size - top)
        noise = rng.random((rows, size), dtype=np.float32)
        smooth = ndimage.gaussian_filter(noise, 3)
        scaled = (smooth - smooth.mean()) / smooth.std() * 40 + 128
        out[top : top + rows] = np.clip(scaled, 0, 255).astype(np.uint8)
    out.flush()
    del out


def step(name: str, work: Path, tile: int, workers: int) -> None:
    src, filtered, table = work / "in.npy", work / "filtered.npy", work / "regions.parquet"
    detect = f"regions:threshold={THRESHOLD},connectivity=2"
    if name == "run":
        import tilewise

        assert tilewise.run(src, filtered, OPS, tile=tile, workers=workers, overwrite=True).ok
    elif name == "measure":
        import tilewise

        rows = tilewise.measure(
            src, OPS, detect=detect, output=table, tile=tile, workers=workers, overwrite=True
        )
        print(json.dumps({"regions": len(rows)}))
    elif name == "whole":
        import pandas as pd
        from skimage.measure import label, regionprops_table

        image = np.load(filtered)
        labels = label(image > THRESHOLD, connectivity=2)
        ref = regionprops_table(labels, image, properties=("label", "area", "centroid", "bbox"))
        got = pd.read_parquet(table)
        equal = (
            len(got) == len(ref["label"])
            and np.array_equal(got["area"], ref["area"])
            and np.array_equal(got["bbox_min_row"], ref["bbox-0"])
            and np.array_equal(got["bbox_max_col"], ref["bbox-3"])
            and np.allclose(got["centroid_row"], ref["centroid-0"], rtol=1e-12, atol=0)
            and np.allclose(got["centroid_col"], ref["centroid-1"], rtol=1e-12, atol=0)
        )
        print(json.dumps({"regions": int(labels.max()), "equal": bool(equal)}))
    elif name == "dask":
        import dask
        import dask.array as da
        from dask_image import ndmeasure

        dask.config.set(scheduler="threads", num_workers=workers)
        image = da.from_array(np.load(filtered, mmap_mode="r"), chunks=2048)
        labels, count = ndmeasure.label(image > THRESHOLD, np.ones((3, 3), bool))
        n = int(count.compute())
        index = np.arange(1, n + 1)
        area = ndmeasure.area(image, labels, index)
        centre = ndmeasure.center_of_mass(image > THRESHOLD, labels, index)
        area, centre = dask.compute(area, centre)
        print(json.dumps({"regions": n}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask-timeout", type=float, default=1800)
    parser.add_argument("--step", default=None)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    if args.step:
        step(args.step, Path(args.work), args.tile, args.workers)
        return 0
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        work = Path(tmp)
        make_input(work / "in.npy", args.size)
        common = ["--work", str(work), "--tile", str(args.tile), "--workers", str(args.workers)]
        results = {}
        for name in ("run", "measure", "whole", "dask"):
            timeout = args.dask_timeout if name == "dask" else 7200
            seconds, peak, finished, out = _timed(["--step", name, *common], timeout)
            results[name] = (seconds, peak, finished, out.strip())
            state = "" if finished else " (stopped: did not finish)"
            memory = f"peak tree PSS {peak / 2**20:8.0f} MiB"
            print(f"{name:8s} {seconds:8.1f} s  {memory}{state}  {out.strip()}")
            sys.stdout.flush()
    print(f"{args.size}x{args.size} uint8, ops {OPS}, regions > {THRESHOLD} (connectivity 2), "
          f"{args.tile}-px tiles, {args.workers} workers")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
