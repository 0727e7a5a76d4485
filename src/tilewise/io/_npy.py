"""NumPy ``.npy`` files: memory-mapped windowed reads, concurrent region writes, and stacks."""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tilewise.errors import CorruptInputError, ImageTooLargeError, OutputError
from tilewise.geometry import Window
from tilewise.io._stack import StackSink, StackSpec
from tilewise.io.base import Array, Receipt, Sink, SinkSpec, Source, SourceSpec

__all__ = ["NpySink", "NpySource", "NpyStackSink"]


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
        from tilewise.io._stacks import array_layout  # reading only: a stack's writers skip it

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
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        final = Path(spec.path)
        try:
            os.replace(spec.partial, final)
        except OSError as err:
            raise OutputError(
                f"{final}: cannot move the finished output into place: {err}"
            ) from err


def _header(fh: BinaryIO) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Shape, dtype and data offset of the ``.npy`` file open as ``fh`` (read from its header)."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy format version {version[0]}.{version[1]}, not 1.0 or 2.0")
    if fortran:
        raise ValueError("the array is in Fortran order")
    return tuple(int(s) for s in shape), np.dtype(dtype), fh.tell()


class NpyStackSink(StackSink):
    """A stack as one ``.npy`` file: created sized (sparse), each row ``pwrite`` at its offset.

    Rows are disjoint byte ranges, so workers write concurrently; nothing is
    memory-mapped. The receipt is empty: :meth:`verify` can only check that the
    file still holds the row's bytes (a truncated stack), not what they are.
    """

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        stack = self.spec
        try:
            self._file = open(stack.partial, "r+b", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise OutputError(
                f"{stack.path}: cannot open the stack to write its rows: {err.strerror or err}"
            ) from err
        try:
            shape, dtype, self._offset = _header(self._file)
        except (OSError, ValueError) as err:
            self._file.close()
            raise OutputError(
                f"{stack.path}: the stack's .npy header is unreadable ({err})"
            ) from err
        if shape != stack.stack_shape or dtype != self._dtype:
            self._file.close()
            raise OutputError(
                f"{stack.path}: the stack on disk is {shape} {dtype.name}, not the "
                f"{stack.stack_shape} {stack.dtype} this batch made; start again with --overwrite"
            )
        self._fd = self._file.fileno()
        self._row_bytes = math.prod(stack.row_shape) * dtype.itemsize

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        stack = StackSpec.require(spec)
        target = stack.partial
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            array = np.lib.format.open_memmap(
                target, mode="w+", dtype=np.dtype(stack.dtype), shape=stack.stack_shape
            )
            del array
        except OSError as err:
            raise OutputError(f"{stack.path}: cannot create the stack: {err}") from err

    @classmethod
    def layout(cls, path: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
        with open(path, "rb") as fh:
            shape, dtype, _ = _header(fh)
        return shape, dtype

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        row = self._row(window, array)
        data = np.ascontiguousarray(array)
        written = os.pwrite(self._fd, data.data.cast("B"), self._offset + row * self._row_bytes)
        if written != self._row_bytes:
            raise OutputError(
                f"{self.spec.path}: short write of row {row} ({written} of {self._row_bytes} bytes)"
            )
        return {}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        end = self._offset + (self._row(window) + 1) * self._row_bytes
        return os.fstat(self._fd).st_size >= end

    def close(self) -> None:
        self._file.close()
