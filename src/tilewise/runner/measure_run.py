"""One measurement from plan to table: the ops and a detector per tile, the merge here.

It is a run like :func:`~tilewise.runner.run.execute_plan` — the same executor
call, journal, progress, report and :func:`~tilewise.runner.lifecycle.working`
endings — whose tiles return a detector's small part instead of writing
pixels. Each part is spooled to ``.TABLE.parts/`` beside the table before its
tile is journaled, so ``--resume`` merges the finished tiles' parts without
recomputing them. The parts go to the detector's merger as they come; the
table is written (and the spool removed) once every tile is done.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tilewise import io
from tilewise.errors import OutputError, ResumeError, UsageError
from tilewise.executors.base import Done, Executor, Failed, FailureKind, Supervision, Task
from tilewise.executors.runs import closing_outcomes
from tilewise.geometry import Grid
from tilewise.io import SourceSpec
from tilewise.io.georef import Georef
from tilewise.measurements import Detector, Merger, Table, concat, with_xy, write_table
from tilewise.ops.bandmath import select_bands
from tilewise.pipeline import OpLike, Pipeline, as_pipeline
from tilewise.runner.journal import Journal, clear_for_new_output, journal_path
from tilewise.runner.lifecycle import working
from tilewise.runner.measure_work import MeasureCall, MeasureJob, object_count
from tilewise.runner.plan import Plan
from tilewise.runner.progress import Progress
from tilewise.runner.report import RunReport
from tilewise.runner.run import _LOCALITY_LIMIT, _record, _stop

__all__ = [
    "TableWriter",
    "Unrecorded",
    "execute_measure",
    "load_part",
    "measure_pipeline",
    "measure_plan",
    "prepare_spool",
    "save_part",
    "spool_path",
]

#: Writes a finished table: ``(table, path, crs)``; :func:`write_table` by default.
TableWriter = Callable[[Table, Path, "str | None"], Any]


def _write(table: Table, path: Path, crs: str | None) -> Any:
    return write_table(table, path, crs=crs)


log = logging.getLogger(__name__)


def spool_path(table: Path) -> Path:
    """Where the parts of finished tiles wait for the merge: ``.NAME.parts`` beside the table."""
    return table.with_name(f".{table.name}.parts")


def measure_pipeline(
    src: str | os.PathLike[str],
    ops: Pipeline | Sequence[OpLike] | OpLike,
    max_pixels: int,
    max_whole_pixels: int,
) -> Pipeline:
    """``ops`` as a pipeline; without ops, the input ``src`` as it is (every band selected)."""
    if isinstance(ops, Pipeline | str) or callable(ops) or list(ops):
        return as_pipeline(ops)
    source = io.open_source(
        SourceSpec(str(src), max_pixels=max_pixels, max_whole_pixels=max_whole_pixels)
    )
    try:
        bands = source.bands
    finally:
        source.close()
    every = ",".join(str(b) for b in range(1, bands + 1))
    return as_pipeline(functools.partial(select_bands, bands=every))


def measure_plan(plan: Plan, detector: Detector, labels_format: str | None = None) -> Plan:
    """``plan`` with its grid's halo set to the detector's (the ops' halo is added per tile).

    With ``labels_format`` the tiles are aligned to that label image's blocks.
    """
    if plan.pipeline.rescales:
        raise UsageError(
            "measure: ops that change the scale are not supported before a detector; "
            "run them with 'tilewise run' first and measure their output"
        )
    stack = plan.planes
    if stack is not None and stack["planes"]:
        raise UsageError(
            f"measure: {plan.source.path} is a stack of planes {tuple(stack['planes'])} "
            f"(axes {stack['axes']}); measurements read one 2-D image: write one plane first, "
            f"e.g. 'tilewise run {plan.source.path} plane.tif --page 0 --op invert --op invert'"
        )
    grid = plan.grid
    tile_shape = grid.tile_shape
    if labels_format is not None:
        tile_shape = io.align_tile(labels_format, tile_shape, grid.image_shape)
    halo = int(detector.halo)
    return dataclasses.replace(
        plan, grid=Grid(grid.image_shape, tile_shape, grid.layout, halo=halo)
    )


class Unrecorded(Journal):
    """The journal of a measurement without a table file (stats): kept in memory only."""

    def __init__(self) -> None:
        super().__init__(Path(os.devnull), {})

    def record(self, tile: int, entry: dict[str, Any], *, flush: bool = True) -> None:
        self.done.mark(tile, 0)  # counted as done; its entry is never read back

    def close(self) -> None:
        pass

    def remove(self) -> None:
        pass


def prepare_spool(
    table: Path, fingerprint: dict[str, Any], *, overwrite: bool, resume: bool
) -> tuple[Journal, bool]:
    """Create or reopen the spool and journal of ``table``; return (journal, resumed)."""
    spool, jpath = spool_path(table), journal_path(table)
    started = spool.exists() or jpath.exists()
    if resume and started:
        if not (spool.is_dir() and jpath.exists()):
            raise ResumeError(
                f"{table}: found {'the parts folder' if spool.exists() else 'the journal'} "
                "but not the other; start again with --overwrite"
            )
        return Journal.resume(jpath, fingerprint), True
    if started and not overwrite:
        raise ResumeError(
            f"{table}: an earlier measurement of this table did not finish ({spool.name} "
            "exists); continue it with --resume, or start again with --overwrite"
        )
    clear_for_new_output(table, spool, overwrite=overwrite, no_folder="table folder does not exist")
    try:
        spool.mkdir()
    except OSError as err:
        raise OutputError(f"{spool}: cannot create the parts folder: {err.strerror}") from err
    return Journal.start(jpath, fingerprint), False


def _sorted(table: Table) -> Table:
    """Rows in an order that does not depend on which tile finished first.

    Regions by label; peaks (and other point rows) by row, then column.
    """
    if "label" in table:
        order = np.argsort(table["label"], kind="stable")
    elif "row" in table and "col" in table:
        order = np.lexsort((table["col"], table["row"]))
    else:
        return table
    return {name: column[order] for name, column in table.items()}


def _georef(plan: Plan) -> Georef | None:
    """The input's georeferencing (None for plain images)."""
    source = io.open_source(plan.source)
    try:
        return source.georef
    finally:
        source.close()


def save_part(path: Path, part: Any) -> None:
    """Keep ``part`` in ``path`` atomically (a killed process leaves no half part)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(part, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot keep the measurement: {err.strerror}") from err


def load_part(path: Path) -> Any:
    """What :func:`save_part` kept in ``path``, or None when it is missing or damaged.

    The parts are this run's own files, in the folder the journal's
    fingerprint belongs to.
    """
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return None


def _spool(spool: Path, index: int, part: Any) -> None:
    """Keep one tile's part (see :func:`save_part`)."""
    save_part(spool / f"{index}.pickle", part)


def _unspool(spool: Path, index: int) -> Any:
    """A finished tile's part, or None when it is missing or damaged (the tile is redone)."""
    return load_part(spool / f"{index}.pickle")


def execute_measure(
    plan: Plan,
    detector: Detector,
    executor: Executor,
    table: str | os.PathLike[str] | None,
    *,
    intensity: SourceSpec | None = None,
    labels: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    supervision: Supervision | None = None,
    writer: TableWriter = _write,
) -> tuple[RunReport, Any]:
    """Measure ``plan``'s tiles with ``detector`` on ``executor``; return (report, result).

    ``plan`` comes from :func:`measure_plan`. With ``table`` the rows are
    written there by ``writer`` once every tile is done (by default as
    :func:`~tilewise.measurements.write_table` does), and the work is
    resumable; without it nothing is written. The result is the merged table
    (row detectors) or the merger's result (stats); None unless ``ok``.
    """
    plan.pipeline.check_portable()
    final = Path(table) if table is not None else None
    fingerprint = {**plan.fingerprint(), "detector": repr(detector), "output": str(final)}
    fingerprint["intensity"] = intensity.path if intensity is not None else None
    fingerprint["labels"] = None if labels is None else str(labels)
    if final is not None:
        journal, resumed = prepare_spool(final, fingerprint, overwrite=overwrite, resume=resume)
    else:
        journal, resumed = Unrecorded(), False
    report = RunReport(
        input=plan.source.path,
        output=None if final is None else str(final),
        pipeline=[*plan.pipeline.specs(), f"detect {detector!r}"],
        grid=plan.grid.to_dict(),
        executor=executor.describe(),
        total=len(plan.grid),
    )
    merger: Merger = detector.merger(plan.grid)
    rows: list[Table] = []
    objects: dict[str, int | None] = {}
    report.extra["objects"] = objects

    def add(index: int, part: Any) -> None:
        found = merger.add(part)
        if isinstance(found, dict):
            rows.append(found)

    redone = []
    if resumed:
        assert final is not None
        for index in sorted(journal.done):
            part = _unspool(spool_path(final), index)
            if part is None:
                journal.forget(index)
                redone.append(index)
                continue
            objects[str(index)] = object_count(part)
            add(index, part)
        if redone:
            log.warning(
                "%d tile(s) listed as done have no readable part and will be redone: %s",
                len(redone),
                ", ".join(map(str, redone[:20])),
            )
    report.extra["redone_damaged"] = redone
    report.skipped = len(journal.done)
    job = MeasureJob(plan.source, plan.pipeline, detector, plan.grid.image_shape, intensity)
    start = time.perf_counter()
    bar = Progress(len(plan.grid), enabled=progress)
    bar.skip(report.skipped)
    result: Any = None
    with working(report, journal, bar):
        tasks = (Task(t.index, t) for t in plan.grid if t.index not in journal.done)
        outcomes = executor.map_tasks(
            MeasureCall(job),
            tasks,
            locality=len(plan.grid) <= _LOCALITY_LIMIT,
            supervision=supervision,
        )
        with closing_outcomes(outcomes):  # closing it stops the tiles still running
            for outcome in outcomes:
                if isinstance(outcome, Done):
                    part = outcome.value.pop("part")
                    if final is not None:
                        _spool(spool_path(final), outcome.key, part)
                    objects[str(outcome.key)] = outcome.value.get("objects")
                    add(outcome.key, part)
                _record(report, journal, bar, plan.grid.tile(outcome.key), outcome)
                if isinstance(outcome, Failed) and outcome.kind is FailureKind.ENVIRONMENT:
                    _stop(report, outcome)  # storage gone or disk full: as a run stops
                    break
        bar.close()
        journal.close()
        report.seconds = time.perf_counter() - start
        if report.ok:
            rest = merger.finish()
            result = concat([*rows, rest]) if isinstance(rest, dict) and rows else rest
            if isinstance(result, dict):
                result = _sorted(result)
            georef = _georef(plan)
            if isinstance(result, dict) and georef is not None and georef.transform is not None:
                result = with_xy(result, georef.transform)
            if labels is not None:
                from tilewise.measurements import RegionsMerge
                from tilewise.runner.measure_labels import write_labels

                assert isinstance(merger, RegionsMerge)
                write_labels(labels, job, plan.grid, merger, executor, supervision=supervision)
            if final is not None:
                writer(result, final, None if georef is None else georef.crs)
                journal.remove()
                shutil.rmtree(spool_path(final), ignore_errors=True)
            report.finalized = True
            report.seconds = time.perf_counter() - start
    return report, result
