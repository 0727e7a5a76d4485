"""The local executor's lanes: one supervised worker process and its pipe each.

These run real worker processes and check what the conformance suite does not:
that big tasks and answers cannot deadlock the pipes, that tasks queued behind a
crash are not charged for it, that an abandoned run leaves nothing behind for
the next, and that tasks or answers that do not pickle fail alone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator
from typing import Any

import pytest

from tests.executors import tasks
from tilewise.executors import Done, Failed, FailureKind, Outcome, Supervision, Task
from tilewise.executors.local import LocalExecutor


def value(outcome: Outcome) -> Any:
    """The value of an outcome that must be done."""
    assert isinstance(outcome, Done), outcome
    return outcome.value


@pytest.mark.timeout(120)
def test_big_tasks_and_big_answers_do_not_deadlock_the_pipes():
    # Payloads and answers far over any pipe buffer, many in flight: the main
    # process must never block writing while a worker blocks writing back.
    payload = b"x" * (512 * 1024)
    with LocalExecutor(2, max_in_flight=8) as executor:
        work = (Task(i, (payload[: len(payload) - i], 1 << 20)) for i in range(24))
        outcomes = list(executor.map_tasks(tasks.sized_answer, work))
    assert sorted(o.key for o in outcomes) == list(range(24))
    for outcome in outcomes:
        assert isinstance(outcome, Done)
        assert len(outcome.value) == 1 << 20
        assert outcome.value[0] == (len(payload) - outcome.key) % 251


def test_small_tasks_are_queued_ahead_for_a_busy_worker():
    with LocalExecutor(1, max_in_flight=4) as executor:
        lane = executor._ensure_lanes()[0]
        assert lane.prefetch_bytes >= 1024
        outcomes = list(executor.map_tasks(tasks.nap, (Task(i, i) for i in range(6))))
    assert [o.key for o in outcomes] == list(range(6))


def test_tasks_queued_behind_a_crash_are_not_charged_for_it():
    supervision = Supervision(retries=0)
    with LocalExecutor(1, supervision, max_in_flight=4) as executor:
        outcomes = {
            o.key: o
            for o in executor.map_tasks(tasks.abort_on_three, map(Task, range(8), range(8)))
        }
    crashed = outcomes.pop(3)
    assert isinstance(crashed, Failed) and crashed.kind is FailureKind.CRASH
    assert "SIGABRT" in crashed.cause and crashed.worker.startswith("pid ")
    assert all(isinstance(o, Done) and o.attempts == 1 for o in outcomes.values())
    assert sorted(outcomes) == [0, 1, 2, 4, 5, 6, 7]


def test_an_abandoned_run_leaves_no_answers_for_the_next():
    with LocalExecutor(2, max_in_flight=4) as executor:
        first = executor.map_tasks(tasks.nap, (Task(i, 1000 + i) for i in range(40)))
        assert isinstance(next(first), Done) and isinstance(first, Generator)
        first.close()  # the caller stops early, tasks still in the workers
        outcomes = list(executor.map_tasks(tasks.square, (Task(i, i) for i in range(10))))
    assert sorted((o.key, value(o)) for o in outcomes) == [(i, i * i) for i in range(10)]


def test_a_task_that_does_not_pickle_fails_alone():
    work = [Task(0, 0), Task(1, lambda: 1), Task(2, 2)]
    with LocalExecutor(2) as executor:
        outcomes = {o.key: o for o in executor.map_tasks(tasks.square, work)}
    assert isinstance(outcomes[1], Failed) and outcomes[1].kind is FailureKind.EXCEPTION
    assert "cannot be sent to a worker" in outcomes[1].cause
    assert value(outcomes[0]) == 0 and value(outcomes[2]) == 4


def test_a_task_that_does_not_load_in_the_worker_fails_alone():
    work = [Task(0, 0), Task(1, tasks.Unloadable()), Task(2, 2)]
    with LocalExecutor(1, Supervision(retries=0)) as executor:
        outcomes = {o.key: o for o in executor.map_tasks(tasks.square, work)}
    assert isinstance(outcomes[1], Failed)
    assert "could not be loaded in the worker" in outcomes[1].cause
    assert "cannot be rebuilt here" in outcomes[1].cause
    assert value(outcomes[0]) == 0 and value(outcomes[2]) == 4


def test_an_answer_that_does_not_pickle_fails_alone_and_the_worker_lives():
    with LocalExecutor(1, Supervision(retries=0)) as executor:
        before = value(next(iter(executor.map_tasks(tasks.pid_of, [Task(0, 0)]))))
        outcomes = {
            o.key: o for o in executor.map_tasks(tasks.lock_on_two, map(Task, range(4), range(4)))
        }
        after = value(next(iter(executor.map_tasks(tasks.pid_of, [Task(0, 0)]))))
    assert isinstance(outcomes[2], Failed)
    assert "result cannot be sent back" in outcomes[2].cause
    assert [value(outcomes[k]) for k in (0, 1, 3)] == [0, 1, 3]
    assert before == after


def test_an_answer_the_main_process_cannot_load_fails_alone():
    with LocalExecutor(1, Supervision(retries=0)) as executor:
        outcomes = {
            o.key: o
            for o in executor.map_tasks(tasks.unloadable_on_one, map(Task, range(3), range(3)))
        }
    assert isinstance(outcomes[1], Failed) and outcomes[1].kind is FailureKind.EXCEPTION
    assert "cannot be loaded by the main process" in outcomes[1].cause
    assert value(outcomes[0]) == 0 and value(outcomes[2]) == 2


def test_a_worker_killed_while_idle_is_replaced_at_the_next_task():
    with LocalExecutor(1, Supervision(retries=0)) as executor:
        pid = value(next(iter(executor.map_tasks(tasks.pid_of, [Task(0, 0)]))))
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        outcomes = list(executor.map_tasks(tasks.square, map(Task, range(5), range(5))))
    assert all(isinstance(o, Done) and o.attempts == 1 for o in outcomes)
    assert sorted(value(o) for o in outcomes) == [0, 1, 4, 9, 16]


def test_workers_are_replaced_after_their_quota_of_tasks():
    with LocalExecutor(1, Supervision(max_tasks_per_worker=3)) as executor:
        pids = [value(o) for o in executor.map_tasks(tasks.pid_of, map(Task, range(9), range(9)))]
    assert len(set(pids)) == 3
    assert all(pids.count(pid) == 3 for pid in set(pids))


def test_close_stops_every_worker():
    executor = LocalExecutor(2)
    pids = {value(o) for o in executor.map_tasks(tasks.pid_of, map(Task, range(4), range(4)))}
    executor.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.timeout(120)
def test_many_small_tasks_queued_ahead_of_big_answers_do_not_deadlock():
    # The kernel charges each queued message more than its bytes: a cap on bytes
    # alone would let hundreds of tiny tasks fill the pipe while the worker blocks
    # writing a big answer.
    with LocalExecutor(1, max_in_flight=1000) as executor:
        work = (Task(i, (b"", 300_000)) for i in range(300))
        outcomes = list(executor.map_tasks(tasks.sized_answer, work))
    assert len(outcomes) == 300 and all(isinstance(o, Done) for o in outcomes)


def test_a_run_closed_early_on_a_spent_worker_does_not_stall_the_next():
    with LocalExecutor(1, Supervision(max_tasks_per_worker=1)) as executor:
        first = executor.map_tasks(tasks.pid_of, map(Task, range(5), range(5)))
        next(first)
        assert isinstance(first, Generator)
        first.close()
        outcomes = list(executor.map_tasks(tasks.square, map(Task, range(5), range(5))))
    assert sorted(value(o) for o in outcomes) == [0, 1, 4, 9, 16]


def test_an_error_from_the_callers_tasks_reaches_the_caller():
    def tasks_then_error():
        yield Task(0, 0)
        yield Task(1, 1)
        raise FileNotFoundError("the task list went away")

    with LocalExecutor(1) as executor:
        with pytest.raises(FileNotFoundError, match="went away"):
            list(executor.map_tasks(tasks.square, tasks_then_error()))
        assert [value(o) for o in executor.map_tasks(tasks.square, [Task(0, 3)])] == [9]


def test_a_run_cut_short_by_another_says_so_and_the_other_completes():
    from tilewise.errors import ExecutorError

    with LocalExecutor(2) as executor:
        first = executor.map_tasks(tasks.nap, map(Task, range(20), range(20)))
        next(first)
        second = list(executor.map_tasks(tasks.square, map(Task, range(6), range(6))))
        with pytest.raises(ExecutorError, match="cut short"):
            list(first)
    assert sorted(value(o) for o in second) == [0, 1, 4, 9, 16, 25]


def test_stop_during_a_run_ends_it_clearly():
    from tilewise.errors import ExecutorError

    with LocalExecutor(2) as executor:
        run = executor.map_tasks(tasks.nap, map(Task, range(20), range(20)))
        next(run)
        executor.stop()
        with pytest.raises(ExecutorError, match="cut short"):
            list(run)


def test_a_spawned_workers_start_up_does_not_count_against_the_timeout():
    # A spawned worker imports everything before it can run anything (0.2-0.3 s
    # here, longer than this timeout); its first task's clock starts when it is ready.
    supervision = Supervision(timeout=0.1, retries=0)
    with LocalExecutor(1, supervision, start_method="spawn") as executor:
        outcomes = list(executor.map_tasks(tasks.square, map(Task, range(4), range(4))))
    assert all(isinstance(o, Done) for o in outcomes), outcomes


def test_a_hang_is_still_caught_on_a_fresh_worker():
    supervision = Supervision(timeout=0.5, retries=0)
    with LocalExecutor(1, supervision) as executor:
        outcome = next(iter(executor.map_tasks(tasks.hang, [Task(0, 0)])))
    assert isinstance(outcome, Failed) and outcome.kind is FailureKind.TIMEOUT


@pytest.mark.timeout(120)
def test_a_fork_server_killed_while_a_worker_starts_is_replaced():
    # The fork server is stopped, so the next worker start waits on it, then killed:
    # that start fails ("unexpected EOF") and the workers forked from it die with it.
    import threading
    from multiprocessing import forkserver

    supervision = Supervision(retries=2, max_tasks_per_worker=1)  # a new worker per task
    with LocalExecutor(2, supervision, start_method="forkserver") as executor:
        next(iter(executor.map_tasks(tasks.pid_of, [Task(0, 0)])))
        server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        assert server is not None
        os.kill(server, signal.SIGSTOP)
        killer = threading.Timer(0.5, os.kill, args=(server, signal.SIGKILL))
        killer.start()
        outcomes = list(executor.map_tasks(tasks.nap, map(Task, range(20), range(20))))
        killer.join()
    assert sorted(o.key for o in outcomes if isinstance(o, Done)) == list(range(20))
    assert forkserver._forkserver._forkserver_pid != server  # type: ignore[attr-defined]


def test_workers_from_a_fork_server_see_the_environment_as_it_is_when_they_start(monkeypatch):
    # a notebook sets AWS_ENDPOINT_URL after a first run started the fork server
    with LocalExecutor(1, Supervision(max_tasks_per_worker=1), start_method="forkserver") as ex:
        assert value(next(iter(ex.map_tasks(tasks.square, [Task(0, 3)])))) == 9
        monkeypatch.setenv("TILEWISE_TEST_SET_LATER", "set later")
        monkeypatch.delenv("HOME", raising=False)
        names = ["TILEWISE_TEST_SET_LATER", "HOME"]
        outcomes = ex.map_tasks(tasks.environment_variable, map(Task, range(2), names))
        seen = {o.key: value(o) for o in outcomes}
    assert seen == {0: "set later", 1: None}
