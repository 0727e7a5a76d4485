"""A large Dask cluster simulated on this machine: how many tiles/s one coordinator sustains.

Starts a real cluster on 127.0.0.1 — one ``dask scheduler`` process and ``dask worker``
processes of ``--threads`` threads each (``--nworkers`` processes, so W = processes x threads
worker threads) — whose op sleeps ``--sleep-ms`` per tile (``_sim_ops.nap``: no CPU, no I/O
beyond a 16² tile of a ``.npy``), and runs one tilewise run of ``--side``² in ``--tile``²
tiles through it. Each worker thread runs its tiles in a tile process of its own, as on a
real cluster, so W worker threads are W + processes processes on this machine.

What is simulated: many machines' worker threads, by threads whose tiles sleep. What is
not: their CPU. The Dask workers' event loops and the tile processes (reading, writing
and answering for each tile) still run on this machine's cores, beside the coordinator and
the scheduler; on a real cluster they have cores of their own. So the tiles/s measured
here is a floor for a real cluster of W cores, and the CPU each part spends per tile is
printed too: the coordinator's and the scheduler's, each on one core of its own, bound
what one run sustains however many workers it has.

One executor serves a first run (2 tiles per worker thread) and the measured run, as one
long-lived cluster would: the tile processes are up before the measured run. The workers
run with Dask's statistical profiler off (``--dask-profile`` keeps it), as
``docs/distributed.md`` advises for workers of many threads.

For each W it prints: tiles/s over the whole run (``phases.tiles_s`` of the report) and
sustained (from 10% to 90% of the tiles), the ideal (W / sleep), how many tasks the tiles
travelled in, the CPU of the scheduler and of this process (the coordinator: tilewise's
main loop and the Dask client) in % of one core, the CPU per tile in ms of the
coordinator, the scheduler, the Dask worker processes and the tile processes, and the
coordinator's ceiling (tiles/s at which its CPU per tile fills one core).

    python benchmarks/cluster_sim.py [--workers 16 64 128] [--threads 16] [--sleep-ms 20]
        [--side 2048] [--tile 16] [--dask-profile]
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
from typing import Any

import numpy as np
import psutil

import tilewise
from tilewise.executors.base import Done
from tilewise.executors.dask import DaskExecutor
from tilewise.executors.runs import RunOfTasks

HERE = Path(__file__).resolve().parent


def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.5)


class TimedDaskExecutor(DaskExecutor):
    """The dask executor, noting when each tile's outcome came and how many tasks ran."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.stamps: list[float] = []
        self.tasks = 0

    def map_tasks(self, fn, tasks, **options):  # type: ignore[no-untyped-def, override]
        for outcome in super().map_tasks(fn, tasks, **options):
            self.tasks += 1
            whole = isinstance(fn, RunOfTasks) and isinstance(outcome, Done)
            tiles = len(outcome.value) if whole else 1
            now = time.perf_counter()
            self.stamps.extend([now] * tiles)
            yield outcome


def tree_cpu(root: psutil.Process) -> dict[str, list[float]]:
    """CPU seconds (user + system) and context switches of the worker side, by role.

    Roles: ``dask`` (the ``dask worker`` command, its nannies and the worker processes),
    ``tile`` (the tile processes: children of a worker's fork server; the fork servers
    themselves are counted with them).
    """
    totals = {"dask": [0.0, 0.0, 0.0], "tile": [0.0, 0.0, 0.0]}
    for proc in [root, *root.children(recursive=True)]:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                switches = proc.num_ctx_switches()
                parent = proc.parent()
                role = (
                    "tile"
                    if "forkserver" in " ".join(proc.cmdline())
                    or (parent is not None and "forkserver" in " ".join(parent.cmdline()))
                    else "dask"
                )
        except psutil.Error:  # gone meanwhile
            continue
        row = totals[role]
        row[0] += times.user + times.system
        row[1] += switches.voluntary
        row[2] += switches.involuntary
    return totals


def simulate(workers: int, threads: int, args: argparse.Namespace, work: Path) -> dict[str, object]:
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": str(args.dask_profile),
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
        ops = [f"_sim_ops.nap:ms={args.sleep_ms}"]
        executor = TimedDaskExecutor(scheduler_file=str(scheduler_file))
        try:
            # a first run of 2 tiles per worker thread: every thread's tile process is up
            warm_tile = max(args.tile, args.side // math.isqrt(2 * processes * threads))
            tilewise.run(src, out, ops, tile=warm_tile, executor=executor, overwrite=True,
                         progress=False)  # fmt: skip
            executor.stamps.clear()
            executor.tasks = 0
            sched = psutil.Process(scheduler.pid)
            me = psutil.Process()
            side = psutil.Process(worker.pid)
            tree_before = tree_cpu(side)
            before = (sum(sched.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.perf_counter())
            report = tilewise.run(src, out, ops, tile=args.tile, executor=executor,
                                  overwrite=True, progress=False)  # fmt: skip
            wall = time.perf_counter() - before[2]
            tree_after = tree_cpu(side)
            sched_cpu = sum(sched.cpu_times()[:2]) - before[0]
            my_cpu = sum(me.cpu_times()[:2]) - before[1]
            stamps, tasks = list(executor.stamps), executor.tasks
        finally:
            executor.close()
        assert report.ok, report.failures[:3]
        spent = {
            role: [a - b for a, b in zip(tree_after[role], tree_before[role], strict=True)]
            for role in tree_after
        }
        tiles_s = report.extra["phases"]["tiles_s"]
        total = report.total
        low, high = stamps[total // 10], stamps[total * 9 // 10]
        coordinator_ms = 1000 * my_cpu / total
        return {
            "worker_threads": processes * threads,
            "worker_processes": processes,
            "tiles": total,
            "tasks": tasks,
            "tiles_per_s": round(total / tiles_s),
            "sustained_tiles_per_s": round((total * 9 // 10 - total // 10) / (high - low)),
            "ideal_tiles_per_s": round(processes * threads * 1000 / args.sleep_ms),
            "scheduler_cpu_pct": round(100 * sched_cpu / wall),
            "coordinator_cpu_pct": round(100 * my_cpu / wall),
            "coordinator_cpu_ms_per_tile": round(coordinator_ms, 3),
            "scheduler_cpu_ms_per_tile": round(1000 * sched_cpu / total, 3),
            "dask_worker_cpu_ms_per_tile": round(1000 * spent["dask"][0] / total, 3),
            "tile_process_cpu_ms_per_tile": round(1000 * spent["tile"][0] / total, 3),
            "coordinator_ceiling_tiles_per_s": round(1000 / coordinator_ms),
            "wall_s": round(wall, 2),
            "dask_profiler": args.dask_profile,
            "load_average_1min": round(os.getloadavg()[0], 1),
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
    parser.add_argument(
        "--dask-profile",
        action="store_true",
        help="keep the Dask workers' statistical profiler on (Dask's default)",
    )
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
