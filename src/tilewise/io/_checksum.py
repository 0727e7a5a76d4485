"""Checksums that prove the bytes a worker wrote: CRC32C of each encoded chunk or segment.

A sink's receipt (journaled by the main process once a tile is written) carries the
CRC32C of every encoded Zarr chunk or TIFF segment, computed by the worker from the
very bytes it hands to the file system — not by reading them back. ``--resume``
recomputes them from the files, so a chunk that kept its size but not its bytes (a
torn write, a disk fault, an edit) is redone instead of surfacing later as a chunk
that fails to decode, or decodes to wrong pixels.

CRC32C (the Castagnoli polynomial, as Zarr's own ``crc32c`` codec and iSCSI use) runs
in hardware on x86-64 and ARMv8 through ``google-crc32c``, a dependency of Zarr. The
Zarr side is :class:`tilewise.io._zarr_store.ChecksumStore` (apart, so TIFF work never
imports Zarr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np

__all__ = ["crc32c", "file_crc32c"]

_BLOCK = 1 << 22


def crc32c(data: Any) -> int:
    """CRC32C of a bytes-like object.

    >>> crc32c(b"123456789")
    3808858755
    """
    return int(google_crc32c.value(np.frombuffer(data, dtype=np.uint8)))


def file_crc32c(path: Path, offset: int = 0, length: int | None = None) -> int | None:
    """CRC32C of ``length`` bytes of ``path`` from ``offset`` (to its end when None).

    None when the file is missing or shorter than asked.
    """
    checksum = google_crc32c.Checksum()
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            left = length
            while left is None or left > 0:
                block = fh.read(_BLOCK if left is None else min(_BLOCK, left))
                if not block:
                    break
                checksum.update(block)
                if left is not None:
                    left -= len(block)
    except OSError:
        return None
    if left:
        return None
    return int.from_bytes(checksum.digest(), "big")
