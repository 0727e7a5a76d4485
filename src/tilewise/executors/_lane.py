"""One supervised worker process and the pipe to it: what the local executor schedules on.

The main process talks to each worker over its own pipe and watches the
worker's exit with :func:`multiprocessing.connection.wait` — no threads, no
polling. A task goes down the pipe pickled; its answer comes back as a
:class:`~tilewise.executors._worker.TaskResult` or
:class:`~tilewise.executors._worker.TaskError`. A worker that dies takes only the
task it was running with it; one that runs past its deadline is killed. Either
way the lane starts a new process (forked from the fork server in milliseconds),
and tasks that were queued behind the lost one go back to the executor unrun.

Deadlock-freedom: the worker may block writing a large answer until the main
process reads it, so the main process must never block writing to a worker.
It sends a task to a busy worker only when the task is small enough to sit in
the pipe's buffer (:attr:`Lane.prefetch_bytes`); a larger one waits until the
worker is idle, when the worker is reading.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.reduction import ForkingPickler
from typing import Any

from tilewise.executors._worker import TaskError, serve

__all__ = ["STOP_SECONDS", "Lane", "Sent", "WorkerGone", "encode", "shut_down"]

#: Most bytes queued to a busy worker: a quarter of the pipe's send buffer, at most this.
PREFETCH_CAP = 64 * 1024
#: Seconds ``shut_down`` waits for workers to exit before killing them.
STOP_SECONDS = 10.0
#: Seconds a new worker may take to get ready (a spawned one imports everything) before the
#: clock of its first task's timeout starts anyway.
STARTUP_SECONDS = 60.0
#: What the kernel charges a queued message beyond its bytes, counted generously: a small
#: message costs ~700 bytes of socket buffer, and a long one is sent as header and body.
MESSAGE_OVERHEAD = 2048
_stop_message = ForkingPickler.dumps(None)


def encode(fn: Any, payload: Any) -> bytes:
    """The message that asks a worker for ``fn(payload)`` (raises if either does not pickle)."""
    return bytes(ForkingPickler.dumps((fn, payload)))


class WorkerGone(Exception):
    """The worker's end of the pipe is closed: it died since we last heard from it."""


@dataclass(slots=True)
class Sent:
    """A task handed to a lane: the executor's own token for it, and its pickled message."""

    token: Any
    data: bytes
    deadline: float | None = None
    #: When the worker started running it (``time.monotonic``), once known.
    began: float | None = None
    #: Whether it has been reported as stalled.
    stalled: bool = False


