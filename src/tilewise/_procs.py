"""Is a recorded process still running? Pid plus start time, so a reused pid is not mistaken."""

from __future__ import annotations

import os
import socket

__all__ = ["HOST", "alive", "identity", "start_time"]

HOST = socket.gethostname()


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else None


def identity() -> dict[str, object]:
    """This process as a record: ``pid``, ``host`` and ``start``."""
    pid = os.getpid()
    return {"pid": pid, "host": HOST, "start": start_time(pid)}


def alive(record: dict[str, object]) -> bool:
    """Whether the process ``record`` names runs on this host (pid, and start time if known)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = record.get("start")
    return started is None or started == start_time(pid)
