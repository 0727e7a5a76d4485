"""Whole Zarr v3 chunks encoded and written by the worker itself, without Zarr's write path.

A tile of a Zarr output covers whole chunks (tiles are planned chunk-aligned), so
the worker can encode each chunk and put its file in place directly. Zarr's own
write path does the same work through its asyncio loop and codec thread pool;
on the reference pipeline that costs each worker ~10 ms a 2048² chunk and ~40 MiB
of extra memory (thread arenas, buffer copies) over encoding here, in the calling
thread, with the very codec Zarr uses (:class:`numcodecs.zstd.Zstd`, which
:class:`zarr.codecs.ZstdCodec` wraps).

The bytes are those Zarr writes for an array created by
:meth:`tilewise.io._zarr.ZarrSink.create`: the ``bytes`` codec (little-endian, C
order) then ``zstd`` (or nothing), edge chunks padded with the fill value to the
full chunk shape, and a chunk whose bytes are all zero (the fill value) left out, as
Zarr's default ``write_empty_chunks=False`` does (Zarr compares values, so it also
leaves out a chunk of ``-0.0``, which then reads back as ``+0.0``; comparing bytes
keeps it). Anything else (Blosc, a window that covers part of a
chunk) goes through Zarr.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs.zstd import Zstd

from tilewise.geometry import Window
from tilewise.io._checksum import crc32c

__all__ = ["ChunkWriter"]

Array = np.ndarray[Any, Any]
ChunkPath = Callable[[tuple[int, ...]], Path]


class ChunkWriter:
    """Encode and write the whole chunks a window covers.

    Parameters
    ----------
    shape, chunks : tuple of int
        The array's image shape ``(H, W)`` and chunk shape ``(ch, cw)``.
    bands : int
        Bands (a trailing axis of one chunk when above 1).
    dtype : str
        The array's data type.
    compress : str
        ``"ZSTD"`` or ``"NONE"``.
    level : int
        The Zstd level.
    root : Path
        The array's folder.
    chunk_path : callable
        The file of a chunk key (:func:`tilewise.io._zarr.chunk_file` bound to ``root``):
        the key layout is known only there.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        chunks: tuple[int, int],
        bands: int,
        dtype: str,
        compress: str,
        level: int,
        root: Path,
        chunk_path: ChunkPath,
    ) -> None:
        self._root = root
        self._shape = shape
        self._chunks = chunks
        self._bands = bands
        self._dtype = np.dtype(dtype).newbyteorder("<")
        self._codec = Zstd(level=level) if compress == "ZSTD" else None
        self._chunk_path = chunk_path
        self._made_dirs: set[Path] = set()

    @staticmethod
    def supports(compress: str) -> bool:
        """Whether chunks compressed with ``compress`` are written here."""
        return compress in ("ZSTD", "NONE")

    def _keys(self, window: Window) -> list[tuple[int, int]] | None:
        """The chunks ``window`` covers, or None when it covers part of one."""
        (ch, cw), (height, width) = self._chunks, self._shape
        rows = range(window.row // ch, (window.stop_row - 1) // ch + 1)
        cols = range(window.col // cw, (window.stop_col - 1) // cw + 1)
        if (
            window.row != rows[0] * ch
            or window.col != cols[0] * cw
            or window.stop_row != min((rows[-1] + 1) * ch, height)
            or window.stop_col != min((cols[-1] + 1) * cw, width)
        ):
            return None
        return [(r, c) for r in rows for c in cols]

    def write(self, window: Window, array: Array) -> dict[str, tuple[int, int]] | None:
        """Write the chunks ``window`` covers from ``array``; None if it covers part of one.

        Returns each chunk file's name (relative to the root, ``c/r/c[/0]``) with its
        size and CRC32C; ``(0, 0)`` for a chunk equal to the fill value, whose file is
        removed rather than written.
        """
        keys = self._keys(window)
        if keys is None:
            return None
        (ch, cw), band = self._chunks, ((0,) if self._bands > 1 else ())
        written: dict[str, tuple[int, int]] = {}
        for r, c in keys:
            top, left = r * ch - window.row, c * cw - window.col
            part = array[top : top + ch, left : left + cw]
            path = self._chunk_path((r, c, *band))
            name = path.relative_to(self._root).as_posix()
            raw = self._full_chunk(part)
            if not raw.view(np.uint8).any():  # every byte zero: the fill value
                path.unlink(missing_ok=True)
                written[name] = (0, 0)
                continue
            data = bytes(raw.data) if self._codec is None else bytes(self._codec.encode(raw))
            self._put(path, data)
            written[name] = (len(data), crc32c(data))
        return written

    def _full_chunk(self, part: Array) -> Array:
        """``part`` as the C-ordered little-endian chunk, padded to the chunk shape."""
        (ch, cw), shape = self._chunks, part.shape
        if shape[:2] == (ch, cw):
            return np.ascontiguousarray(part, dtype=self._dtype)
        full = np.zeros((ch, cw, *shape[2:]), dtype=self._dtype)
        full[: shape[0], : shape[1]] = part
        return full

    def _put(self, path: Path, data: bytes) -> None:
        parent = path.parent
        if parent not in self._made_dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(parent)
        temporary = parent / f".{path.name}.{os.getpid()}.tmp"
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
