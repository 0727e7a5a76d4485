"""What a worker does for one tile of a measurement: read, run the ops, detect.

This module runs inside worker processes. The detector needs the ops' output on
the tile's read window (its core grown by the detector's halo); the worker
reads that window grown by the pipeline's halo, so the ops' pixels there equal
the whole image's, and hands them to the detector, which returns a small part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tilewise.geometry import Tile
from tilewise.io import SourceSpec, cached_source
from tilewise.measurements import Detector
from tilewise.pipeline import Pipeline

__all__ = ["MeasureCall", "MeasureJob", "measure_tile", "object_count"]


@dataclass(frozen=True, slots=True)
class MeasureJob:
    """Everything a worker needs to measure any tile of one run."""

    source: SourceSpec
    pipeline: Pipeline
    detector: Detector
    image_shape: tuple[int, int]
    #: a second image whose values regions measure instead of the ops' output
    intensity: SourceSpec | None = None


def object_count(part: Any) -> int | None:
    """Objects a tile's part holds (peaks it owns, or local regions); None for stats."""
    count = getattr(part, "count", None)
    if isinstance(count, int):
        return count
    rows = getattr(part, "rows", None)
    return None if rows is None else len(rows)


def measure_tile(job: MeasureJob, tile: Tile) -> dict[str, Any]:
    """Measure one tile; return its part and the seconds of each stage.

    The stages are ``read_s`` (read and decode), ``ops_s`` (the pipeline) and
    ``write_s`` (here: the detector).
    """
    start = time.perf_counter()
    read = tile.read.grow(job.pipeline.halo, bounds=job.image_shape)
    image = cached_source(job.source).read(read)
    extra: dict[str, Any] = {}
    if job.intensity is not None:
        extra["intensity"] = cached_source(job.intensity).read(tile.read)
    loaded = time.perf_counter()
    filtered = job.pipeline.apply_tile(image, Tile(tile.index, tile.read, read))
    computed = time.perf_counter()
    part = job.detector.detect(filtered, tile, job.image_shape, **extra)
    return {
        "receipt": {},
        "part": part,
        "objects": object_count(part),
        "read_s": round(loaded - start, 6),
        "ops_s": round(computed - loaded, 6),
        "write_s": round(time.perf_counter() - computed, 6),
    }


@dataclass(frozen=True, slots=True)
class MeasureCall:
    """A picklable ``tile -> result`` callable bound to one measurement's job."""

    job: MeasureJob

    def __call__(self, tile: Tile) -> dict[str, Any]:
        return measure_tile(self.job, tile)
