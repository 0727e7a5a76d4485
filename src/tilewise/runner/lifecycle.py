"""The life of one run or batch, in one place: executor, signals, endings, report.

``tilewise.run`` and ``tilewise.batch`` differ in what they hand to workers
and how they record outcomes; everything around that is here, once:

- :class:`Lifecycle` makes the executor (or takes the caller's, which it never
  closes or changes), starts it ahead of the work, closes the one it made on
  every ending, and writes the JSON report — the partial one when a signal
  stopped the run.
- :func:`working` wraps the work itself, from the first task to the finished
  output: SIGINT/SIGTERM become :class:`~tilewise.errors.Interrupted` carrying
  the partial report; an error that leaves it is marked
  :attr:`~tilewise.errors.Phase.DURING_WORK` (the command line exits 1 and
  advises ``--resume``), a bare ``OSError`` first wrapped in an
  :class:`~tilewise.errors.OutputError` naming its file; and the journal is
  closed without a failing close hiding the error that stopped the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

from tilewise.errors import Interrupted, OutputError, Phase, TilewiseError
from tilewise.executors import Executor, Supervision, make_executor
from tilewise.runner.journal import Journal
from tilewise.runner.progress import Progress
from tilewise.runner.report import RunReport

__all__ = ["Lifecycle", "signals_as_exceptions", "working"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


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


def _during_work(err: TilewiseError | OSError) -> TilewiseError:
    """``err`` marked as stopping a run part-way (a bare ``OSError`` wrapped first)."""
    marked: TilewiseError
    if isinstance(err, TilewiseError):
        marked = err
    else:
        where = f"{err.filename}: " if err.filename else ""
        marked = OutputError(f"{where}{err.strerror or err}")
    if marked.phase is Phase.BEFORE_WORK:
        marked.phase = Phase.DURING_WORK
    return marked


@contextlib.contextmanager
def working(report: RunReport, journal: Journal, bar: Progress) -> Iterator[None]:
    """The work of a run, from the first task to the finished output.

    The body closes ``bar`` and ``journal`` itself once the tasks are done (a
    failing close is then an error of the run); on any other ending they are
    closed here, and a journal that cannot be closed is only logged, so the
    error that stopped the run is the one reported.
    """
    start = time.perf_counter()
    try:
        with signals_as_exceptions():
            yield
    except BaseException as err:
        report.seconds = time.perf_counter() - start
        bar.close()
        try:
            journal.close()
        except OutputError as closing:
            log.warning("%s", closing)
        if isinstance(err, Interrupted | KeyboardInterrupt):
            stop = err if isinstance(err, Interrupted) else Interrupted(signal.SIGINT)
            report.interrupted = signal.Signals(stop.signum).name
            stop.report = report
            raise stop from None
        if isinstance(err, TilewiseError | OSError):
            marked = _during_work(err)
            if marked is err:
                raise
            raise marked from err
        raise


class Lifecycle:
    """The executor of one run or batch, and its report: used as a context manager.

    Parameters
    ----------
    executor
        ``"local"``, ``"serial"``, ``"dask"`` (made here, closed at the end), or an
        :class:`Executor` the caller owns: it is neither closed nor changed.
    workers, supervision, options
        For an executor made here.
    report
        Where to write the JSON report (also the partial one of an interrupted run).
    """

    def __init__(
        self,
        executor: str | Executor,
        *,
        workers: int | None,
        supervision: Supervision,
        report: PathLike | None = None,
        **options: Any,
    ) -> None:
        self.executor = make_executor(executor, workers=workers, supervision=supervision, **options)
        self.owned = self.executor is not executor
        self.report_path = report

    def __enter__(self) -> Lifecycle:
        try:
            self.executor.start()  # workers start up while the caller prepares the work
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if isinstance(exc, Interrupted) and isinstance(exc.report, RunReport):
                self.write(exc.report)
        finally:
            self._close()

    def write(self, report: RunReport) -> None:
        """Write ``report`` where the caller asked for it (nowhere if not asked)."""
        if self.report_path is not None:
            report.write(self.report_path)

    def stop_workers(self) -> None:
        """Let an executor made here wind down while the caller finishes its output."""
        if self.owned:
            self.executor.stop()

    def close_workers(self) -> None:
        """Close an executor made here now (its workers are not needed any more)."""
        if self.owned:
            self.executor.close()

    def _close(self) -> None:
        if self.owned:
            self.executor.close()
