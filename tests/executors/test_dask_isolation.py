"""The child processes that run tiles for a Dask worker (here called outside Dask).

``run_isolated`` must never raise: whatever happens to the tile or its process
comes back as a result, so the Dask task itself always succeeds.
"""

from __future__ import annotations

from tests.executors import tasks
from tilewise.executors._dask_isolation import Isolation, retire_idle_pools, run_isolated
from tilewise.executors._lane import Lane
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
