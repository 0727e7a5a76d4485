"""The child processes that run tiles for a Dask worker (here called outside Dask).

``run_isolated`` must never raise: whatever happens to the tile or its process
comes back as a result, so the Dask task itself always succeeds.
"""

from __future__ import annotations

import pickle

from tests.executors import tasks
from tilewise.executors._dask_isolation import (
    Isolation,
    retire_idle_pools,
    run_encoded,
    run_isolated,
    warm_up,
)
from tilewise.executors._lane import Lane, encode
from tilewise.executors._worker import TaskError, TaskResult


def test_a_tile_runs_in_a_child_process_that_is_kept_for_the_next():
    first = run_isolated(tasks.pid_of, 0, Isolation())
    second = run_isolated(tasks.pid_of, 0, Isolation())
    assert isinstance(first, TaskResult) and isinstance(second, TaskResult)
    assert first.value == second.value  # the same child served both
    squared = run_isolated(tasks.square, 7, Isolation())
    assert isinstance(squared, TaskResult) and squared.value == 49
    assert retire_idle_pools() >= 1


def test_a_crash_a_hang_and_an_exception_come_back_as_results():
    crashed = run_isolated(tasks.abort_on_three, 3, Isolation())
    assert isinstance(crashed, TaskError) and crashed.kind == "crash"
    assert "SIGABRT" in crashed.message and crashed.traceback.startswith("child process ")
    hung = run_isolated(tasks.nap, 1, Isolation(timeout=0.01))
    assert isinstance(hung, TaskError) and hung.kind == "timeout"
    assert "Dask worker was not affected" in hung.message
    failed = run_isolated(tasks.fail_on_three, 3, Isolation())
    assert isinstance(failed, TaskError) and "three is right out" in failed.message
    squared = run_isolated(tasks.square, 5, Isolation())
    assert isinstance(squared, TaskResult) and squared.value == 25  # and life goes on


def test_no_exception_escapes_when_no_child_process_can_start(monkeypatch):
    def refuse(self: Lane) -> None:
        raise OSError("Resource temporarily unavailable")

    retire_idle_pools()
    monkeypatch.setattr(Lane, "start", refuse)
    result = run_isolated(tasks.square, 3, Isolation(timeout=5))
    assert isinstance(result, TaskError) and result.kind == "crash"
    assert "could not run" in result.message and "temporarily unavailable" in result.message
    unpicklable = run_isolated(tasks.square, lambda: 3, Isolation(timeout=5))
    assert isinstance(unpicklable, TaskError) and "cannot be sent" in unpicklable.message


def test_warm_up_starts_the_missing_processes_at_once_and_a_tile_then_uses_one():
    retire_idle_pools()
    isolation = Isolation(timeout=30)
    assert warm_up(isolation) == 1  # one per Dask thread; outside Dask, one
    assert warm_up(isolation) == 0  # already there: nothing started, nothing held
    first = run_encoded(encode(tasks.pid_of, None), isolation)
    second = run_isolated(tasks.pid_of, None, isolation)
    assert isinstance(first, TaskResult) and isinstance(second, TaskResult)
    assert first.value == second.value  # the warmed process served both
    assert retire_idle_pools() == 1


def test_an_encoded_task_fails_as_a_result_like_any_other():
    crashed = run_encoded(encode(tasks.abort_on_three, 3), Isolation(timeout=30))
    assert isinstance(crashed, TaskError) and "SIGABRT" in crashed.message
    hung = run_encoded(encode(tasks.nap, 1), Isolation(timeout=0.01))
    assert isinstance(hung, TaskError) and hung.kind == "timeout"
    assert isinstance(run_encoded(encode(tasks.square, 4), Isolation()), TaskResult)
    retire_idle_pools()


def test_what_travels_with_each_task_pickles_to_an_equal_value():
    isolation = Isolation(timeout=1.5, memory_limit=2**20, max_tasks_per_worker=3, stall=(1, 3))
    result = TaskResult({"receipt": None}, "tcp://127.0.0.1:1", 0.25)
    error = TaskError("crash", "SIGSEGV", "child process 7", "tcp://127.0.0.1:1", 0.5)
    for value in (isolation, Isolation(), result, error):
        assert pickle.loads(pickle.dumps(value)) == value
