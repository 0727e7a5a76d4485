"""Peer: the filter in one process (rasterio reads the whole image, SciPy or OpenCV filters
it), then GDAL's COG driver writes the COG (overviews, layout) from it.

    python benchmarks/peers/gdal_cog.py IN.tif OUT.tif --sigma 4 --filter scipy|opencv

Both filters use the kernel tilewise's ``gaussian`` uses (radius ``int(4 sigma + 0.5)``,
mirrored border): SciPy's ``gaussian_filter(mode="mirror", truncate=4)`` as the issue's
"rasterio + SciPy" route, OpenCV's ``GaussianBlur(BORDER_REFLECT_101)``, the very call
tilewise makes per tile, for a like-for-like filter. GDAL writes the COG as tilewise does
(DEFLATE, 512-px tiles, AVERAGE overviews, BIGTIFF=IF_NEEDED) with ``NUM_THREADS=2``.
"""

from __future__ import annotations

import argparse

import numpy as np
import rasterio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--sigma", type=float, default=4.0)
    parser.add_argument("--filter", choices=["scipy", "opencv"], default="scipy")
    args = parser.parse_args()
    with rasterio.open(args.src) as src:
        image = src.read(1)
        profile = src.profile
    if args.filter == "scipy":
        from scipy import ndimage

        out = ndimage.gaussian_filter(image, args.sigma, mode="mirror", truncate=4.0)
    else:
        import cv2

        cv2.setNumThreads(2)
        radius = int(4.0 * args.sigma + 0.5)
        ksize = (2 * radius + 1, 2 * radius + 1)
        out = cv2.GaussianBlur(image, ksize, args.sigma, args.sigma, cv2.BORDER_REFLECT_101)
    del image
    profile.update(
        driver="COG",
        compress="DEFLATE",
        blocksize=512,
        overview_resampling="AVERAGE",
        bigtiff="IF_NEEDED",
        num_threads=2,
    )
    for key in ("tiled", "blockxsize", "blockysize", "interleave"):
        profile.pop(key, None)
    with rasterio.open(args.dst, "w", **profile) as dst:
        dst.write(np.asarray(out), 1)


if __name__ == "__main__":
    main()
