"""The tilewise exception tree.

Every error tilewise raises for its own conditions derives from
:class:`TilewiseError`, and each subclass also derives from the builtin it
refines, so ``except OSError`` still catches a failed read::

    TilewiseError
    ├── UsageError (ValueError)            bad option, parameter or op name
    │   ├── GeometryError                  impossible tile/halo/window values
    │   ├── OpError                        unknown op, bad op parameters
    │   └── PipelineError                  ops that do not chain
    │       └── StackMismatchError         a result that does not fit a stack's rows
    ├── InputError (OSError)               an input cannot be used
    │   ├── UnsupportedFormatError         not an image format tilewise reads
    │   │   └── NoDecoderError             a reader cannot decode it; another may (GDAL)
    │   ├── CorruptInputError              truncated/corrupt file or tile
    │   └── ImageTooLargeError             header declares more pixels than allowed
    ├── OutputError (OSError)              an output cannot be created or written
    │   ├── OutputExistsError              exists and --overwrite was not given
    │   └── ResumeError                    a partial run cannot be resumed as asked
    ├── StorageError (OSError)             object storage refused or failed a request
    │   ├── ObjectNotFoundError (FileNotFoundError)   no such object or bucket
    │   ├── AccessDeniedError (PermissionError)       403: credentials or policy
    │   └── StorageUnavailableError (ConnectionError) still failing after retries
    ├── TileError (RuntimeError)           one tile failed inside a worker
    └── ExecutorError (RuntimeError)       the executor itself cannot go on

    Interrupted (BaseException)            a run stopped by SIGINT/SIGTERM: like
                                           KeyboardInterrupt, not caught by
                                           ``except Exception``

Every error also carries its :class:`Phase`: found before any work started
(the default), or stopping a run part-way (set by the run's lifecycle as the
error leaves the work), or a stack's mismatch. The command line picks its exit
code from it.

Messages say what happened, with the values involved, and what to do.
"""

from __future__ import annotations

import signal
from enum import StrEnum

__all__ = [
    "AccessDeniedError",
    "CorruptInputError",
    "ExecutorError",
    "GeometryError",
    "ImageTooLargeError",
    "InputError",
    "Interrupted",
    "NoDecoderError",
    "ObjectNotFoundError",
    "OpError",
    "OutputError",
    "OutputExistsError",
    "Phase",
    "PipelineError",
    "ResumeError",
    "StackMismatchError",
    "StorageError",
    "StorageUnavailableError",
    "TileError",
    "TilewiseError",
    "TilewiseWarning",
    "UnsupportedFormatError",
    "UsageError",
]


class Phase(StrEnum):
    """When an error stopped the work."""

    #: Found before any work started: nothing was written that a rerun needs.
    BEFORE_WORK = "before work"
    #: Stopped a run part-way: finished work is kept for ``--resume``.
    DURING_WORK = "during work"
    #: A batch result that does not fit the stack the first results made.
    MISMATCH = "mismatch"


class TilewiseError(Exception):
    """Root of every error tilewise raises for its own conditions.

    ``phase`` says when it stopped the work (see :class:`Phase`).
    """

    phase: Phase = Phase.BEFORE_WORK


class UsageError(TilewiseError, ValueError):
    """An option, parameter or op name is not valid."""


class GeometryError(UsageError):
    """Tile, halo or window values that cannot describe a tiling."""


class OpError(UsageError):
    """An unknown op, or an op given parameters it cannot take."""


class PipelineError(UsageError):
    """Ops that cannot be chained, or a pipeline that cannot be sent to workers."""


class StackMismatchError(PipelineError):
    """A batch result whose shape or dtype differs from the stack's rows."""

    phase = Phase.MISMATCH


class InputError(TilewiseError, OSError):
    """An input file cannot be used."""


class UnsupportedFormatError(InputError):
    """The file is not in a format tilewise reads."""


class NoDecoderError(UnsupportedFormatError):
    """The reader tried cannot decode the file's samples; another reader may.

    Raised for what a reader lacks (tifffile has no NumPy type for a sample
    format), never for what tilewise refuses on purpose (a CMYK or palette
    image): only this error lets a TIFF fall back to GDAL.
    """


class CorruptInputError(InputError):
    """The file, or one tile of it, is truncated or corrupt."""


class ImageTooLargeError(InputError):
    """The header declares more pixels than the configured budget allows."""


class OutputError(TilewiseError, OSError):
    """An output cannot be created or written."""


class OutputExistsError(OutputError, FileExistsError):
    """The output exists and overwriting was not asked for."""


class ResumeError(OutputError):
    """A partial run cannot be resumed the way it was asked."""


class StorageError(TilewiseError, OSError):
    """Object storage (S3, HTTP) refused or failed a request; the message names the URL."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """No object (or no bucket) under the URL."""


class AccessDeniedError(StorageError, PermissionError):
    """The server refused the request (403): credentials or the bucket's policy."""


class StorageUnavailableError(StorageError, ConnectionError):
    """The server kept failing (5xx, timeouts, refused connections) through every retry."""


class TileError(TilewiseError, RuntimeError):
    """One tile failed inside a worker; carries the tile id and the cause."""


class ExecutorError(TilewiseError, RuntimeError):
    """The executor cannot go on (for example, its cluster went away)."""


class TilewiseWarning(UserWarning):
    """Warnings tilewise emits for its own conditions."""


class Interrupted(BaseException):
    """A run or batch was stopped by a signal; ``exit_code`` is 128 + the signal number.

    ``report`` holds the partial report (what finished before the signal).
    ``complete`` is true when the output was already final: the signal came
    after it, so there is nothing to resume.
    """

    def __init__(self, signum: int, *, complete: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum
        self.complete = complete
        self.report: object = None
