"""The ``tilewise`` command: a click group; each command lives in its own module.

A command's module is imported when the command is asked for (click's lazy-loading
pattern), so ``tilewise batch`` does not load ``measure``, ``bench`` or ``verify``
and what they import: a short command's start-up is most of its time.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from tilewise import __version__

__all__ = ["COMMANDS", "cli"]

#: Each command's name and where it is defined (``module:attribute``).
COMMANDS = {
    "batch": "tilewise.cli.batch_cmd:batch",
    "bench": "tilewise.cli.bench_cmd:bench",
    "demo": "tilewise.cli.demo:demo",
    "info": "tilewise.cli.inspect_cmds:info",
    "measure": "tilewise.cli.measure_cmd:measure",
    "ops": "tilewise.cli.inspect_cmds:ops",
    "plan": "tilewise.cli.inspect_cmds:plan",
    "report": "tilewise.cli.report_cmd:report",
    "run": "tilewise.cli.run_cmd:run",
    "stats": "tilewise.cli.measure_cmd:stats",
    "verify": "tilewise.cli.verify_cmd:verify",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` when first used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, name = COMMANDS[cmd_name].partition(":")
            command: Any = getattr(importlib.import_module(module), name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="tilewise")
def cli() -> None:
    """Exact, out-of-core, parallel tiled processing of enormous images.

    Every tiled result is bit-identical to processing the whole image at once.

    \b
    Exit codes:
      0    every tile done
      1    the run stopped on an error after work started (resumable: --resume)
      2    bad usage or bad input, found before work started; or the output
           is in use by another run (named by pid and host)
      3    finished, but some tiles failed (named in the report; --resume retries them)
      130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM (resumable: --resume)
    """
