"""The dask executor: tile tasks on a Dask cluster, with the local executor's supervision.

Tasks stay small: a task is ``fn`` and its payload (specs and geometry, a few
hundred bytes a tile), encoded once here and handed on as bytes to the tile
process, and the tasks that fit are submitted together. Workers read and write
the image files themselves, so the input must be readable and the output's
directory writable at the same path on every worker (see ``docs/distributed.md``).
Results are small receipts.

Each Dask task runs its tile in a child process owned by the Dask worker
(:mod:`tilewise.executors._dask_isolation`): a segfault, a hang past the
timeout or a runaway allocation costs that child, never the Dask worker and
what it holds. Retries are tilewise's own: a failed attempt is resubmitted
under a new key, never through Dask's ``allowed-failures``. A Dask worker that
dies (killed, machine lost) has its tasks rescheduled by Dask. If the
scheduler is lost the run stops with :class:`~tilewise.errors.ExecutorError`;
finished tiles are in the journal, so ``--resume`` continues on any cluster.
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from tilewise.errors import ExecutorError, UsageError
from tilewise.executors._dask_cluster import Connection, connect, import_distributed, tls_security
from tilewise.executors._dask_isolation import (
    Isolation,
    retire_idle_pools,
    run_encoded,
    run_isolated,
    warm_up,
)
from tilewise.executors._lane import encode
from tilewise.executors._stall import StallWatch
from tilewise.executors._worker import TaskError, TaskResult
from tilewise.executors.base import Attempts, Executor, FailureKind, Outcome, Supervision, Task

__all__ = ["DaskExecutor"]

log = logging.getLogger(__name__)

_CAPACITY_REFRESH_S = 5.0
_SCHEDULER_LOST = "scheduler-connection-lost"


class DaskExecutor(Executor):
    """Tile tasks on a Dask cluster: an existing one, or a LocalCluster on 127.0.0.1.

    Connects (or starts the LocalCluster) when made, so a wrong address fails
    before any output is touched. A ``tilewise.run``/``batch`` that made the
    executor (``executor="dask"``) closes it at the end; an executor you pass
    in stays open for further calls until you close it (a closed one connects
    again on its next use; a LocalCluster is then started anew).

    Parameters
    ----------
    workers
        Worker processes of the LocalCluster started when no cluster is named
        (default: one per core; each single-threaded). Ignored for an existing cluster.
    supervision
        Retries, per-tile timeout, memory limit and recycling, applied to the
        child process that runs each tile on its Dask worker.
    scheduler
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786`` or ``tls://...``.
    scheduler_file
        A scheduler file written by ``dask scheduler --scheduler-file``.
    client
        An existing synchronous ``distributed.Client`` (left open at the end).
    security
        A ``distributed.Security`` (e.g. ``Security.temporary()``); with no
        cluster named, the LocalCluster then talks TLS.
    tls_ca_file, tls_cert, tls_key
        PEM files for mutual TLS, used for every role; an alternative to ``security``.
    max_in_flight
        Tasks submitted at once (default: twice the cluster's worker threads).
    connect_timeout
        Seconds to wait for the scheduler.
    dashboard
        Start the LocalCluster's dashboard (on 127.0.0.1, a free port).
    """

    name = "dask"

    def __init__(
        self,
        workers: int | None = None,
        supervision: Supervision | None = None,
        *,
        scheduler: str | None = None,
        scheduler_file: str | None = None,
        client: Any = None,
        security: Any = None,
        tls_ca_file: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        max_in_flight: int | None = None,
        connect_timeout: float = 30.0,
        dashboard: bool = True,
    ) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"workers must be at least 1, got {workers}")
        if max_in_flight is not None and max_in_flight < 1:
            raise UsageError(f"max_in_flight must be at least 1, got {max_in_flight}")
        named = [
            n
            for n, v in (("scheduler", scheduler), ("scheduler_file", scheduler_file))
            if v is not None
        ]
        if client is not None:
            named.append("client")
        if len(named) > 1:
            raise UsageError(f"give one of scheduler, scheduler_file or client, not {named}")
        from_files = tls_security(tls_ca_file, tls_cert, tls_key)
        if from_files is not None and security is not None:
            raise UsageError("give either security= or the TLS files, not both")
        if client is not None and (security is not None or from_files is not None):
            raise UsageError("security applies to the client you pass in; give it there")
        security = security if security is not None else from_files
        if named and workers is not None:
            log.info("--workers %d is ignored: the cluster decides its own workers", workers)
        self._options: dict[str, Any] = {
            "workers": workers,
            "scheduler": scheduler,
            "scheduler_file": scheduler_file,
            "client": client,
            "security": security,
            "connect_timeout": connect_timeout,
            "dashboard": dashboard,
        }
        self._local = not named
        self._tls = security is not None
        self._max_in_flight = max_in_flight
        self._connection: Connection | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._threads = 0
        self._checked = 0.0
        super().__init__(workers or 1, supervision)
        self._isolation = Isolation(
            self.supervision.timeout,
            self.supervision.memory_limit,
            self.supervision.max_tasks_per_worker,
        )
        self._warming: list[Any] = []
        self._connect()

    def _connect(self) -> Connection:
        """The connection to the cluster; made again if a run closed it."""
        if self._connection is not None:
            return self._connection
        connection = self._connection = connect(**self._options)
        # Safety net: an executor dropped without close() must not leave a cluster behind.
        self._finalizer = weakref.finalize(self, connection.close)
        self._threads = connection.threads
        self._checked = time.monotonic()
        self.workers = self._threads or self.workers
        log.info(
            "Dask %s at %s: %d worker thread(s); dashboard: %s",
            "LocalCluster" if self._local else "scheduler",
            connection.address,
            self._threads,
            connection.dashboard or "none",
        )
        return connection

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return self._connection.address if self._connection else ""

    @property
    def dashboard(self) -> str | None:
        """The dashboard's URL, if the scheduler runs one."""
        return self._connection.dashboard if self._connection else None

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use (None once closed)."""
        return self._connection.client if self._connection else None

    def describe(self) -> dict[str, Any]:
        connection = self._connect()
        return {
            **super().describe(),
            "scheduler": connection.address,
            "dashboard": connection.dashboard,
            "cluster": "LocalCluster (127.0.0.1)" if self._local else "existing",
            "tls": self._tls,
            "max_in_flight": self._max_in_flight or "2 x worker threads",
            "retries": self.supervision.retries,
            "timeout": self.supervision.timeout,
            "memory_limit": self.supervision.memory_limit,
            "max_tasks_per_worker": self.supervision.max_tasks_per_worker,
        }

    def _capacity(self) -> int:
        """How many tasks may be in flight: fixed, or twice the worker threads (refreshed)."""
        if self._max_in_flight:
            return self._max_in_flight
        now = time.monotonic()
        if self._connection is not None and now - self._checked > _CAPACITY_REFRESH_S:
            self._checked = now
            self._threads = self._connection.threads or self._threads
        return max(2, 2 * self._threads)

    def _lost_scheduler(self) -> ExecutorError:
        return ExecutorError(
            f"lost the Dask scheduler at {self.address}; finished tiles are journaled — "
            "rerun with --resume (on this cluster once it is back, or on a new one)"
        )

    def _gather(self, futures: list[Any]) -> dict[Any, Any]:
        """The results of the finished ``futures``, fetched together in one round trip.

        Fetching each result alone costs the main thread a round trip to the worker
        that holds it (~6 ms on a loaded 2-core machine), one at a time: that, not the
        scheduler, capped a run at ~150 tasks/s. Futures that erred, or whose results
        cannot be fetched now, are left out (:meth:`_classify` asks them one by one).
        """
        finished = [future for future in futures if future.status == "finished"]
        if not finished:
            return {}
        client = self.client
        try:
            return dict(zip(finished, client.gather(finished), strict=True))
        except Exception as err:  # e.g. a worker died holding one: ask each future alone
            log.debug("gathering %d Dask results together: %s", len(finished), err)
            return {}

    def _classify(
        self, future: Any, gathered: dict[Any, Any]
    ) -> TaskResult | tuple[FailureKind, str, str, str]:
        """A finished future's result, or (kind, cause, detail, worker) for a failure."""
        distributed = import_distributed()
        try:
            result = gathered[future] if future in gathered else future.result()
        except distributed.CancelledError as err:
            client = self.client
            if getattr(err, "reason", "") == _SCHEDULER_LOST or (
                client is not None and client.status != "running"
            ):
                raise self._lost_scheduler() from err
            return FailureKind.LOST, f"cancelled by Dask ({err})", "", ""
        except distributed.KilledWorker as err:
            return (
                FailureKind.LOST,
                f"Dask gave up on it after its workers died ({err}); "
                "the tile's own crashes never kill a worker, so workers were lost for "
                "another reason (killed, out of memory, machine lost)",
                "",
                "",
            )
        except Exception as err:  # e.g. the task could not be unpickled on the worker
            return FailureKind.EXCEPTION, f"{type(err).__name__}: {err}", "", ""
        if isinstance(result, TaskError):
            return FailureKind(result.kind), result.message, result.traceback, result.worker
        if not isinstance(result, TaskResult):
            return FailureKind.EXCEPTION, f"unexpected result {type(result).__name__}", "", ""
        return result

    def start(self) -> None:
        """Start the tile processes on every worker now, while the caller prepares the run."""
        client = self._connect().client
        token = uuid.uuid4().hex[:12]
        try:
            workers = list(client.scheduler_info(n_workers=-1)["workers"])
            self._warming = [
                client.submit(
                    warm_up,
                    self._isolation,
                    key=f"tilewise-warm-up-{number}-{token}",
                    workers=[address],
                    allow_other_workers=False,
                    pure=False,
                )
                for number, address in enumerate(workers)
            ]
        except Exception as err:  # only an optimization: the run starts them anyway
            log.debug("warming up the Dask workers: %s", err)

    def _submit(
        self,
        client: Any,
        fn: Callable[[Any], Any],
        sending: list[Attempts],
        isolation: Isolation,
        token: str,
    ) -> list[Any]:
        """Submit the tasks ``sending``, in one call to the scheduler; their futures in order.

        Each task is encoded here once for its tile process (see :func:`run_encoded`).
        A task that does not encode here (e.g. a lambda, which Dask's cloudpickle
        can send but a tile process cannot load) goes as it is, on its own: its
        worker then reports why it cannot be sent, as a failure of that task.
        """
        keys = [f"tilewise-tile-{a.task.key}-{a.number}-{token}" for a in sending]
        encoded: list[bytes | None] = []
        for attempts in sending:
            try:
                encoded.append(encode(fn, attempts.task.payload))
            except Exception:
                encoded.append(None)
        try:
            ready = [n for n, data in enumerate(encoded) if data is not None]
            futures: list[Any] = [None] * len(sending)
            if ready:
                batch = client.map(
                    run_encoded,
                    [encoded[n] for n in ready],
                    isolation=isolation,
                    key=[keys[n] for n in ready],
                    pure=False,
                )
                for n, future in zip(ready, batch, strict=True):
                    futures[n] = future
            for n, data in enumerate(encoded):
                if data is None:
                    payload = sending[n].task.payload
                    futures[n] = client.submit(
                        run_isolated, fn, payload, isolation, key=keys[n], pure=False
                    )
        except Exception as err:
            if client.status != "running":
                raise self._lost_scheduler() from err
            raise ExecutorError(
                f"cannot send task {sending[0].task.key} and {len(sending) - 1} more to the "
                f"Dask cluster "
                f"({type(err).__name__}: {err})"
            ) from err
        return futures

    def map_tasks(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Task],
        *,
        locality: bool = False,
        supervision: Supervision | None = None,
    ) -> Iterator[Outcome]:
        """Run every task; yield each outcome as soon as it is known.

        ``locality`` is ignored: the Dask scheduler places tasks itself.
        ``supervision``'s timeout reaches the tile processes on the workers;
        without one, its stall rule does: each task carries the give-up time
        the run's finished tasks give when it is sent, and its tile process
        stops it there (the rule's warning at the stall threshold is not given
        here: this process does not see when a task starts on its worker).
        """
        client = self._connect().client
        distributed = import_distributed()
        supervision = supervision or self.supervision
        isolation = replace(self._isolation, timeout=supervision.timeout)
        rule = supervision.stall if supervision.timeout is None else None
        watch = None if rule is None else StallWatch(rule)
        token = uuid.uuid4().hex[:12]
        source = iter(tasks)
        retry: deque[Attempts] = deque()
        in_flight: dict[Any, Attempts] = {}
        completed = distributed.as_completed(loop=client.loop)
        exhausted = False
        try:
            while True:
                sending: list[Attempts] = []
                while len(in_flight) + len(sending) < self._capacity() and (retry or not exhausted):
                    if retry:
                        sending.append(retry.popleft())
                        continue
                    try:
                        sending.append(Attempts(next(source)))
                    except StopIteration:
                        exhausted = True
                if sending:
                    limits = isolation if watch is None else _stall_limits(isolation, watch)
                    futures = self._submit(client, fn, sending, limits, token)
                    for future, attempts in zip(futures, sending, strict=True):
                        in_flight[future] = attempts
                        completed.add(future)
                if not in_flight:
                    return
                batch = completed.next_batch(block=True)
                gathered = self._gather(batch)
                for future in batch:
                    attempts = in_flight.pop(future)
                    outcome = self._classify(future, gathered)
                    future.release()
                    if isinstance(outcome, TaskResult):
                        if watch is not None:
                            watch.add(outcome.seconds)
                        yield attempts.succeeded(outcome.value, outcome.worker, outcome.seconds)
                        continue
                    failed = attempts.failed(*outcome, retries=supervision.retries)
                    if failed is None:
                        retry.append(attempts)
                    else:
                        yield failed
        finally:
            self._warming.clear()  # releases the warm-up tasks, done or not
            if in_flight and client.status == "running":
                try:
                    client.cancel(list(in_flight))
                except Exception as err:  # best effort: the run is ending anyway
                    log.debug("cancelling %d Dask task(s): %s", len(in_flight), err)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        self._warming.clear()
        client = connection.client
        if connection.cluster is None and client is not None and client.status == "running":
            try:  # no idle tile processes left behind on a cluster that outlives the run
                client.run(retire_idle_pools)
            except Exception as err:
                log.debug("stopping the tile processes on the Dask workers: %s", err)
        connection.close()


def _stall_limits(isolation: Isolation, watch: StallWatch) -> Isolation:
    """``isolation`` with the stall threshold and give-up time known now (if known yet)."""
    limits = watch.thresholds()
    return isolation if limits is None else replace(isolation, stall=limits)
