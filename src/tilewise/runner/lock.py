"""One run per output at a time: an exclusive lock on ``.NAME.lock`` beside the output.

Two runs writing one output at once (a second one started with ``--resume`` or
``--overwrite`` while the first still runs) would each clear or finish the
other's partial output, and both could exit 0 with a broken result. So a run
takes an ``fcntl.flock`` on ``.NAME.lock`` before it touches the output and
holds it until the output is final; a second run is refused with the holder's
pid and host, which the lock file records.

Why ``flock`` on an open file, not "create the file if absent": the kernel
drops the lock when its holder dies, however it dies (SIGKILL, the OOM
killer), so a lock left by a dead run is free, and the
next run takes it over without anyone deleting files. The file itself may
stay behind; it is only a name to lock. A finished run deletes it while
still holding the lock; a run that locked a file which was deleted meanwhile
notices (the name now leads to another file, or none) and locks again.

What it does not catch, and what is done about it:

* **Another host.** On NFS, Linux maps ``flock`` to NFS byte-range locks,
  which other clients see, when the lock manager works; mounts with
  ``nolock`` or ``local_lock=all``, and some FUSE or SMB file systems, keep
  locks local to each host. So a lock file naming another host is never
  taken over by the lock alone: the run is refused, and the message says to
  delete the lock file if no run on that host uses the output any more. (A
  run on another host that crashed leaves such a file; deleting it is the
  one manual step.)
* **A lock that does not lock.** On a file system where ``flock`` succeeds
  without excluding anyone, the recorded holder is still checked: a live
  process on this host with the recorded pid and start time refuses the run.
* Runs that are not tilewise, and writers that ignore the lock, are not
  stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tilewise._procs import HOST, alive, identity
from tilewise.errors import OutputError

__all__ = ["holding", "lock_path"]

log = logging.getLogger(__name__)

#: Attempts to lock the file found under the lock's name (it may be replaced meanwhile).
_ATTEMPTS = 20


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file of an output: ``.NAME.lock`` beside it."""
    path = Path(output)
    return path.with_name(f".{path.name}.lock")


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    pid, host, since = holder.get("pid", "?"), holder.get("host", "?"), holder.get("since")
    return f"pid {pid} on {host}" + (f", since {since}" if since else "")


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def _open(path: Path, output: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FileNotFoundError as err:
        raise OutputError(f"{path.parent}: output directory does not exist") from err
    except OSError as err:
        raise OutputError(
            f"{path}: cannot create the lock file that keeps two runs off {output.name}: "
            f"{err.strerror or err}"
        ) from err


def _refuse_if_held(fd: int, path: Path, output: Path) -> None:
    """Refuse when the lock file names a run that may still be going (see the module notes)."""
    holder = _read(fd)
    if not holder or (holder.get("pid") == os.getpid() and holder.get("host") == HOST):
        return
    if holder.get("host") != HOST:
        raise OutputError(
            f"{output}: the lock file {path} names a run on another host ({_describe(holder)}); "
            f"tilewise cannot tell from here whether it still runs. If no run on "
            f"{holder.get('host')} uses this output any more, delete {path} and run again"
        )
    if alive(holder):
        raise OutputError(
            f"{output}: another tilewise run ({_describe(holder)}) is writing this output; "
            "wait for it to finish, or stop it (its finished tiles are kept for --resume)"
        )
    log.info("%s: taking over the lock of %s, no longer running", output, _describe(holder))


def _acquire(output: Path) -> tuple[int, Path]:
    path = lock_path(output)
    for _ in range(_ATTEMPTS):
        fd = _open(path, output)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputError(
                    f"{output}: another tilewise run ({_describe(_read(fd))}) is writing this "
                    "output; wait for it to finish, or stop it (its finished tiles are kept "
                    "for --resume)"
                ) from None
            except OSError as err:
                raise OutputError(f"{path}: cannot lock: {err.strerror or err}") from err
            if not _same_file(fd, path):
                os.close(fd)  # a finishing run deleted it after we opened it: lock the new one
                continue
            _refuse_if_held(fd, path, output)
            record = {**identity(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return fd, path
    raise OutputError(f"{path}: the lock file keeps being replaced; is another run starting?")


def _release(fd: int, path: Path) -> None:
    try:
        if _same_file(fd, path):
            path.unlink()  # while still locked: a waiting run then locks a new file
    except OSError as err:
        log.warning("%s: cannot remove the lock file: %s", path, err)
    finally:
        os.close(fd)


@contextlib.contextmanager
def holding(output: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of ``output`` for the duration of the block; yield the lock file's path.

    Raises
    ------
    OutputError
        When another run holds it (naming its pid and host), or the lock file
        cannot be created.
    """
    fd, path = _acquire(Path(output))
    try:
        yield path
    finally:
        _release(fd, path)
