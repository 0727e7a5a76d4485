"""Peer: rioxarray + Dask: the image opened lazily in 1024-px chunks, dask-image's Gaussian
(SciPy per chunk, with the overlap it needs), written with ``rio.to_raster(driver="COG")``.

    python benchmarks/peers/rioxarray_cog.py IN.tif OUT.tif --sigma 4

Dask's threaded scheduler with 2 threads computes the chunks. GDAL's COG driver cannot
write a window at a time (it only copies a finished dataset), so rioxarray computes the
whole array and GDAL then builds the overviews and the layout, as for the GDAL peer
(DEFLATE, 512-px tiles, AVERAGE overviews, ``NUM_THREADS=2``).
"""

from __future__ import annotations

import argparse

import dask
import rioxarray
from dask_image.ndfilters import gaussian_filter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--sigma", type=float, default=4.0)
    args = parser.parse_args()
    dask.config.set(scheduler="threads", num_workers=2)
    image = rioxarray.open_rasterio(args.src, chunks={"band": 1, "y": 1024, "x": 1024})
    smooth = image.copy(
        data=gaussian_filter(image.data, (0, args.sigma, args.sigma), mode="mirror", truncate=4.0)
    )
    smooth.rio.to_raster(
        args.dst,
        driver="COG",
        compress="DEFLATE",
        blocksize=512,
        overview_resampling="AVERAGE",
        bigtiff="IF_NEEDED",
        num_threads=2,
    )


if __name__ == "__main__":
    main()
