"""Stacks: one ``(N, H, W[, C])`` array for a whole collection, a Sink whose tiles are its rows.

``tilewise batch --stack`` writes each file's result as one row of one array
(``.npy`` or ``.zarr``). To the :class:`~tilewise.io.base.Sink` contract a
stack is the image of its rows stacked downwards, ``(N·H) x W`` in tiles of
``H x W``: tile ``r`` is row ``r`` and its window is ``Window(r·H, 0, H, W)``
(:meth:`StackSpec.row_window`); a write to any other window is refused.

The main process creates the stack once the first readable file has given the
rows' shape and dtype (it never writes pixels); each worker writes its own rows:

* ``.npy`` (:class:`tilewise.io._npy.NpyStackSink`): created with its header
  and sized (sparse); workers ``pwrite`` each row at its offset — rows are
  disjoint byte ranges, so concurrent writes are safe and nothing is memory-mapped.
* ``.zarr`` (:class:`tilewise.io._zarr.ZarrStackSink`): one chunk per row, so
  every row is its own chunk file.

A stack is built under ``.NAME.partial`` and moved into place by
:meth:`StackSink.finalize`. A finished stack whose failed rows a resumed batch
redoes is written where it is (:attr:`StackSpec.write_path`).
"""

from __future__ import annotations

import abc
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilewise.errors import OutputError, UsageError
from tilewise.geometry import Window
from tilewise.io._reading import DECODE_ERRORS
from tilewise.io.base import Receipt, Sink, SinkSpec, partial_path

__all__ = ["StackSink", "StackSpec", "reopen_stack", "stack_format", "stack_sink_class"]

STACK_FORMATS = ("npy", "zarr")
#: What reading an earlier stack's layout raises when the stack is missing or damaged.
_REOPEN_ERRORS: tuple[type[Exception], ...] = (OSError, *DECODE_ERRORS)


def stack_format(path: str | os.PathLike[str]) -> str:
    """``npy`` or ``zarr``, from the stack's extension."""
    suffix = Path(path).suffix.lower()
    if suffix[1:] in STACK_FORMATS:
        return suffix[1:]
    raise UsageError(
        f"{path}: a stack is written as .npy or .zarr, not {suffix or 'no extension'!r}"
    )


@dataclass(frozen=True, slots=True)
class StackSpec(SinkSpec):
    """A stack as sinks see it: ``shape``/``chunks`` are its rows stacked downwards.

    Make one with :meth:`of`. ``row_shape`` is a row's own shape, ``(H, W)`` or
    ``(H, W, C)`` — kept as the pipeline gave it, so ``(H, W, 1)`` stays 3-D.
    """

    row_shape: tuple[int, ...] = ()
    #: Where rows are written: empty for the partial output, else the path given.
    write_path: str = ""

    @classmethod
    def of(
        cls,
        path: str,
        fmt: str,
        count: int,
        row_shape: tuple[int, ...],
        dtype: str,
        options: Mapping[str, Any],
        *,
        token: str,
        write_path: str = "",
    ) -> StackSpec:
        """The spec of ``count`` rows of ``row_shape`` and ``dtype`` at ``path``."""
        if len(row_shape) not in (2, 3) or not all(row_shape):
            shape = "x".join(map(str, row_shape)) or "0-d"
            raise OutputError(
                f"{path}: the pipeline gives {shape} images; a stack's rows are 2-D or 3-D "
                "images of at least one pixel"
            )
        height, width = row_shape[:2]
        return cls(
            path,
            fmt,
            (count * height, width),
            row_shape[2] if len(row_shape) == 3 else 1,
            dtype,
            (height, width),
            dict(options),
            token=token,
            row_shape=tuple(row_shape),
            write_path=write_path,
        )

    @staticmethod
    def require(spec: SinkSpec) -> StackSpec:
        """``spec`` itself, checked to be a StackSpec (a stack sink cannot write anything else)."""
        if not isinstance(spec, StackSpec):
            raise TypeError(f"a stack sink needs a StackSpec, got {type(spec).__name__}")
        return spec

    @property
    def partial(self) -> Path:
        """Where the rows are written: ``.NAME.partial``, or :attr:`write_path` when given."""
        return Path(self.write_path) if self.write_path else partial_path(Path(self.path))

    @property
    def count(self) -> int:
        """Number of rows ``N``."""
        return self.shape[0] // self.chunks[0]

    @property
    def stack_shape(self) -> tuple[int, ...]:
        """The whole array's shape ``(N, H, W[, C])``."""
        return (self.count, *self.row_shape)

    def row_window(self, row: int) -> Window:
        """The window of row ``row`` in the rows stacked downwards."""
        height, width = self.chunks
        return Window(row * height, 0, height, width)

    def describe(self) -> str:
        """A row's shape and dtype, e.g. ``256x256 uint8`` or ``64x64x3 float32``."""
        return f"{'x'.join(map(str, self.row_shape))} {self.dtype}"


