"""A COG's first overview level, reduced by the workers from the tiles they hold.

A worker that writes a full-resolution tile of a COG with overviews also reduces it
2 x 2 (:func:`~tilewise.io._overviews.reduce2`, the output's resampling and nodata)
while it is in memory, and writes the result, a quarter of its pixels, raw (C order,
the output's dtype) as ``tile-NNNNNNN.half`` in the partial output, beside the tile's
encoded TIFF tiles. The tile's receipt records it as a *half*: ``[file, size, crc32c,
row, col, height, width]``, its window in overview level 1. The halves take a quarter of
the uncompressed image on disk until the COG is written (the partial output is removed then).

This gives the same pixels as reducing the whole full-resolution image, because
COG tiles are aligned to the TIFF block (a multiple of 16): every tile starts at even
coordinates, so each 2 x 2 block lies in one tile, and only a tile at the image's
bottom or right edge can have an odd side, where :func:`reduce2` applies the same
edge rule as on the whole image. :func:`reducible` checks it for each tile.

Overview level 1 is then encoded, strip by strip in the workers, from the halves
(read raw: the full-resolution tiles are not decoded again); the levels after it are
made from the level before as before. The halves are in the partial output, as the
spooled tiles are, so they serve any executor whose workers write that output (Dask
workers on other hosts share its directory). ``--resume`` checks each half's size and
CRC32C with its tile (a tile whose half is missing or damaged is redone), and an
output some of whose receipts have no half (written by a tilewise that made none) has
its level 1 made from the decoded full-resolution tiles instead.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tilewise.errors import OutputError
from tilewise.geometry import Window
from tilewise.io._checksum import crc32c
from tilewise.io.base import Array, Receipt, SinkSpec

__all__ = [
    "Half",
    "by_block_row",
    "half_intact",
    "half_of",
    "overlapping",
    "read_halves",
    "reducible",
    "write_half",
]

#: ``(file, size, crc32c, row, col, height, width)``: a tile's reduced pixels and their
#: window in overview level 1.
Half = tuple[str, int, int, int, int, int, int]


def reducible(spec: SinkSpec, window: Window) -> bool:
    """Whether every 2 x 2 block of the full-resolution image that ``window`` touches lies
    inside it: it starts at even coordinates, and each side is even or ends at the image's.

    >>> from tilewise.io.base import SinkSpec
    >>> spec = SinkSpec("out.tif", "cog", (101, 100), 1, "uint8", (16, 16))
    >>> reducible(spec, Window(32, 16, 69, 32)), reducible(spec, Window(32, 16, 33, 32))
    (True, False)
    """
    height, width = spec.shape
    return (
        not spec.planes
        and window.row % 2 == 0
        and window.col % 2 == 0
        and (window.height % 2 == 0 or window.stop_row == height)
        and (window.width % 2 == 0 or window.stop_col == width)
    )


def write_half(spec: SinkSpec, tile_index: int, window: Window, reduced: Array) -> list[Any]:
    """Write the reduced pixels of the tile at ``window`` raw; return its receipt entry."""
    path = spec.partial / f"tile-{tile_index:07d}.half"
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")  # two attempts of a tile may overlap
    data = np.ascontiguousarray(reduced).data.cast("B")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {err.strerror or err}") from err
    height, width = reduced.shape[:2]
    return [path.name, len(data), crc32c(data), window.row // 2, window.col // 2, height, width]


def half_intact(spec: SinkSpec, half: Iterable[Any]) -> bool:
    """Whether a half a receipt records is still there, with its size and CRC32C."""
    name, size, crc, *_ = half
    path = spec.partial / str(name)
    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        return crc32c(path.read_bytes()) == crc
    except OSError:
        return False


def half_of(receipt: Receipt) -> Half | None:
    """The half a tile's receipt records, or None (it has none)."""
    half = receipt.get("half")
    if half is None:
        return None
    name, size, crc, row, col, height, width = half
    return str(name), int(size), int(crc), int(row), int(col), int(height), int(width)


def by_block_row(halves: Iterable[Half], block_height: int) -> dict[int, list[Half]]:
    """The halves that reach into each row of TIFF tiles of level 1."""
    rows: dict[int, list[Half]] = defaultdict(list)
    for half in halves:
        row, height = half[3], half[5]
        for block_row in range(row // block_height, (row + height - 1) // block_height + 1):
            rows[block_row].append(half)
    return rows


def overlapping(halves: Iterable[Half], window: Window) -> Iterator[Half]:
    """The halves that overlap ``window`` (of level 1)."""
    for half in halves:
        row, col, height, width = half[3:]
        if (
            row < window.stop_row
            and row + height > window.row
            and col < window.stop_col
            and col + width > window.col
        ):
            yield half


def read_halves(spec: SinkSpec, window: Window, halves: Iterable[Half]) -> Array:
    """The pixels of ``window`` of overview level 1, from the halves that cover it."""
    dtype = np.dtype(spec.dtype)
    bands = () if spec.bands == 1 else (spec.bands,)
    out = np.empty((*window.shape, *bands), dtype)
    pixel = dtype.itemsize * spec.bands
    covered = 0
    for name, _, _, row, col, height, width in halves:
        top, bottom = max(row, window.row), min(row + height, window.stop_row)
        left, right = max(col, window.col), min(col + width, window.stop_col)
        if top >= bottom or left >= right:
            continue
        path = spec.partial / name
        want = (bottom - top) * width * pixel
        try:
            with open(path, "rb") as fh:
                fh.seek((top - row) * width * pixel)
                raw = fh.read(want)
        except OSError as err:
            raise OutputError(f"{path}: cannot read a tile's reduced pixels: {err}") from err
        if len(raw) != want:
            raise OutputError(
                f"{path}: a tile's reduced pixels are cut short ({len(raw)} of {want} bytes "
                "read); run again with --resume to redo its tile"
            )
        piece = np.frombuffer(raw, dtype).reshape(bottom - top, width, *bands)
        out[top - window.row : bottom - window.row, left - window.col : right - window.col] = piece[
            :, left - col : right - col
        ]
        covered += (bottom - top) * (right - left)
    if covered != window.area:
        raise OutputError(
            f"{spec.path}: the tiles' reduced pixels cover {covered} of the {window.area} "
            f"pixels of overview level 1 at {window}; run again with --resume"
        )
    return out
