"""The ``tilewise`` command: a click group; each command lives in its own module."""

from __future__ import annotations

import click

from tilewise import __version__
from tilewise.cli import (
    batch_cmd,
    bench_cmd,
    demo,
    inspect_cmds,
    measure_cmd,
    report_cmd,
    run_cmd,
    verify_cmd,
)

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


cli.add_command(run_cmd.run)
cli.add_command(inspect_cmds.plan)
cli.add_command(inspect_cmds.info)
cli.add_command(inspect_cmds.ops)
cli.add_command(demo.demo)
cli.add_command(report_cmd.report)
cli.add_command(batch_cmd.batch)
cli.add_command(verify_cmd.verify)
cli.add_command(bench_cmd.bench)
cli.add_command(measure_cmd.measure)
cli.add_command(measure_cmd.stats)
