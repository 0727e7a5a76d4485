"""The ``tilewise`` console script's entry point.

Kept free of imports on purpose: worker processes run the parent's main script
again as their own ``__main__`` (multiprocessing's rule for starting a child),
so whatever the script imports, every worker imports too.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

__all__ = ["main"]


def _raise_interrupted(signum: int, frame: object) -> None:
    from tilewise.errors import Interrupted

    raise Interrupted(signum)


def main() -> None:
    """Run the ``tilewise`` command."""
    # From the first moment, Ctrl-C and SIGTERM end the command with one line and
    # 128 + the signal number, never a traceback (a run installs its own handlers).
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        _run()
    except BaseException as err:
        from tilewise.errors import Interrupted

        if not isinstance(err, Interrupted):
            raise
        from tilewise.cli.errors import interrupted

        interrupted(err, resumable=False)


def _run() -> None:
    # Before NumPy loads: this process coordinates, and its workers take a core each.
    from tilewise.executors._native_threads import limit_native_threads

    limit_native_threads()
    # As with ``python -m``, modules in the current folder can be named in --op; searched
    # last, so a file there never shadows an installed package. Set before the fork
    # server starts: it passes sys.path on to every worker.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    from tilewise.cli.warm import start_for_argv

    start_for_argv(sys.argv[1:])  # workers get ready while click and the commands load
    from tilewise.cli.app import cli

    try:
        sys.exit(cli.main(standalone_mode=True))
    finally:
        # The command is over and its files are closed; the process ends now. Frozen
        # objects are left out of the interpreter's final garbage collection, which
        # otherwise walks everything NumPy, OpenCV and tilewise loaded (~50 ms here).
        gc.freeze()


if __name__ == "__main__":
    main()
