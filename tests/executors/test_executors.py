"""Conformance suite for executors: every task yields exactly one outcome, failures carry causes."""

from __future__ import annotations

import pytest

from tests.executors import tasks
from tilewise.executors import Done, Failed, FailureKind, Supervision, Task, make_executor
from tilewise.executors.local import describe_exit


class ExecutorTests:
    """Subclass and set ``name``; the same assertions hold for every executor."""

    name = "serial"

    def make(self, **supervision):
        return make_executor(self.name, workers=2, supervision=Supervision(**supervision))

    def test_every_task_yields_exactly_one_done(self):
        with self.make() as executor:
            outcomes = list(executor.map_tasks(tasks.square, (Task(i, i) for i in range(50))))
        assert sorted(o.key for o in outcomes) == list(range(50))
        assert all(isinstance(o, Done) and o.value == o.key**2 for o in outcomes)
        assert all(o.worker and o.seconds >= 0 and o.attempts == 1 for o in outcomes)

    def test_an_exception_fails_only_its_task_with_the_cause(self):
        with self.make(retries=1) as executor:
            outcomes = {
                o.key: o
                for o in executor.map_tasks(tasks.fail_on_three, [Task(i, i) for i in range(6)])
            }
        failed = outcomes[3]
        assert isinstance(failed, Failed)
        assert failed.kind is FailureKind.EXCEPTION
        assert failed.cause == "RuntimeError: three is right out"
        assert "Traceback" in failed.detail
        assert failed.attempts == 2 and len(failed.history) == 2
        assert all(isinstance(outcomes[i], Done) for i in (0, 1, 2, 4, 5))

    def test_a_failure_of_the_environment_is_final_at_once(self):
        with self.make(retries=2) as executor:
            work = [Task(i, i) for i in range(5)]
            outcomes = {
                o.key: o for o in executor.map_tasks(tasks.environment_fails_two_and_three, work)
            }
        for key, words in ((2, "No space left"), (3, "s3://bucket/key")):
            failed = outcomes[key]
            assert isinstance(failed, Failed) and failed.kind is FailureKind.ENVIRONMENT
            assert failed.attempts == 1 and words in failed.cause  # not retried
        assert all(isinstance(outcomes[i], Done) for i in (0, 1, 4))

    def test_transient_failures_are_retried(self, tmp_path):
        with self.make(retries=1) as executor:
            outcomes = list(
                executor.map_tasks(
                    tasks.fail_first_time, [Task(i, (i, str(tmp_path))) for i in range(6)]
                )
            )
        assert all(isinstance(o, Done) for o in outcomes)
        assert {o.key: o.attempts for o in outcomes} == {0: 1, 1: 2, 2: 1, 3: 2, 4: 1, 5: 2}
        assert all("transient failure" in o.history[0] for o in outcomes if o.attempts == 2)

    def test_no_tasks_is_fine(self):
        with self.make() as executor:
            assert list(executor.map_tasks(tasks.square, [])) == []

    def test_describe(self):
        with self.make() as executor:
            facts = executor.describe()
        assert facts["name"] == self.name and facts["workers"] >= 1

    def test_supervision_given_per_call_applies_to_that_call_only(self):
        with self.make(retries=0) as executor:
            own = executor.supervision
            work = [Task(i, i) for i in range(5)]
            retried = {
                o.key: o
                for o in executor.map_tasks(
                    tasks.fail_on_three, work, supervision=Supervision(retries=2)
                )
            }
            assert executor.supervision == own
            again = list(executor.map_tasks(tasks.fail_on_three, [Task(3, 3)]))
        assert isinstance(retried[3], Failed) and retried[3].attempts == 3
        assert isinstance(again[0], Failed) and again[0].attempts == 1


class _TimeoutTests(ExecutorTests):
    """For executors with timeouts (all but the serial one)."""

    def test_a_timeout_given_per_call_stops_a_hanging_task(self):
        with self.make(retries=0) as executor:
            limited = Supervision(retries=0, timeout=1.0)
            work = [Task(0, 0), Task(1, None)]
            outcomes = {
                o.key: o for o in executor.map_tasks(tasks.hang_on_one, work, supervision=limited)
            }
        assert isinstance(outcomes[0], Done)
        assert isinstance(outcomes[1], Failed) and outcomes[1].kind is FailureKind.TIMEOUT


class TestSerial(ExecutorTests):
    name = "serial"


class TestLocal(_TimeoutTests):
    name = "local"

    def test_bounded_in_flight(self):
        from tilewise.executors.local import LocalExecutor

        pulled = []

        def source():
            for i in range(40):
                pulled.append(i)
                yield Task(i, i)

        executor = LocalExecutor(2, max_in_flight=3)
        try:
            for seen, _ in enumerate(executor.map_tasks(tasks.square, source()), start=1):
                # never more than max_in_flight tasks taken ahead of the results
                assert len(pulled) <= seen + 3
        finally:
            executor.close()


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (-11, FailureKind.CRASH, "SIGSEGV"),
        (-6, FailureKind.CRASH, "SIGABRT"),
        (-9, FailureKind.MEMORY, "out of memory"),
        (3, FailureKind.CRASH, "exited with code 3"),
    ],
)
def test_exit_codes_are_described(code, kind, words):
    got_kind, cause = describe_exit(code)
    assert got_kind is kind and words in cause


def test_bad_settings_are_refused():
    from tilewise.errors import UsageError

    with pytest.raises(UsageError, match="retries"):
        Supervision(retries=-1)
    with pytest.raises(UsageError, match="unknown executor"):
        make_executor("threads")


@pytest.mark.dask
class TestDask(_TimeoutTests):
    name = "dask"

    @pytest.fixture(autouse=True)
    def _cluster(self, dask_scheduler):
        self.scheduler = dask_scheduler

    def make(self, **supervision):
        return make_executor(
            "dask", scheduler=self.scheduler, supervision=Supervision(**supervision)
        )
