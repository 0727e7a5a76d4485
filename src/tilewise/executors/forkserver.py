"""The fork server local workers start from, started as early as a caller likes.

Worker processes are forked from a small server process that has already
imported NumPy, OpenCV and the modules the work needs, so a new
worker (or the replacement of a dead one) starts in milliseconds without
importing anything. Starting the server does not wait for it: it imports in
the background while the caller goes on (``tilewise batch`` starts it before
loading most of tilewise), and only the first worker start waits for it.
Starting it also removes the temp folders earlier, killed runs left
(:mod:`tilewise.executors._pymp`).

This module imports nothing heavy, so callers can use it first thing.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from multiprocessing import forkserver

__all__ = ["BASE_PRELOAD", "start_forkserver"]

#: Imported by the fork server for every kind of work, in this order: native thread
#: limits first (before NumPy loads), then the worker's loop and what every task uses.
BASE_PRELOAD = ("tilewise.executors._native_threads", "tilewise.executors._worker", "numpy", "cv2")


def start_forkserver(preload: Iterable[str] = ()) -> None:
    """Start this process's fork server now, without waiting for it.

    Parameters
    ----------
    preload
        Modules the workers need besides :data:`BASE_PRELOAD` (e.g. the
        module defining the task). They take effect only if the server is
        not running yet; a module that fails to import is skipped by the
        server and imported by each worker instead.
    """
    modules = list(dict.fromkeys([*BASE_PRELOAD, *preload]))
    multiprocessing.get_context("forkserver").set_forkserver_preload(modules)
    forkserver.ensure_running()
    from tilewise.executors import _pymp  # imported once the server is on its way

    _pymp.sweep(keep=_pymp.claim())  # the server's socket folder; killed runs left theirs
