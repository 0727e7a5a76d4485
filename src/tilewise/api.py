"""The Python face of tilewise runs: run(), plan() and info()."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tilewise import io
from tilewise.defaults import DEFAULT_TILE
from tilewise.executors import Executor, Supervision
from tilewise.executors.forkserver import worker_options
from tilewise.geometry import Layout
from tilewise.pipeline import OpLike, Pipeline, as_pipeline
from tilewise.runner.lifecycle import Lifecycle
from tilewise.runner.lock import holding
from tilewise.runner.plan import make_plan
from tilewise.runner.report import RunReport
from tilewise.runner.run import execute_plan
from tilewise.verify import check_first_tile, has_user_ops

__all__ = ["info", "plan", "run"]

PathLike = str | os.PathLike[str]


def run(
    src: PathLike,
    dst: PathLike,
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    tile: str | int | tuple[int, int] = DEFAULT_TILE,
    layout: str | Layout = Layout.GRID,
    workers: int | None = None,
    executor: str | Executor = "local",
    overwrite: bool = False,
    resume: bool = False,
    retries: int = 2,
    timeout: float | None = None,
    memory_limit: int | None = None,
    max_tasks_per_worker: int | None = None,
    creation_options: dict[str, Any] | None = None,
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    max_whole_pixels: int = io.DEFAULT_MAX_WHOLE_PIXELS,
    progress: bool | None = None,
    report: PathLike | None = None,
    allow_failed: bool = False,
    fill: float = 0,
    drop_georef: bool = False,
    dst_nodata: float | None = None,
    format: str | None = None,
    nodata: float | str = "file",
    axes: str | None = None,
    channel_axis: int | None = None,
    planes: str | tuple[int | None, int | None, int] | None = None,
    page: int | None = None,
    **executor_options: Any,
) -> RunReport:
    """Run a pipeline over an image too big for memory, tile by tile, in parallel.

    The output is bit-identical to running the same ops on the whole image.
    Workers read their own windows from ``src`` and write their own regions of
    ``dst``; the output appears under its final name only once every tile is done.

    Parameters
    ----------
    src
        Input image: TIFF/BigTIFF (tiled or striped), Zarr v3 array, ``.npy``, PNG or JPEG,
        or (with ``tilewise[geo]``) any raster GDAL reads; the content decides the reader.
    dst
        Output path; the format comes from the extension (``.tif``, ``.zarr``, ``.npy``)
        unless ``format`` names it.
    ops
        Ops as strings (``"gaussian:sigma=4"``), functions (decorated with
        :func:`tilewise.op` to declare halo, dtype and bands), any picklable
        callable (``functools.partial(f, size=5)`` is the op ``f:size=5``), or a
        :class:`~tilewise.pipeline.Pipeline`. When some op is not built in, the
        first tile runs alone first: a dtype or band count other than declared
        raises :class:`~tilewise.errors.PipelineError` before the other tiles run.
    tile
        Tile size: ``1024`` or ``"1024x512"`` (rows x cols).
    layout
        ``"grid"``, ``"rows"`` (horizontal strips) or ``"columns"`` (vertical strips).
    workers
        Worker processes (default: one per core).
    executor
        ``"local"`` (supervised processes, default), ``"serial"`` (in this
        process, for debugging), ``"dask"``, or an :class:`Executor` — which
        is left open, so one set of warm workers can serve many calls.
    overwrite, resume
        Replace an existing output; or continue an interrupted run of the same
        output, redoing only tiles not finished.
    retries, timeout, memory_limit, max_tasks_per_worker
        Supervision: attempts after a failure, seconds per tile, bytes per
        worker, and tiles before a worker is replaced.
    creation_options
        Output options, e.g. ``{"COMPRESS": "ZSTD"}``.
    max_pixels, max_whole_pixels
        Refuse inputs whose header declares more pixels (whole-decoded PNG/JPEG
        have the second, smaller budget).
    progress
        Show a progress bar: a widget in Jupyter, a bar on stderr in a terminal
        (``tqdm.auto``). Default: when interactive (a terminal or a Jupyter kernel).
    report
        Write the JSON report to this path.
    allow_failed, fill
        Finalize the output even when some tiles failed on every attempt: their
        windows are filled with ``fill`` (default 0), listed in the report
        (``report.extra["filled"]``) and in ``NAME.failed.json`` beside the output;
        ``report.ok`` stays false. By default an output with failed tiles stays partial.
    drop_georef
        Write the pixels without the input's georeferencing. Without it, a
        georeferenced input goes to a ``.tif`` (GeoTIFF tags) or ``.zarr``
        (attributes) with its CRS, transform, nodata and band metadata, as the
        ops map them, and a ``.npy`` output, which cannot hold them, is refused.
    dst_nodata
        The output's nodata value (default: the input's, as the ops map it).
    format
        The output format, when the extension does not say it: ``"cog"`` writes a
        Cloud Optimized GeoTIFF (``.tif``): tiled, with overviews built after the
        tiles, in parallel, resampled as ``creation_options["OVERVIEW_RESAMPLING"]``
        says (``"nearest"``, ``"average"`` or ``"mode"``; default nearest for integer
        pixels, average for floats). ``"tiff"``, ``"zarr"`` and ``"npy"`` are the
        extensions' formats.
        Nodata pixels of the input are written with it.
    nodata
        ``"file"`` (default): the input's nodata value (GeoTIFF/GDAL, Zarr
        attributes) is missing data, which the ops leave out (docs/nodata.md);
        a number (or NaN): this value instead; ``"none"``: every pixel is data.
        An op that cannot leave nodata out raises
        :class:`~tilewise.errors.PipelineError` before any tile runs.
    axes, channel_axis, planes, page
        How to read a stack (a multi-page TIFF, ImageJ hyperstack, OME-TIFF, N-D
        ``.npy`` or Zarr array; see the README's "Stacks"): ``axes`` names an array's
        axes (``"TZCYX"``; TIFFs name their own), ``channel_axis`` makes that axis of an
        array its bands (as scikit-image's ``channel_axis``), ``planes`` (``"0:10"``)
        reads that range of the first leading axis, ``page`` one plane (numbered in C
        order over the leading axes) as a 2-D image. Every plane is tiled and processed
        as a 2-D image; the output keeps the leading axes and their names.

    Returns
    -------
    RunReport
        ``report.ok`` is true when every tile is done; failures are in ``report.failures``.
        A tile that finds object storage unavailable (after its requests' retries) or
        the output's disk full, over quota or over the file-size limit stops the run
        there, without retries: ``report.stopped_by`` names that tile and the cause, the
        tiles not run are ``report.not_run``; ``resume=True`` continues once it is fixed.
    """
    pipeline = as_pipeline(ops)
    supervision = Supervision(retries, timeout, memory_limit, max_tasks_per_worker)
    startup = worker_options(
        executor, "run", (op.definition.locator for op in pipeline), paths=(src, dst)
    )
    executor_options = {**startup, **executor_options}
    with Lifecycle(
        executor, workers=workers, supervision=supervision, report=report, **executor_options
    ) as lifecycle:
        the_plan = make_plan(
            src,
            dst,
            pipeline,
            tile=tile,
            layout=layout,
            creation_options=creation_options,
            max_pixels=max_pixels,
            max_whole_pixels=max_whole_pixels,
            drop_georef=drop_georef,
            dst_nodata=dst_nodata,
            format=format,
            nodata=nodata,  # type: ignore[arg-type]
            axes=axes,
            channel_axis=channel_axis,
            planes=planes,
            page=page,
        )
        with holding(io.local_state(dst)):  # one run per output at a time
            if has_user_ops(pipeline):  # their declarations are checked on the first tile
                check_first_tile(the_plan, lifecycle.executor)
            result = execute_plan(
                the_plan,
                lifecycle.executor,
                overwrite=overwrite,
                resume=resume,
                progress=progress,
                allow_failed=allow_failed,
                fill=fill,
            )
        lifecycle.write(result)
    return result


def plan(
    src: PathLike,
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    dst: PathLike | None = None,
    tile: str | int | tuple[int, int] = DEFAULT_TILE,
    layout: str | Layout = Layout.GRID,
    workers: int | None = None,
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    **stack: Any,
) -> dict[str, Any]:
    """Describe a run without doing it: tiles, halo, read overhead, memory estimate.

    ``stack`` takes :func:`run`'s ``axes``, ``channel_axis``, ``planes`` and ``page``.
    """
    the_plan = make_plan(
        src, dst, as_pipeline(ops), tile=tile, layout=layout, max_pixels=max_pixels, **stack
    )
    return the_plan.summary(workers or os.cpu_count() or 1)


def info(
    src: PathLike, *, max_pixels: int = io.DEFAULT_MAX_PIXELS, axes: str | None = None
) -> dict[str, Any]:
    """Shape, dtype, bands, blocks, compression and reader of an image, from its header.

    For a georeferenced image also its CRS, transform, resolution, bounds,
    nodata, band descriptions and overviews; for a stack its axes and planes
    (``stack``; ``axes`` names an array's axes as :func:`run` does; see :meth:`Source.info`).
    """
    source = io.open_source(io.SourceSpec(str(src), max_pixels=max_pixels, axes=axes))
    try:
        return source.info()
    finally:
        source.close()
