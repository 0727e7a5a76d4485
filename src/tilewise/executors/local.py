"""The local executor: supervised worker processes on this machine.

Each worker is a :class:`~tilewise.executors._lane.Lane` — one process and the
pipe to it — watched from this process's own loop. Unlike
``multiprocessing.Pool`` (which hangs when a worker is killed) and
``ProcessPoolExecutor`` (which fails every pending task), a worker that dies
loses only the task it was running and is replaced, and a worker whose task
runs past the timeout is killed and replaced. On top of that this module adds
bounded in-flight work, retries, memory caps, worker recycling and causes a
person can read ("worker died (SIGSEGV)").
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from multiprocessing.connection import wait
from typing import Any, Protocol

from tilewise.errors import ExecutorError, UsageError
from tilewise.executors._lane import Lane, Sent, WorkerGone, encode, shut_down
from tilewise.executors._stall import StallWatch
from tilewise.executors._worker import TaskError
from tilewise.executors.base import Attempts, Executor, FailureKind, Outcome, Supervision, Task
from tilewise.executors.forkserver import restart_forkserver, start_forkserver

__all__ = ["LocalExecutor", "describe_exit"]

log = logging.getLogger(__name__)


def describe_exit(exitcode: int | None) -> tuple[FailureKind, str]:
    """Turn a dead worker's exit code into a failure kind and a readable cause.

    >>> describe_exit(-11)
    (<FailureKind.CRASH: 'crash'>, 'worker died (SIGSEGV: segmentation fault in native code)')
    """
    if exitcode is None:
        return FailureKind.CRASH, "worker died (no exit code)"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return FailureKind.CRASH, f"worker died (signal {-exitcode})"
        if sig is signal.SIGKILL:
            return FailureKind.MEMORY, (
                "worker was killed (SIGKILL); the likely cause is running out of memory "
                "(the kernel's OOM killer) — try smaller tiles, fewer workers or --memory-limit"
            )
        detail = {
            signal.SIGSEGV: "segmentation fault in native code",
            signal.SIGABRT: "abort in native code",
            signal.SIGBUS: "bus error",
            signal.SIGFPE: "arithmetic error in native code",
            signal.SIGILL: "illegal instruction",
        }.get(sig)
        name = f"{sig.name}: {detail}" if detail else sig.name
        return FailureKind.CRASH, f"worker died ({name})"
    return FailureKind.CRASH, f"worker exited with code {exitcode}"


class _Queue(Protocol):
    """Where the next task for a worker slot comes from."""

    def take(self, slot: int) -> Attempts | None: ...

    def retry(self, slot: int, attempts: Attempts) -> None: ...


class _Fifo:
    """Tasks in the order given, pulled lazily; retries first."""

    def __init__(self, tasks: Iterator[Task]) -> None:
        self._tasks = tasks
        self._retries: deque[Attempts] = deque()

    def take(self, slot: int) -> Attempts | None:
        if self._retries:
            return self._retries.popleft()
        task = next(self._tasks, None)
        return None if task is None else Attempts(task)

    def retry(self, slot: int, attempts: Attempts) -> None:
        self._retries.append(attempts)


class _Bands:
    """One contiguous band of tasks per slot; an idle slot takes the far half of the largest."""

    def __init__(self, tasks: list[Task], slots: int) -> None:
        size = len(tasks)
        self._bands = [
            deque(Attempts(t) for t in tasks[k * size // slots : (k + 1) * size // slots])
            for k in range(slots)
        ]

    def take(self, slot: int) -> Attempts | None:
        band = self._bands[slot]
        if not band:
            donor = max(self._bands, key=len)
            half = len(donor) // 2 if len(donor) > 1 else len(donor)
            stolen = [donor.pop() for _ in range(half)]
            band.extend(reversed(stolen))
        return band.popleft() if band else None

    def retry(self, slot: int, attempts: Attempts) -> None:
        self._bands[slot].appendleft(attempts)


class LocalExecutor(Executor):
    """Supervised worker processes on this machine.

    Each worker is its own *lane*, so tilewise decides which worker gets which
    task: neighbouring tiles can be kept on the same worker (see
    ``map_tasks(..., locality=True)``), and a crash or timeout in one lane never
    touches another. The workers serve one ``map_tasks`` at a time: starting another,
    or calling :meth:`stop` or :meth:`close`, before a run's outcomes are all
    read cuts that run short (reading on raises :class:`~tilewise.errors.ExecutorError`).

    Parameters
    ----------
    workers
        Number of worker processes (default: one per core).
    supervision
        Retries, timeout, memory limit and recycling.
    max_in_flight
        Tasks handed out at once (default ``2 * workers``): keeps memory flat.
    start_method
        ``"forkserver"`` (default: safe with threads in the main process) or
        ``"fork"`` (needed for ops defined in ``__main__``, e.g. a notebook).
    preload
        Modules the fork server imports for the workers besides
        :data:`~tilewise.executors.forkserver.BASE_PRELOAD` (usually the module
        that defines the task function), so no worker imports them itself.
    """

    name = "local"

    def __init__(
        self,
        workers: int | None = None,
        supervision: Supervision | None = None,
        *,
        max_in_flight: int | None = None,
        start_method: str = "forkserver",
        preload: Sequence[str] = (),
    ) -> None:
        workers = workers or os.cpu_count() or 1
        if workers < 1:
            raise UsageError(f"workers must be at least 1, got {workers}")
        super().__init__(workers, supervision)
        self.max_in_flight = max(1, max_in_flight or 2 * workers)
        if start_method not in ("fork", "forkserver", "spawn"):
            raise UsageError(f"start method must be fork, forkserver or spawn, got {start_method}")
        self.start_method = start_method
        self.preload = tuple(preload)
        self._lanes: list[Lane] = []
        self._round: _Round | None = None

    def _ensure_lanes(self) -> list[Lane]:
        if not self._lanes:
            context = multiprocessing.get_context(self.start_method)
            if self.start_method == "forkserver":
                start_forkserver(self.preload)
            limit, quota = self.supervision.memory_limit, self.supervision.max_tasks_per_worker
            self._lanes = [Lane(context, limit, quota or 0) for _ in range(self.workers)]
            # Stop the workers when this executor is collected or the interpreter exits
            # (before multiprocessing joins its children at exit).
            multiprocessing.util.Finalize(self, shut_down, args=(self._lanes,), exitpriority=10)
        for lane in self._lanes:
            if not lane.started:
                _start(lane)
        return self._lanes

    def start(self) -> None:
        """Get workers starting without waiting for them.

        With the fork server, start the server (it imports in the background;
        the workers fork from it when the first task comes). Otherwise start
        the workers now.
        """
        if self.start_method == "forkserver":
            start_forkserver(self.preload)
        else:
            self._ensure_lanes()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "start_method": self.start_method,
            "max_in_flight": self.max_in_flight,
            "retries": self.supervision.retries,
            "timeout": self.supervision.timeout,
            "memory_limit": self.supervision.memory_limit,
            "max_tasks_per_worker": self.supervision.max_tasks_per_worker,
        }

    def map_tasks(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Task],
        *,
        locality: bool = False,
        supervision: Supervision | None = None,
    ) -> Iterator[Outcome]:
        """Run every task; yield each outcome as soon as it is known.

        With ``locality``, consecutive tasks share inputs (neighbouring tiles
        share halo blocks): the tasks are cut into one contiguous band per
        worker, each worker walks its own band in order — so its caches keep
        what the next task needs — and a worker whose band is done takes the
        far half of the largest band left.
        """
        self._cancel_round()  # one run at a time: the workers' pipes carry one run's tasks
        lanes = self._ensure_lanes()
        queue: _Queue = _Bands(list(tasks), len(lanes)) if locality else _Fifo(iter(tasks))
        round_ = self._round = _Round(self, lanes, queue, fn, supervision or self.supervision)
        try:
            for outcome in round_.outcomes():
                yield outcome
                round_.check()  # the caller may have stopped us, or started another run
        finally:
            round_.abandon()
            if self._round is round_:
                self._round = None

    def _cancel_round(self) -> None:
        """End a run whose caller has not finished it (its tasks are dropped, and said so)."""
        if self._round is not None:
            self._round.cancelled = True
            self._round.abandon()
            self._round = None

    def stop(self) -> None:
        """Tell every worker to stop, without waiting for them (``close`` waits)."""
        self._cancel_round()
        for lane in self._lanes:
            lane.stop()

    def close(self) -> None:
        self._cancel_round()
        lanes, self._lanes = self._lanes, []
        shut_down(lanes)


class _Round:
    """One ``map_tasks`` call: gives lanes tasks; turns answers, deaths, timeouts into outcomes."""

    def __init__(
        self,
        executor: LocalExecutor,
        lanes: list[Lane],
        queue: _Queue,
        fn: Callable[[Any], Any],
        supervision: Supervision,
    ) -> None:
        self.executor = executor
        #: This run's retries and timeout.
        self.supervision = supervision
        self.lanes = lanes
        self.queue = queue
        self.fn = fn
        self.per_lane = -(-executor.max_in_flight // len(lanes))
        #: Set when the executor ran something else, or stopped, before this run finished.
        self.cancelled = False
        #: Without a timeout, stalled tasks are found from this run's own task times.
        rule = supervision.stall if supervision.timeout is None else None
        self.stall = None if rule is None else StallWatch(rule)

    def outcomes(self) -> Iterator[Outcome]:
        """Every task's outcome, as soon as it is known."""
        while True:
            yield from self.dispatch()
            if not self.busy():
                return
            yield from self.collect()

    def check(self) -> None:
        if self.cancelled:
            raise ExecutorError(
                "this run was cut short: the executor started another run, or was stopped, "
                "before this one's outcomes were all read"
            )

    def busy(self) -> bool:
        return any(lane.held() for lane in self.lanes)

    def dispatch(self) -> Iterator[Outcome]:
        """Give each lane work up to its share; yield tasks that cannot even be sent."""
        for slot in sorted(range(len(self.lanes)), key=lambda k: self.lanes[k].held()):
            lane = self.lanes[slot]
            try:
                yield from self._fill(slot, lane)
            except WorkerGone:  # it died since we last heard from it: replace it, go on
                unsent, lane.waiting = lane.waiting, None
                if unsent is not None:  # it never reached a worker: no attempt is charged
                    self.queue.retry(slot, unsent.token)
                yield from self._drain(slot, lane)  # answers it sent before dying count
                yield from self._lost(slot, lane)
                try:
                    yield from self._fill(slot, lane)
                except WorkerGone as err:
                    raise ExecutorError(
                        f"worker processes die as soon as they start ({err}); "
                        "see the messages above"
                    ) from err

    def _fill(self, slot: int, lane: Lane) -> Iterator[Outcome]:
        timeout = self.supervision.timeout
        if lane.quota_spent():  # it has run its max_tasks_per_worker: a fresh process
            lane.retire()
        if not lane.started:
            _start(lane)
        if lane.flush(timeout):
            return
        while lane.has_room(self.per_lane) and (
            sum(other.held() for other in self.lanes) < self.executor.max_in_flight
        ):
            attempts = self.queue.take(slot)
            if attempts is None:
                return
            try:
                data = encode(self.fn, attempts.task.payload)
            except Exception as err:  # an unpicklable function or payload
                cause = f"the task cannot be sent to a worker: {type(err).__name__}: {err}"
                failed = attempts.failed(FailureKind.EXCEPTION, cause, "", "", retries=0)
                assert failed is not None
                yield failed
                continue
            lane.waiting = Sent(attempts, data)
            if lane.flush(timeout):
                return

    def collect(self) -> Iterator[Outcome]:
        """Wait for the next answers, deaths or timeouts; yield the outcomes they settle."""
        busy = [(slot, lane) for slot, lane in enumerate(self.lanes) if lane.sent]
        deadlines = [lane.sent[0].deadline for _, lane in busy if lane.sent[0].deadline]
        deadlines += self._stall_checks([lane.sent[0] for _, lane in busy])
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        watched: list[Any] = [lane.conn for _, lane in busy]
        ready = set(wait(watched + [lane.sentinel for _, lane in busy], timeout))
        for slot, lane in busy:
            died = yield from self._drain(slot, lane)
            if died or lane.sentinel in ready:
                yield from self._lost(slot, lane)
            elif lane.sent and (lane.sent[0].deadline or float("inf")) <= time.monotonic():
                yield from self._timed_out(slot, lane)
            elif lane.sent:
                yield from self._check_stall(slot, lane)

    def _stall_checks(self, running: list[Sent]) -> list[float]:
        """When the running tasks next cross a stall threshold (``time.monotonic``)."""
        limits = None if self.stall is None else self.stall.thresholds()
        if limits is None:
            return []
        stalled, give_up = limits
        return [
            item.began + (give_up if item.stalled else stalled)
            for item in running
            if item.began is not None
        ]

    def _check_stall(self, slot: int, lane: Lane) -> Iterator[Outcome]:
        """Report the running task once it is stalled; give it up past the limit."""
        item, watch = lane.sent[0], self.stall
        limits = None if watch is None else watch.thresholds()
        if watch is None or limits is None or item.began is None:
            return
        stalled, give_up = limits
        seconds = time.monotonic() - item.began
        if seconds >= give_up:
            lane.kill()
            cause = (
                f"stalled: ran {seconds:.0f} s without an answer, over {give_up:.0f} s "
                f"({watch.rule.limit:g} x the stall threshold of {stalled:.0f} s); "
                "the worker was replaced (set --timeout to choose the limit yourself)"
            )
            yield from self._replace(slot, lane, FailureKind.TIMEOUT, cause)
        elif seconds >= stalled and not item.stalled:
            item.stalled = True
            key = item.token.task.key
            log.warning(
                "task %s has run %.0f s, over %.0f s (%g x the 95th percentile of this run's "
                "task times, %.3g s): stalled; its worker (pid %s) is replaced at %.0f s",
                key, seconds, stalled, watch.rule.factor, watch.p95(),
                lane.last_pid, give_up,
            )  # fmt: skip
            if self.supervision.on_stall is not None:
                self.supervision.on_stall(key, seconds, give_up)

    def _drain(self, slot: int, lane: Lane) -> Generator[Outcome, None, bool]:
        """Settle every answer the worker has sent; return whether its pipe broke."""
        try:
            while lane.sent and lane.conn is not None and lane.conn.poll():
                got = lane.receive(self.supervision.timeout)
                if got is not None:  # None: the worker said it is ready
                    yield from self._settle(slot, *got)
        except (EOFError, OSError):
            return True
        return False

    def _settle(self, slot: int, item: Sent, answer: Any) -> Iterator[Outcome]:
        attempts: Attempts = item.token
        outcome: Outcome | None
        if isinstance(answer, TaskError):
            outcome = attempts.failed(
                FailureKind(answer.kind), answer.message, answer.traceback, answer.worker,
                retries=self.supervision.retries,
            )  # fmt: skip
        else:
            outcome = attempts.succeeded(answer.value, answer.worker, answer.seconds)
            if self.stall is not None:
                self.stall.add(answer.seconds)
        if outcome is None:
            self.queue.retry(slot, attempts)
        else:
            yield outcome

    def _lost(self, slot: int, lane: Lane) -> Iterator[Outcome]:
        """The worker died: fail the task it was running, requeue the rest, replace it."""
        kind, cause = describe_exit(lane.kill(grace=1.0))
        yield from self._replace(slot, lane, kind, cause)

    def _timed_out(self, slot: int, lane: Lane) -> Iterator[Outcome]:
        """The running task is past its deadline: kill and replace the worker."""
        lane.kill()
        cause = f"timed out after {self.supervision.timeout:g} s; the worker was replaced"
        yield from self._replace(slot, lane, FailureKind.TIMEOUT, cause)

    def _replace(self, slot: int, lane: Lane, kind: FailureKind, cause: str) -> Iterator[Outcome]:
        """Start a new worker for the killed one; fail the task it was running. The tasks
        queued behind that one never ran: they go back to the queue, uncharged."""
        worker = f"pid {lane.last_pid}"
        items = lane.take_back()
        _start(lane)
        if not items:
            return
        for item in reversed(items[1:]):
            self.queue.retry(slot, item.token)
        attempts: Attempts = items[0].token
        outcome = attempts.failed(kind, cause, "", worker, retries=self.supervision.retries)
        if outcome is None:
            self.queue.retry(slot, attempts)
        else:
            yield outcome

    def abandon(self) -> None:
        """The caller stopped early: workers still holding tasks are stopped (the next
        run starts new ones), so no late answer reaches a later run."""
        for lane in self.lanes:
            if lane.held():
                lane.stop()


#: Tries to start a worker when the fork server fails, a new server before each retry.
_START_ATTEMPTS = 4


def _start(lane: Lane) -> None:
    """Start ``lane``'s worker; if the fork server died (a worker cannot start from it),
    start a new server and try again.

    A server that is dying may still look alive for a moment (its socket then refuses
    the connection), so the retries are a few, 0.1 s apart and more.
    """
    for attempt in range(_START_ATTEMPTS):
        try:
            if attempt:
                restart_forkserver()
            lane.start()
            return
        except (OSError, RuntimeError, EOFError) as err:
            if lane.method != "forkserver" or attempt == _START_ATTEMPTS - 1:
                raise _cannot_start(err) from err
            if attempt == 0:
                log.warning(
                    "a worker could not start from the fork server (%s: %s); "
                    "starting a new server if it died, then trying again",
                    type(err).__name__,
                    err,
                )
            time.sleep(0.1 * attempt)


def _cannot_start(err: BaseException) -> ExecutorError:
    return ExecutorError(
        f"the worker processes could not start ({type(err).__name__}: {err}); if tilewise "
        "runs from a script, put the call under 'if __name__ == \"__main__\":' "
        "(workers import the main module), or see the messages above"
    )
