"""The dask executor against the local executor, on one machine, same number of workers.

Reference pipeline (``gaussian:sigma=4``, ``threshold:value=127``), TIFF -> Zarr, on a
photo-like sample image made with ``tilewise.testing.samples.write_sample_tiff``.
Three ways, each a median of ``--repeat`` runs after one warm-up (interleaved):

- ``local``: ``tilewise.run(..., workers=N)`` (worker processes started and stopped per run);
- ``dask``: ``tilewise.run(..., executor="dask", workers=N)``: a LocalCluster of N
  single-threaded workers started and stopped per run (what the CLI does);
- ``dask-warm``: the same LocalCluster kept running, passed as ``client=``.

Wall seconds only, in this process (the workers are its children); the outputs are
checked to be identical.  The machine is shared and noisy: compare the ratios.

Usage::

    python benchmarks/dask_vs_local.py [--size 8192] [--repeat 3] [--workers 2]
        [--tile 1024] [--workdir /tmp/tilewise-bench-dask] [--save FILE.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

import tilewise
from tilewise.testing.samples import write_sample_tiff

OPS = ["gaussian:sigma=4", "threshold:value=127"]


def timed(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """One warm-up of each, then ``repeat`` rounds; each round times every way once.

    Interleaving spreads the machine's noise over the ways instead of on one of them.
    """
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tilewise-bench-dask"))
    parser.add_argument("--save", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / f"sample-{args.size}.tif"
    if not src.exists():
        print(f"writing {src} ...", flush=True)
        write_sample_tiff(src, args.size)
    outs = {name: args.workdir / f"{name}.zarr" for name in ("local", "dask", "dask-warm")}
    common: dict[str, Any] = {"tile": args.tile, "workers": args.workers, "overwrite": True}

    def local() -> None:
        assert tilewise.run(src, outs["local"], OPS, **common).ok

    def dask() -> None:
        assert tilewise.run(src, outs["dask"], OPS, executor="dask", **common).ok

    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster, set_as_default=False)

    def warm() -> None:
        report = tilewise.run(src, outs["dask-warm"], OPS, executor="dask", client=client, **common)
        assert report.ok

    try:
        results = timed({"local": local, "dask": dask, "dask-warm": warm}, args.repeat)
    finally:
        client.close()
        cluster.close()

    expected = np.asarray(zarr.open_array(outs["local"], mode="r")[...])
    for name in ("dask", "dask-warm"):
        got = np.asarray(zarr.open_array(outs[name], mode="r")[...])
        assert np.array_equal(got, expected), f"{name} differs from local"

    base = statistics.median(results["local"])
    lines = [
        f"# dask vs local executor, {dt.date.today()}",
        "",
        f"{args.size}² uint8 sample TIFF → Zarr, {' '.join('--op ' + op for op in OPS)}, "
        f"tile {args.tile}, {args.workers} workers, median of {args.repeat} interleaved runs "
        "after a warm-up; "
        f"nproc {os.cpu_count()}, Python {platform.python_version()}, "
        f"dask {__import__('dask').__version__}, tilewise {tilewise.__version__}. "
        "Outputs identical.",
        "",
        "| executor | runs (s) | median (s) | vs local |",
        "|---|---|---|---|",
    ]
    for name, times in results.items():
        median = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        lines.append(f"| {name} | {runs} | {median:.2f} | {median / base:.2f}× |")
    table = "\n".join(lines)
    print(table)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(table + "\n")
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
