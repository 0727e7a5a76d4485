"""A large Dask cluster simulated on this machine: how many tiles/s one coordinator sustains.

Starts a real cluster on 127.0.0.1 — one ``dask scheduler`` process and ``dask worker``
processes of ``--threads`` threads each (``--nworkers`` processes, so W = processes x threads
worker threads) — whose op sleeps ``--sleep-ms`` per tile (``_sim_ops.nap``: no CPU, no I/O
beyond a 16² tile of a ``.npy``), and runs one tilewise run of ``--side``² in ``--tile``²
tiles through it. Each worker thread runs its tiles in a tile process of its own, as on a
real cluster, so W worker threads are W + processes processes on this machine.

For each W it prints: tiles/s sustained over the tiles (``phases.tiles_s`` of the report),
the ideal (W / sleep), the CPU used meanwhile by the scheduler process and by this process
(the coordinator: tilewise's main loop and the Dask client), in % of one core, and how
many tasks the tiles travelled in.

    python benchmarks/cluster_sim.py [--workers 16 64 128] [--threads 16] [--sleep-ms 20]
        [--side 2048] [--tile 16]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

import tilewise

HERE = Path(__file__).resolve().parent


def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.5)


def simulate(workers: int, threads: int, args: argparse.Namespace, work: Path) -> dict[str, object]:
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    scheduler_file = work / f"scheduler-{workers}.json"
    scheduler_file.unlink(missing_ok=True)
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    processes = max(1, workers // threads)
    worker = None
    try:
        wait_for(scheduler_file.exists, 60, "the scheduler")
        worker = subprocess.Popen(
            [dask, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
             "--nworkers", str(processes), "--nthreads", str(threads), "--no-dashboard",
             "--dashboard-address", "127.0.0.1:0", "--memory-limit", "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        with Client(scheduler_file=str(scheduler_file)) as client:

            def ready() -> bool:
                info = client.scheduler_info(n_workers=-1)["workers"].values()
                return sum(w["nthreads"] for w in info) >= processes * threads

            wait_for(ready, 180, f"{processes * threads} worker threads")
        src = work / "in.npy"
        out = work / "out.npy"
        sched = psutil.Process(scheduler.pid)
        me = psutil.Process()
        # a first run of 2 tiles per worker thread starts every thread's tile process
        warm_tile = max(args.tile, args.side // math.isqrt(2 * processes * threads))
        tilewise.run(src, out, [f"_sim_ops.nap:ms={args.sleep_ms}"], tile=warm_tile,
                     executor="dask", scheduler_file=str(scheduler_file), overwrite=True,
                     progress=False)  # fmt: skip
        before = (sum(sched.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.perf_counter())
        report = tilewise.run(src, out, [f"_sim_ops.nap:ms={args.sleep_ms}"], tile=args.tile,
                              executor="dask", scheduler_file=str(scheduler_file),
                              overwrite=True, progress=False)  # fmt: skip
        wall = time.perf_counter() - before[2]
        assert report.ok, report.failures[:3]
        tiles_s = report.extra["phases"]["tiles_s"]
        return {
            "worker_threads": processes * threads,
            "worker_processes": processes,
            "tiles": report.total,
            "tiles_per_s": round(report.total / tiles_s),
            "ideal_tiles_per_s": round(processes * threads * 1000 / args.sleep_ms),
            "scheduler_cpu_pct": round(100 * (sum(sched.cpu_times()[:2]) - before[0]) / wall),
            "coordinator_cpu_pct": round(100 * (sum(me.cpu_times()[:2]) - before[1]) / wall),
            "wall_s": round(wall, 2),
        }
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--sleep-ms", type=float, default=20.0)
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=16)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory(prefix="tilewise-sim-") as tmp:
        work = Path(tmp)
        image = np.random.default_rng(0).integers(0, 256, (args.side, args.side), dtype=np.uint8)
        np.save(work / "in.npy", image)
        rows = []
        for workers in args.workers:
            row = simulate(workers, min(args.threads, workers), args, work)
            print(json.dumps(row), flush=True)
            rows.append(row)
            assert np.array_equal(np.load(work / "out.npy"), image)


if __name__ == "__main__":
    main()
