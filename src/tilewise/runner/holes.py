"""Finishing an output with known holes (``--allow-failed``): failed tiles filled and listed.

By default an output is final only when every tile is done. On request, the
tiles that failed on every attempt are written with a fill value by the main
process, through the same sink the workers write with, so the output can be
finalized; their windows go into the report and into ``NAME.failed.json``
beside the output, and the run still ends with exit 3.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tilewise import io
from tilewise.errors import OutputError, UsageError
from tilewise.geometry import Grid
from tilewise.io.base import Receipt, SinkSpec

__all__ = ["check_fill", "fill_failed", "remove_sidecar", "sidecar_path", "write_sidecar"]


def sidecar_path(output: Path) -> Path:
    """The list of filled windows of ``output``: ``NAME.failed.json`` beside it."""
    return output.with_name(f"{output.name}.failed.json")


def check_fill(value: float, dtype: str) -> None:
    """Refuse a fill value the output's dtype cannot hold exactly.

    Parameters
    ----------
    value : float
        The fill value asked for.
    dtype : str
        The output's sample type.

    >>> check_fill(0, "uint8")
    >>> check_fill(-1, "uint8")
    Traceback (most recent call last):
    ...
    tilewise.errors.UsageError: --fill -1 does not fit the output's uint8 samples; ...
    """
    kind = np.dtype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        try:
            stored = np.array(value).astype(kind)
        except (OverflowError, ValueError):
            stored = None
    fits = stored is not None and (
        stored.item() == value or (kind.kind == "f" and bool(np.isnan(value)))
    )
    if not fits:
        raise UsageError(
            f"--fill {value:g} does not fit the output's {kind.name} samples; "
            f"choose a value {kind.name} holds exactly"
        )


def fill_failed(spec: SinkSpec, grid: Grid, failed: list[int], value: float) -> dict[int, Receipt]:
    """Write each failed tile's core as ``value`` (main process); return their receipts."""
    sink = io.sink_for(spec)(spec)
    receipts: dict[int, Receipt] = {}
    try:
        for index in failed:
            tile = grid.tile(index)
            core = tile.core
            shape = core.shape if spec.bands == 1 else (*core.shape, spec.bands)
            filled = np.full(shape, value, dtype=spec.dtype)
            receipts[index] = sink.write(index, core, filled, tile.plane)
    finally:
        sink.close()
    return receipts


def write_sidecar(output: Path, value: float, windows: list[dict[str, Any]]) -> Path:
    """Write ``NAME.failed.json``: the fill value and the window of every filled tile."""
    path = sidecar_path(output)
    tmp = path.with_name(f".{path.name}.tmp")
    data = {"tilewise_failed_tiles": 1, "output": output.name, "fill": value, "tiles": windows}
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot write the list of filled tiles: {err}") from err
    return path


def remove_sidecar(output: Path) -> None:
    """Remove an earlier run's list of filled tiles: the output it described is replaced."""
    try:
        sidecar_path(output).unlink(missing_ok=True)
    except OSError as err:
        raise OutputError(f"{sidecar_path(output)}: cannot remove the stale list: {err}") from err
