"""Picklable task functions for the executor conformance tests (imported by worker processes)."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise RuntimeError("three is right out")
    return x


def fail_first_time(arg: tuple[int, str]) -> int:
    x, flag_dir = arg
    flag = Path(flag_dir) / f"seen-{x}"
    if x % 2 and not flag.exists():
        flag.write_text(str(os.getpid()))
        raise OSError(f"transient failure for {x}")
    return x


def sized_answer(arg: tuple[bytes, int]) -> bytes:
    """Return ``size`` bytes (the payload carries bytes of its own)."""
    payload, size = arg
    return bytes([len(payload) % 251]) * size


def environment_fails_two_and_three(x: int) -> int:
    """2: the disk is full (as a sink wraps it); 3: storage gone after its retries."""
    from tilewise.errors import OutputError, StorageUnavailableError

    if x == 2:
        full = OSError(errno.ENOSPC, "No space left on device", "/out/.partial/2")
        raise OutputError("/out/.partial/2: cannot write: No space left on device") from full
    if x == 3:
        raise StorageUnavailableError("s3://bucket/key: cannot read it after retries")
    return x


def disk_full_on_fifty(x: int) -> int:
    if x == 50:
        raise OSError(errno.ENOSPC, "No space left on device", "/out/50")
    return x


def abort_on_three(x: int) -> int:
    if x == 3:
        os.abort()
    return x


def lock_on_two(x: int) -> object:
    """Answer with something that cannot be pickled for x == 2."""
    import threading

    return threading.Lock() if x == 2 else x


def pid_of(_: object) -> int:
    return os.getpid()


def nap(x: int) -> int:
    import time

    time.sleep(0.05)
    return x


def _refuse_to_load() -> None:
    raise ValueError("this payload cannot be rebuilt here")


class Unloadable:
    """Pickles fine, but fails when a worker unpickles it."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_refuse_to_load, ())


def unloadable_on_one(x: int) -> object:
    """Answer with something the main process cannot unpickle for x == 1."""
    return Unloadable() if x == 1 else x


def hang(_: object) -> None:
    import time

    time.sleep(3600)


def hang_on_one(x: object) -> object:
    """Hang when given None, else answer at once."""
    if x is None:
        hang(x)
    return x


def stop_self_once(arg: tuple[int, str]) -> int:
    """Task 7 stops its own worker with SIGSTOP on its first attempt (a stalled worker)."""
    x, flag_dir = arg
    time.sleep(0.05)
    flag = Path(flag_dir) / f"stopped-{x}"
    if x == 7 and not flag.exists():
        flag.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGSTOP)
    return x


def abort_on_fifty(x: int) -> int:
    if x == 50:
        os.abort()
    return x


def fail_on_fifty(x: int) -> int:
    if x == 50:
        raise RuntimeError("fifty is right out")
    return x


def hang_on_fifty(x: int) -> int:
    if x == 50:
        time.sleep(3600)
    return x


def environment_variable(name: str) -> str | None:
    return os.environ.get(name)
