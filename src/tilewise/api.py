"""The Python face of tilewise runs: run(), plan() and info()."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tilewise import io
from tilewise.defaults import WORKER_MODULES
from tilewise.executors import Executor, Supervision, make_executor
from tilewise.geometry import Layout
from tilewise.pipeline import OpLike, Pipeline, as_pipeline
from tilewise.runner import DEFAULT_TILE, RunReport, execute, make_plan
from tilewise.runner.lock import holding

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
    progress: bool = False,
    report: PathLike | None = None,
    **executor_options: Any,
) -> RunReport:
    """Run a pipeline over an image too big for memory, tile by tile, in parallel.

    The output is bit-identical to running the same ops on the whole image.
    Workers read their own windows from ``src`` and write their own regions of
    ``dst``; the output appears under its final name only once every tile is done.

    Parameters
    ----------
    src
        Input image: TIFF/BigTIFF (tiled or striped), Zarr v3 array, ``.npy``, PNG or JPEG.
    dst
        Output path; the format comes from the extension (``.tif``, ``.zarr``, ``.npy``).
    ops
        Ops as strings (``"gaussian:sigma=4"``), functions decorated with
        :func:`tilewise.op`, or a :class:`~tilewise.pipeline.Pipeline`.
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
        Show a progress bar on stderr.
    report
        Write the JSON report to this path.

    Returns
    -------
    RunReport
        ``report.ok`` is true when every tile is done; failures are in ``report.failures``.
    """
    pipeline = as_pipeline(ops)
    supervision = Supervision(retries, timeout, memory_limit, max_tasks_per_worker)
    executor_options = {**local_defaults(executor, pipeline, "run"), **executor_options}
    runner = make_executor(executor, workers=workers, supervision=supervision, **executor_options)
    try:
        runner.start()  # workers start up while the input's header is read
        the_plan = make_plan(
            src,
            dst,
            pipeline,
            tile=tile,
            layout=layout,
            creation_options=creation_options,
            max_pixels=max_pixels,
            max_whole_pixels=max_whole_pixels,
        )
        with holding(dst):  # one run per output at a time
            result = execute(
                the_plan, runner, overwrite=overwrite, resume=resume, progress=progress
            )
    except BaseException as err:
        partial = getattr(err, "report", None)
        if report is not None and isinstance(partial, RunReport):
            partial.write(report)
        raise
    finally:
        if runner is not executor:  # made here; an Executor given by the caller stays open
            runner.close()
    if report is not None:
        result.write(report)
    return result


def local_defaults(executor: str | Executor, pipeline: Pipeline, work: str) -> dict[str, Any]:
    """The local executor's start method and fork-server preload for ``work`` (``run``/``batch``).

    Empty for any other executor; options the caller gives take precedence.
    """
    if not (isinstance(executor, str) and executor == "local"):
        return {}
    return {"start_method": start_method(pipeline), "preload": WORKER_MODULES[work]}


def start_method(pipeline: Pipeline) -> str:
    """``fork`` when an op lives in ``__main__`` (a script or notebook), else ``forkserver``.

    Worker processes are otherwise never forked from this process: a fork while
    another thread (a progress bar's, the caller's, a native library's) holds a
    lock can deadlock the child, seen here as a rare hang of a batch.
    """
    main_ops = [op for op in pipeline if op.definition.locator.startswith("__main__.")]
    return "fork" if main_ops else "forkserver"


def plan(
    src: PathLike,
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    dst: PathLike | None = None,
    tile: str | int | tuple[int, int] = DEFAULT_TILE,
    layout: str | Layout = Layout.GRID,
    workers: int | None = None,
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """Describe a run without doing it: tiles, halo, read overhead, memory estimate."""
    the_plan = make_plan(
        src, dst, as_pipeline(ops), tile=tile, layout=layout, max_pixels=max_pixels
    )
    return the_plan.summary(workers or os.cpu_count() or 1)


def info(src: PathLike, *, max_pixels: int = io.DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Shape, dtype, bands, blocks and compression of an image, from its header."""
    source = io.open_source(io.SourceSpec(str(src), max_pixels=max_pixels))
    try:
        return source.info()
    finally:
        source.close()
