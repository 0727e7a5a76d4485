"""What a worker does for a group of files: read each whole, run the pipeline, write it.

This module runs inside worker processes. A task is a list of
``(index, source path, output name)`` — paths only, never pixels — and the
answer is one small :class:`FileResult` per file. A file that fails is
reported with its cause and the next one goes on; only a crash of the
worker process loses the group (the main process then retries its files one
per task, so the crash is pinned on a single file).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy.typing as npt

from tilewise.collection.collect import output_format
from tilewise.collection.stack import mismatch
from tilewise.collection.write import write_output
from tilewise.errors import InputError, TilewiseError
from tilewise.geometry import Window
from tilewise.io import SourceSpec, StackSpec, cached_sink, open_source
from tilewise.io.georef import Georef
from tilewise.pipeline import Pipeline
from tilewise.runner.georef import GEOREF_FORMATS, input_nodata

__all__ = ["PLANES", "BatchCall", "BatchJob", "FileResult", "FileTask", "process_file"]

Array = npt.NDArray[Any]
#: ``(index, source, output name)``; in a stack the index is the row and the name is unused.
FileTask = tuple[int, str, str]

DONE, FAILED, LARGE, MISMATCH, PROBED = "done", "failed", "large", "mismatch", "probed"
#: The ``kind`` of a ``large`` result that is a stack of planes (its ``cause`` names its axes).
PLANES = "planes"


class FileResult(NamedTuple):
    """One file's outcome, small enough to send back by the thousand."""

    file: int
    status: str
    receipt: dict[str, Any] | None = None
    pixels: int = 0
    kind: str = ""
    cause: str = ""
    detail: str = ""
    shape: tuple[int, ...] = ()
    dtype: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchJob:
    """Everything a worker needs for any file of one batch."""

    pipeline: Pipeline
    root: str | None
    #: Creation options by output format (:func:`tilewise.io.parse_options_for_formats`).
    options: dict[str, dict[str, Any]]
    stack: StackSpec | None
    max_pixels: int
    max_whole_pixels: int
    tile_above: int
    probe: bool = False
    #: The nodata each file's ops leave out: ``"file"`` (its own), ``"none"`` or a value.
    nodata: float | str = "file"
    #: How to read stacks (``axes``, ``channel_axis``, ``planes``, ``page``), as for a run.
    read: dict[str, Any] = field(default_factory=dict)


def _cause(err: BaseException, source: str) -> tuple[str, str, str]:
    """(kind, cause, detail) of an exception, without repeating the file's path."""
    kind = (
        "memory"
        if isinstance(err, MemoryError)
        else "input"
        if isinstance(err, InputError)
        else "exception"
    )
    if isinstance(err, TilewiseError | OSError) and str(err):
        cause = str(err)
        detail = ""
    else:
        cause = f"{type(err).__name__}: {err}"
        detail = traceback.format_exc(limit=-4)
    for prefix in (f"{source}: ", f"{source} "):
        if cause.startswith(prefix):
            cause = cause[len(prefix) :]
    return kind, cause, detail


class _Tiled(NamedTuple):
    """A file for the tiled runner: over the threshold, or a stack of planes (``stack``
    describes it then)."""

    shape: tuple[int, ...]
    stack: str = ""


def _read(job: BatchJob, source: str, name: str) -> tuple[Array | _Tiled, Georef | None, Pipeline]:
    """The whole image, or a :class:`_Tiled` when it goes through the tiled runner (over the
    tiling threshold, or a stack); its georeferencing as the pipeline maps it, for an
    output that holds it (TIFF, Zarr); and the pipeline leaving out the file's nodata
    (:meth:`Pipeline.with_nodata`)."""
    src = open_source(SourceSpec(source, job.max_pixels, job.max_whole_pixels, **job.read))
    try:
        rows, cols = src.shape
        job.pipeline.out_bands(src.bands)  # a band count the ops refuse fails here, undecoded
        if src.planes is not None and src.planes.shape:
            planes = src.planes
            stack = f"{planes.shape} axes {planes.axes}"
            return _Tiled((*planes.shape, rows, cols), stack), None, job.pipeline
        if rows * cols > job.tile_above:
            return _Tiled((rows, cols)), None, job.pipeline
        missing = input_nodata(src, job.nodata)  # type: ignore[arg-type]
        pipeline = job.pipeline.with_nodata(missing, src.dtype, source=source)
        keeps = job.stack is None and not job.probe and output_format(name, None) in GEOREF_FORMATS
        georef = src.georef if keeps else None
        if keeps and georef is None and missing is not None:
            georef = Georef(band_count=src.bands)  # --nodata on a plain image
        if georef is not None:
            georef = pipeline.out_georef(replace(georef, nodata=missing), src.dtype, (rows, cols))
        return src.read(Window(0, 0, rows, cols)), georef, pipeline
    finally:
        src.close()


def process_file(job: BatchJob, index: int, source: str, name: str) -> FileResult:
    """Process one file end to end; never raises (a failure is a ``failed`` result)."""
    start = time.perf_counter()
    try:
        image, georef, pipeline = _read(job, source, name)
        if isinstance(image, _Tiled):
            return FileResult(
                index,
                LARGE,
                kind=PLANES if image.stack else "",
                cause=image.stack,
                shape=image.shape,
                seconds=time.perf_counter() - start,
            )
        pixels = int(image.shape[0] * image.shape[1])
        bands = 1 if image.ndim == 2 else image.shape[2]
        pipeline.check_input(image.dtype, bands, source=source)
        result = pipeline(image)
        del image
        shape = tuple(int(s) for s in result.shape)
        if job.probe:
            return FileResult(index, PROBED, shape=shape, dtype=result.dtype.name)
        if job.stack is not None:
            wrong = mismatch(job.stack, result)
            if wrong is not None:
                return FileResult(
                    index, MISMATCH, cause=wrong, shape=shape, dtype=result.dtype.name
                )
            receipt = cached_sink(job.stack).write(index, job.stack.row_window(index), result)
        else:
            assert job.root is not None
            fmt = output_format(name, None)
            receipt = write_output(job.root, name, fmt, result, job.options[fmt], georef)
    except Exception as err:  # every failure is reported; the next file goes on
        kind, cause, detail = _cause(err, source)
        return FileResult(
            index,
            FAILED,
            kind=kind,
            cause=cause,
            detail=detail,
            seconds=time.perf_counter() - start,
        )
    return FileResult(
        index, DONE, receipt, pixels, shape=shape, seconds=time.perf_counter() - start
    )


@dataclass(frozen=True, slots=True)
class BatchCall:
    """A picklable ``files -> results`` callable bound to one batch's job."""

    job: BatchJob

    def __call__(self, files: Sequence[FileTask]) -> list[FileResult]:
        return [process_file(self.job, *task) for task in files]
