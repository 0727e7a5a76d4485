"""Peer: OpenCV on the whole image in RAM, 2 threads.

Usage: ``python opencv_whole.py INPUT(.npy|.tif) OUTPUT.npy``

Reference pipeline: ``cv2.GaussianBlur`` 33x33, sigma 4, BORDER_REFLECT_101, then
threshold at 127 to 0/255 uint8.  This is the whole-image result other tools are
compared with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import tifffile

KSIZE = (33, 33)
SIGMA = 4.0
THRESHOLD = 127


def load(path: Path) -> np.ndarray:
    """Read the whole image into memory from ``.npy`` or TIFF."""
    if path.suffix == ".npy":
        return np.load(path)
    return tifffile.imread(path, maxworkers=2)


def pipeline(img: np.ndarray) -> np.ndarray:
    """Gaussian sigma 4 (radius 16, reflect-101 edges), then threshold at 127 -> 0/255."""
    blurred = cv2.GaussianBlur(img, KSIZE, SIGMA, borderType=cv2.BORDER_REFLECT_101)
    # uint8 scalars: with Python ints numpy 2 would build an int64 temporary (8 B/px).
    return np.where(blurred > THRESHOLD, np.uint8(255), np.uint8(0))


def main(argv: list[str]) -> int:
    """Run the pipeline from INPUT to OUTPUT.npy."""
    src, dst = Path(argv[0]), Path(argv[1])
    cv2.setNumThreads(2)
    np.save(dst, pipeline(load(src)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
