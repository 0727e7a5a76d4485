"""Regions on a large image: tilewise measure against a plain run, skimage and dask-image.

Steps, each in a fresh process whose tree's peak PSS is sampled from here (5 times a second):

1. ``run``: ``tilewise run`` of the ops to ``filtered.npy`` (the memory baseline: the same
   reads, ops and workers, writing pixels instead of measuring);
2. ``measure``: ``tilewise measure`` of the same ops + regions to a Parquet table (the command
   a user runs; the table is written by pyarrow, pandas is not imported);
3. ``whole``: ``skimage.measure.label`` + ``regionprops_table`` on ``filtered.npy`` loaded
   whole — the reference the table must equal (area, bbox exactly, centroids to 1e-12),
   computed once per size and kept in ``--cache`` (default
   ``benchmarks/results/cache/regions-SIZE.npz``); later runs load it instead;
4. ``dask``: ``dask_image.ndmeasure.label`` on ``filtered.npy`` as a Dask array (2048² chunks,
   threaded scheduler, WORKERS threads) + ``ndmeasure.area`` / ``center_of_mass`` over every
   label — dask-image's regionprops route — stopped after ``--dask-timeout`` seconds.

The input (uint8 smoothed noise, about 1.7 regions per 1,000 pixels: ~460,000 at 16384²) is
generated in row blocks into ``--work`` (default ``benchmarks/results/regions-work``) and kept
there for the next run; nothing is downloaded. Nothing here runs in CI.

    .venv/bin/python benchmarks/measure_regions.py [--size 16384] [--tile 2048] [--workers 2]
        [--dask-timeout 1800] [--skip dask]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

OPS = ["gaussian:sigma=1"]
THRESHOLD = 150
RESULTS = Path(__file__).parent / "results"


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


def _timed(argv: list[str], timeout: float) -> tuple[float, int, bool, str]:
    """Wall seconds, tree peak PSS, finished, stdout of the command ``argv``."""
    start = time.perf_counter()
    proc = psutil.Popen(argv, stdout=subprocess.PIPE, text=True)
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


def _tilewise() -> list[str]:
    """The tilewise command of this interpreter's environment."""
    found = shutil.which("tilewise", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "tilewise"]


def commands(work: Path, tile: int, workers: int) -> dict[str, list[str]]:
    """The two tilewise commands: the plain run and the measurement of the same ops."""
    src, filtered, table = work / "in.npy", work / "filtered.npy", work / "regions.parquet"
    detect = f"regions:threshold={THRESHOLD},connectivity=2"
    ops = [x for op in OPS for x in ("--op", op)]
    common = ["--tile", str(tile), "--workers", str(workers), "--overwrite", "-q"]
    return {
        "run": [*_tilewise(), "run", str(src), str(filtered), *ops, *common],
        "measure": [
            *_tilewise(), "measure", str(src), *ops, "--detect", detect, "-o", str(table), *common
        ],
    }  # fmt: skip


def step(name: str, work: Path, workers: int, cache: Path) -> None:
    filtered = work / "filtered.npy"
    if name == "whole":
        from skimage.measure import label, regionprops_table

        image = np.load(filtered)
        labels = label(image > THRESHOLD, connectivity=2)
        del image
        ref = regionprops_table(labels, properties=("label", "area", "centroid", "bbox"))
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache.with_suffix(".partial.npz"), **ref)
        os.replace(cache.with_suffix(".partial.npz"), cache)
        print(json.dumps({"regions": int(labels.max())}))
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


def compare(table: Path, cache: Path) -> dict[str, object]:
    """The measured table against the cached whole-image reference (sorted by label)."""
    import pyarrow.parquet as pq

    got = pq.read_table(table).to_pydict()
    with np.load(cache) as ref:
        equal = (
            len(got["label"]) == len(ref["label"])
            and np.array_equal(got["label"], ref["label"])
            and np.array_equal(got["area"], ref["area"])
            and all(
                np.array_equal(got[f"bbox_{side}_{axis}"], ref[f"bbox-{i}"])
                for i, (side, axis) in enumerate(
                    [("min", "row"), ("min", "col"), ("max", "row"), ("max", "col")]
                )
            )
            and np.allclose(got["centroid_row"], ref["centroid-0"], rtol=1e-12, atol=0)
            and np.allclose(got["centroid_col"], ref["centroid-1"], rtol=1e-12, atol=0)
        )
        return {"regions": len(got["label"]), "reference": len(ref["label"]), "equal": equal}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask-timeout", type=float, default=1800)
    parser.add_argument("--work", default=str(RESULTS / "regions-work"))
    parser.add_argument("--cache", default=None, help="the reference's .npz (default: by size)")
    parser.add_argument("--skip", action="append", default=[], choices=["run", "whole", "dask"])
    parser.add_argument("--step", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work) / str(args.size)
    cache = Path(args.cache or RESULTS / "cache" / f"regions-{args.size}.npz")
    if args.step:
        step(args.step, work, args.workers, cache)
        return 0
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "in.npy").exists():
        make_input(work / "in.npy", args.size)
    common = ["--work", args.work, "--size", str(args.size), "--workers", str(args.workers)]
    common += ["--cache", str(cache)]
    results: dict[str, tuple[float, int, bool]] = {}
    tilewise = commands(work, args.tile, args.workers)
    for name in ("run", "measure", "whole", "dask"):
        if name in args.skip or (name == "whole" and cache.exists()):
            reason = "cached" if name == "whole" and cache.exists() else "skipped"
            print(f"{name:8s} {reason}: {cache if reason == 'cached' else ''}")
            continue
        timeout = args.dask_timeout if name == "dask" else 4 * 3600
        argv = tilewise.get(name) or [sys.executable, __file__, "--step", name, *common]
        seconds, peak, finished, out = _timed(argv, timeout)
        results[name] = (seconds, peak, finished)
        state = "" if finished else " (stopped: did not finish)"
        memory = f"peak tree PSS {peak / 2**20:8.0f} MiB"
        print(f"{name:8s} {seconds:8.1f} s  {memory}{state}  {out.strip()}")
        sys.stdout.flush()
    verdict = compare(work / "regions.parquet", cache)
    print(f"measure vs whole-image skimage: {json.dumps(verdict)}")
    if "run" in results and "measure" in results:
        ratio = results["measure"][1] / max(results["run"][1], 1)
        print(f"measure / run: {results['measure'][0] / results['run'][0]:.2f}x the time, "
              f"{ratio:.2f}x the tree peak PSS")  # fmt: skip
    print(f"{args.size}x{args.size} uint8, ops {OPS}, regions > {THRESHOLD} (connectivity 2), "
          f"{args.tile}-px tiles, {args.workers} workers")  # fmt: skip
    return 0 if verdict["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
