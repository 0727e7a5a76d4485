"""``tilewise report``: summarize a JSON run report and draw its tile map."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilewise.cli.errors import reporting_errors

__all__ = ["report"]


@click.command()
@click.argument("report_path", metavar="REPORT.json", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--png",
    "png_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="MAP.png",
    help="Draw the tile map: color = worker, shade = time, red cross = failed; "
    "a measurement's map also shows each tile's object count.",
)
@click.option("-v", "--verbose", count=True, help="Tracebacks on errors.")
def report(report_path: str, png_path: str | None, verbose: int) -> None:
    """Summarize a run report written by 'tilewise run --report'; optionally draw its tile map."""
    from tilewise.runner.tilemap import draw_tile_map

    with reporting_errors(verbose):
        try:
            data = json.loads(Path(report_path).read_text())
            tiles = data["tiles"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            from tilewise.errors import UsageError

            raise UsageError(f"{report_path}: not a tilewise run report ({err})") from err
        click.echo(
            f"{data.get('input')} -> {data.get('output')}: {tiles['total']} tiles, "
            f"{tiles['done']} done, {tiles['failed']} failed, {tiles['skipped']} skipped "
            f"in {data.get('seconds', 0):.1f} s on {data.get('workers')} {data.get('executor')} "
            "worker(s)"
        )
        if data.get("stages"):
            from tilewise.runner.report import format_stages

            click.echo(f"  worker time: {format_stages(data['stages'])}")
        counts = [n for n in (data.get("objects") or {}).values() if n is not None]
        if counts:
            busiest = max(data["objects"].items(), key=lambda item: item[1] or 0)
            click.echo(
                f"  objects per tile (before merging across borders): {sum(counts)} in "
                f"{len(counts)} tiles, most in tile {busiest[0]} ({busiest[1]})"
            )
        if data.get("stopped_by"):
            click.echo(f"  stopped by {data['stopped_by']}")
        for failure in data.get("failures", []):
            click.echo(
                f"  tile {failure['tile']}: {failure['cause']} "
                f"({failure.get('attempts', 1)} attempt(s))"
            )
        if png_path:
            draw_tile_map(data, png_path)
            click.echo(f"Wrote {png_path}")
