"""The Python face of measurements on files: measure() and stats()."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tilewise import io
from tilewise.collection.collect import Item
from tilewise.collection.overlap import check_apart
from tilewise.collection.report import BatchReport
from tilewise.defaults import DEFAULT_TILE
from tilewise.errors import Phase, TileError, UsageError
from tilewise.executors import Executor, Supervision
from tilewise.executors.forkserver import worker_options
from tilewise.geometry import Layout
from tilewise.measurements import GEO_SUFFIXES, Detector, Stats, check_table_path, to_frame
from tilewise.pipeline import OpLike, Pipeline
from tilewise.runner.lifecycle import Lifecycle
from tilewise.runner.lock import holding
from tilewise.runner.measure_run import execute_measure, measure_pipeline, measure_plan
from tilewise.runner.plan import make_plan
from tilewise.runner.report import RunReport

__all__ = ["measure", "measure_run", "stats"]

PathLike = str | os.PathLike[str]


def measure_run(
    src: PathLike,
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    detect: Detector | str,
    output: PathLike | None = None,
    intensity: PathLike | None = None,
    labels: PathLike | None = None,
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
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    max_whole_pixels: int = io.DEFAULT_MAX_WHOLE_PIXELS,
    progress: bool = False,
    report: PathLike | None = None,
    **executor_options: Any,
) -> tuple[RunReport, Any]:
    """Run ``ops`` then ``detect`` over ``src`` tile by tile; return (report, result).

    The parameters are those of :func:`measure`; the result is the merged table
    (a dict of NumPy columns) or, for :class:`~tilewise.measurements.Stats`, a
    list of :class:`~tilewise.measurements.BandStats` — None unless ``report.ok``.
    """
    detector: Detector
    if isinstance(detect, str):
        from tilewise.measurements import parse_detector

        detector = parse_detector(detect)
    else:
        detector = detect
    pipeline = measure_pipeline(src, ops, max_pixels, max_whole_pixels)
    if intensity is not None:
        from tilewise.measurements import Regions

        if not isinstance(detector, Regions):
            raise UsageError(f"only regions measure a second intensity image, not {detector!r}")
    suffix = None if output is None else check_table_path(output)
    supervision = Supervision(retries, timeout, memory_limit, max_tasks_per_worker)
    work = "stats" if isinstance(detector, Stats) else "measure"  # stats import no SciPy
    startup = worker_options(executor, work, (op.definition.locator for op in pipeline))
    executor_options = {**startup, **executor_options}
    with (
        Lifecycle(
            executor, workers=workers, supervision=supervision, report=report, **executor_options
        ) as lifecycle,
        contextlib.ExitStack() as held,
    ):
        plan = make_plan(
            src,
            None,
            pipeline,
            tile=tile,
            layout=layout,
            max_pixels=max_pixels,
            max_whole_pixels=max_whole_pixels,
        )
        labels_format = None
        if labels is not None:
            from tilewise.runner.measure_labels import check_labels_path

            labels_format = check_labels_path(labels, detector, overwrite=overwrite)
            _check_labels_apart(labels, src, intensity)
        plan = measure_plan(plan, detector, labels_format)
        second = None
        if intensity is not None:
            second = io.SourceSpec(
                str(intensity), max_pixels=max_pixels, max_whole_pixels=max_whole_pixels
            )
            _check_intensity(second, plan.grid.image_shape)
        if suffix in GEO_SUFFIXES:
            _check_georeferenced(plan.source, suffix)
        if output is not None:
            held.enter_context(holding(output))  # one measurement per table at a time
        if labels is not None:
            held.enter_context(holding(labels))  # and per label image, as a run's output
        result = execute_measure(
            plan,
            detector,
            lifecycle.executor,
            output,
            intensity=second,
            labels=labels,
            overwrite=overwrite,
            resume=resume,
            progress=progress,
        )
        lifecycle.write(result[0])
    return result


def _check_labels_apart(labels: PathLike, src: PathLike, intensity: PathLike | None) -> None:
    """Refuse a label image that is, or would hold, the input or the intensity image."""
    inputs = [os.fspath(p) for p in (src, intensity) if p is not None]
    items = [Item(os.path.abspath(p), os.path.basename(p)) for p in inputs]
    check_apart(inputs, items, Path(os.path.abspath(labels)), folder=False, kind="label image")


def _check_georeferenced(spec: io.SourceSpec, suffix: str) -> None:
    source = io.open_source(spec)
    try:
        georef = source.georef
    finally:
        source.close()
    if georef is None or georef.transform is None:
        raise UsageError(
            f"{spec.path}: is not georeferenced (no transform), so its objects have no map "
            f"coordinates for {suffix} points: write the table as .csv or .parquet"
        )


def _check_intensity(spec: io.SourceSpec, shape: tuple[int, int]) -> None:
    source = io.open_source(spec)
    try:
        if source.shape != shape:
            raise UsageError(
                f"{spec.path}: the intensity image is {source.shape[0]}x{source.shape[1]}, "
                f"the measured image {shape[0]}x{shape[1]}; they must match"
            )
        if source.bands != 1:
            raise UsageError(f"{spec.path}: the intensity image has {source.bands} bands, not 1")
    finally:
        source.close()


def measure(
    src: PathLike | Sequence[PathLike],
    ops: Pipeline | Sequence[OpLike] | OpLike = (),
    *,
    detect: Detector | str,
    output: PathLike | None = None,
    frame: bool | None = None,
    **options: Any,
) -> Any:
    """Detect objects in an image too big for memory, equal to detecting them in the whole image.

    The ops run first, exactly as in :func:`tilewise.run`; then the detector
    runs per tile in the workers, and this process merges the tiles' parts
    (see ``docs/measure.md``).

    Parameters
    ----------
    src
        Input image, as for :func:`tilewise.run`; or a collection — several
        paths, a folder, a glob pattern or ``"@LIST"``, as :func:`tilewise.batch`
        takes them — measured file by file into one table with a ``file``
        column first (see :func:`tilewise.collection.measure_files`, which also
        returns the report and the rows of the files that finished when some failed).
    ops
        Ops to run before the detector (none by default).
    detect
        ``"peaks:min_distance=D,threshold=T[,exclude_border=B]"``,
        ``"regions:threshold=T[,min_area=A,connectivity=1|2]"``, or a detector
        value (:class:`~tilewise.measurements.Peaks`,
        :class:`~tilewise.measurements.Regions`).
    output
        Also write the table here (``.csv``, ``.parquet`` with pyarrow, or
        ``.geojson`` / ``.gpkg`` points for a georeferenced input, GeoPackage
        with geopandas); the measurement is then resumable (``resume=True``)
        like a run. A georeferenced input's tables carry ``x`` and ``y`` in its CRS.
    frame
        Return a pandas DataFrame (default: when pandas is installed) or a
        plain dict of NumPy columns.
    **options
        ``intensity`` (a second image regions measure), ``labels`` (regions:
        also write the label image, ``.zarr`` or ``.tif``, uint32 or uint64,
        numbered as ``docs/measure.md`` says) — both for one image only — and
        the options of :func:`tilewise.run`: ``tile``, ``layout``, ``workers``,
        ``executor``, ``overwrite``, ``resume``, supervision, input limits,
        ``progress``, ``report``.

    Returns
    -------
    DataFrame or dict of ndarray
        One row per object.

    Raises
    ------
    TilewiseError
        When a tile (or, for a collection, a file) failed — the message names
        it — or the input is refused.
    """
    from tilewise.collection.measure import is_collection, measure_files

    table: Any
    if is_collection(src):
        for name in ("intensity", "labels"):
            if options.get(name) is not None:
                raise UsageError(f"{name} is for one image, not a collection of files")
        files, table = measure_files(src, ops, detect=detect, output=output, **options)
        _raise_unless_files_ok(files)
    else:
        assert isinstance(src, str | os.PathLike)
        report, table = measure_run(src, ops, detect=detect, output=output, **options)
        _raise_unless_ok(report)
    if frame is None:
        try:
            import pandas  # noqa: F401
        except ImportError:
            frame = False
        else:
            frame = True
    return to_frame(table) if frame else table


def stats(
    src: PathLike,
    ops: Pipeline | Sequence[OpLike] | OpLike = (),
    *,
    bins: int = 256,
    range: tuple[float, float] | None = None,
    nodata: float | None = None,
    **options: Any,
) -> list[Any]:
    """Per-band statistics of an image too big for memory, streamed tile by tile.

    Equal to NumPy on the whole image after ``ops`` (see ``docs/measure.md``
    for the float percentile method). ``options`` are those of :func:`measure`.

    Returns
    -------
    list of BandStats
        One per band: count, nodata count, min, max, mean, std, percentiles, histogram.
    """
    detector = Stats(nodata=nodata, bins=bins, range=range)
    report, result = measure_run(src, ops, detect=detector, **options)
    _raise_unless_ok(report)
    return list(result)


def _raise_unless_files_ok(report: BatchReport) -> None:
    if not report.ok:
        failures = "; ".join(f"{f.source}: {f.cause}" for f in report.failures[:5])
        err = TileError(
            f"{report.failed} of {report.total} file(s) failed ({failures}); with an output, "
            "the table holds the others: rerun with resume=True to measure only those"
        )
        err.phase = Phase.DURING_WORK
        raise err


def _raise_unless_ok(report: RunReport) -> None:
    if not report.ok:
        failures = "; ".join(f"tile {f.tile}: {f.cause}" for f in report.failures[:5])
        err = TileError(
            f"{report.failed} of {report.total} tile(s) failed ({failures}); nothing was "
            "merged: rerun with resume=True and an output to redo only those tiles"
        )
        err.phase = Phase.DURING_WORK
        raise err
