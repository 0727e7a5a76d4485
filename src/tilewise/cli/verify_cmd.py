"""``tilewise verify``: check the ops' declared halo, dtype and bands on a sample of tiles."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tilewise.cli.errors import fail, reporting_errors
from tilewise.cli.options import (
    EXIT_DONE,
    EXIT_USAGE,
    apply,
    dask_options,
    executor_options,
    input_limits,
    setup_logging,
    verbosity_options,
)
from tilewise.cli.run_cmd import tiling_options

__all__ = ["check_before_run", "verify"]


def check_before_run(input_path: str, ops: list[str], **options: Any) -> None:
    """Verify ``ops`` on ``input_path``; on a problem print it and exit 2 (nothing written)."""
    from tilewise.verify import verify as verify_ops

    verdict = verify_ops(input_path, ops, **options)
    if not verdict.ok:
        for line in verdict.problems()[:-1]:
            click.echo(f"Error: {line}", err=True)
        fail(f"{verdict.problems()[-1]} (--verify: nothing was run or written)", EXIT_USAGE)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True))
@apply(tiling_options)
@apply(executor_options)
@apply(input_limits)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@apply(verbosity_options)
def verify(
    input_path: str,
    ops: tuple[str, ...],
    tile: str,
    layout: str,
    workers: int | None,
    executor: str,
    scheduler: str | None,
    scheduler_file: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_pixels: int,
    max_whole_pixels: int,
    as_json: bool,
    quiet: bool,
    verbose: int,
) -> None:
    """Check that every op's halo, dtype and bands are declared right, on a sample of INPUT.

    Runs, in worker processes, the first tile (its dtype and band count must be
    the declared ones), then the tiles at the corners, the middle of each edge
    and the centre, with the declared halo and with larger ones (up to
    max(64, 4 x declared) per op). An op whose tiles need more context is
    reported as "needs a halo of at least N (declared M)"; an op whose result
    keeps changing as the halo grows as "not translation-invariant (differs
    by up to D)". Exit 0 when every op passes, 2 otherwise. 'tilewise run
    --verify' does the same before a run.

    \b
    Example:
      tilewise verify scene.tif --op mylib.local_max:size=9 --tile 1024
    """
    setup_logging(verbose, quiet)
    connection: dict[str, Any] = dask_options(
        executor,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    from tilewise.verify import verify as verify_ops

    with reporting_errors(verbose):
        verdict = verify_ops(
            input_path,
            list(ops),
            tile=tile,
            layout=layout,
            workers=workers,
            executor=executor,
            max_pixels=max_pixels,
            max_whole_pixels=max_whole_pixels,
            **connection,
        )
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), indent=2))
    elif not quiet:
        tiles = ", ".join(map(str, verdict.tiles))
        click.echo(f"Checked tiles {tiles} of {input_path}:", err=True)
        for op in verdict.ops:
            if op.ok:
                click.echo(f"  ok: {op.message()}", err=True)
    for line in verdict.problems():
        click.echo(f"Error: {line}", err=True)
    sys.exit(EXIT_DONE if verdict.ok else EXIT_USAGE)
