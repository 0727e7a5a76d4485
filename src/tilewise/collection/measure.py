"""Measuring a collection of files into one table, with a ``file`` column.

Each file is measured exactly as ``tilewise measure`` measures one file — the
same plan, tiles, ops, detector and merge (:func:`execute_measure`) — one file
after the other on one executor, the tiles of each file in parallel. Its rows
get the file's name (its path below the folder, glob root or ``@LIST`` folder
given, as ``batch`` names its outputs) in a ``file`` column, first, and the
files' rows follow each other in input order. A file that cannot be read, is
refused, or whose tiles fail is reported by name with its cause, and the rest
completes.

With a table path the work is resumable. ``.TABLE.parts/`` beside the table
holds each finished file's rows (``N.rows``, N its place in the input order)
and, for a file under way or failed, its own tile parts and journal; the
journal ``.TABLE.journal`` lists the finished files. The table is written once
every file is done or failed; when some failed, the folder and journal stay so
that ``--resume`` measures only those (a failed file's finished tiles are not
redone) and writes the table again. A finished object in storage whose identity (size,
ETag, last-modified) changed since is measured again.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilewise import io
from tilewise.collection import collect as collect_mod
from tilewise.collection.collect import Item
from tilewise.collection.overlap import check_apart
from tilewise.collection.report import BatchReport, FileRecord
from tilewise.defaults import DEFAULT_TILE
from tilewise.errors import InputError, ResumeError, UsageError
from tilewise.executors import Executor, Supervision
from tilewise.executors.forkserver import worker_options
from tilewise.geometry import Layout
from tilewise.measurements import (
    GEO_SUFFIXES,
    Detector,
    Stats,
    Table,
    check_table_path,
    parse_detector,
    write_table,
)
from tilewise.pipeline import OpLike, Pipeline, as_pipeline
from tilewise.runner.journal import Journal
from tilewise.runner.lifecycle import Lifecycle, working
from tilewise.runner.lock import holding
from tilewise.runner.measure_run import (
    Unrecorded,
    execute_measure,
    load_part,
    measure_pipeline,
    measure_plan,
    prepare_spool,
    save_part,
    spool_path,
)
from tilewise.runner.plan import make_plan
from tilewise.runner.progress import Progress

__all__ = ["file_table", "is_collection", "measure_files"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Errors that belong to one file (it is reported and the others go on); any other
#: error — the table's folder, a full disk, a signal — stops the whole measurement.
_FILE_ERRORS = (InputError, UsageError)


def is_collection(inputs: PathLike | Sequence[PathLike]) -> bool:
    """Whether ``inputs`` name a collection (several arguments, a folder, a glob, ``@LIST``).

    One file, or one Zarr array (a folder), is a single image; so is one object in storage
    (a URL of an object or of a Zarr array's prefix).
    """
    if not isinstance(inputs, str | os.PathLike):
        return len(inputs) != 1 or is_collection(inputs[0])
    path = os.fspath(inputs)
    if io.is_url(path):
        from tilewise.collection.remote import is_url_collection

        return is_url_collection(path)
    if path.startswith("@"):
        return True
    if os.path.isdir(path):
        return not collect_mod.is_zarr(path)
    return not os.path.exists(path) and glob.has_magic(path)


def _names(items: Sequence[Item]) -> list[Item]:
    """``items`` without repeats of one file; two files of one name are refused."""
    seen: dict[str, Item] = {}
    out = []
    for item in items:
        other = seen.get(item.name)
        if other is not None:
            if other.source == item.source:
                log.warning("%s is listed more than once; measuring it once", item.source)
                continue
            raise UsageError(
                f"{other.source} and {item.source} would both be named {item.name} in the "
                "table's file column; pass their common parent folder instead"
            )
        seen[item.name] = item
        out.append(item)
    return out


def file_table(tables: Sequence[tuple[str, Table]]) -> Table:
    """The rows of every ``(name, table)`` one after another, with a ``file`` column first.

    Files whose tables lack the map columns ``x``, ``y`` (an input that is not
    georeferenced, among others that are) get NaN there.

    >>> t = file_table([("a.tif", {"row": np.array([3])}), ("b.tif", {"row": np.array([1, 2])})])
    >>> t["file"].tolist(), t["row"].tolist()
    (['a.tif', 'b.tif', 'b.tif'], [3, 1, 2])
    """
    columns: list[str] = []
    for _, table in tables:
        columns += [name for name in table if name not in columns]
    out: dict[str, list[np.ndarray[Any, Any]]] = {"file": []}
    for name in columns:
        out[name] = []
    for file, table in tables:
        rows = len(next(iter(table.values()), ()))
        out["file"].append(np.full(rows, file, dtype=object))
        for name in columns:
            if name in table:
                out[name].append(np.asarray(table[name]))
            elif name in ("x", "y"):
                out[name].append(np.full(rows, np.nan))
            else:
                raise UsageError(f"{file}: its table has no column {name!r}; the others do")
    return {name: np.concatenate(parts) for name, parts in out.items() if parts}


def measure_files(
    inputs: PathLike | Sequence[PathLike],
    ops: Pipeline | Sequence[OpLike] | OpLike = (),
    *,
    detect: Detector | str,
    output: PathLike | None = None,
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
) -> tuple[BatchReport, Table | None]:
    """Measure every file of a collection into one table; return (report, table).

    Parameters
    ----------
    inputs
        Files, folders, glob patterns or ``"@LIST"`` files, as :func:`tilewise.batch`
        takes them.
    ops, detect, tile, layout, workers, executor, retries, timeout, memory_limit,
    max_tasks_per_worker, max_pixels, max_whole_pixels, progress, report
        As for :func:`tilewise.measure`; ``progress`` counts files.
    output
        Also write the table here (``.csv``, ``.parquet``, ``.geojson``, ``.gpkg``);
        the measurement is then resumable (``resume=True``).
    overwrite, resume
        Replace the table, or continue a measurement that stopped or had failed files.

    Returns
    -------
    (BatchReport, dict of ndarray or None)
        The report counts files (``failures`` names each failed one with its
        cause); the table holds the rows of every finished file, ``None`` when
        none finished.
    """
    detector = parse_detector(detect) if isinstance(detect, str) else detect
    if isinstance(detector, Stats):
        raise UsageError("stats measures one image at a time, not a collection")
    pipeline = None  # without ops, each file as it is: every band of its own
    if isinstance(ops, Pipeline | str) or callable(ops) or list(ops):
        pipeline = as_pipeline(ops)
        pipeline.check_portable()
        if pipeline.rescales:
            raise UsageError(
                "measure: ops that change the scale are not supported before a detector; "
                "run them with 'tilewise batch' first and measure their outputs"
            )
    suffix = None if output is None else check_table_path(output)
    target = None if output is None else Path(os.path.abspath(os.fspath(output)))
    arguments = [os.fspath(inputs)] if isinstance(inputs, str | os.PathLike) else list(inputs)
    arguments = [os.fspath(a) for a in arguments]
    items = _names(collect_mod.collect(arguments, exclude=[] if target is None else [str(target)]))
    if target is not None:
        check_apart(arguments, items, target, folder=False, kind="table")
    supervision = Supervision(retries, timeout, memory_limit, max_tasks_per_worker)
    locators = () if pipeline is None else (op.definition.locator for op in pipeline)
    startup = worker_options(executor, "measure", locators)
    with (
        Lifecycle(
            executor,
            workers=workers,
            supervision=supervision,
            report=report,
            **{**startup, **executor_options},
        ) as lifecycle,
        holding(target) if target is not None else _nothing(),
    ):
        run = _Files(
            items=items,
            pipeline=pipeline,
            detector=detector,
            target=target,
            geo=suffix in GEO_SUFFIXES,
            plan_options={
                "tile": tile,
                "layout": layout,
                "max_pixels": max_pixels,
                "max_whole_pixels": max_whole_pixels,
            },
            executor=lifecycle.executor,
            supervision=supervision,
        )
        result = run.execute(arguments, overwrite=overwrite, resume=resume, progress=progress)
        lifecycle.write(result[0])
    return result


class _nothing:
    """A context manager that holds nothing (no table, so no lock)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass(kw_only=True)
class _Files:
    """One measurement of a collection: its files, its spool, and its report."""

    items: list[Item]
    pipeline: Pipeline | None
    detector: Detector
    target: Path | None
    geo: bool
    plan_options: dict[str, Any]
    executor: Executor
    supervision: Supervision
    #: (file, CRS) of the first georeferenced file
    crs: tuple[str, str | None] | None = field(default=None, init=False)

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "kind": "measure files",
            "inputs": [item.source for item in self.items],
            "ops": [] if self.pipeline is None else self.pipeline.specs(),
            "detector": repr(self.detector),
            "tile": str(self.plan_options["tile"]),
            "layout": str(self.plan_options["layout"]),
            "output": str(self.target),
        }

    def execute(
        self, arguments: list[str], *, overwrite: bool, resume: bool, progress: bool
    ) -> tuple[BatchReport, Table | None]:
        """Measure the files not done yet; write the table; return (report, table)."""
        report = BatchReport(
            input=" ".join(arguments),
            output=None if self.target is None else str(self.target),
            pipeline=[
                *([] if self.pipeline is None else self.pipeline.specs()),
                f"detect {self.detector!r}",
            ],
            grid={},
            executor=self.executor.describe(),
            total=len(self.items),
        )
        objects: dict[str, int] = {}
        report.extra["objects"] = objects
        journal: Journal | None = None
        resumed = False
        if self.target is not None:
            journal, resumed = prepare_spool(
                self.target, self._fingerprint(), overwrite=overwrite, resume=resume
            )
        tables: dict[int, tuple[str, Table, str | None]] = {}
        if resumed:
            assert journal is not None
            for index in sorted(journal.done):
                identity = self.items[index].identity if index < len(self.items) else ""
                if identity and journal.done[index].get("i") != identity:
                    log.warning(
                        "%s: changed in storage; measuring it again", self.items[index].source
                    )
                    journal.forget(index)
                    continue
                kept = load_part(self._rows_path(index))
                if kept is None:
                    journal.forget(index)
                    continue
                tables[index] = kept
                self._note_crs(self.items[index], kept[2])
        report.skipped = len(tables)
        bar = Progress(len(self.items), unit="file", enabled=progress)
        bar.skip(report.skipped)
        start = time.perf_counter()
        with working(report, journal or Unrecorded(), bar):
            for index, item in enumerate(self.items):
                if index in tables:
                    continue
                try:
                    found = self._one(index, item, resume=resumed)
                except _FILE_ERRORS as err:
                    found = FileRecord(index, item.source, _cause(err, item.source))
                if isinstance(found, FileRecord):
                    report.fail(found)
                    bar.advance(failed=True)
                    continue
                tables[index] = found
                report.done += 1
                if journal is not None:
                    entry = {"file": item.name}
                    if item.identity:  # an object in storage: redone on --resume if it changed
                        entry["i"] = item.identity
                    journal.record(index, entry)
                bar.advance()
            bar.close()
            if journal is not None:
                journal.close()
            for index in sorted(tables):
                name, table, _ = tables[index]
                objects[name] = len(next(iter(table.values()), ()))
            rows = [(tables[i][0], tables[i][1]) for i in sorted(tables)]
            combined = file_table(rows) if rows else None
            if combined is not None and self.target is not None:
                write_table(combined, self.target, crs=None if self.crs is None else self.crs[1])
                if report.ok:
                    assert journal is not None
                    journal.remove()
                    shutil.rmtree(spool_path(self.target), ignore_errors=True)
            report.finalized = combined is not None
            report.seconds = time.perf_counter() - start
        return report, combined

    def _rows_path(self, index: int) -> Path:
        assert self.target is not None
        return spool_path(self.target) / f"{index}.rows"

    def _note_crs(self, item: Item, crs: str | None) -> None:
        if self.geo and self.crs is None:
            self.crs = (item.name, crs)

    def _one(
        self, index: int, item: Item, *, resume: bool
    ) -> tuple[str, Table, str | None] | FileRecord:
        """Measure one file as ``tilewise measure`` does; its rows, or why it failed."""
        opts = self.plan_options
        pipeline = self.pipeline or measure_pipeline(
            item.source, (), opts["max_pixels"], opts["max_whole_pixels"]
        )
        plan = make_plan(item.source, None, pipeline, **opts)
        plan = measure_plan(plan, self.detector)
        if self.geo:
            self._check_map(item, plan.source)
        kept: dict[str, Any] = {}

        def keep(table: Table, path: Path, crs: str | None) -> None:
            kept["crs"] = crs
            save_part(path, (item.name, table, crs))

        where = None if self.target is None else self._rows_path(index)
        try:
            run, table = self._measure(plan, where, keep, resume=resume)
        except ResumeError as err:  # the file changed since its parts were kept
            log.warning("%s: measuring it again from the start (%s)", item.source, err)
            run, table = self._measure(plan, where, keep, resume=False)
        if not run.ok:
            tiles = "; ".join(f"tile {f.tile}: {f.cause}" for f in run.failures[:3])
            return FileRecord(
                index,
                item.source,
                f"{run.failed} of {run.total} tile(s) failed ({tiles})",
                kind="tiles",
            )
        crs = kept.get("crs")
        if where is None:
            crs = _crs_of(plan.source)
        self._note_crs(item, crs)
        return item.name, table, crs

    def _measure(self, plan: Any, where: Path | None, keep: Any, *, resume: bool) -> Any:
        return execute_measure(
            plan,
            self.detector,
            self.executor,
            where,
            overwrite=True,
            resume=resume,
            progress=False,
            supervision=self.supervision,
            writer=keep,
        )

    def _check_map(self, item: Item, spec: io.SourceSpec) -> None:
        """A file without map coordinates, or in another CRS, has no place in a map table."""
        source = io.open_source(spec)
        try:
            georef = source.georef
        finally:
            source.close()
        if georef is None or georef.transform is None:
            raise UsageError(
                f"{item.source}: is not georeferenced (no transform), so its objects have no "
                "map coordinates for the table's points: write the table as .csv or .parquet"
            )
        if self.crs is not None and georef.crs != self.crs[1]:
            raise UsageError(
                f"{item.source}: its CRS ({georef.crs}) differs from that of {self.crs[0]} "
                f"({self.crs[1]}); one map table holds one CRS: write .csv or .parquet"
            )


def _cause(err: Exception, source: str) -> str:
    """The error's message without the file's path in front (the record names the file)."""
    text = str(err)
    return text[len(source) + 2 :] if text.startswith(f"{source}: ") else text


def _crs_of(spec: io.SourceSpec) -> str | None:
    source = io.open_source(spec)
    try:
        georef = source.georef
    finally:
        source.close()
    return None if georef is None else georef.crs
