"""``tilewise measure`` and ``tilewise stats``: answers from an enormous image, tile by tile."""

from __future__ import annotations

import json
from typing import Any

import click

from tilewise.cli.errors import finish, reporting_errors
from tilewise.cli.options import (
    apply,
    dask_options,
    executor_options,
    input_limits,
    setup_logging,
    supervision_options,
    verbosity_options,
)
from tilewise.cli.run_cmd import tiling_options
from tilewise.cli.warm import start_workers_early

__all__ = ["measure", "stats"]

_ops_option = click.option(
    "--op",
    "ops",
    multiple=True,
    metavar="NAME[:k=v,...]",
    help="An op to run before measuring, repeated in order, as in 'tilewise run'.",
)
_report_option = click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.json",
    help="Write a JSON report of the run (with the objects each tile holds).",
)
_connection = ["scheduler", "scheduler_file", "tls_ca_file", "tls_cert", "tls_key"]


@click.command(
    epilog="\b\nExit codes:\n"
    "  0    every tile (every file) done\n"
    "  1    stopped on an error after work started (resumable: --resume)\n"
    "  2    bad usage or bad input found before work started\n"
    "  3    finished, but some tiles (or files) failed (named on stderr and in --report;\n"
    "       --resume redoes only those)\n"
    "  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM (resumable: --resume)"
)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@_ops_option
@click.option(
    "--detect",
    required=True,
    metavar="DETECTOR",
    help="peaks:min_distance=D,threshold=T[,exclude_border=B] or "
    "regions:threshold=T[,min_area=A,connectivity=1|2].",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="TABLE",
    help="The table: .csv, .parquet (pip install 'tilewise[measure]'), or .geojson / .gpkg "
    "(points; a georeferenced input only; .gpkg: pip install 'tilewise[geo]').",
)
@click.option(
    "--intensity",
    type=click.Path(dir_okay=True),
    default=None,
    metavar="PATH",
    help="regions: measure this one-band image's values (same size) instead of the ops' output.",
)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=True),
    default=None,
    metavar="OUT.zarr|OUT.tif",
    help="regions: also write the label image (uint32, or uint64 past 2**32-1 regions), "
    "tile by tile in a second pass.",
)
@apply(tiling_options[1:])
@apply(executor_options)
@click.option(
    "--overwrite", is_flag=True, help="Replace TABLE (and the label image) if they exist."
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted or failed measurement of TABLE; finished tiles are merged "
    "from .TABLE.parts without being recomputed.",
)
@apply(supervision_options)
@apply(input_limits)
@_report_option
@apply(verbosity_options)
def measure(
    inputs: tuple[str, ...],
    ops: tuple[str, ...],
    detect: str,
    output_path: str,
    intensity: str | None,
    labels_path: str | None,
    executor: str,
    overwrite: bool,
    resume: bool,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    **options: Any,
) -> None:
    """Detect peaks or regions in INPUTS after the ops; equal to the whole-image answer.

    Each tile runs the ops, exactly as 'tilewise run' does, then the detector;
    this process merges the tiles (regions cut by a tile border are joined) and
    writes one row per object to TABLE. Peaks: row, col, value. Regions: label,
    area, centroid, bbox, mean/min/max intensity. A georeferenced input's rows also
    carry x, y in its CRS. Until every tile is done the
    tiles' results are kept in .TABLE.parts with a journal, for --resume.

    INPUTS is one image, or a collection as 'tilewise batch' takes it (several files,
    folders, quoted glob patterns, @LIST): each file is measured as one image would be,
    into one table whose first column, file, names it. A file that cannot be read or
    whose tiles fail is named with its cause and the rest completes (exit 3).

    \b
    Examples:
      tilewise measure cells.tif --op gaussian:sigma=2 \\
          --detect peaks:min_distance=5,threshold=30 -o nuclei.csv
      tilewise measure 'slides/*.tif' --op gaussian:sigma=2 \\
          --detect peaks:min_distance=5,threshold=30 -o nuclei.parquet
    """
    setup_logging(verbose, quiet)
    connection: dict[str, Any] = dask_options(executor, **{k: options.pop(k) for k in _connection})
    start_workers_early(executor, "measure")
    from tilewise import api_measure
    from tilewise.collection.measure import is_collection

    if is_collection(inputs):
        _measure_files(
            inputs, ops, detect, output_path, intensity, labels_path, executor, overwrite,
            resume, report_path, quiet, verbose, options, connection,
        )  # fmt: skip
    with reporting_errors(verbose):
        result, table = api_measure.measure_run(
            inputs[0],
            list(ops),
            detect=detect,
            output=output_path,
            intensity=intensity,
            labels=labels_path,
            executor=executor,
            overwrite=overwrite,
            resume=resume,
            progress=not quiet,
            report=report_path,
            **options,
            **connection,
        )
    if result.ok and not quiet:
        click.echo(f"{len(next(iter(table.values()), ()))} objects", err=True)
    finish(
        result,
        quiet=quiet,
        wrote=output_path,
        unit="tile",
        failures=[f"tile {f.tile}: {f.cause}" for f in result.failures],
    )


