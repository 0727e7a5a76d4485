"""One run from plan to finish: output set-up, resume, supervision loop, finalize, report."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from tilewise import io
from tilewise.errors import (
    Interrupted,
    OutputError,
    OutputExistsError,
    ResumeError,
    TilewiseError,
)
from tilewise.executors.base import Done, Executor, Task
from tilewise.runner.journal import Journal, journal_path
from tilewise.runner.plan import Plan
from tilewise.runner.progress import Progress
from tilewise.runner.report import RunReport, TileRecord
from tilewise.runner.work import TileCall, TileJob

__all__ = ["Interrupted", "execute", "signals_as_exceptions"]

log = logging.getLogger(__name__)


#: Up to this many tiles, neighbouring tiles are kept on the same worker (the task list
#: is then held in memory); beyond it tiles are handed out lazily in order.
_LOCALITY_LIMIT = 100_000


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into :class:`Interrupted` while a run is going on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _prepare_output(plan: Plan, *, overwrite: bool, resume: bool) -> tuple[Journal, bool]:
    """Create or reopen the partial output and its journal; return (journal, resumed)."""
    assert plan.sink is not None
    sink = plan.sink
    final = Path(sink.path)
    partial = sink.partial
    jpath = journal_path(final)
    started = partial.exists() or jpath.exists()
    if resume and started:
        if not (partial.exists() and jpath.exists()):
            raise ResumeError(
                f"{final}: found {'the partial output' if partial.exists() else 'the journal'} "
                "but not the other; start again with --overwrite"
            )
        return Journal.resume(jpath, plan.fingerprint()), True
    if started and not overwrite:
        raise ResumeError(
            f"{final}: an earlier run of this output did not finish ({partial.name} exists); "
            "continue it with --resume, or start again with --overwrite"
        )
    if final.exists() and not overwrite:
        raise OutputExistsError(f"{final}: already exists; use --overwrite to replace it")
    if not final.parent.is_dir():
        raise OutputError(f"{final.parent}: output directory does not exist")
    for path in (partial, jpath):
        _remove(path)
    io.sink_class(sink.format).create(sink)
    return Journal.start(jpath, plan.fingerprint()), False


def _verify_journal(plan: Plan, journal: Journal) -> list[int]:
    """Check every journaled tile is still intact in the partial output; forget the damaged."""
    assert plan.sink is not None
    sink = io.sink_class(plan.sink.format)(plan.sink)
    damaged = []
    try:
        for index, entry in list(journal.done.items()):
            if not sink.verify(plan.grid.tile(index).core, entry.get("receipt", {})):
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


def execute(
    plan: Plan,
    executor: Executor,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> RunReport:
    """Run ``plan`` on ``executor``; return the report (the output is final only if ``ok``).

    The executor stays open: the caller that made it closes it.
    """
    assert plan.sink is not None
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
    damaged = _verify_journal(plan, journal) if resumed else []
    report.extra["redone_damaged"] = damaged
    report.skipped = len(journal.done)
    todo = (t for t in plan.grid if t.index not in journal.done)
    call = TileCall(TileJob(plan.source, plan.sink, plan.pipeline, plan.grid.stages))
    start = time.perf_counter()
    first_outcome: float | None = None
    bar = Progress(len(plan.grid), enabled=progress)
    bar.skip(report.skipped)
    try:
        with signals_as_exceptions():
            tasks = (Task(t.index, t) for t in todo)
            for outcome in executor.run(call, tasks, locality=len(plan.grid) <= _LOCALITY_LIMIT):
                if first_outcome is None:
                    first_outcome = time.perf_counter() - start
                window = plan.grid.tile(outcome.key).core
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
                            window.to_dict(),
                            "done",
                            outcome.worker,
                            round(outcome.seconds, 4),
                            outcome.attempts,
                            history=list(outcome.history),
                        )
                    )
                    bar.advance(window.area)
                else:
                    report.failed += 1
                    report.tiles.append(
                        TileRecord(
                            outcome.key,
                            window.to_dict(),
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
                        "tile %d (%s) failed after %d attempt(s): %s",
                        outcome.key,
                        window,
                        outcome.attempts,
                        outcome.cause,
                    )
                    bar.advance(failed=True)
    except (TilewiseError, OSError) as err:
        err.during_run = True  # type: ignore[union-attr]
        raise
    except (Interrupted, KeyboardInterrupt) as err:
        stop = err if isinstance(err, Interrupted) else Interrupted(signal.SIGINT)
        report.interrupted = signal.Signals(stop.signum).name
        stop.report = report
        raise stop from None
    finally:
        bar.close()
        journal.close()
        report.seconds = time.perf_counter() - start
        report.extra["phases"] = {
            "first_tile_s": round(first_outcome or 0.0, 4),
            "tiles_s": round(report.seconds, 4),
        }
    if report.ok:
        finalizing = time.perf_counter()
        try:
            io.sink_class(plan.sink.format).finalize(plan.sink, _receipts(journal))
        except (TilewiseError, OSError) as err:
            err.during_run = True  # type: ignore[union-attr]
            raise
        journal.remove()
        report.finalized = True
        report.extra["phases"]["finalize_s"] = round(time.perf_counter() - finalizing, 4)
        report.seconds = time.perf_counter() - start
    return report


def _receipts(journal: Journal) -> dict[int, dict[str, object]]:
    return {index: entry.get("receipt", {}) for index, entry in journal.done.items()}
