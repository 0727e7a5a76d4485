"""``tilewise bench``: what parallelism buys — one pipeline at several worker counts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tilewise.cli.errors import reporting_errors
from tilewise.cli.options import dask_options, setup_logging
from tilewise.defaults import DEFAULT_TILE

__all__ = ["bench"]

BENCH_OPS = ("gaussian:sigma=4", "threshold:value=127")


def _counts(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise click.BadParameter(
            f"write worker counts as positive numbers separated by commas, e.g. 1,2,4; got {text!r}"
        )
    return counts


@click.command()
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path(dir_okay=True))
@click.option(
    "--op",
    "ops",
    multiple=True,
    metavar="NAME[:k=v,...]",
    help=f"An op, repeated in order [default: {' '.join('--op ' + o for o in BENCH_OPS)}].",
)
@click.option(
    "--workers",
    "workers_text",
    default=None,
    metavar="N,N,...",
    help="Worker counts to try, e.g. 1,2,4 [default: 1, 2, 4, ... up to the cores].",
)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per worker count; the best wall time counts.")  # fmt: skip
@click.option("--tile", default=str(DEFAULT_TILE), show_default=True, help="Tile size.")
@click.option(
    "--sample",
    type=click.IntRange(min=256),
    default=None,
    metavar="SIZE",
    help="Without INPUT: generate a SIZE x SIZE photo-like TIFF (as 'tilewise demo' does) "
    "in --dir and measure on it, e.g. --sample 8192.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default="tilewise-demo",
    show_default=True,
    help="Where a --sample image is kept (reused by later runs and by 'tilewise demo').",
)
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="Supervised local processes, or Dask.")  # fmt: skip
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="With --executor dask: a running scheduler [default: a local cluster].",
)
@click.option(
    "--scheduler-file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="With --executor dask: the file from 'dask scheduler --scheduler-file'.",
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.png",
    help="Also plot speed-up and peak memory against workers (needs tilewise[report]).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@click.option("-v", "--verbose", count=True, help="More detail; tracebacks.")
def bench(
    input_path: str | None,
    ops: tuple[str, ...],
    workers_text: str | None,
    repeat: int,
    tile: str,
    sample: int | None,
    directory: str,
    executor: str,
    scheduler: str | None,
    scheduler_file: str | None,
    png: str | None,
    as_json: bool,
    verbose: int,
) -> None:
    """Run the pipeline over INPUT at each worker count and show what parallelism buys.

    Prints, per worker count: the best wall time of --repeat runs (worker
    start-up included, as in a user's run), throughput in input megapixels per
    second, speed-up against the first count, parallel efficiency (speed-up /
    ratio of workers) and the peak memory of the whole process tree (PSS, summed
    over this process and every worker, sampled every 50 ms). Each run writes a
    temporary .tif output, removed at the end.

    \b
    Examples:
      tilewise bench --sample 8192 --workers 1,2 --png scaling.png
      tilewise bench scene.tif --op median:size=9 --repeat 5 --json
    """
    setup_logging(verbose, quiet=False)
    connection = dask_options(executor, scheduler=scheduler, scheduler_file=scheduler_file)
    counts = _counts(workers_text)
    if (input_path is None) == (sample is None):
        raise click.UsageError("give either INPUT or --sample SIZE (not both)")
    from tilewise.bench import bench as measure
    from tilewise.bench import draw_scaling

    with reporting_errors(verbose):
        if input_path is None:
            assert sample is not None
            input_path = str(_sample(Path(directory), sample))

        def progress(count: int, number: int, seconds: float) -> None:
            click.echo(f"  {count} worker(s), run {number}/{repeat}: {seconds:.2f} s", err=True)

        result = measure(
            input_path,
            list(ops or BENCH_OPS),
            workers=counts,
            repeat=repeat,
            tile=tile,
            executor=executor,
            progress=progress,
            **connection,
        )
        if png is not None:
            draw_scaling(result, png)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        rows, cols = result.shape
        click.echo(
            f"{' | '.join(result.pipeline)} on {input_path} ({rows} x {cols} px), tile {tile}, "
            f"{executor} executor, {result.cores} cores:"
        )
        click.echo(result.table())
    if png is not None:
        click.echo(f"Wrote {png}", err=True)


def _sample(directory: Path, size: int) -> Path:
    from tilewise.testing.samples import write_sample_tiff

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sample-{size}.tif"
    if not path.exists():
        click.echo(f"Generating {path} ({size} x {size} px, photo mosaic) ...", err=True)
        started = time.perf_counter()
        write_sample_tiff(path, size)
        click.echo(f"  done in {time.perf_counter() - started:.1f} s", err=True)
    return path
