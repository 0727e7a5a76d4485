"""Worker start-up, in one place: what each kind of work preloads, and the fork server.

Worker processes are forked from a small server process that has already
imported NumPy, OpenCV and the modules the work needs, so a new
worker (or the replacement of a dead one) starts in milliseconds without
importing anything. Starting the server does not wait for it: it imports in
the background while the caller goes on (``tilewise run`` and ``batch`` start
it before loading most of tilewise), and only the first worker start waits for it.

The server starts once per process, with the preload of the first work asked
for; a later start is a no-op — unless the server died (killed by a user or
the OOM killer), in which case :func:`restart_forkserver` starts a new one
with the same preload.
Starting it also removes the temp folders earlier, killed runs left
(:mod:`tilewise.executors._pymp`).

This module imports nothing heavy, so callers can use it first thing.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from multiprocessing import forkserver

__all__ = [
    "BASE_PRELOAD",
    "PATH_MODULES",
    "WORK_MODULES",
    "modules_for_paths",
    "restart_forkserver",
    "start_forkserver",
    "worker_options",
]

#: Imported by the fork server for every kind of work, in this order: native thread
#: limits first (before NumPy loads), then the worker's loop and what every task uses.
BASE_PRELOAD = ("tilewise.executors._native_threads", "tilewise.executors._worker", "numpy", "cv2")

#: What the workers of each kind of work import besides :data:`BASE_PRELOAD`: the module
#: that runs the task and the readers it uses first. ``dask`` is for the tile processes
#: of a Dask worker (:mod:`tilewise.executors._dask_isolation`).
WORK_MODULES = {
    "run": ("tilewise.runner.work", "tilewise.io._tiff", "tilewise.io._checksum"),
    "batch": ("tilewise.collection.work", "tilewise.io._tiff_whole", "tilewise.io._npy"),
    "measure": (
        "tilewise.runner.measure_work",
        "tilewise.io._tiff",
        "tilewise.measurements.peaks",
        "tilewise.measurements.regions",
        "scipy.ndimage",
    ),
    "stats": ("tilewise.runner.measure_work", "tilewise.io._tiff", "tilewise.measurements.stats"),
    "dask": ("tilewise.runner.work", "tifffile", "zarr"),
}

#: Modules the workers need for an input or output path, by its name's ending: Zarr's
#: import is ~14 MiB and a few tenths of a second, paid once by the server, not per worker.
PATH_MODULES = {".zarr": ("tilewise.io._zarr",)}

_started = False


def modules_for_paths(paths: Iterable[object]) -> tuple[str, ...]:
    """The modules of :data:`PATH_MODULES` that the inputs and outputs ``paths`` need.

    >>> modules_for_paths(["in.tif", "out.zarr/"])
    ('tilewise.io._zarr',)
    """
    names = [str(path).rstrip("/").lower() for path in paths]
    return tuple(
        module
        for suffix, modules in PATH_MODULES.items()
        if any(name.endswith(suffix) for name in names)
        for module in modules
    )


def preload(work: str | Iterable[str]) -> list[str]:
    """Every module the fork server imports for ``work`` (a key of :data:`WORK_MODULES`,
    or module names)."""
    extra = WORK_MODULES[work] if isinstance(work, str) else tuple(work)
    return list(dict.fromkeys([*BASE_PRELOAD, *extra]))


def start_forkserver(work: str | Iterable[str] = ()) -> None:
    """Start this process's fork server now, without waiting for it; once per process.

    Parameters
    ----------
    work
        ``"run"``, ``"batch"`` or ``"dask"`` (see :data:`WORK_MODULES`), or the
        module names the workers need besides :data:`BASE_PRELOAD`. Only the
        first call's preload counts: a module that fails to import is skipped
        by the server and imported by each worker instead.
    """
    global _started
    if _started:
        return
    from tilewise.executors import _pymp

    mine = _pymp.claim()  # the folder of the server's socket, claimed before it is used
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload(work))
    forkserver.ensure_running()
    _started = True
    _pymp.sweep(keep=mine)  # the folders killed runs left


def restart_forkserver() -> None:
    """Start a new fork server if this process's one died (same preload); else do nothing."""
    forkserver.ensure_running()


def worker_options(
    executor: object, work: str, op_locators: Iterable[str], paths: Iterable[object] = ()
) -> dict[str, object]:
    """The local executor's start method and preload for ``work`` (a key of :data:`WORK_MODULES`)
    on the inputs and outputs ``paths`` (see :func:`modules_for_paths`).

    Empty unless ``executor`` is ``"local"``. ``fork`` when an op lives in
    ``__main__`` (a script or notebook: a fresh process cannot import it by
    name), else ``forkserver``: workers are otherwise never forked from the
    main process, where a fork while another thread (a progress bar's, the
    caller's, a native library's) holds a lock can deadlock the child.
    """
    if executor != "local":
        return {}
    in_main = any(locator.startswith("__main__.") for locator in op_locators)
    return {
        "start_method": "fork" if in_main else "forkserver",
        "preload": (*WORK_MODULES[work], *modules_for_paths(paths)),
    }
