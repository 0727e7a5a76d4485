"""Where log lines go: tilewise's own, and those of the libraries it drives.

One rule for every command: ``-q`` shows errors only, the default shows
tilewise's warnings, ``-v`` adds tilewise's progress notes and the libraries'
warnings, ``-vv`` everything. Libraries (Dask, tifffile, Pillow, ...) say
nothing unless ``-v`` is given: what they report that matters reaches the user
as a tilewise error naming the file or tile.

Dask's ``distributed`` sets its loggers' levels when it is imported, from its
config, and so do the worker processes of a local cluster; the level is
therefore also passed through the ``DASK_LOGGING__DISTRIBUTED`` environment
variable, which those imports (in this process and in its children) read.
A value the user set there is kept.
"""

from __future__ import annotations

import logging
import os

__all__ = ["LIBRARIES", "route_logging"]

#: Loggers of the libraries tilewise drives.
LIBRARIES = ("distributed", "dask", "tornado", "bokeh", "tifffile", "PIL", "zarr", "numcodecs")
_SILENT = logging.CRITICAL + 10
_DASK_ENV = "DASK_LOGGING__DISTRIBUTED"
#: The value this module put in the environment (a user's own value is left alone).
_ours: str | None = None


def levels(verbose: int, quiet: bool) -> tuple[int, int]:
    """The levels for tilewise's own loggers and for the libraries', from ``-v``/``-q``.

    >>> [logging.getLevelName(n) for n in levels(0, False)]
    ['WARNING', 'Level 60']
    >>> [logging.getLevelName(n) for n in levels(1, False)]
    ['INFO', 'WARNING']
    """
    if quiet:
        return logging.ERROR, _SILENT
    if verbose > 1:
        return logging.DEBUG, logging.INFO
    if verbose:
        return logging.INFO, logging.WARNING
    return logging.WARNING, _SILENT


def route_logging(verbose: int, quiet: bool) -> None:
    """Send every log line to stderr as ``LEVEL: message``, at the levels of :func:`levels`.

    Parameters
    ----------
    verbose : int
        How many ``-v`` were given.
    quiet : bool
        Whether ``-q`` was given (wins over ``-v``).
    """
    own, libraries = levels(verbose, quiet)
    logging.basicConfig(level=own, format="%(levelname)s: %(message)s", force=True)
    logging.getLogger("tilewise").setLevel(own)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(libraries)
    global _ours
    if _DASK_ENV not in os.environ or os.environ[_DASK_ENV] == _ours:
        # CRITICAL is as quiet as Dask's config can say; its critical lines are fatal anyway
        _ours = "critical" if libraries > logging.CRITICAL else logging.getLevelName(libraries)
        os.environ[_DASK_ENV] = _ours = _ours.lower()
