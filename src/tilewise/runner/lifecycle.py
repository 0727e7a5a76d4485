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
- :func:`committing` wraps the step that makes the output final (a rename).
  From its start, SIGINT/SIGTERM are *held*: the run is done but for its
  bookkeeping (journal, report, workers), which it finishes; then the
  outermost :class:`HeldSignals` (the command, or the run's
  :class:`Lifecycle`) ends and gives the signal back — the command line exits
  as the run ended (0) and says the signal came after the output was complete;
  the Python API raises :class:`~tilewise.errors.Interrupted` with
  ``complete=True`` and the full report. A second signal while one is held
  stops at once, with ``complete=True`` too: there is nothing to resume.
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

__all__ = ["HeldSignals", "Lifecycle", "committing", "signals_as_exceptions", "working"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handlers = dict[signal.Signals, Any]


def _main_thread() -> bool:
    """Whether this is the main thread (the only one that can set signal handlers)."""
    return threading.current_thread() is threading.main_thread()


class _Gate:
    """Where SIGINT/SIGTERM go while tilewise runs; process-wide, like signal handlers."""

    def __init__(self) -> None:
        #: Nested :class:`HeldSignals` (a command, a run's lifecycle, its work).
        self.scopes = 0
        #: Nested works (the files a batch runs through the tiled runner are inside the batch's).
        self.works = 0
        #: The outermost work's output is final: a signal is held, not raised.
        self.final = False
        #: The signal held since then.
        self.held: int | None = None
        #: The handlers to put back when the outermost scope ends (set once final).
        self.restore: _Handlers | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The handler while a run works: raise, or hold once the output is final."""
        if not self.final:
            raise Interrupted(signum)
        if self.held is None:
            self.held = signum  # noted only: the run's last steps go on
            return
        raise Interrupted(signum, complete=True)  # a second signal: stop now

    def leave(self) -> int | None:
        """End a scope; for the outermost, put the handlers back and return a held signal."""
        self.scopes -= 1
        if self.scopes > 0:
            return None
        held, restore = self.held, self.restore
        self.final, self.held, self.restore = False, None, None
        if restore is not None:
            _install(restore)
        return held


_gate = _Gate()


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def _install(handlers: _Handlers) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


class HeldSignals:
    """A scope at whose end a signal held after the output became final is given back.

    Scopes nest; only the outermost acts. With ``give_back`` (the default) a
    held signal is raised there, when nothing else is raised, as
    :class:`Interrupted` with ``complete=True`` and :attr:`report`; without it
    the caller reads :attr:`held` and decides (the command line finishes and
    exits 0). Off the main thread it does nothing: no handlers are set there.
    """

    def __init__(self, *, give_back: bool = True) -> None:
        self.give_back = give_back
        #: The report attached to the :class:`Interrupted` of a held signal.
        self.report: object = None
        self._active = False

    @property
    def held(self) -> int | None:
        """The signal held so far (None if none)."""
        return _gate.held if self._active else None

    def __enter__(self) -> HeldSignals:
        self._active = _main_thread()
        if self._active:
            _gate.scopes += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        self._active = False
        held = _gate.leave()
        if held is not None and exc is None and self.give_back:
            stop = Interrupted(held, complete=True)
            stop.report = self.report
            raise stop


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into :class:`Interrupted` while a run is going on.

    Once the outermost run's output is final (:func:`committing`) they are held
    instead, and the handlers stay until the outermost :class:`HeldSignals` ends.
    """
    if not _main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    _install(dict.fromkeys(_SIGNALS, _gate.on_signal))
    _gate.works += 1
    try:
        yield
    finally:
        _gate.works -= 1
        if _gate.final and _gate.scopes > 0:
            if _gate.works == 0:
                _gate.restore = previous  # put back when the outermost scope ends
        else:
            _install(previous)


@contextlib.contextmanager
def committing() -> Iterator[None]:
    """The step that makes a run's output final; SIGINT/SIGTERM are held from its start.

    Held until the outermost :class:`HeldSignals` ends (see the module notes).
    If the step fails, the output is not final: signals act again, and the
    error stops the run. Inside a batch (a large file run through the tiled
    runner) it holds nothing: the batch's output is not final yet.
    """
    if not _main_thread() or _gate.works != 1 or _gate.scopes == 0:
        yield
        return
    _gate.final = True
    try:
        yield
    except BaseException:
        held, _gate.final, _gate.held = _gate.held, False, None
        if held is not None:
            log.info("%s came while the output was being moved into place", _name(held))
        raise


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
    held = HeldSignals()
    held.report = report
    with held:
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
        #: A signal after the output is final is held until the executor is closed.
        self._signals = HeldSignals()

    def __enter__(self) -> Lifecycle:
        self._signals.__enter__()
        try:
            self.executor.start()  # workers start up while the caller prepares the work
        except BaseException as err:
            self._close()
            self._signals.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        error = exc
        try:
            try:
                if isinstance(exc, Interrupted) and isinstance(exc.report, RunReport):
                    self.write(exc.report)
            finally:
                self._close()
        except BaseException as err:
            error = err
            raise
        finally:  # last: a signal held after the output was final comes back here
            self._signals.__exit__(None if error is None else type(error), error, None)

    def write(self, report: RunReport) -> None:
        """Write ``report`` where the caller asked for it (nowhere if not asked)."""
        self._signals.report = report
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
