"""One run from plan to finish: output set-up, resume, supervision loop, finalize, report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from tilewise import io
from tilewise.errors import OutputError, OutputExistsError, ResumeError, UsageError
from tilewise.executors.base import (
    Done,
    Executor,
    Failed,
    FailureKind,
    Outcome,
    Supervision,
    Task,
)
from tilewise.executors.runs import map_in_runs
from tilewise.geometry import Tile
from tilewise.runner.holes import check_fill, fill_failed, remove_sidecar, write_sidecar
from tilewise.runner.journal import Journal, Receipts, clear_for_new_output, journal_path
from tilewise.runner.lifecycle import committing, working
from tilewise.runner.plan import Plan
from tilewise.runner.progress import Progress
from tilewise.runner.report import STAGES, RunReport, TileRecord, TileRecords
from tilewise.runner.work import TileCall, TileJob

__all__ = ["execute_plan"]

log = logging.getLogger(__name__)


#: Up to this many tiles, neighbouring tiles are kept on the same worker (the task list
#: is then held in memory); beyond it tiles are handed out lazily in order.
_LOCALITY_LIMIT = 100_000
#: Over this many tiles, the report's per-tile records go to a file beside the output
#: instead of memory (the main process's memory then stays flat in the number of tiles).
_SPOOL_ABOVE = 10_000


def _prepare_output(plan: Plan, *, overwrite: bool, resume: bool) -> tuple[Journal, bool]:
    """Create or reopen the partial output and its journal; return (journal, resumed)."""
    assert plan.sink is not None
    sink = plan.sink
    if io.is_url(sink.path):
        return _prepare_remote_output(plan, overwrite=overwrite, resume=resume)
    final = Path(sink.path)
    partial = sink.partial
    jpath = journal_path(final)
    started = partial.exists() or jpath.exists()
    if resume and started:
        if jpath.exists() and not partial.exists() and final.exists():
            # made final by the run that wrote the journal, stopped before deleting it
            return Journal.resume(jpath, plan.fingerprint()), True
        if not (partial.exists() and jpath.exists()):
            raise ResumeError(
                f"{final}: found {'the partial output' if partial.exists() else 'the journal'} "
                "but not the other; start again with --overwrite"
            )
        return Journal.resume(jpath, plan.fingerprint()), True
    if resume and not started and final.exists() and not overwrite:
        raise OutputExistsError(
            f"{final}: already exists, and no run of it is unfinished (no {jpath.name}): "
            "nothing to resume. tilewise cannot tell which run made it; use --overwrite to "
            "make it again"
        )
    if started and not overwrite:
        raise ResumeError(
            f"{final}: an earlier run of this output did not finish ({partial.name} exists); "
            "continue it with --resume, or start again with --overwrite"
        )
    clear_for_new_output(
        final, partial, overwrite=overwrite, no_folder="output directory does not exist"
    )
    io.sink_class(sink.format).create(sink)
    return Journal.start(jpath, plan.fingerprint()), False


def _prepare_remote_output(plan: Plan, *, overwrite: bool, resume: bool) -> tuple[Journal, bool]:
    """:func:`_prepare_output` for an output in object storage; the journal stays local.

    The journal is appended to after every tile, and objects cannot be appended
    to, so it lives on the main process's machine (:func:`tilewise.io.local_state`);
    a resume must run there too.
    """
    assert plan.sink is not None
    sink = plan.sink
    kind: Any = io.sink_for(sink)  # a remote sink: started(), exists(), clear()
    jpath = journal_path(io.local_state(sink.path))
    started = jpath.exists() or kind.started(sink)
    if resume and started:
        if not jpath.exists():
            raise ResumeError(
                f"{sink.path}: found an unfinished output in storage but no journal at "
                f"{jpath} (the journal stays on the machine that started the run); "
                "start again with --overwrite"
            )
        return Journal.resume(jpath, plan.fingerprint()), True
    if started and not overwrite:
        raise ResumeError(
            f"{sink.path}: an earlier run of this output did not finish; "
            "continue it with --resume, or start again with --overwrite"
        )
    if not overwrite and kind.exists(sink):
        raise OutputExistsError(f"{sink.path}: already exists; use --overwrite to replace it")
    kind.clear(sink)
    jpath.unlink(missing_ok=True)
    kind.create(sink)
    return Journal.start(jpath, plan.fingerprint()), False


def _verify_journal(plan: Plan, journal: Journal) -> list[int]:
    """Check every journaled tile is still intact in the partial output; forget the damaged."""
    assert plan.sink is not None
    sink = io.sink_for(plan.sink)(plan.sink)
    damaged = []
    try:
        for index, entry in journal.done.items():  # read from the file; forgetting is safe
            tile = plan.grid.tile(index)
            if not sink.verify(tile.core, entry.get("receipt", {}), tile.plane):
                journal.forget(index)
                damaged.append(index)
    finally:
        sink.close()
    if damaged:
        log.warning(
            "%d tile(s) listed as done are missing or damaged in the output and will be redone: %s",
            len(damaged),
            ", ".join(map(str, damaged[:20])),
        )
    return damaged


def execute_plan(
    plan: Plan,
    executor: Executor,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool | None = True,
    supervision: Supervision | None = None,
    allow_failed: bool = False,
    fill: float = 0,
) -> RunReport:
    """Run ``plan`` on ``executor``; return the report (the output is final only if ``ok``).

    The executor stays open and unchanged: the caller that made it closes it.
    ``supervision`` applies to this run's tasks (default: the executor's own).
    With ``allow_failed``, an output whose only missing tiles failed is finalized
    with those tiles filled with ``fill`` and listed (see :mod:`tilewise.runner.holes`);
    ``report.ok`` stays false. A failure of the environment (storage unavailable,
    the output's disk full) stops the run at that tile: ``report.stopped_by`` names it.
    """
    assert plan.sink is not None
    if allow_failed:
        if io.is_url(plan.sink.path):
            raise UsageError(
                f"{plan.sink.path}: --allow-failed is not supported for outputs in object "
                "storage yet; write locally, or fix the failures and --resume"
            )
        check_fill(fill, plan.sink.dtype)
    plan.pipeline.check_portable()
    journal, resumed = _prepare_output(plan, overwrite=overwrite, resume=resume)
    report = RunReport(
        input=plan.source.path,
        output=plan.sink.path,
        pipeline=plan.pipeline.specs(),
        grid=plan.grid.to_dict(),
        executor=executor.describe(),
        total=len(plan.grid),
    )
    if report.total > _SPOOL_ABOVE:
        report.tiles = TileRecords(spool=io.local_state(plan.sink.path).parent)
    if resumed and _made_final(plan, journal, report.total):
        return _final_already(plan, journal, report)
    damaged = _verify_journal(plan, journal) if resumed else []
    report.extra["redone_damaged"] = damaged
    report.skipped = len(journal.done)
    todo = (t for t in plan.grid if t.index not in journal.done)
    call = TileCall(TileJob(plan.source, plan.sink, plan.pipeline, plan.grid.stages))
    start = time.perf_counter()
    first_outcome: float | None = None
    bar = Progress(len(plan.grid), enabled=progress)
    bar.skip(report.skipped)
    supervision = replace(supervision or executor.supervision, on_stall=bar.stalled)
    with working(report, journal, bar):
        tasks = (Task(t.index, t) for t in todo)
        outcomes = map_in_runs(
            executor,
            call,
            tasks,
            count=report.total - report.skipped,
            locality=len(plan.grid) <= _LOCALITY_LIMIT,
            supervision=supervision,
        )
        with closing(outcomes):  # closing it stops the tiles still running (see _stop)
            for outcome in outcomes:
                if first_outcome is None:
                    first_outcome = time.perf_counter() - start
                _record(report, journal, bar, plan.grid.tile(outcome.key), outcome)
                if isinstance(outcome, Failed) and outcome.kind is FailureKind.ENVIRONMENT:
                    _stop(report, outcome)
                    break
        bar.close()
        journal.close()
        report.seconds = time.perf_counter() - start
        report.extra["phases"] = {
            "first_tile_s": round(first_outcome or 0.0, 4),
            "tiles_s": round(report.seconds, 4),
        }
        holes = _fill_holes(plan, report, fill) if allow_failed and _only_failed(report) else {}
        if report.ok or holes:
            finalizing = time.perf_counter()
            sink = io.sink_for(plan.sink)
            receipts = _receipts(journal, holes)
            run_tasks = _TasksAfterTiles(
                executor, replace(supervision, on_stall=None), plan.sink.path
            )
            sink.assemble_with(plan.sink, receipts, run_tasks)  # a signal here still stops the run
            if run_tasks.seconds:
                report.extra["phases"]["after_tiles_s"] = round(run_tasks.seconds, 4)
            with committing():  # from here on the run is done: signals wait for its end
                sink.commit(plan.sink, receipts)
            report.finalized = True
            if holes:
                failed = [t.window for t in report.failures]
                sidecar = write_sidecar(Path(plan.sink.path), fill, failed)
                report.extra["filled"] = {"value": fill, "list": str(sidecar), "tiles": failed}
            else:
                remove_sidecar(io.local_state(plan.sink.path))
            journal.remove()  # last: while it is there, --resume can tell the output is done
            report.extra["phases"]["finalize_s"] = round(time.perf_counter() - finalizing, 4)
            report.seconds = time.perf_counter() - start
    return report


class _TasksAfterTiles:
    """``run(fn, payloads)`` for a sink's work after the tiles (a COG's overviews), on the
    run's executor; a payload that fails on every attempt stops the run (resumable)."""

    def __init__(self, executor: Executor, supervision: Supervision, output: str) -> None:
        self.executor = executor
        self.supervision = supervision
        self.output = output
        self.seconds = 0.0

    def __call__(self, fn: Callable[[Any], Any], payloads: Sequence[Any]) -> list[Any]:
        start = time.perf_counter()
        results: list[Any] = [None] * len(payloads)
        tasks = (Task(number, payload) for number, payload in enumerate(payloads))
        for outcome in self.executor.map_tasks(fn, tasks, supervision=self.supervision):
            if isinstance(outcome, Failed):
                raise OutputError(
                    f"{self.output}: finishing the output failed "
                    f"(task {outcome.key} of {len(payloads)}: {outcome.cause})"
                )
            results[outcome.key] = outcome.value
        self.seconds += time.perf_counter() - start
        return results


