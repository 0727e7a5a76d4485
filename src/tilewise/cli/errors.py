"""Map exceptions to one-line messages and exit codes."""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from tilewise.cli.options import EXIT_DONE, EXIT_FAILED_TILES, EXIT_RUN_ERROR, EXIT_USAGE
from tilewise.errors import Interrupted, Phase, TilewiseError

if TYPE_CHECKING:
    from tilewise.runner.report import RunReport

__all__ = ["EXIT_CODES", "exit_code", "fail", "finish", "interrupted", "reporting_errors"]

#: The exit code of a command stopped by an error, by the error's phase. An ``OSError``
#: that is not tilewise's (a path the command could not use) counts as before work;
#: :class:`Interrupted` exits 128 + the signal number.
EXIT_CODES = {
    Phase.BEFORE_WORK: EXIT_USAGE,
    Phase.DURING_WORK: EXIT_RUN_ERROR,
    Phase.MISMATCH: EXIT_USAGE,
}


def exit_code(err: BaseException) -> int:
    """The exit code for a command that ``err`` stopped (see :data:`EXIT_CODES`)."""
    if isinstance(err, Interrupted):
        return err.exit_code
    if isinstance(err, TilewiseError):
        return EXIT_CODES[err.phase]
    return EXIT_CODES[Phase.BEFORE_WORK]


def interrupted(stop: Interrupted, *, resumable: bool) -> NoReturn:
    """Say which signal stopped the command (and how to continue); exit 128 + its number."""
    if stop.complete:
        output = getattr(stop.report, "output", None) or "the output"
        hint = f" after {output} was complete; nothing to resume."
    elif resumable:
        hint = "; finished tiles are kept. Run the same command with --resume to continue."
    else:
        hint = "."
    click.echo(f"\nInterrupted by {stop.args[0]}{hint}", err=True)
    sys.exit(exit_code(stop))


def fail(message: str, code: int) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@contextmanager
def reporting_errors(verbose: int) -> Iterator[None]:
    """Turn exceptions into ``Error:`` lines and exit codes (tracebacks with ``-v``).

    Errors found before any tile ran exit 2; errors that stop a run part-way
    (phase ``DURING_WORK``, set by the run's lifecycle) exit 1 and leave it resumable.
    """
    try:
        yield
    except Interrupted as stop:
        interrupted(stop, resumable=not stop.complete)
    except (TilewiseError, OSError) as err:
        if verbose:
            traceback.print_exc()
        if isinstance(err, TilewiseError):
            message = str(err)
        else:
            where = f"{err.filename}: " if getattr(err, "filename", None) else ""
            message = f"{where}{err.strerror or err}"
        code = exit_code(err)
        if code == EXIT_RUN_ERROR and "--resume" not in message:
            message += "; finished tiles are kept: fix the cause and run again with --resume"
        fail(message, code)


def finish(
    report: RunReport,
    *,
    quiet: bool,
    wrote: str,
    failures: list[str],
    unit: str,
    late_signal: int | None = None,
) -> NoReturn:
    """Print the run's summary and its failures (ten at most), then exit 0 or 3.

    A run stopped by a failure of the environment (``report.stopped_by``) gets one
    line instead: that failure, and to fix it and ``--resume``.

    ``late_signal`` came after the output was final: the run finished first, and
    exits as it ended, saying so.
    """
    if not quiet:
        click.echo(report.summary(), err=True)
    if late_signal is not None:
        click.echo(
            f"{signal.Signals(late_signal).name} came after {wrote} was complete: the run "
            "finished its last steps first.",
            err=True,
        )
    if report.ok:
        if not quiet:
            if report.extra.get("already_final"):
                click.echo(f"{wrote} was already complete: nothing left to do.", err=True)
            else:
                click.echo(f"Wrote {wrote}", err=True)
        sys.exit(EXIT_DONE)
    if report.stopped_by is not None:
        click.echo(
            f"Error: stopped the run at {report.stopped_by} -- not the {unit}'s own failure "
            f"(storage unavailable, or no space for the output), so {report.not_run} {unit}(s) "
            "were not run; finished ones are kept. Fix it, then run the same command with "
            "--resume.",
            err=True,
        )
        sys.exit(EXIT_FAILED_TILES)
    for line in failures[:10]:
        click.echo(f"Error: {line}", err=True)
    if len(failures) > 10:
        click.echo(f"... and {len(failures) - 10} more (see --report)", err=True)
    filled = report.extra.get("filled")
    if report.finalized and filled:
        click.echo(
            f"{report.failed} {unit}(s) failed; wrote {wrote} with them filled with "
            f"{filled['value']:g} (listed in {filled['list']}).",
            err=True,
        )
        sys.exit(EXIT_FAILED_TILES)
    from tilewise.io import is_url

    fillable = unit == "tile" and not is_url(wrote)  # --allow-failed: local outputs only
    click.echo(
        f"{report.failed} {unit}(s) failed; the others are done and kept. Fix the cause and "
        "run the same command with --resume to redo only those"
        + (", or add --allow-failed to finish with them filled." if fillable else "."),
        err=True,
    )
    sys.exit(EXIT_FAILED_TILES)
