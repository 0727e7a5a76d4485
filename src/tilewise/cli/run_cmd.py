"""``tilewise run``: one enormous image through a pipeline, tile by tile."""

from __future__ import annotations

from typing import Any

import click

from tilewise.cli.errors import finish, reporting_errors
from tilewise.cli.options import (
    apply,
    dask_options,
    executor_options,
    input_limits,
    nodata_option,
    parse_key_values,
    setup_logging,
    stack_options,
    stack_settings,
    supervision_options,
    verbosity_options,
)
from tilewise.cli.warm import start_workers_early
from tilewise.defaults import DEFAULT_TILE

__all__ = ["run", "tiling_options"]

tiling_options = [
    click.option(
        "--op",
        "ops",
        multiple=True,
        required=True,
        metavar="NAME[:k=v,...]",
        help="An op, repeated in order: built-in name (see 'tilewise ops') or dotted "
        "path to a function, e.g. --op gaussian:sigma=4 --op threshold:value=127.",
    ),
    click.option(
        "--tile",
        default=str(DEFAULT_TILE),
        show_default=True,
        metavar="N|ROWSxCOLS",
        help="Tile size, e.g. 1024 or 1024x512 (rows x cols).",
    ),
    click.option(
        "--layout",
        type=click.Choice(["grid", "rows", "columns"]),
        default="grid",
        show_default=True,
        help="Cut into a grid, horizontal strips or vertical strips.",
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Worker processes [default: one per core].",
    ),
]


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=True))
@apply(tiling_options)
@apply(stack_options)
@apply(executor_options)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted or failed run of OUTPUT; only unfinished tiles run.",
)
@click.option(
    "--co",
    "creation",
    multiple=True,
    metavar="KEY=VALUE",
    help="Output option as GDAL writes it, e.g. --co COMPRESS=ZSTD (TIFF: NONE, LZW, DEFLATE, "
    "ZSTD; Zarr: ZSTD, BLOSC, NONE), --co LEVEL=5; TIFF also PREDICTOR=2, BLOCKSIZE=512, "
    "BLOCKXSIZE, BLOCKYSIZE, BIGTIFF=YES|NO|IF_NEEDED.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tiff", "cog", "zarr", "npy"]),
    default=None,
    help="Output format [default: OUTPUT's extension's]. cog: a Cloud Optimized GeoTIFF "
    "(.tif): 512-px tiles (--co BLOCKSIZE), overviews built in parallel after the tiles "
    "until the smallest fits one tile, the COG byte layout; takes --co COMPRESS, LEVEL, "
    "PREDICTOR, BLOCKSIZE, BIGTIFF (default IF_NEEDED).",
)
@click.option(
    "--overview-resampling",
    type=click.Choice(["nearest", "average", "mode"]),
    default=None,
    help="With --format cog: how each overview level is made from the one before, 2 x 2 "
    "pixels to 1 (nearest: top-left; average: mean of valid pixels; mode: most frequent) "
    "[default: nearest for integer pixels, average for floating point].",
)
@click.option(
    "--drop-georef",
    is_flag=True,
    help="Write the pixels without the input's georeferencing (CRS, transform, nodata, band "
    "metadata). Without it .tif and .zarr outputs keep it and a .npy output is refused.",
)
@click.option(
    "--dst-nodata",
    type=float,
    default=None,
    metavar="V",
    help="The output's nodata value, written where the input is nodata (default: the "
    "input's, as the ops map it; 'nan' for NaN).",
)
@nodata_option
@apply(supervision_options)
@click.option(
    "--allow-failed",
    is_flag=True,
    help="If tiles fail on every attempt, still finish OUTPUT with them filled (see --fill) "
    "and listed in OUTPUT.failed.json and the report; exit 3. Default: OUTPUT stays partial.",
)
@click.option(
    "--fill",
    type=float,
    default=0,
    show_default=True,
    metavar="V",
    help="The value failed tiles are filled with under --allow-failed.",
)
@apply(input_limits)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.json",
    help="Write a JSON report of the run.",
)
@click.option(
    "--verify",
    "verify_first",
    is_flag=True,
    help="First check the ops' halo, dtype and bands on a sample of tiles, as 'tilewise "
    "verify' does; stop with exit 2 before any output is written if one is wrong.",
)
@apply(verbosity_options)
def run(
    input_path: str,
    output_path: str,
    ops: tuple[str, ...],
    tile: str,
    layout: str,
    workers: int | None,
    axes: str | None,
    channel_axis: int | None,
    plane_range: str | None,
    page: int | None,
    executor: str,
    scheduler: str | None,
    scheduler_file: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    overwrite: bool,
    resume: bool,
    creation: tuple[str, ...],
    fmt: str | None,
    overview_resampling: str | None,
    drop_georef: bool,
    dst_nodata: float | None,
    nodata: float | str,
    retries: int,
    timeout: float | None,
    memory_limit: int | None,
    max_tasks_per_worker: int | None,
    allow_failed: bool,
    fill: float,
    max_pixels: int,
    max_whole_pixels: int,
    report_path: str | None,
    verify_first: bool,
    quiet: bool,
    verbose: int,
    **_: Any,
) -> None:
    """Run ops over INPUT tile by tile and write OUTPUT, exactly as if on the whole image.

    INPUT is a TIFF/BigTIFF, Zarr array, .npy, PNG or JPEG, or with
    tilewise[geo] any raster GDAL reads (JPEG2000, ENVI, VRT...). OUTPUT's extension
    picks the format: .tif (tiled BigTIFF), .zarr (Zarr v3) or .npy; --format cog
    writes a Cloud Optimized GeoTIFF (.tif) with overviews. A georeferenced
    INPUT's CRS, transform, nodata and band metadata go to a .tif (GeoTIFF tags) or
    .zarr (attributes), as the ops map them (resize scales the transform). A stack
    (multi-page TIFF, ImageJ hyperstack, OME-TIFF, N-D .npy or Zarr) is processed
    plane by plane and OUTPUT keeps its leading axes and their names (ImageJ or OME
    metadata in a .tif, an 'axes' attribute in a .zarr); overview pages are not
    planes; --planes and --page select. OUTPUT
    appears under its name only once every tile is done; until then the work
    is kept in .OUTPUT.partial with a journal, for --resume. While a run works,
    .OUTPUT.lock keeps a second run off OUTPUT (refused, exit 2).

    \b
    Pixels of the input's nodata value (or --nodata V) are left out by the ops
    and come out as the output's nodata value.

    \b
    Examples:
      tilewise run scene.tif smooth.tif --op gaussian:sigma=4 --op threshold:value=127
      tilewise run scene.tif smooth.tif --op gaussian:sigma=2 --format cog \\
          --overview-resampling average --co COMPRESS=ZSTD
    """
    setup_logging(verbose, quiet)
    options = parse_key_values(creation, "--co")
    if overview_resampling is not None:
        if fmt != "cog":
            raise click.UsageError("--overview-resampling applies to --format cog only")
        given = options.get("OVERVIEW_RESAMPLING", overview_resampling).lower()
        if given != overview_resampling:
            raise click.UsageError(
                f"--overview-resampling {overview_resampling} and --co "
                f"OVERVIEW_RESAMPLING={options['OVERVIEW_RESAMPLING']} disagree; give one"
            )
        options["OVERVIEW_RESAMPLING"] = overview_resampling
    connection: dict[str, Any] = dask_options(
        executor,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    start_workers_early(executor, "run", (input_path, output_path))
    from tilewise import api
    from tilewise.runner.lifecycle import HeldSignals

    # A signal after the output is final is held to the end of the command (exit 0).
    with HeldSignals(give_back=False) as held, reporting_errors(verbose):
        if verify_first:
            from tilewise.cli.verify_cmd import check_before_run

            check_before_run(
                input_path,
                list(ops),
                tile=tile,
                layout=layout,
                workers=workers,
                executor=executor,
                max_pixels=max_pixels,
                max_whole_pixels=max_whole_pixels,
                **stack_settings(axes, channel_axis, plane_range, page),
                **connection,
            )
        result = api.run(
            input_path,
            output_path,
            list(ops),
            tile=tile,
            layout=layout,
            workers=workers,
            executor=executor,
            overwrite=overwrite,
            resume=resume,
            retries=retries,
            timeout=timeout,
            memory_limit=memory_limit,
            max_tasks_per_worker=max_tasks_per_worker,
            creation_options=options,
            max_pixels=max_pixels,
            max_whole_pixels=max_whole_pixels,
            progress=not quiet,
            report=report_path,
            allow_failed=allow_failed,
            fill=fill,
            drop_georef=drop_georef,
            dst_nodata=dst_nodata,
            format=fmt,
            nodata=nodata,
            **stack_settings(axes, channel_axis, plane_range, page),
            **connection,
        )
        finish(
            result,
            quiet=quiet,
            wrote=output_path,
            unit="tile",
            failures=[f"tile {f.tile} ({_window(f.window)}): {f.cause}" for f in result.failures],
            late_signal=held.held,
        )


def _window(window: dict[str, int]) -> str:
    r, c, h, w = window["row"], window["col"], window["height"], window["width"]
    plane = f"plane {window['plane']}, " if "plane" in window else ""
    return f"{plane}rows {r}:{r + h}, cols {c}:{c + w}"
