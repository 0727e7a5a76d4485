"""Deterministic, photo-like sample images, generated tile by tile (no downloads).

The images are mosaics of real photographs bundled with scikit-image (camera,
astronaut, coffee, chelsea, ...), flipped and shifted at random, plus mild
Gaussian noise — close to real scenes in how they compress and filter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["photo_block", "photo_mosaic", "write_sample_tiff"]

Array = npt.NDArray[Any]


@cache
def _photos() -> tuple[Array, ...]:
    from skimage import color, data

    grays = [data.camera(), data.moon(), data.page(), data.coins(), data.text(), data.brick()]
    for rgb in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
        grays.append((color.rgb2gray(rgb) * 255).astype(np.uint8))
    return tuple(np.ascontiguousarray(g) for g in grays)


def photo_block(shape: tuple[int, int], index: int, *, seed: int = 0, noise: float = 4.0) -> Array:
    """One ``shape`` block of the mosaic: a random photo crop, flipped, with noise.

    The same ``(index, seed)`` always gives the same pixels.
    """
    rng = np.random.default_rng((seed, index))
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    if rng.random() < 0.5:
        photo = photo[::-1]
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    reps = (-(-shape[0] // photo.shape[0]) + 1, -(-shape[1] // photo.shape[1]) + 1)
    canvas = np.tile(photo, reps)
    r0 = int(rng.integers(photo.shape[0]))
    c0 = int(rng.integers(photo.shape[1]))
    block = canvas[r0 : r0 + shape[0], c0 : c0 + shape[1]].astype(np.float32)
    if noise:
        block += rng.normal(0.0, noise, size=shape).astype(np.float32)
    return np.clip(block + 0.5, 0, 255).astype(np.uint8)


def photo_mosaic(
    shape: tuple[int, int], *, block: int = 512, seed: int = 0, noise: float = 4.0
) -> Array:
    """A whole photo-like uint8 image of ``shape`` (in memory: for small images and tests)."""
    out = np.empty(shape, dtype=np.uint8)
    for index, (r, c) in enumerate(_block_origins(shape, block)):
        h, w = min(block, shape[0] - r), min(block, shape[1] - c)
        out[r : r + h, c : c + w] = photo_block((h, w), index, seed=seed, noise=noise)
    return out


def _block_origins(shape: tuple[int, int], block: int) -> Iterator[tuple[int, int]]:
    for r in range(0, shape[0], block):
        for c in range(0, shape[1], block):
            yield r, c


def write_sample_tiff(
    path: str | os.PathLike[str],
    shape: tuple[int, int] | int = 8192,
    *,
    tile: int = 512,
    compression: str = "deflate",
    seed: int = 0,
    noise: float = 4.0,
) -> None:
    """Write a photo-like tiled BigTIFF of ``shape``, one TIFF tile at a time (flat memory)."""
    import tifffile

    if isinstance(shape, int):
        shape = (shape, shape)

    def tiles() -> Iterator[Array]:
        for index, (r, c) in enumerate(_block_origins(shape, tile)):
            h, w = min(tile, shape[0] - r), min(tile, shape[1] - c)
            yield photo_block((h, w), index, seed=seed, noise=noise)

    tmp = f"{os.fspath(path)}.tmp"
    tifffile.imwrite(
        tmp,
        tiles(),
        shape=shape,
        dtype=np.uint8,
        tile=(tile, tile),
        compression=compression,
        bigtiff=True,
        photometric="minisblack",
        maxworkers=os.cpu_count(),
    )
    os.replace(tmp, path)
