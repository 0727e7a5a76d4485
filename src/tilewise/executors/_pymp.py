"""Clean up the ``pymp-*`` folders that killed tilewise processes leave in the temp folder.

Starting a fork server makes multiprocessing create a private folder,
``pymp-XXXXXXXX`` in :func:`tempfile.gettempdir`, for the server's socket
(``multiprocessing.util.get_temp_dir``); it is removed by an exit handler, so
each SIGKILL of the main process leaves one behind. The folder's name says
nothing about who made it, so tilewise records its owner inside it
(``tilewise-owner.json``: pid, host, process start time) and, whenever it
starts a fork server, removes the folders whose recorded owner is gone.
Folders without the record — another program's, or one made in the instant
before the record was written — and folders of other users or hosts are left
alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from multiprocessing import util

from tilewise._procs import HOST, alive, identity

__all__ = ["OWNER_FILE", "claim", "sweep"]

log = logging.getLogger(__name__)

OWNER_FILE = "tilewise-owner.json"


def claim() -> str:
    """Record this process as the owner of its multiprocessing temp folder; return the folder."""
    folder = util.get_temp_dir()
    path = os.path.join(folder, OWNER_FILE)
    if not os.path.exists(path):
        try:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(identity(), fh)
        except OSError as err:  # the folder stays unclaimed: never removed by a sweep
            log.debug("cannot record the owner of %s: %s", folder, err)
    return folder


def _owner(folder: str) -> dict[str, object] | None:
    try:
        with open(os.path.join(folder, OWNER_FILE), encoding="utf-8") as fh:
            owner = json.load(fh)
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def sweep(keep: str | None = None) -> list[str]:
    """Remove ``pymp-*`` folders whose recorded tilewise owner no longer runs; return them.

    ``keep`` is a folder never removed (this process's own).
    """
    removed: list[str] = []
    uid = os.getuid()
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("pymp-") or entry.path == keep:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        owner = _owner(entry.path)
        if owner is None or owner.get("host") != HOST or alive(owner):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    if removed:
        log.info("removed %d temp folder(s) left by killed runs: %s", len(removed), removed)
    return removed
