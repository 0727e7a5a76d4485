"""The label image of a regions measurement: a second pass of tiles after the merge.

Once every tile's part is merged, the final label of each tile's local
components is known (:meth:`~tilewise.measurements.RegionsMerge.lookup`). Each
tile of the second pass carries that small lookup; its worker runs the ops
again, labels its core as the first pass did, maps the labels and writes them
through the output's Sink — so memory stays flat whatever the image's size.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilewise import io
from tilewise.errors import TileError, UsageError
from tilewise.executors.base import Done, Executor, Supervision, Task
from tilewise.geometry import Grid, Tile
from tilewise.io import SinkSpec, cached_sink, cached_source
from tilewise.measurements import Regions, RegionsMerge, relabel
from tilewise.runner.journal import clear_for_new_output
from tilewise.runner.measure_work import MeasureJob

__all__ = ["LabelCall", "check_labels_path", "labels_tile", "write_labels"]


def check_labels_path(path: str | os.PathLike[str], detector: Any, *, overwrite: bool) -> str:
    """The label image's format, or a :class:`UsageError` before any work."""
    if not isinstance(detector, Regions):
        raise UsageError(f"--labels writes the label image of regions, not of {detector!r}")
    if io.is_url(os.fspath(path)):
        raise UsageError(
            f"{os.fspath(path)}: the label image is written to a local file, not to object "
            "storage; give a local .zarr or .tif path"
        )
    fmt = io.output_format(path)
    if fmt not in ("zarr", "tiff"):
        raise UsageError(f"{path}: the label image is written as .zarr or .tif, not {fmt}")
    if Path(path).exists() and not overwrite:
        raise UsageError(f"{path}: already exists; use --overwrite to replace it")
    return fmt


def labels_tile(job: MeasureJob, sink: SinkSpec, tile: Tile, lookup: np.ndarray) -> dict[str, Any]:
    """Label ``tile``'s core as the first pass did, map it to the final labels, write it."""
    assert isinstance(job.detector, Regions)
    read = tile.read.grow(job.pipeline.halo, bounds=job.image_shape)
    image = cached_source(job.source).read(read)
    filtered = job.pipeline.apply_tile(image, Tile(tile.index, tile.read, read))
    local = job.detector.label_tile(filtered, tile, job.image_shape)
    labels = relabel(local, lookup).astype(np.dtype(sink.dtype), copy=False)
    return {"receipt": cached_sink(sink).write(tile.index, tile.core, labels)}


@dataclass(frozen=True, slots=True)
class LabelCall:
    """A picklable ``(tile, lookup) -> receipt`` callable for the second pass."""

    job: MeasureJob
    sink: SinkSpec

    def __call__(self, item: tuple[Tile, np.ndarray]) -> dict[str, Any]:
        tile, lookup = item
        return labels_tile(self.job, self.sink, tile, lookup)


def write_labels(
    path: str | os.PathLike[str],
    job: MeasureJob,
    grid: Grid,
    merger: RegionsMerge,
    executor: Executor,
    *,
    supervision: Supervision | None = None,
) -> None:
    """Write the label image of a finished merge to ``path``, tile by tile."""
    fmt = io.output_format(path)
    shape = grid.image_shape
    spec = SinkSpec(
        path=str(Path(path)),
        format=fmt,
        shape=shape,
        bands=1,
        dtype=merger.label_dtype.name,
        chunks=io.sink_chunks(fmt, grid.effective_tile_shape, shape),
        options=io.parse_creation_options(fmt, {}),
        token=uuid.uuid4().hex,
    )
    clear_for_new_output(
        Path(path), spec.partial, overwrite=True, no_folder="label image folder does not exist"
    )
    io.sink_class(fmt).create(spec)
    tasks = (Task(t.index, (t, merger.lookup(t.index))) for t in grid)
    receipts: dict[int, dict[str, object]] = {}
    failed: list[str] = []
    for outcome in executor.map_tasks(LabelCall(job, spec), tasks, supervision=supervision):
        if isinstance(outcome, Done):
            receipts[outcome.key] = outcome.value["receipt"]
        else:
            failed.append(f"tile {outcome.key}: {outcome.cause}")
    if failed:
        raise TileError(
            f"{path}: {len(failed)} tile(s) of the label image failed ({'; '.join(failed[:3])}); "
            "the table is not written either: run the same command with --resume"
        )
    io.sink_class(fmt).finalize(spec, receipts)
