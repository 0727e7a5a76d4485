"""``tilewise demo``: generate a large photo-like image and run the reference pipeline on it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from tilewise.cli.errors import reporting_errors
from tilewise.cli.options import setup_logging
from tilewise.defaults import DEFAULT_TILE

__all__ = ["demo"]

DEMO_OPS = ("gaussian:sigma=4", "threshold:value=127")


@click.command()
@click.option(
    "--size",
    type=click.IntRange(min=256),
    default=8192,
    show_default=True,
    help="Side of the generated square image, in pixels.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default="tilewise-demo",
    show_default=True,
    help="Where the sample image and the results go.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: one per core].",
)
@click.option("--tile", default=str(DEFAULT_TILE), show_default=True, help="Tile size.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", count=True, help="More detail; tracebacks.")
def demo(
    size: int, directory: str, workers: int | None, tile: str, quiet: bool, verbose: int
) -> None:
    """Generate a SIZE x SIZE photo-like TIFF (offline) and blur + threshold it, tile by tile.

    Writes DIR/sample-SIZE.tif (kept for later runs, e.g. DIR/sample-8192.tif),
    DIR/result.tif, DIR/report.json and DIR/tilemap.png (which worker did which
    tile; needs matplotlib, from tilewise[report]), then checks the tiled result
    against the same ops run on the whole image when it fits in memory (SIZE up
    to 16384).
    """
    from tilewise import api
    from tilewise.testing.samples import write_sample_tiff

    setup_logging(verbose, quiet)
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    sample = out_dir / f"sample-{size}.tif"
    with reporting_errors(verbose):
        if not sample.exists():
            click.echo(f"Generating {sample} ({size} x {size} px, photo mosaic) ...", err=True)
            started = time.perf_counter()
            write_sample_tiff(sample, size)
            click.echo(f"  done in {time.perf_counter() - started:.1f} s", err=True)
        result = out_dir / "result.tif"
        click.echo(f"Running {' | '.join(DEMO_OPS)} on {sample} ...", err=True)
        report = api.run(
            sample,
            result,
            list(DEMO_OPS),
            tile=tile,
            workers=workers,
            overwrite=True,
            progress=not quiet,
            report=out_dir / "report.json",
        )
    click.echo(report.summary(), err=True)
    try:
        from tilewise.runner.tilemap import draw_tile_map

        draw_tile_map(out_dir / "report.json", out_dir / "tilemap.png")
        tilemap = f", tile map {out_dir / 'tilemap.png'}"
    except Exception:  # the tile map is a bonus; matplotlib may be missing
        tilemap = ""
    if size <= 16384:
        import numpy as np
        import tifffile

        from tilewise.pipeline import Pipeline

        whole = Pipeline.from_specs(DEMO_OPS)(tifffile.imread(sample))
        same = bool(np.array_equal(whole, tifffile.imread(result)))
        click.echo(f"Tiled result identical to whole-image processing: {same}", err=True)
        if not same:
            raise SystemExit(1)
    click.echo(f"Output: {result.resolve()} (report {out_dir / 'report.json'}{tilemap})")
    raise SystemExit(0 if report.ok else 3)
