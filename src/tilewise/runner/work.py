"""What a worker does for one tile: read its window, run the pipeline, write its core.

This module runs inside worker processes. A task carries only specs and
geometry (a few hundred bytes), never pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilewise.errors import PipelineError
from tilewise.geometry import StageMap, Tile
from tilewise.io import SinkSpec, SourceSpec, cached_sink, cached_source
from tilewise.pipeline import Pipeline

__all__ = ["TileJob", "process_tile"]


@dataclass(frozen=True, slots=True)
class TileJob:
    """Everything a worker needs to process any tile of one run."""

    source: SourceSpec
    sink: SinkSpec
    pipeline: Pipeline
    #: Set when ops change the scale: tiles are then followed through every stage.
    stages: StageMap | None = None


def check_result(job: TileJob, result: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``result`` as the output was created (2-D for one band), or a :class:`PipelineError`."""
    expected_bands = job.sink.bands
    bands = 1 if result.ndim == 2 else result.shape[2]
    if result.dtype != np.dtype(job.sink.dtype) or bands != expected_bands:
        raise PipelineError(
            f"the pipeline produced {bands}-band {result.dtype} but the output was created as "
            f"{expected_bands}-band {job.sink.dtype}; a user op must declare its output with "
            "@tilewise.op(dtype=..., bands=...)"
        )
    if result.ndim == 3 and expected_bands == 1:
        result = result[..., 0]
    return result


def compute_tile(job: TileJob, tile: Tile) -> np.ndarray[Any, Any]:
    """Read ``tile.read``, run the pipeline and return the core, checked against the output."""
    image = cached_source(job.source).read(tile.read, tile.plane)
    return check_result(job, job.pipeline.apply_tile(image, tile, job.stages))


def process_tile(job: TileJob, tile: Tile) -> dict[str, Any]:
    """Process one tile end to end; return the sink's receipt and the seconds of each stage.

    The stages are ``read_s`` (read and decode the window), ``ops_s`` (the
    pipeline) and ``write_s`` (encode and write the core).
    """
    start = time.perf_counter()
    image = cached_source(job.source).read(tile.read, tile.plane)
    read = time.perf_counter()
    core = check_result(job, job.pipeline.apply_tile(image, tile, job.stages))
    computed = time.perf_counter()
    receipt = cached_sink(job.sink).write(tile.index, tile.core, core, tile.plane)
    return {
        "receipt": receipt,
        "read_s": round(read - start, 6),
        "ops_s": round(computed - read, 6),
        "write_s": round(time.perf_counter() - computed, 6),
    }


@dataclass(frozen=True, slots=True)
class TileCall:
    """A picklable ``tile -> result`` callable bound to one run's job."""

    job: TileJob

    def __call__(self, tile: Tile) -> dict[str, Any]:
        return process_tile(self.job, tile)
