"""Start the local workers' fork server as early as possible (imports nothing heavy).

The fork server imports NumPy, OpenCV and tilewise's worker code, which
takes a few tenths of a second. Started before the main process loads click, the
commands and the rest of tilewise, those imports happen side by side instead of
one after the other — most of the fixed cost of a short ``run`` or ``batch``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tilewise.executors import forkserver

__all__ = ["start_for_argv", "start_workers_early"]


def start_workers_early(executor: str, work: str, paths: Sequence[str] = ()) -> None:
    """Start the fork server for ``work`` (a key of ``WORK_MODULES``) for local workers.

    ``paths`` are the command's arguments: a Zarr input or output adds the Zarr
    reader and writer to the preload. Calling it again is harmless: the server
    starts once per process.
    """
    if executor == "local":
        work_modules = forkserver.WORK_MODULES[work]
        forkserver.start_forkserver((*work_modules, *forkserver.modules_for_paths(paths)))


def start_for_argv(args: Sequence[str]) -> None:
    """Start the fork server when the command line is a ``run``, ``batch``, ``measure`` or
    ``stats`` on local workers.

    Read before click parses the options, so it looks only at the unambiguous
    cases: the first argument names the command, no ``-h``/``--help``, and no
    ``--executor`` other than ``local``. Anything else waits for the command's own
    call, after parsing. If the options then turn out to be wrong, the idle server
    simply exits with this process.
    """
    if (
        not args
        or args[0] not in ("run", "batch", "measure", "stats")
        or {"-h", "--help"} & set(args)
    ):
        return
    executor = "local"
    for index, arg in enumerate(args):
        if arg == "--executor" and index + 1 < len(args):
            executor = args[index + 1]
        elif arg.startswith("--executor="):
            executor = arg.partition("=")[2]
    start_workers_early(executor, args[0], args[1:])
