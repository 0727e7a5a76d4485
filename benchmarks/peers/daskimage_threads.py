"""Peer: dask-image ``gaussian_filter`` on the threaded scheduler, 2 threads.

Usage: ``python daskimage_threads.py INPUT.tif OUTPUT.zarr``

The TIFF is opened lazily (``tifffile.imread(aszarr=True)``) and read in 1024-px chunks;
``gaussian_filter(sigma=4, truncate=4.0)`` (radius 16, scipy's 'reflect' edges) is
applied with overlap, thresholded at 127 and written to Zarr (zarr's default codec).
"""

from __future__ import annotations

import sys

import dask
import dask.array as da
import numpy as np
import tifffile
import zarr
from dask_image.ndfilters import gaussian_filter

CHUNK = 1024
SIGMA = 4.0
TRUNCATE = 4.0  # radius int(4.0 * 4 + 0.5) = 16
THRESHOLD = 127


def build(img: da.Array) -> da.Array:
    """The lazy reference pipeline on a dask array."""
    blurred = gaussian_filter(img, sigma=SIGMA, truncate=TRUNCATE)
    return da.where(blurred > THRESHOLD, np.uint8(255), np.uint8(0))


def main(argv: list[str]) -> int:
    """Run the pipeline from INPUT.tif to OUTPUT.zarr."""
    src, dst = argv[0], argv[1]
    store = tifffile.imread(src, aszarr=True)
    try:
        img = da.from_zarr(zarr.open(store, mode="r"), chunks=(CHUNK, CHUNK))
        with dask.config.set(scheduler="threads", num_workers=2):
            build(img).to_zarr(dst, overwrite=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
