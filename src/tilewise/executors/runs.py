"""Runs of neighbouring tasks in one dispatch, with outcomes, retries and failures per task.

Every dispatch costs something fixed — a pickle and a pipe round trip on the
local executor, a client → scheduler → worker → client round trip and a child
process hand-off on Dask (~15 ms). Tiles that take less than that are
dominated by it. :func:`map_in_runs` measures the first tasks one by one, then
hands the rest out in *runs* of consecutive tasks sized so that a run is about
:data:`TARGET_SECONDS` of work; a worker runs a run's tasks one after the
other in one process (so its caches keep the decoded input the next tile
shares) and sends back one answer per task.

Outcomes stay per task: each task of a run gets its own :class:`Done` (its own
seconds) or its own exception, charged as one attempt and retried alone (a
failure of the environment, :attr:`FailureKind.ENVIRONMENT`, is not retried). What a
run cannot say per task — its process crashed, hung past the run's timeout,
was lost — sends all its tasks back one per dispatch, so a poison tile costs
itself only (as a batch does for its groups of files). The failed run counts
as each of its tasks' first attempt (its cause is the first of their history,
"... (in a run of N tiles, retried alone)"), but every task still gets at
least one attempt alone: with ``retries=0`` a task that shared a run with a
poison tile is tried once more by itself, never failed for its neighbour.

Executors need nothing for this: a run is an ordinary task whose payload is
the tasks' payloads, given one attempt and a timeout of its expected time plus
one task's timeout.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from tilewise.executors._worker import TaskError, TaskResult, run_task
from tilewise.executors.base import Done, Executor, Failed, FailureKind, Outcome, Supervision, Task

__all__ = [
    "MOST_PER_RUN",
    "TARGET_SECONDS",
    "RunOfTasks",
    "closing_outcomes",
    "map_in_runs",
    "run_length",
]

log = logging.getLogger(__name__)

#: Seconds of work one run of tasks aims at: long enough to amortize a Dask round trip
#: (~10 ms) to 2 % and to let one client keep (its tasks/s) x 0.5 cores busy, short enough
#: that a crash or a timeout loses little.
TARGET_SECONDS = 0.5
#: Most tasks in one run (bounds a run's message and its answer).
MOST_PER_RUN = 1000
#: Runs per worker in the rest of the work, at least: keeps the end of a run balanced.
_RUNS_PER_WORKER = 4
#: A run's timeout beyond one task's: this many times its expected seconds.
_TIMEOUT_SLACK = 4.0


@dataclass(frozen=True, slots=True)
class RunOfTasks:
    """A picklable callable that runs ``fn`` on each payload of a run, in order.

    Returns one :class:`TaskResult` or :class:`TaskError` per payload; an
    exception in one task never stops the others.
    """

    fn: Callable[[Any], Any]

    def __call__(self, payloads: tuple[Any, ...]) -> list[TaskResult | TaskError]:
        return [run_task(self.fn, payload) for payload in payloads]


def run_length(seconds_per_task: float, remaining: int, workers: int) -> int:
    """Tasks per run: ~:data:`TARGET_SECONDS` of work, and at least four runs per worker left.

    >>> run_length(0.001, 100_000, 2)
    500
    >>> run_length(0.001, 1_000, 2)
    125
    >>> run_length(0.5, 100_000, 2)
    1
    """
    by_time = int(TARGET_SECONDS / max(seconds_per_task, 1e-6))
    by_share = math.ceil(remaining / (_RUNS_PER_WORKER * max(1, workers)))
    return max(1, min(by_time, by_share, MOST_PER_RUN))


def map_in_runs(
    executor: Executor,
    fn: Callable[[Any], Any],
    tasks: Iterable[Task],
    *,
    count: int,
    locality: bool = False,
    supervision: Supervision | None = None,
) -> Generator[Outcome, None, None]:
    """:meth:`Executor.map_tasks`, with tasks that are quick handed out in runs.

    Parameters
    ----------
    executor
        Any executor; it is not changed.
    fn, tasks
        As for ``map_tasks``; consecutive tasks should be neighbours (they share inputs).
    count
        How many tasks ``tasks`` yields (sizes the runs; ``tasks`` stays lazy).
    locality, supervision
        As for ``map_tasks``.

    Yields
    ------
    Outcome
        One per task, as soon as it is known; attempts and history count a run
        that failed as a whole as one attempt of each of its tasks. Closing the
        generator early closes the executor's, which stops the tasks under way.

    Notes
    -----
    An executor that replaces its workers every N tasks (``max_tasks_per_worker``)
    gets every task alone: the limit is meant per tile, and a run would stretch it.
    """
    supervision = supervision or executor.supervision
    source = iter(tasks)
    workers = max(1, executor.workers)
    probe = list(islice(source, 2 * workers))
    seconds: list[float] = []
    with closing_outcomes(
        executor.map_tasks(fn, probe, locality=locality, supervision=supervision)
    ) as probed:
        for outcome in probed:
            if isinstance(outcome, Done):
                seconds.append(outcome.seconds)
            yield outcome
    remaining = count - len(probe)
    if remaining <= 0:
        return
    import statistics  # here, once tiles run, not at start-up: ~5 ms (decimal, fractions)

    per_task = statistics.median(seconds) if seconds else TARGET_SECONDS
    # a worker replaced every N tasks must be replaced every N tiles: runs would stretch that
    recycled = executor.supervision.max_tasks_per_worker is not None
    length = 1 if recycled else run_length(per_task, remaining, workers)
    if length == 1:
        log.debug("tasks take %.3f s each: one per dispatch", per_task)
        yield from executor.map_tasks(fn, source, locality=locality, supervision=supervision)
        return
    log.debug("tasks take %.4f s each: %d per dispatch", per_task, length)
    yield from _runs(executor, fn, source, length, per_task, locality, supervision)


def _runs(
    executor: Executor,
    fn: Callable[[Any], Any],
    source: Iterator[Task],
    length: int,
    per_task: float,
    locality: bool,
    supervision: Supervision,
) -> Iterator[Outcome]:
    """The runs of ``length`` tasks, then the second pass for the tasks that need it."""
    held: dict[int, list[Task]] = {}  # the tasks of each run handed out and not settled

    def runs() -> Iterator[Task]:
        number = 0
        while chunk := list(islice(source, length)):
            held[number] = chunk
            yield Task(number, tuple(task.payload for task in chunk))
            number += 1

    timeout = supervision.timeout
    if timeout is not None:
        timeout += _TIMEOUT_SLACK * length * per_task
    once = replace(supervision, retries=0, timeout=timeout)
    again: dict[int, tuple[Task, str]] = {}  # tasks to retry alone, with their first cause
    first = executor.map_tasks(RunOfTasks(fn), runs(), locality=locality, supervision=once)
    with closing_outcomes(first):
        for outcome in first:
            chunk = held.pop(outcome.key)
            if isinstance(outcome, Failed):
                log.info(
                    "a run of %d tasks failed as a whole (%s); retrying them one by one",
                    len(chunk),
                    outcome.cause,
                )
                cause = f"{outcome.cause} (in a run of {len(chunk)} tiles, retried alone)"
                again.update((task.key, (task, cause)) for task in chunk)
                continue
            answers = list(zip(chunk, outcome.value, strict=True))
            for task, answer in answers:  # the done first: a caller may stop at a failure
                if isinstance(answer, TaskResult):
                    yield Done(task.key, answer.value, outcome.worker, answer.seconds)
            for task, answer in answers:
                if isinstance(answer, TaskResult):
                    continue
                if supervision.retries == 0 or answer.kind == FailureKind.ENVIRONMENT:
                    yield _failed(task, answer, outcome.worker)
                else:
                    log.info("task %s attempt 1 failed (%s); retrying", task.key, answer.message)
                    again[task.key] = (task, answer.message)
    if not again:
        return
    fewer = replace(supervision, retries=max(0, supervision.retries - 1))
    tasks = [task for task, _ in again.values()]
    with closing_outcomes(executor.map_tasks(fn, tasks, supervision=fewer)) as second:
        for outcome in second:
            history = (again[outcome.key][1], *outcome.history)
            yield replace(outcome, attempts=outcome.attempts + 1, history=history)


@contextmanager
def closing_outcomes(outcomes: Iterator[Outcome]) -> Iterator[Iterator[Outcome]]:
    """``outcomes``, closed on leaving (an executor's generator then stops its tasks)."""
    try:
        yield outcomes
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()


def _failed(task: Task, answer: TaskError, worker: str) -> Failed:
    return Failed(
        task.key,
        FailureKind(answer.kind),
        answer.message,
        answer.traceback,
        worker,
        answer.seconds,
        1,
        (answer.message,),
    )
