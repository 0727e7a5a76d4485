"""Peer: the hand-written recipe, ``multiprocessing.Pool(2)`` over 1024-px tiles.

Usage: ``python pool_halo.py INPUT.npy OUTPUT.npy [--halo 16] [--tile 1024]``

Workers read their tile plus a ``halo``-px margin from a memmap of the input ``.npy``,
blur it with OpenCV (1 thread each), threshold, and write the tile's core into a
memmapped output ``.npy``.  With ``--halo 16`` (the kernel radius) the result is
bit-identical to the whole-image result; ``--halo 0`` shows the seams a naive tiling
leaves at every tile border.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys

import cv2
import numpy as np

KSIZE = (33, 33)
SIGMA = 4.0
THRESHOLD = 127

Box = tuple[int, int, int, int]

_src: np.ndarray | None = None
_dst: np.ndarray | None = None
_halo = 0


def _init(src: str, dst: str, halo: int) -> None:
    global _src, _dst, _halo
    cv2.setNumThreads(1)
    _src = np.load(src, mmap_mode="r")
    _dst = np.load(dst, mmap_mode="r+")
    _halo = halo


def _process(box: Box) -> None:
    assert _src is not None
    assert _dst is not None
    y0, y1, x0, x1 = box
    h, w = _src.shape
    ya, yb = max(0, y0 - _halo), min(h, y1 + _halo)
    xa, xb = max(0, x0 - _halo), min(w, x1 + _halo)
    tile = np.ascontiguousarray(_src[ya:yb, xa:xb])
    blurred = cv2.GaussianBlur(tile, KSIZE, SIGMA, borderType=cv2.BORDER_REFLECT_101)
    core = blurred[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
    _dst[y0:y1, x0:x1] = np.where(core > THRESHOLD, np.uint8(255), np.uint8(0))


def boxes(shape: tuple[int, ...], tile: int) -> list[Box]:
    """Tile rectangles ``(y0, y1, x0, x1)`` covering an image of ``shape``, row-major."""
    h, w = shape[:2]
    return [
        (y, min(y + tile, h), x, min(x + tile, w))
        for y in range(0, h, tile)
        for x in range(0, w, tile)
    ]


def main(argv: list[str]) -> int:
    """Run the pipeline from INPUT.npy to OUTPUT.npy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--halo", type=int, default=16)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    src = np.load(args.input, mmap_mode="r")
    out = np.lib.format.open_memmap(args.output, mode="w+", dtype=np.uint8, shape=src.shape)
    del out
    with mp.Pool(args.workers, _init, (args.input, args.output, args.halo)) as pool:
        for _ in pool.imap_unordered(_process, boxes(src.shape, args.tile)):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