class StackSink(Sink):
    """A stack written a row at a time, each row by the worker that computed it.

    Receipts are per format; :meth:`finalize` needs none of them (every row was
    written in place) and moves the stack to its final name.
    """

    concurrent_writes = True
    spec: StackSpec

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(StackSpec.require(spec))
        self._dtype = np.dtype(self.spec.dtype)

    @classmethod
    @abc.abstractmethod
    def layout(cls, path: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """Shape ``(N, H, W[, C])`` and dtype of the stack at ``path`` (raises if unreadable)."""

    def _row(self, window: Window, array: Any = None) -> int:
        """The row ``window`` covers whole; refuses any other window, or a wrong-shaped array."""
        spec = self.spec
        height, width = spec.chunks
        row, below = divmod(window.row, height)
        if below or window.col or (window.height, window.width) != spec.chunks:
            raise OutputError(
                f"{spec.path}: a stack is written a whole {height} x {width} row at a time, "
                f"not {window}"
            )
        if row >= spec.count:
            raise OutputError(f"{spec.path}: the stack has {spec.count} rows, not row {row}")
        if array is not None and (array.shape != spec.row_shape or array.dtype != self._dtype):
            raise OutputError(
                f"{spec.path}: row {row} is {'x'.join(map(str, array.shape))} "
                f"{array.dtype.name}, but the stack's rows are {spec.describe()}"
            )
        return row

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        stack = StackSpec.require(spec)
        final = Path(stack.path)
        if stack.partial == final:
            return
        try:
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(stack.partial, final)
        except OSError as err:
            raise OutputError(f"{final}: cannot move the finished stack into place: {err}") from err


def stack_sink_class(fmt: str) -> type[StackSink]:
    """The StackSink implementation for a stack format (``npy`` or ``zarr``)."""
    if fmt == "npy":
        from tilewise.io._npy import NpyStackSink

        return NpyStackSink
    if fmt == "zarr":
        from tilewise.io._zarr import ZarrStackSink

        return ZarrStackSink
    raise UsageError(f"no stack writer for format {fmt!r}; a stack is .npy or .zarr")


def reopen_stack(
    path: str, write_path: str, count: int, options: Mapping[str, Any], *, token: str
) -> StackSpec:
    """The spec of the stack an earlier run created at ``write_path`` (for ``--resume``).

    Its rows' shape and dtype are read from the file; a stack that cannot be
    read, or has another number of rows than ``count``, is an :class:`OutputError`.
    """
    fmt = stack_format(path)
    try:
        shape, dtype = stack_sink_class(fmt).layout(write_path)
    except _REOPEN_ERRORS as err:
        raise OutputError(
            f"{write_path}: cannot reopen the stack to resume ({err}); start again with --overwrite"
        ) from err
    if shape[0] != count:
        raise OutputError(
            f"{write_path}: the stack has {shape[0]} rows but there are {count} inputs; "
            "start again with --overwrite"
        )
    write = "" if Path(write_path) == partial_path(Path(path)) else write_path
    return StackSpec.of(
        path, fmt, count, shape[1:], dtype.name, options, token=token, write_path=write
    )
