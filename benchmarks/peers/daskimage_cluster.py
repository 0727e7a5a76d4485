"""Peer: dask-image ``gaussian_filter`` on a ``distributed.LocalCluster`` of 2 processes.

Usage: ``python daskimage_cluster.py INPUT.tif OUTPUT.zarr``

Same graph as ``daskimage_threads.py``, run by 2 worker processes with 1 thread each.
The cluster listens on 127.0.0.1 only and has no dashboard.  The TIFF is read through a
small picklable reader (an open ``tifffile`` zarr store holds a file handle and is not
meant to be shipped to other processes).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import dask.array as da
import numpy as np
import tifffile
import zarr
from dask_image.ndfilters import gaussian_filter
from distributed import Client, LocalCluster

CHUNK = 1024
SIGMA = 4.0
TRUNCATE = 4.0  # radius 16
THRESHOLD = 127


class TiffReader:
    """Array-like view of a TIFF's first page; every read opens the file afresh."""

    def __init__(self, path: str) -> None:
        self.path = path
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            self.shape: tuple[int, ...] = tuple(page.shape)
            self.dtype = np.dtype(page.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        with tifffile.imread(self.path, aszarr=True) as store:
            return np.asarray(zarr.open(store, mode="r")[key])


def main(argv: list[str]) -> int:
    """Run the pipeline from INPUT.tif to OUTPUT.zarr on a local 2-process cluster."""
    src, dst = argv[0], argv[1]
    img = da.from_array(TiffReader(src), chunks=(CHUNK, CHUNK), asarray=False)
    blurred = gaussian_filter(img, sigma=SIGMA, truncate=TRUNCATE)
    result = da.where(blurred > THRESHOLD, np.uint8(255), np.uint8(0))
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster),
    ):
        result.to_zarr(dst, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
