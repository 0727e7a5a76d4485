"""A Zarr local store that checksums what it writes: the Zarr half of the sinks' receipts.

See :mod:`tilewise.io._checksum` for why receipts carry CRC32C.
"""

from __future__ import annotations

from pathlib import Path

import google_crc32c
import numpy as np
from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

__all__ = ["ChecksumStore"]


class ChecksumStore(LocalStore):
    """A Zarr local store that remembers the size and CRC32C of every value it writes.

    ``written[key]`` is ``(size, crc32c)`` for a value set through this store, or None
    for a key deleted (Zarr deletes a chunk equal to the fill value instead of
    writing it).
    """

    def __init__(self, root: Path | str, *, read_only: bool = False) -> None:
        super().__init__(root, read_only=read_only)
        self.written: dict[str, tuple[int, int] | None] = {}

    async def set(self, key: str, value: Buffer) -> None:
        await super().set(key, value)
        data = value.as_numpy_array().view(np.uint8).reshape(-1)
        self.written[key] = (int(data.size), int(google_crc32c.value(data)))

    async def delete(self, key: str) -> None:
        await super().delete(key)
        self.written[key] = None