def _measure_files(
    inputs: tuple[str, ...],
    ops: tuple[str, ...],
    detect: str,
    output_path: str,
    intensity: str | None,
    labels_path: str | None,
    executor: str,
    overwrite: bool,
    resume: bool,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    options: dict[str, Any],
    connection: dict[str, Any],
) -> None:
    """``tilewise measure`` over a collection: one table with a file column; exits."""
    from tilewise.collection.measure import measure_files

    for flag, given in (("--intensity", intensity), ("--labels", labels_path)):
        if given is not None:
            raise click.UsageError(f"{flag} is for one image, not a collection of files")
    with reporting_errors(verbose):
        result, table = measure_files(
            list(inputs),
            list(ops),
            detect=detect,
            output=output_path,
            executor=executor,
            overwrite=overwrite,
            resume=resume,
            progress=not quiet,
            report=report_path,
            **options,
            **connection,
        )
    if table is not None and not quiet:
        click.echo(
            f"{len(table['file'])} objects in {result.done + result.skipped} file(s)", err=True
        )
    finish(
        result,
        quiet=quiet,
        wrote=output_path,
        unit="file",
        failures=[f"{f.source}: {f.cause}" for f in result.failures],
    )


def _range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    lo, sep, hi = text.partition(",")
    try:
        if not sep:
            raise ValueError(text)
        return float(lo), float(hi)
    except ValueError:
        raise click.BadParameter(f"expected LO,HI, got {text!r}", param_hint="--range") from None


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True))
@_ops_option
@click.option(
    "--bins", type=click.IntRange(min=1), default=256, show_default=True, help="Histogram bins."
)
@click.option(
    "--range",
    "range_text",
    default=None,
    metavar="LO,HI",
    help="Histogram range [default: the data's min,max; integers of up to 16 bits only].",
)
@click.option("--nodata", type=float, default=None, help="Leave pixels of this value out.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@apply(tiling_options[1:])
@apply(executor_options)
@apply(supervision_options)
@apply(input_limits)
@_report_option
@apply(verbosity_options)
def stats(
    input_path: str,
    ops: tuple[str, ...],
    bins: int,
    range_text: str | None,
    nodata: float | None,
    as_json: bool,
    executor: str,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    **options: Any,
) -> None:
    """Per-band statistics of INPUT after the ops, streamed tile by tile.

    Count, nodata count, min, max, mean, std, percentiles and a histogram per
    band, equal to NumPy on the whole image (integers exactly; floats: see
    docs/measure.md).

    \b
    Example:
      tilewise stats scene.tif --bins 64 --range 0,4096 --json
    """
    setup_logging(verbose, quiet)
    connection: dict[str, Any] = dask_options(executor, **{k: options.pop(k) for k in _connection})
    start_workers_early(executor, "stats")
    from tilewise import api_measure
    from tilewise.measurements import Stats

    with reporting_errors(verbose):
        detector = Stats(nodata=nodata, bins=bins, range=_range(range_text))
        result, bands = api_measure.measure_run(
            input_path,
            list(ops),
            detect=detector,
            executor=executor,
            progress=not quiet,
            report=report_path,
            **options,
            **connection,
        )
    if result.ok:
        if as_json:
            click.echo(json.dumps([b.to_dict() for b in bands], indent=1))
        else:
            for b in bands:
                click.echo(_line(b))
    finish(
        result,
        quiet=quiet or as_json,
        wrote="nothing: the statistics went to stdout",
        unit="tile",
        failures=[f"tile {f.tile}: {f.cause}" for f in result.failures],
    )


def _line(band: Any) -> str:
    values = band.to_dict()
    percentiles = " ".join(f"p{float(k):g}={v:g}" for k, v in values["percentiles"].items())
    return (
        f"band {band.band}: count={band.count} nodata={band.nodata_count} min={band.minimum:g} "
        f"max={band.maximum:g} mean={band.mean:.10g} std={band.std:.10g} {percentiles}"
    )