def _made_final(plan: Plan, journal: Journal, total: int) -> bool:
    """Whether the run that wrote ``journal`` made its output final (then stopped).

    A local output: the partial output is gone (renamed into place). An output in
    object storage: every tile is journaled, nothing unfinished is left under its
    URL (the spooled tiles or the held metadata are deleted only after the output
    is uploaded or published) and the final object or array is there.
    """
    assert plan.sink is not None
    spec = plan.sink
    if not io.is_url(spec.path):
        return not spec.partial.exists()
    kind: Any = io.sink_for(spec)  # a remote sink: started(), exists()
    return len(journal.done) == total and not kind.started(spec) and kind.exists(spec)


def _final_already(plan: Plan, journal: Journal, report: RunReport) -> RunReport:
    """A resume of an output that its run made final, stopped before it deleted the journal.

    The journal (whose fingerprint matched this run's) then proves the output is
    this run's: nothing is left to do but what that run did not finish.
    """
    assert plan.sink is not None
    final = plan.sink.path
    done = len(journal.done)
    if done != report.total:  # only an output finished with --allow-failed has holes
        raise ResumeError(
            f"{final}: already final, with {report.total - done} of {report.total} tiles "
            f"failed and filled (--allow-failed; see {Path(final).name}.failed.json); nothing "
            "to resume: to redo them, start again with --overwrite"
        )
    remove_sidecar(io.local_state(final))
    journal.remove()
    report.skipped = done
    report.finalized = True
    report.extra["redone_damaged"] = []
    report.extra["already_final"] = True
    log.info("%s: already complete (made final by an earlier run); nothing to do", final)
    return report


