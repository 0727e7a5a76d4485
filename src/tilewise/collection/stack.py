"""What a batch adds to a stack: the rule every row must keep, and the index beside it.

The stack itself — ``(N, H, W[, C])``, created once, filled row by row by the
workers, moved into place at the end — is an :mod:`tilewise.io` sink
(:class:`tilewise.io.StackSpec`, :func:`tilewise.io.stack_sink_class`).
Beside it, ``NAME.index.csv`` maps each row to its source file and status.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy.typing as npt

from tilewise.errors import OutputError
from tilewise.io import StackSpec

__all__ = ["index_path", "mismatch", "write_index"]

Array = npt.NDArray[Any]


def index_path(path: str | os.PathLike[str]) -> Path:
    """The index CSV of a stack: ``NAME.index.csv`` beside ``NAME.npy``/``NAME.zarr``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.index.csv")


def mismatch(spec: StackSpec, array: Array) -> str | None:
    """Why ``array`` cannot be a row of the stack, or None if it can."""
    if tuple(array.shape) == spec.row_shape and array.dtype == spec.dtype:
        return None
    got = f"{'x'.join(map(str, array.shape))} {array.dtype.name}"
    return f"the pipeline gives {got}, but the stack's rows are {spec.describe()}"


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
