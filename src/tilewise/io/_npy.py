"""NumPy ``.npy`` files: memory-mapped windowed reads and concurrent region writes."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from tilewise.errors import CorruptInputError, ImageTooLargeError, OutputError, UsageError
from tilewise.geometry import Window
from tilewise.io._stacks import check_array_layout
from tilewise.io.base import Array, Receipt, Sink, SinkSpec, Source, SourceSpec

__all__ = ["NpySink", "NpySource"]


class NpySource(Source):
    """A 2-D or 3-D ``.npy`` array, memory-mapped: a window read touches only its pages."""

    format_name = "npy"
    reader = "numpy (memory map)"

    def __init__(self, spec: SourceSpec) -> None:
        self.path = Path(spec.path)
        try:
            self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise CorruptInputError(f"{self.path}: not a readable .npy file ({err})") from err
        shape = self._array.shape
        if len(shape) not in (2, 3):
            raise UsageError(f"{self.path}: array has shape {shape}; tilewise reads 2-D or 3-D")
        check_array_layout(self.path, shape)
        self.shape = (int(shape[0]), int(shape[1]))
        self.bands = 1 if len(shape) == 2 else int(shape[2])
        self.dtype = np.dtype(self._array.dtype)
        if self.shape[0] * self.shape[1] > spec.max_pixels:
            raise ImageTooLargeError(
                f"{self.path}: array declares {shape}, over the limit of {spec.max_pixels:,} "
                "pixels; raise it with --max-pixels"
            )

    def read(self, window: Window) -> Array:
        return np.array(self._array[window.slices])


class NpySink(Sink):
    """A ``.npy`` file created at full size; workers write their regions through a memory map."""

    concurrent_writes = True

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        self._array = np.load(spec.partial, mmap_mode="r+")

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        try:
            spec.partial.parent.mkdir(parents=True, exist_ok=True)
            array = np.lib.format.open_memmap(
                spec.partial, mode="w+", dtype=np.dtype(spec.dtype), shape=spec.array_shape
            )
            del array
            # Reserve the blocks now: a memory-mapped write to a sparse file on a full disk
            # would kill the worker with SIGBUS instead of raising ENOSPC.
            with open(spec.partial, "r+b") as fh:
                os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as err:
            spec.partial.unlink(missing_ok=True)
            raise OutputError(
                f"{spec.partial}: cannot create the .npy output: {err.strerror or err}"
            ) from err

    def write(self, tile_index: int, window: Window, array: Array) -> Receipt:
        # No msync: the mapping is shared, so the pages belong to the kernel's page cache
        # the moment they are written and survive this process dying.
        self._array[window.slices] = array
        return {"crc32": zlib.crc32(np.ascontiguousarray(array).data)}

    def verify(self, window: Window, receipt: Receipt) -> bool:
        region = np.ascontiguousarray(self._array[window.slices])
        return zlib.crc32(region.data) == receipt["crc32"]

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: dict[int, Receipt]) -> None:
        final = Path(spec.path)
        try:
            os.replace(spec.partial, final)
        except OSError as err:
            raise OutputError(
                f"{final}: cannot move the finished output into place: {err}"
            ) from err