def _record(
    report: RunReport, journal: Journal, bar: Progress, tile: Tile, outcome: Outcome
) -> None:
    """Journal and report one tile's outcome."""
    window = tile.core
    where = window.to_dict() if tile.plane is None else {**window.to_dict(), "plane": tile.plane}
    if isinstance(outcome, Done):
        journal.record(
            outcome.key,
            {
                "receipt": outcome.value["receipt"],
                "worker": outcome.worker,
                "seconds": round(outcome.seconds, 4),
                "attempts": outcome.attempts,
            },
        )
        report.done += 1
        report.tiles.append(
            TileRecord(
                outcome.key,
                where,
                "done",
                outcome.worker,
                round(outcome.seconds, 4),
                outcome.attempts,
                history=list(outcome.history),
                stages=tuple(outcome.value.get(key, 0.0) for key in STAGES),
            )
        )
        bar.advance(window.area)
        return
    report.failed += 1
    report.tiles.append(
        TileRecord(
            outcome.key,
            where,
            "failed",
            outcome.worker,
            round(outcome.seconds, 4),
            outcome.attempts,
            outcome.cause,
            outcome.kind.value,
            outcome.detail,
            list(outcome.history),
        )
    )
    log.warning(
        "%s failed after %d attempt(s): %s",
        tile,
        outcome.attempts,
        outcome.cause,
    )
    bar.advance(failed=True)


def _stop(report: RunReport, outcome: Failed) -> None:
    """Stop the run at a failure of the environment (circuit breaker).

    Storage that is gone after its own retries, or a full disk, would fail every
    tile left, each after its own retries: no further tile is started. Closing
    the executor's outcomes stops the tiles still running (the local executor
    kills the workers holding them, Dask cancels its tasks); they were not journaled,
    so ``--resume`` redoes them with the tile that failed and those never started.
    """
    report.stopped_by = f"tile {outcome.key}: {outcome.cause}"
    log.info(
        "stopping the run: %s; %d tile(s) not run (fix the cause, then --resume)",
        report.stopped_by,
        report.not_run,
    )


def _only_failed(report: RunReport) -> bool:
    """Whether every tile not done failed (no interruption or stop left tiles unrun)."""
    return (
        report.failed > 0
        and report.interrupted is None
        and report.stopped_by is None
        and report.done + report.skipped + report.failed == report.total
    )


def _fill_holes(plan: Plan, report: RunReport, fill: float) -> dict[int, dict[str, object]]:
    assert plan.sink is not None
    failed = [t.tile for t in report.failures]
    log.warning("filling %d failed tile(s) with %g (--allow-failed)", len(failed), fill)
    return fill_failed(plan.sink, plan.grid, failed, fill)


def _receipts(journal: Journal, holes: dict[int, io.Receipt]) -> Mapping[int, io.Receipt]:
    """The finished tiles' receipts, read from the journal as the sink asks for them.

    Not a dict: a million receipts would take ~200 MiB. Sinks only read it (``in``,
    ``[]``, ``items()``, ``values()``), which :class:`Receipts` serves from the file.
    The receipts of filled holes (``--allow-failed``) are merged into a dict.
    """
    receipts = Receipts(journal.done)
    return {**receipts, **holes} if holes else receipts