class Lane:
    """One worker process, restarted whenever it dies, times out or has run its quota.

    Parameters
    ----------
    context
        The multiprocessing context workers start from (``forkserver`` by default).
    memory_limit
        Passed to :func:`~tilewise.executors._worker.initialize` in each new worker.
    max_tasks
        Tasks one process runs before it is replaced (0: no limit).
    """

    def __init__(self, context: BaseContext, memory_limit: int | None, max_tasks: int) -> None:
        self._context = context
        self._memory_limit = memory_limit
        self.max_tasks = max_tasks
        self.process: Any = None
        self.conn: Connection | None = None
        self.prefetch_bytes = 0
        #: Tasks sent, oldest first: the first is running, the rest wait in the pipe.
        self.sent: deque[Sent] = deque()
        #: A task taken for this lane that is too big to queue: sent when the worker is idle.
        self.waiting: Sent | None = None
        self._ran = 0
        #: Whether the current worker has said it is set up (see ``serve``).
        self.ready = False
        self._retired: list[Any] = []
        #: The pid of the latest worker, kept after it is gone (to name it in a report).
        self.last_pid: int | None = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start a fresh worker process for this lane."""
        parent, child = self._context.Pipe(duplex=True)
        # A fork server's children inherit the server's environment, fixed when it
        # started: send this process's as it is now (credentials, endpoints set later).
        environ = dict(os.environ) if self.method == "forkserver" else None
        process = self._context.Process(  # type: ignore[attr-defined]
            target=serve, args=(child, self._memory_limit, environ), name="tilewise-worker"
        )
        try:
            process.start()
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.process, self.conn, self._ran, self.ready = process, parent, 0, False
        self.last_pid = int(process.pid)
        self.prefetch_bytes = min(PREFETCH_CAP, _send_buffer(parent) // 4)

    @property
    def method(self) -> str:
        """How this lane's workers start: ``forkserver``, ``fork`` or ``spawn``."""
        return str(self._context.get_start_method())

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def sentinel(self) -> int:
        assert self.process is not None
        return int(self.process.sentinel)

    def retire(self) -> None:
        """Ask the worker to exit when it is idle (it reads the request after its tasks)."""
        if self.conn is not None:
            with contextlib.suppress(OSError):  # already gone
                self.conn.send_bytes(_stop_message)
            self.conn.close()
        if self.process is not None:
            self._retired.append(self.process)
        self.process, self.conn = None, None
        self._reap()

    def stop(self) -> None:
        """Retire an idle worker; kill one still holding tasks (nobody waits for them)."""
        if self.held():
            self.take_back()
            self.kill()
        else:
            self.retire()

    def kill(self, grace: float = 0.0) -> int | None:
        """Kill the worker (after up to ``grace`` seconds for it to exit); return its exit code.

        A worker whose pipe broke is dying: a short grace lets it report its own
        exit code (e.g. SIGSEGV) rather than the SIGKILL sent here.
        """
        process = self.process
        if process is None:
            return None
        if grace:
            process.join(grace)
        if process.exitcode is None:
            process.kill()
        process.join(5)
        if self.conn is not None:
            self.conn.close()
        self.process, self.conn = None, None
        return process.exitcode  # type: ignore[no-any-return]

    def join(self, deadline: float) -> None:
        """Wait until ``deadline`` (``time.monotonic``) for retired workers; kill the rest."""
        for process in self._retired:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join(1)
        self._retired.clear()

    def _reap(self) -> None:
        self._retired = [p for p in self._retired if p.exitcode is None]

    # -- tasks ----------------------------------------------------------------------------

    def held(self) -> int:
        """Tasks this lane holds: sent, plus the one waiting to be sent."""
        return len(self.sent) + (self.waiting is not None)

    def has_room(self, most: int) -> bool:
        """Whether the lane may take another task, holding at most ``most`` at once."""
        if not self.started or self.waiting is not None:
            return False
        if self.max_tasks and self._ran + self.held() >= self.max_tasks:
            return False
        return self.held() < most

    def can_send(self, data: bytes) -> bool:
        """Whether ``data`` can go down the pipe now without ever blocking this process."""
        if not self.sent:
            return True  # the worker is idle, i.e. reading
        queued = sum(len(s.data) + MESSAGE_OVERHEAD for s in itertools.islice(self.sent, 1, None))
        return queued + len(data) + MESSAGE_OVERHEAD <= self.prefetch_bytes

    def send(self, item: Sent, timeout: float | None) -> None:
        """Hand ``item`` to the worker (check :meth:`can_send` first).

        Raises :class:`WorkerGone` if the worker's end is closed (``item`` was not sent).
        """
        assert self.conn is not None
        if not self.sent:
            item.began = time.monotonic() if self.ready else None
            if timeout is not None:
                item.deadline = time.monotonic() + timeout + (0 if self.ready else STARTUP_SECONDS)
        try:
            self.conn.send_bytes(item.data)
        except OSError as err:
            raise WorkerGone(str(err)) from err
        self.sent.append(item)

    def receive(self, timeout: float | None) -> tuple[Sent, Any] | None:
        """The answer to the oldest task (raises ``EOFError``/``OSError`` if the worker died).

        None for the worker's notice that it is ready (its running task's clock
        starts then). An answer that does not unpickle here comes back as a
        :class:`TaskError`.
        """
        assert self.conn is not None
        data = self.conn.recv_bytes()
        if not data:
            self.ready = True
            self._next_began(timeout)
            return None
        item = self.sent.popleft()
        self._ran += 1
        self._next_began(timeout)
        try:
            answer = ForkingPickler.loads(data)
        except Exception as err:  # e.g. a class this process cannot import
            answer = TaskError(
                "exception",
                f"the task's result cannot be loaded by the main process: "
                f"{type(err).__name__}: {err}",
                traceback.format_exc(),
                "",
                0.0,
            )
        return item, answer

    def _next_began(self, timeout: float | None) -> None:
        """The oldest task sent starts running now: start its clocks."""
        if self.sent:
            self.sent[0].began = time.monotonic()
            if timeout is not None:
                self.sent[0].deadline = self.sent[0].began + timeout

    def flush(self, timeout: float | None) -> bool:
        """Send the waiting task if the pipe can take it now; return whether one is waiting."""
        if self.waiting is not None and self.can_send(self.waiting.data):
            self.send(self.waiting, timeout)
            self.waiting = None
        return self.waiting is not None

    def quota_spent(self) -> bool:
        """Whether the worker has run its ``max_tasks`` and holds no more."""
        return bool(self.max_tasks) and self._ran >= self.max_tasks and not self.held()

    def take_back(self) -> list[Sent]:
        """Remove and return every task held, oldest first (the worker is gone or going)."""
        items = list(self.sent)
        if self.waiting is not None:
            items.append(self.waiting)
        self.sent.clear()
        self.waiting = None
        return items

    def call(self, data: bytes, timeout: float | None) -> tuple[str, Any]:
        """Run one task (``data`` from :func:`encode`) and wait for it; one caller at a time.

        Returns ``("answer", answer)``, ``("died", exit code)`` or ``("timeout", None)``;
        after a death or a timeout the worker is gone and the next call starts a new one.
        """
        if not self.started:
            self.start()
        item = Sent(None, data)
        try:
            self.send(item, timeout)
        except WorkerGone:  # died while idle: a new worker, and the task has not run yet
            self.kill(grace=1.0)
            self.start()
            try:
                self.send(item, timeout)
            except WorkerGone:
                return "died", self.kill(grace=1.0)
        while True:
            assert self.conn is not None
            deadline = item.deadline
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([self.conn, self.sentinel], left)
            if self.conn in ready:
                try:
                    got = self.receive(timeout)
                except (EOFError, OSError):
                    pass
                else:
                    if got is None:
                        continue  # the worker is ready: its clock starts now
                    if self.quota_spent():
                        self.retire()
                    return "answer", got[1]
            self.take_back()
            if not ready:
                self.kill()
                return "timeout", None
            return "died", self.kill(grace=1.0)


def shut_down(lanes: list[Lane], seconds: float = STOP_SECONDS) -> None:
    """Stop every lane's worker and wait for them (up to ``seconds``, then kill)."""
    for lane in lanes:
        lane.stop()
    deadline = time.monotonic() + seconds
    for lane in lanes:
        lane.join(deadline)


def _send_buffer(conn: Connection) -> int:
    """Bytes the kernel buffers on ``conn`` before a write blocks (its socket's send buffer)."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    except OSError:  # not a socket: an os.pipe holds 64 KiB on Linux, 16 KiB elsewhere
        return 16 * 1024
