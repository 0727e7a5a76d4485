"""NumPy ``.npy`` files: memory-mapped windowed reads and concurrent region writes."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from tilewise.errors import CorruptInputError, ImageTooLargeError, OutputError
from tilewise.geometry import Window
from tilewise.io._stacks import array_layout
from tilewise.io.base import Array, Receipt, Sink, SinkSpec, Source, SourceSpec

__all__ = ["NpySink", "NpySource"]


class NpySource(Source):
    """A ``.npy`` array, memory-mapped: a window read touches only its pages.

    ``(H, W)``, ``(H, W, bands)``, or a stack of such planes with leading axes
    (see :mod:`tilewise.io._stacks`).
    """

    format_name = "npy"
    reader = "numpy (memory map)"

    def __init__(self, spec: SourceSpec) -> None:
        self.path = Path(spec.path)
        try:
            self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise CorruptInputError(f"{self.path}: not a readable .npy file ({err})") from err
        shape = tuple(int(n) for n in self._array.shape)
        self._layout = array_layout(spec, shape)
        if self._layout.planes is not None:
            self.planes, self.stack_kind = self._layout.planes, "array"
        self.shape = (shape[self._layout.rows], shape[self._layout.cols])
        self.bands = 1 if self._layout.band is None else shape[self._layout.band]
        self.dtype = np.dtype(self._array.dtype)
        if self.shape[0] * self.shape[1] > spec.max_pixels:
            raise ImageTooLargeError(
                f"{self.path}: array declares {shape}, over the limit of {spec.max_pixels:,} "
                "pixels; raise it with --max-pixels"
            )

    def read(self, window: Window, plane: int | None = None) -> Array:
        layout = self._layout
        if layout.simple:
            return np.array(self._array[window.slices])
        pixels = self._array[layout.index(window, plane)]
        if layout.band_at is not None:
            pixels = np.moveaxis(pixels, layout.band_at, -1)
        return np.ascontiguousarray(pixels)


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

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        # No msync: the mapping is shared, so the pages belong to the kernel's page cache
        # the moment they are written and survive this process dying.
        self._array[(*self.spec.plane_index(plane), *window.slices)] = array
        return {"crc32": zlib.crc32(np.ascontiguousarray(array).data)}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        region = np.ascontiguousarray(self._array[(*self.spec.plane_index(plane), *window.slices)])
        return zlib.crc32(region.data) == receipt["crc32"]

    @classmethod
    def finalize(cls, spec: SinkSpec, receipts: dict[int, Receipt]) -> None:
        final = Path(spec.path)
        try:
            os.replace(spec.partial, final)
        except OSError as err:
            raise OutputError(
                f"{final}: cannot move the finished output into place: {err}"
            ) from err
