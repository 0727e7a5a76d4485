"""`tilewise stats` against a plain `tilewise run` of the same ops, in one session, and NumPy.

Writes a synthetic uint16 image (smoothed noise) as ``.npy``, then runs, alternating
in each round so that both see the same machine load:

* ``tilewise run IN OUT.npy --op OPS`` (the plain run: reads, filters, writes);
* ``tilewise stats IN --op OPS --json`` (reads, filters, counts; writes nothing);

each as its own process with the same tiles and workers, measured as a whole process
tree (wall, CPU of every process, peak PSS; ``_measure.py``). One warm-up round, then
REPEAT rounds; medians are printed. The statistics of the last round are checked
against NumPy on the run's output (which equals the whole-image filter): count, min,
max, mean exactly, std to 1e-12, every percentile exactly (integers are exact).

    .venv/bin/python benchmarks/measure_stats.py [--size 4096] [--tile 1024] [--workers 2]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _measure import Run, compile_tilewise, run_once

OPS = ["gaussian:sigma=2"]
RESULTS = Path(__file__).parent / "results"


def make_input(path: Path, size: int) -> None:
    """uint16 smoothed noise, written in row blocks (flat memory at any size)."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(size, size))
    for top in range(0, size, 1024):
        rows = min(1024, size - top)
        noise = rng.integers(0, 4096, (rows, size)).astype(np.float32)
        out[top : top + rows] = ndimage.uniform_filter(noise, 5).astype(np.uint16)
    out.flush()
    del out


def _median(runs: list[Run], name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in runs))


def check(band: dict[str, object], filtered: np.ndarray) -> bool:
    """Whether the printed statistics equal NumPy's on the whole filtered image."""
    whole = filtered.astype(np.float64)
    percentiles = band["percentiles"]
    assert isinstance(percentiles, dict)
    return (
        band["count"] == filtered.size
        and band["min"] == filtered.min()
        and band["max"] == filtered.max()
        and band["mean"] == whole.mean()
        and abs(float(band["std"]) - whole.std()) <= 1e-12 * whole.std()  # type: ignore[arg-type]
        and all(v == np.percentile(filtered, float(q)) for q, v in percentiles.items())
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tilewise_cmd = shutil.which("tilewise", path=str(Path(sys.executable).parent))
    base = [tilewise_cmd] if tilewise_cmd else [sys.executable, "-m", "tilewise"]
    compile_tilewise()
    ops = [x for op in OPS for x in ("--op", op)]
    common = ["--tile", str(args.tile), "--workers", str(args.workers), "-q"]
    with tempfile.TemporaryDirectory(dir=RESULTS, prefix="stats-") as tmp:  # ignored by git
        src, out = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        make_input(src, args.size)
        run_cmd = [*base, "run", str(src), str(out), *ops, *common, "--overwrite"]
        stats_cmd = [*base, "stats", str(src), *ops, *common, "--json"]
        runs: dict[str, list[Run]] = {"run": [], "stats": []}
        for round_ in range(args.repeat + 1):  # round 0 is the warm-up
            for name, cmd in (("run", run_cmd), ("stats", stats_cmd)):
                result = run_once(cmd)
                if not result.ok:
                    print(f"{name} failed ({result.returncode}): {result.stderr_tail}")
                    return 1
                if round_:
                    runs[name].append(result)
                print(
                    f"  round {round_}{' (warm-up)' if not round_ else ''} {name:5s}: "
                    f"wall {result.wall_s:.2f} s, cpu {result.cpu_s:.2f} s, "
                    f"pss {result.peak_pss_mib:.0f} MiB",
                    file=sys.stderr,
                )
        # once more, unmeasured, for the whole JSON (a measured run keeps only its tail)
        [band] = json.loads(subprocess.run(stats_cmd, check=True, capture_output=True).stdout)
        equal = check(band, np.load(out, mmap_mode="r"))
    print(
        f"{args.size}x{args.size} uint16, ops {OPS}, {args.tile}-px tiles, {args.workers} "
        f"workers, median of {args.repeat} alternating rounds after a warm-up"
    )
    for name in ("run", "stats"):
        print(
            f"{name:5s}  wall {_median(runs[name], 'wall_s'):7.2f} s  "
            f"cpu {_median(runs[name], 'cpu_s'):7.2f} s  "
            f"tree peak PSS {_median(runs[name], 'peak_pss_mib'):6.0f} MiB"
        )
    print("stats equal NumPy on the whole image" if equal else "stats DIFFER from NumPy")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
