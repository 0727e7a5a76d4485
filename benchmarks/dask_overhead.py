"""Per-tile cost on Dask: many small tiles of a trivial op, and a CPU-bound many-tile run.

Cases (a warm LocalCluster on 127.0.0.1 of N single-threaded workers, passed as
``client=``, so the cluster's start-up is not counted; each case `--repeat` times (3)
after a warm-up, the median reported):

- ``invert`` on a 4096² uint8 image in 64² and 128² tiles (4,096 and 1,024 tiles):
  wall seconds per tile, with 1 and 2 workers;
- ``median:size=9`` on an 8192² image in 256² tiles (1,024 tiles): the speed-up of 2
  workers over 1 — and the local executor's, measured in the same session, for what the
  machine allows at the time.

Output ``.npy`` (writing a region is a memory copy, so the wall time is the per-tile cost).

``--one-per-task`` sends every tile in a task of its own (runs of one tile), as tilewise
did before tiles went in runs, for a same-session comparison.  ``--profile FILE`` writes
a cProfile of the main process for the 64² invert case with 2 workers.

    python benchmarks/dask_overhead.py [--repeat 3] [--one-per-task] [--profile main.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import tilewise
import tilewise.executors.runs as runs

#: Runs of each case; the median is reported (a single run of a few seconds drifts with
#: the machine). Set by --repeat.
REPEAT = 3


def case(client, src: Path, out: Path, ops: list[str], tile: int, **options) -> dict[str, float]:  # type: ignore[no-untyped-def]
    if client is not None:
        options = {"executor": "dask", "client": client}
    walls = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        report = tilewise.run(src, out, ops, tile=tile, overwrite=True, progress=False, **options)
        walls.append(time.perf_counter() - start)
        assert report.ok, report.failures[:3]
    wall = statistics.median(walls)
    return {
        "tiles": report.total,
        "wall_s": round(wall, 3),
        "walls": [round(w, 3) for w in walls],
        "ms_per_tile": round(1000 * wall / report.total, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one-per-task", action="store_true")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repeat", type=int, default=REPEAT, help="runs of each case (median)")
    args = parser.parse_args()
    globals()["REPEAT"] = max(1, args.repeat)
    if args.one_per_task:
        runs.MOST_PER_RUN = 1
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    src = args.workdir / "dask-overhead-in.npy"
    np.save(src, rng.integers(0, 256, (4096, 4096), dtype=np.uint8))
    big = args.workdir / "dask-overhead-in-8192.npy"
    np.save(big, rng.integers(0, 256, (8192, 8192), dtype=np.uint8))
    out = args.workdir / "dask-overhead-out.npy"
    results: dict[str, object] = {"one_per_task": args.one_per_task}
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            case(client, src, out, ["invert"], 512)  # warm-up: tile processes, imports
            for tile in (64, 128):
                if args.profile and workers == 2 and tile == 64:
                    profile = cProfile.Profile()
                    profile.enable()
                    results[f"invert {tile}² x{workers}"] = case(client, src, out, ["invert"], tile)
                    profile.disable()
                    profile.dump_stats(args.profile)
                else:
                    results[f"invert {tile}² x{workers}"] = case(client, src, out, ["invert"], tile)
            results[f"median9 256² x{workers}"] = case(client, big, out, ["median:size=9"], 256)
        results[f"local median9 256² x{workers}"] = case(
            None, big, out, ["median:size=9"], 256, workers=workers
        )
    for prefix in ("", "local "):
        one = results[f"{prefix}median9 256² x1"]["wall_s"]  # type: ignore[index]
        two = results[f"{prefix}median9 256² x2"]["wall_s"]  # type: ignore[index]
        results[f"{prefix}median9 speed-up x2/x1"] = round(one / two, 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
