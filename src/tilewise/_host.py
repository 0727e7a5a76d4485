"""Who is running: the name tilewise gives the current process in reports and on tiles."""

from __future__ import annotations

import os
import socket

__all__ = ["worker_name"]


def worker_name() -> str:
    """``host:pid`` of the calling process."""
    return f"{socket.gethostname()}:{os.getpid()}"
