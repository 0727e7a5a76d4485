"""`tilewise stats` against a plain `tilewise run` of the same ops, and against NumPy.

Writes a synthetic uint16 image (smoothed noise) as ``.npy``, then, alternating,
``tilewise.run(src, out.npy, OPS)``, ``tilewise.run(src, out.tif, OPS)`` (the
default Deflate TIFF) and ``tilewise.stats(src, OPS)`` with the
same tiles and workers, REPEAT times each; the best wall time of each is
printed. The statistics are checked against NumPy on the whole filtered image
(computed once with ``tilewise.process``).

    .venv/bin/python benchmarks/measure_stats.py [SIZE] [TILE] [WORKERS] [REPEAT]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

import tilewise

OPS = ["gaussian:sigma=2"]


def main() -> int:
    defaults = ["4096", "1024", "2", "3"]
    args = [*sys.argv[1:], *defaults[len(sys.argv) - 1 :]]
    size, tile, workers, repeat = (int(a) for a in args[:4])
    rng = np.random.default_rng(0)
    image = ndimage.uniform_filter(rng.integers(0, 4096, (size, size)).astype(np.float32), 5)
    image = image.astype(np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.npy"
        np.save(src, image)
        run_s: dict[str, list[float]] = {".npy": [], ".tif": []}
        stats_s = []
        bands = None
        for _ in range(repeat):
            for suffix, times in run_s.items():
                out = Path(tmp) / f"out{suffix}"
                start = time.perf_counter()
                report = tilewise.run(src, out, OPS, tile=tile, workers=workers, overwrite=True)
                times.append(time.perf_counter() - start)
                assert report.ok
                os.unlink(out)
            start = time.perf_counter()
            bands = tilewise.stats(src, OPS, tile=tile, workers=workers)
            stats_s.append(time.perf_counter() - start)
    filtered = tilewise.process(image, OPS, tile=size)
    [band] = bands or []
    whole = filtered.astype(np.float64)
    equal = (
        band.count == filtered.size
        and band.minimum == filtered.min()
        and band.maximum == filtered.max()
        and band.mean == whole.mean()
        and abs(band.std - whole.std()) <= 1e-12 * whole.std()
        and all(band.percentiles[q] == np.percentile(filtered, q) for q in band.percentiles)
    )
    print(f"{size}x{size} uint16, {OPS}, {tile}-px tiles, {workers} workers, best of {repeat}")
    print(f"run   (writes .npy): {min(run_s):.2f} s   all: {', '.join(f'{s:.2f}' for s in run_s)}")
    print(
        f"stats:               {min(stats_s):.2f} s   all: {', '.join(f'{s:.2f}' for s in stats_s)}"
    )
    print("stats equal NumPy on the whole image" if equal else "stats DIFFER from NumPy")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
