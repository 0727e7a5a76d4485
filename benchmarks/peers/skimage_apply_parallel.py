"""Peer: ``skimage.util.apply_parallel`` with an OpenCV kernel, whole image in RAM.

Usage: ``python skimage_apply_parallel.py INPUT.npy OUTPUT.npy``

The image is loaded whole; ``apply_parallel`` splits it into its default chunks (one per
CPU), adds a 16-px overlap and runs the OpenCV blur + threshold per chunk on dask's
threaded scheduler with 2 workers (OpenCV itself single-threaded per chunk).
``mode="none"``: no padding at the image border, so OpenCV's own reflect-101 applies
there and the result is bit-identical to the whole-image OpenCV result (skimage's
default ``mode`` maps to dask's "reflect", i.e. numpy "symmetric", which repeats the edge
pixel where reflect-101 does not, and differs in the outer 16 px).
"""

from __future__ import annotations

import sys

import cv2
import dask
import numpy as np
from skimage.util import apply_parallel

KSIZE = (33, 33)
SIGMA = 4.0
RADIUS = 16
THRESHOLD = 127


def kernel(chunk: np.ndarray) -> np.ndarray:
    """Blur one (overlapped) chunk and threshold it."""
    blurred = cv2.GaussianBlur(chunk, KSIZE, SIGMA, borderType=cv2.BORDER_REFLECT_101)
    return np.where(blurred > THRESHOLD, np.uint8(255), np.uint8(0))


def main(argv: list[str]) -> int:
    """Run the pipeline from INPUT.npy to OUTPUT.npy."""
    cv2.setNumThreads(1)
    img = np.load(argv[0])
    with dask.config.set(scheduler="threads", num_workers=2):
        out = apply_parallel(kernel, img, depth=RADIUS, mode="none", dtype=np.uint8)
    np.save(argv[1], out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
