"""Generate the benchmark reference image deterministically.

The image is an N x N uint8 "photo-like" mosaic: 640 x 640 cells, each a crop of a real
photograph bundled with scikit-image (camera, astronaut, coffee, chelsea, ...; colour
photos converted to grey), randomly flipped/transposed, plus mild seeded Gaussian noise.
The cell size is deliberately not a multiple of the 512-px TIFF tiles or of the usual
processing tiles, so photo edges cross tile borders.

It is written as a tiled BigTIFF (512 x 512 tiles, deflate) from an iterator of tiles,
one 512-row strip in memory at a time; optionally also as an ``.npy`` copy (through a
memmap, same strip at a time).  The same seed and size give the same pixels.

Usage::

    python benchmarks/make_reference.py OUT.tif --size 16384 [--npy OUT.npy]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import tifffile
from skimage import data

TIFF_TILE = 512
CELL = 640
DEFAULT_SEED = 20240601
DEFAULT_NOISE = 3.0

# Photographs (not drawings or documents) shipped inside scikit-image, no download needed.
PHOTOS: tuple[str, ...] = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "coins",
    "moon",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "brick",
    "grass",
    "gravel",
    "clock",
    "cell",
)


def _to_gray_u8(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(img, dtype=np.uint8)


@cache
def photos(cell: int = CELL) -> tuple[np.ndarray, ...]:
    """The grey photographs, each upscaled (bicubic) so both sides are >= ``cell``."""
    out = []
    for name in PHOTOS:
        img = _to_gray_u8(getattr(data, name)())
        short = min(img.shape)
        if short < cell:
            scale = cell / short
            size = (max(cell, round(img.shape[1] * scale)), max(cell, round(img.shape[0] * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
        out.append(img)
    return tuple(out)


def make_cell(ci: int, cj: int, seed: int, cell: int = CELL) -> np.ndarray:
    """The mosaic cell at cell-row ``ci``, cell-column ``cj`` (a ``cell`` x ``cell`` crop)."""
    rng = np.random.default_rng([seed, 1, ci, cj])
    pool = photos(cell)
    img = pool[int(rng.integers(len(pool)))]
    y = int(rng.integers(img.shape[0] - cell + 1))
    x = int(rng.integers(img.shape[1] - cell + 1))
    crop = img[y : y + cell, x : x + cell]
    if rng.integers(2):
        crop = crop[::-1]
    if rng.integers(2):
        crop = crop[:, ::-1]
    if rng.integers(2):
        crop = crop.T
    return np.ascontiguousarray(crop)


def make_strip(
    y0: int, height: int, size: int, seed: int, noise: float, cell: int = CELL
) -> np.ndarray:
    """Rows ``[y0, y0 + height)`` of the reference image (``height`` x ``size`` uint8)."""
    strip = np.empty((height, size), np.uint8)
    for ci in range(y0 // cell, (y0 + height - 1) // cell + 1):
        cy0, cy1 = max(y0, ci * cell), min(y0 + height, (ci + 1) * cell)
        for cj in range((size + cell - 1) // cell):
            c = make_cell(ci, cj, seed, cell)
            cx1 = min(size, (cj + 1) * cell)
            strip[cy0 - y0 : cy1 - y0, cj * cell : cx1] = c[
                cy0 - ci * cell : cy1 - ci * cell, : cx1 - cj * cell
            ]
    if noise > 0:
        rng = np.random.default_rng([seed, 2, y0])
        noisy = strip.astype(np.float32)
        noisy += rng.standard_normal(strip.shape, dtype=np.float32) * np.float32(noise)
        np.rint(noisy, out=noisy)
        np.clip(noisy, 0, 255, out=noisy)
        strip = noisy.astype(np.uint8)
    return strip


def strips(size: int, seed: int, noise: float, height: int = TIFF_TILE) -> Iterator[np.ndarray]:
    """The image as consecutive strips of ``height`` rows (the last may be shorter)."""
    for y0 in range(0, size, height):
        yield make_strip(y0, min(height, size - y0), size, seed, noise)


def write_reference(
    out: Path,
    size: int,
    *,
    seed: int = DEFAULT_SEED,
    noise: float = DEFAULT_NOISE,
    npy: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> float:
    """Write the reference TIFF (and optionally ``.npy``); return the compression ratio."""
    if size % TIFF_TILE:
        raise ValueError(f"size must be a multiple of {TIFF_TILE}")
    mm = None
    if npy is not None:
        mm = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=(size, size))

    def tiles() -> Iterator[np.ndarray]:
        for k, strip in enumerate(strips(size, seed, noise)):
            if mm is not None:
                mm[k * TIFF_TILE : (k + 1) * TIFF_TILE] = strip
            for x in range(0, size, TIFF_TILE):
                yield strip[:, x : x + TIFF_TILE]
            if progress is not None and k % 8 == 7:
                progress(f"  {(k + 1) * TIFF_TILE}/{size} rows")

    tmp = out.with_name(out.name + ".partial")
    tifffile.imwrite(
        tmp,
        tiles(),
        shape=(size, size),
        dtype=np.uint8,
        bigtiff=True,
        tile=(TIFF_TILE, TIFF_TILE),
        compression="deflate",
        photometric="minisblack",
        metadata=None,
    )
    os.replace(tmp, out)
    if mm is not None:
        mm.flush()
        del mm
    return size * size / out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output tiled BigTIFF")
    parser.add_argument("--size", type=int, default=16384, help="side in pixels (default 16384)")
    parser.add_argument("--npy", type=Path, default=None, help="also write this .npy copy")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--noise", type=float, default=DEFAULT_NOISE, help="Gaussian noise sigma, grey levels"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    ratio = write_reference(
        args.out,
        args.size,
        seed=args.seed,
        noise=args.noise,
        npy=args.npy,
        progress=lambda s: print(s, file=sys.stderr),
    )
    print(
        f"wrote {args.out} ({args.size}x{args.size} uint8, {args.out.stat().st_size / 1e6:.1f} MB,"
        f" deflate ratio {ratio:.3f}) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
