"""The ``tilewise`` console script's entry point.

Kept free of imports on purpose: worker processes run the parent's main script
again as their own ``__main__`` (multiprocessing's rule for starting a child),
so whatever the script imports, every worker imports too.
"""

from __future__ import annotations

import gc
import os
import sys

__all__ = ["main"]


def main() -> None:
    """Run the ``tilewise`` command."""
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
