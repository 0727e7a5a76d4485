"""What the readers share: the errors a decoder raises on bad bytes, and a library's words.

:data:`DECODE_ERRORS` is what a backend raises when the bytes it decodes are
damaged. It leaves out what is not about the file: ``MemoryError`` (a worker
past ``--memory-limit``), ``KeyboardInterrupt``, ``SystemExit``, and ``OSError``
(the disk, not the data) — those keep their own meaning instead of becoming
"corrupt tile".

:func:`library_notes` catches the log lines a library writes while it reads a
file (tifffile logs damaged tags and offsets instead of raising), so they become
part of tilewise's own message about that file instead of stray lines on stderr.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DECODE_ERRORS", "library_notes"]

#: Exceptions that mean "these bytes do not decode" (imagecodecs' errors are RuntimeErrors,
#: tifffile's and Zarr's ValueErrors).
DECODE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    RuntimeError,
    TypeError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
    EOFError,
    struct.error,
    zlib.error,
)

log = logging.getLogger(__name__)


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def library_notes(name: str) -> Iterator[list[str]]:
    """Collect what logger ``name`` says (warnings and up) inside the block, instead of printing it.

    The logger's level, handlers and propagation are restored on leaving. The
    lines are also logged at INFO by tilewise (shown with ``-v``).

    Parameters
    ----------
    name : str
        The library's logger, e.g. ``"tifffile"``.

    Yields
    ------
    list of str
        The messages, filled as the block runs.
    """
    logger = logging.getLogger(name)
    notes = _Notes()
    propagate, level = logger.propagate, logger.level
    # setLevel clears every logger's cache: skipped when warnings already pass (a read
    # of every segment comes here)
    let_warnings_in = logger.getEffectiveLevel() > logging.WARNING
    logger.addHandler(notes)
    logger.propagate = False
    if let_warnings_in:
        logger.setLevel(logging.WARNING)
    try:
        yield notes.lines
    finally:
        logger.removeHandler(notes)
        logger.propagate = propagate
        if let_warnings_in:
            logger.setLevel(level)
        for line in notes.lines:
            log.info("%s: %s", name, line)
