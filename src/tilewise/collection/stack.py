"""One ``(N, H, W[, C])`` array for a whole collection: created once, filled row by row.

The main process creates the stack (it never writes pixels); each worker
writes its own rows:

* ``.npy``: the main process writes the header and sizes the file (sparse);
  workers ``pwrite`` each row at its offset — rows are disjoint byte ranges,
  so concurrent writes are safe and nothing is memory-mapped.
* ``.zarr``: one chunk per image, so every row is its own chunk file.

Beside the stack, ``NAME.index.csv`` maps each row to its source file and status.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OutputError, UsageError

__all__ = [
    "StackSpec",
    "create_stack",
    "finalize_stack",
    "index_path",
    "mismatch",
    "open_existing",
    "row_intact",
    "stack_format",
    "write_index",
    "write_row",
]

Array = npt.NDArray[Any]


def stack_format(path: str | os.PathLike[str]) -> str:
    """``npy`` or ``zarr``, from the stack's extension."""
    suffix = Path(path).suffix.lower()
    if suffix in (".npy", ".zarr"):
        return suffix[1:]
    raise UsageError(
        f"{path}: a stack is written as .npy or .zarr, not {suffix or 'no extension'!r}"
    )


def index_path(path: str | os.PathLike[str]) -> Path:
    """The index CSV of a stack: ``NAME.index.csv`` beside ``NAME.npy``/``NAME.zarr``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.index.csv")


@dataclass(frozen=True, slots=True)
class StackSpec:
    """A stack as workers see it: where to write rows, and what each row must look like."""

    path: str
    write_path: str
    format: str
    count: int
    row_shape: tuple[int, ...]
    dtype: str
    offset: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    #: New for every run, so a worker never reuses a handle to an older file of that name.
    token: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        """The whole array's shape ``(N, H, W[, C])``."""
        return (self.count, *self.row_shape)

    def describe(self) -> str:
        """A row's shape and dtype, e.g. ``256x256 uint8`` or ``64x64x3 float32``."""
        return f"{'x'.join(map(str, self.row_shape))} {self.dtype}"


def create_stack(spec: StackSpec) -> StackSpec:
    """Create the empty stack at ``spec.write_path`` (main process); return it with its offset."""
    target = Path(spec.write_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec.format == "npy":
            array = np.lib.format.open_memmap(
                target, mode="w+", dtype=np.dtype(spec.dtype), shape=spec.shape
            )
            offset = int(array.offset)
            del array
            return replace(spec, offset=offset)
        import zarr

        from tilewise.io._zarr import compressor

        codec = compressor(spec.options)
        zarr.create_array(
            target,
            shape=spec.shape,
            dtype=spec.dtype,
            chunks=(1, *spec.row_shape),
            compressors=None if codec is None else [codec],
            fill_value=0,
            overwrite=True,
        )
    except OSError as err:
        raise OutputError(f"{spec.path}: cannot create the stack: {err}") from err
    return spec


def open_existing(spec: StackSpec) -> StackSpec:
    """Read row shape, dtype and offset of a stack made by an earlier run (for --resume)."""
    target = spec.write_path
    try:
        if spec.format == "npy":
            array = np.load(target, mmap_mode="r", allow_pickle=False)
            shape, dtype, offset = array.shape, array.dtype, int(array.offset)
            del array
        else:
            import zarr

            zarr_array = zarr.open_array(target, mode="r")
            shape, dtype, offset = zarr_array.shape, zarr_array.dtype, 0
    except Exception as err:
        raise OutputError(
            f"{target}: cannot reopen the stack to resume ({err}); start again with --overwrite"
        ) from err
    if shape[0] != spec.count:
        raise OutputError(
            f"{target}: the stack has {shape[0]} rows but there are {spec.count} inputs; "
            "start again with --overwrite"
        )
    return replace(
        spec, row_shape=tuple(int(s) for s in shape[1:]), dtype=np.dtype(dtype).name, offset=offset
    )


_handles: dict[tuple[str, str], Any] = {}


def _handle(spec: StackSpec) -> Any:
    key = (spec.write_path, spec.token)
    handle = _handles.get(key)
    if handle is None:
        for old in _handles.values():
            if isinstance(old, int):
                os.close(old)
        _handles.clear()
        if spec.format == "npy":
            handle = os.open(spec.write_path, os.O_WRONLY)
        else:
            import zarr

            handle = zarr.open_array(spec.write_path, mode="r+")
        _handles[key] = handle
    return handle


def mismatch(spec: StackSpec, array: Array) -> str | None:
    """Why ``array`` cannot be a row of the stack, or None if it can."""
    if tuple(array.shape) == spec.row_shape and array.dtype == np.dtype(spec.dtype):
        return None
    got = f"{'x'.join(map(str, array.shape))} {array.dtype.name}"
    return f"the pipeline gives {got}, but the stack's rows are {spec.describe()}"


def _chunk_file(spec: StackSpec, row: int) -> Path:
    from tilewise.io._zarr import chunk_file

    return chunk_file(spec.write_path, (row, *[0] * len(spec.row_shape)))


def write_row(spec: StackSpec, row: int, array: Array) -> dict[str, Any]:
    """Write ``array`` as row ``row`` (worker process); return a receipt for the journal."""
    handle = _handle(spec)
    if spec.format == "npy":
        data = np.ascontiguousarray(array, dtype=np.dtype(spec.dtype))
        nbytes = data.nbytes
        written = os.pwrite(handle, data.data.cast("B"), spec.offset + row * nbytes)
        if written != nbytes:
            raise OutputError(
                f"{spec.path}: short write of row {row} ({written} of {nbytes} bytes)"
            )
        return {}
    handle[row] = array
    try:
        return {"size": os.path.getsize(_chunk_file(spec, row))}
    except FileNotFoundError:  # an all-zero row is not stored (it reads back as the fill value)
        return {"size": 0}


def row_intact(spec: StackSpec, row: int, receipt: Mapping[str, Any]) -> bool:
    """Whether a row the journal lists as written is still there (Zarr: its chunk file)."""
    if spec.format == "npy" or not receipt.get("size"):
        return True
    try:
        return os.path.getsize(_chunk_file(spec, row)) == receipt["size"]
    except OSError:
        return False


def finalize_stack(spec: StackSpec) -> None:
    """Move the stack from its temporary name into place (main process)."""
    if spec.write_path == spec.path:
        return
    final = Path(spec.path)
    try:
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(spec.write_path, final)
    except OSError as err:
        raise OutputError(f"{final}: cannot move the finished stack into place: {err}") from err


def write_index(path: Path, rows: Iterable[tuple[int, str, str, str]]) -> None:
    """Write the index CSV (``row,source,status,cause``) atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "source", "status", "cause"])
            writer.writerows(rows)
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot write the stack index: {err}") from err
