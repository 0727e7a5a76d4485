"""Clean up the ``pymp-*`` folders that killed tilewise processes leave in the temp folder.

Starting a fork server makes multiprocessing create a private folder,
``pymp-XXXXXXXX`` in :func:`tempfile.gettempdir`, for the server's socket
(``multiprocessing.util.get_temp_dir``); it is removed by an exit handler, so
each SIGKILL of the main process leaves one behind. The folder's name says
nothing about who made it, so tilewise records its owner inside it
(``tilewise-owner.json``: pid, host, process start time) — before the fork
server's socket is made there — and, whenever it starts a fork server, removes
the folders whose recorded owner is gone.

A kill in the instant between creating the record and writing it leaves the
record empty (or torn): the folder is tilewise's, but whose is not known. It is
removed once the record is older than :data:`GRACE_S` (a live owner writes it
at once) and no process listens on a socket in the folder (``/proc/net/unix``;
where that cannot be read, it is left). Folders without the record — another
program's, or one made in the instant before the record was created — and
folders of other users or hosts are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import time
from multiprocessing import util

from tilewise._procs import HOST, alive, identity

__all__ = ["GRACE_S", "OWNER_FILE", "claim", "sweep"]

log = logging.getLogger(__name__)

OWNER_FILE = "tilewise-owner.json"
#: Seconds after which an empty or torn owner record counts as left by a killed process.
GRACE_S = 30.0
#: An owner record that exists but holds no owner (empty, or cut short by a kill).
_TORN = "torn"


def claim() -> str:
    """Record this process as the owner of its multiprocessing temp folder; return the folder.

    Call it before the fork server starts: the folder is made here if it does
    not exist yet, so it is claimed before anything uses it.
    """
    folder = util.get_temp_dir()
    path = os.path.join(folder, OWNER_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return folder
    except OSError as err:  # the folder stays unclaimed: never removed by a sweep
        log.debug("cannot record the owner of %s: %s", folder, err)
        return folder
    try:
        os.write(fd, json.dumps(identity()).encode())
    except OSError as err:  # an empty record would look torn: leave the folder unclaimed
        log.debug("cannot record the owner of %s: %s", folder, err)
        os.unlink(path)
    finally:
        os.close(fd)
    return folder


def _owner(folder: str) -> dict[str, object] | str | None:
    """The recorded owner; :data:`_TORN` for a record with none in it; None without a record."""
    try:
        with open(os.path.join(folder, OWNER_FILE), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # unreadable, or not text: not ours to judge
        return None
    try:
        owner = json.loads(text)
    except ValueError:
        return _TORN
    return owner if isinstance(owner, dict) else _TORN


def _listening(folder: str) -> bool:
    """Whether a process has a socket bound in ``folder`` (True when it cannot be told)."""
    prefix = folder.rstrip("/") + "/"
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as fh:
            # Num RefCount Protocol Flags Type St Inode [Path]: the path may hold spaces
            bound = (line.rstrip("\n").split(None, 7) for line in fh)
            return any(len(fields) == 8 and fields[7].startswith(prefix) for fields in bound)
    except OSError:
        return True


def _torn_and_stale(folder: str) -> bool:
    """Whether a folder whose owner record is torn was left by a killed process."""
    try:
        age = time.time() - os.stat(os.path.join(folder, OWNER_FILE)).st_mtime
    except OSError:
        return False
    return age > GRACE_S and not _listening(folder)


def sweep(keep: str | None = None) -> list[str]:
    """Remove ``pymp-*`` folders whose recorded tilewise owner no longer runs; return them.

    ``keep`` is a folder never removed (this process's own).
    """
    removed: list[str] = []
    uid = os.getuid()
    try:
        with os.scandir(tempfile.gettempdir()) as listing:
            # A temp folder may hold hundreds of other programs' pymp-* folders: those
            # without an owner record cost one access() each; no stat, no exception.
            candidates = [
                entry.path
                for entry in listing
                if entry.name.startswith("pymp-")
                and entry.path != keep
                and entry.is_dir(follow_symlinks=False)
                and os.access(os.path.join(entry.path, OWNER_FILE), os.F_OK)
            ]
    except OSError:
        return removed
    for path in candidates:
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        owner = _owner(path)
        if owner is None:
            continue
        if owner == _TORN:
            if not _torn_and_stale(path):
                continue
        elif not isinstance(owner, dict) or owner.get("host") != HOST or alive(owner):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d temp folder(s) left by killed runs: %s", len(removed), removed)
    return removed
