"""Tiled detectors (tilewise.measurements.tiled) against whole-image skimage/NumPy, in memory.

Checks that the answers are equal and prints wall seconds of each, single thread.
Run by hand:  .venv/bin/python benchmarks/measure_inmemory.py [SIZE] [TILE]
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.measure import label, regionprops_table

from tilewise.measurements import Peaks, Regions, Stats, skimage_order, tiled


def timed(func):
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def main(size: int = 4096, tile: int = 1024) -> None:
    rng = np.random.default_rng(0)
    noise = rng.random((size, size), dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, 3, mode="mirror", truncate=4.0)
    image = np.round((smooth - smooth.min()) / np.ptp(smooth) * 255).astype(np.uint8)
    print(f"image {size}x{size} uint8 (smoothed noise), tiles {tile}x{tile}")

    ref, t_whole = timed(lambda: peak_local_max(image, min_distance=4, threshold_abs=140))
    got, t_tiled = timed(lambda: skimage_order(tiled(image, detect=Peaks(140, 4), tile=tile)))
    same = np.array_equal(np.stack([got["row"], got["col"]], 1), ref)
    print(f"peaks    {len(ref):>8} equal={same}  whole {t_whole:6.2f} s  tiled {t_tiled:6.2f} s")

    props = ("label", "area", "centroid", "bbox", "intensity_mean")
    ref, t_whole = timed(
        lambda: regionprops_table(label(image > 140, connectivity=2), image, properties=props)
    )
    got, t_tiled = timed(lambda: tiled(image, detect=Regions(140, 2), tile=tile))
    same = np.array_equal(got["area"], ref["area"]) and np.array_equal(
        got["centroid_row"], ref["centroid-0"]
    )
    print(
        f"regions  {len(ref['label']):>8} equal={same}  whole {t_whole:6.2f} s  "
        f"tiled {t_tiled:6.2f} s"
    )

    q = (1, 50, 99)
    ref, t_whole = timed(
        lambda: (image.mean(), image.std(), np.percentile(image, q), np.histogram(image, 256))
    )
    [got], t_tiled = timed(lambda: tiled(image, detect=Stats(percentiles=q), tile=tile))
    same = got.mean == ref[0] and [got.percentiles[p] for p in q] == ref[2].tolist()
    print(f"stats             equal={same}  whole {t_whole:6.2f} s  tiled {t_tiled:6.2f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
