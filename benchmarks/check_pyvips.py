"""Check what pyvips' Gaussian actually computes, against OpenCV and exact float64.

Usage: ``python benchmarks/check_pyvips.py [IMAGE.npy] [--crop 2048]``

Prints the libvips version, the mask widths for several ``min_ampl`` values, whether
``gaussblur`` honours a ``min_ampl`` small enough for a 33-tap mask, and on a crop of the
image (default: a fresh 2048² reference mosaic) how many thresholded pixels differ
between pyvips (integer / float mask), OpenCV (reflect-101 and replicate edges) and an
exact float64 separable convolution.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import pyvips
from _vips import MIN_AMPL, SIGMA, blur

from make_reference import strips

THRESHOLD = 127
RADIUS = 16


def exact_blur(img: np.ndarray, mode: str) -> np.ndarray:
    """float64 separable 33-tap Gaussian (normalised), scipy edge ``mode``."""
    k = cv2.getGaussianKernel(2 * RADIUS + 1, SIGMA, ktype=cv2.CV_64F)[:, 0]
    out = ndimage.correlate1d(img.astype(np.float64), k, axis=0, mode=mode)
    return ndimage.correlate1d(out, k, axis=1, mode=mode)


def main(argv: list[str] | None = None) -> int:
    """Print the checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("--crop", type=int, default=2048)
    args = parser.parse_args(argv)
    print("libvips", ".".join(str(pyvips.version(i)) for i in range(3)))
    for ma in (0.2, 1e-3, 3.35e-4, MIN_AMPL, 1.2e-4):
        widths = [
            pyvips.Image.gaussmat(SIGMA, ma, separable=True, precision=p).width
            for p in ("integer", "float")
        ]
        print(
            f"gaussmat(sigma={SIGMA}, min_ampl={ma:g}): width {widths[0]} (int) {widths[1]} (float)"
        )
    print(
        "integer mask (33 taps):",
        pyvips.Image.gaussmat(SIGMA, MIN_AMPL, separable=True, precision="integer")
        .numpy()
        .ravel()
        .astype(int)
        .tolist(),
    )

    n = args.crop
    if args.image is not None:
        img = np.ascontiguousarray(np.load(args.image, mmap_mode="r")[:n, :n])
    else:
        img = np.concatenate(list(strips(n, 20240601, 3.0)))
    v = pyvips.Image.new_from_array(img)
    honoured = not np.array_equal(
        v.gaussblur(SIGMA, min_ampl=MIN_AMPL, precision="float").numpy(),
        v.gaussblur(SIGMA, precision="float").numpy(),
    )
    print(f"gaussblur honours min_ampl={MIN_AMPL:g}: {honoured}")

    inner = np.s_[RADIUS:-RADIUS, RADIUS:-RADIUS]
    results = {
        "opencv reflect101": cv2.GaussianBlur(
            img, (33, 33), SIGMA, borderType=cv2.BORDER_REFLECT_101
        )
        > THRESHOLD,
        "opencv replicate": cv2.GaussianBlur(img, (33, 33), SIGMA, borderType=cv2.BORDER_REPLICATE)
        > THRESHOLD,
        "pyvips integer": blur(v, "integer").numpy() > THRESHOLD,
        "pyvips float": blur(v, "float").numpy() > THRESHOLD,
        "exact f64 mirror": exact_blur(img, "mirror") >= THRESHOLD + 0.5,
        "exact f64 nearest": exact_blur(img, "nearest") >= THRESHOLD + 0.5,
    }
    names = list(results)
    print(f"\nthresholded pixels differing on a {n}x{n} crop: all / interior (>= {RADIUS} px in)")
    print(" " * 20 + "".join(f"{k:>20s}" for k in names))
    for a in names:
        cells = []
        for b in names:
            d = results[a] != results[b]
            cells.append(f"{int(d.sum())} / {int(d[inner].sum())}")
        print(f"{a:20s}" + "".join(f"{c:>20s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
