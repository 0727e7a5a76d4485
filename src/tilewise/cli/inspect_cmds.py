"""``tilewise plan``, ``info`` and ``ops``: look before you run."""

from __future__ import annotations

import json
from typing import Any

import click

from tilewise.cli.errors import reporting_errors
from tilewise.cli.options import (
    apply,
    input_limits,
    setup_logging,
    stack_options,
    stack_settings,
)
from tilewise.cli.run_cmd import tiling_options

__all__ = ["info", "ops", "plan"]


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option(
    "--output",
    "output_path",
    default=None,
    metavar="OUTPUT",
    help="Plan for this output too (its format may align the tiles).",
)
@apply(tiling_options)
@apply(stack_options)
@apply(input_limits)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("-v", "--verbose", count=True, help="Tracebacks on errors.")
def plan(
    input_path: str,
    output_path: str | None,
    ops: tuple[str, ...],
    tile: str,
    layout: str,
    workers: int | None,
    axes: str | None,
    channel_axis: int | None,
    plane_range: str | None,
    page: int | None,
    max_pixels: int,
    max_whole_pixels: int,
    as_json: bool,
    verbose: int,
) -> None:
    """Show how INPUT would be tiled for the ops: tiles, halo, read overhead, memory.

    Reads only the header; writes nothing.
    """
    from tilewise import api

    setup_logging(verbose, False)
    with reporting_errors(verbose):
        summary = api.plan(
            input_path,
            list(ops),
            dst=output_path,
            tile=tile,
            layout=layout,
            workers=workers,
            max_pixels=max_pixels,
            **stack_settings(axes, channel_axis, plane_range, page),
        )
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    grid = summary["grid"]
    src = summary["input"]
    lines = [
        f"input      {src['path']}: {src['shape'][0]} x {src['shape'][1]}, {src['bands']} band(s), "
        f"{src['dtype']}",
        f"pipeline   {' | '.join(summary['pipeline'])}",
        f"halo       {summary['halo']} px",
        f"tiles      {grid['tiles']} ({grid['counts'][0]} x {grid['counts'][1]}, layout "
        f"{grid['layout']}, tile {grid['tile_shape'][0]} x {grid['tile_shape'][1]})"
        + (f" over {grid['planes']} planes" if grid.get("planes") else ""),
    ]
    if src.get("stack"):
        stack = src["stack"]
        lines.insert(
            1,
            f"stack      {stack['kind']}: axes {stack['axes']}, {stack['stored']} stored, "
            f"{stack['planes'] or 'one plane (--page)'} read",
        )
    if summary["read_overhead"] is not None:
        lines.append(
            f"read       {100 * summary['read_overhead']:.1f}% more pixels than the image (halos)"
        )
    if summary["output"]:
        out = summary["output"]
        lines.append(
            f"output     {out['path']} ({out['format']}, {out['dtype']}, "
            f"{out['bands']} band(s), blocks {out['chunks'][0]} x {out['chunks'][1]})"
        )
    lines.append(
        f"memory     ~{_human_bytes(summary['memory_estimate_bytes'])} with "
        f"{summary['workers']} worker(s)"
    )
    click.echo("\n".join(lines))


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@apply(input_limits)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("-v", "--verbose", count=True, help="Tracebacks on errors; libraries' notes.")
def info(
    input_path: str, max_pixels: int, max_whole_pixels: int, as_json: bool, verbose: int
) -> None:
    """Show INPUT's shape, dtype, bands, blocks (tiles/strips/chunks), compression and reader.

    For georeferenced images also the CRS (EPSG code when there is one), the
    transform (a, b, c, d, e, f as rasterio's Affine), resolution, bounds (left,
    bottom, right, top), nodata, band descriptions and overviews.

    Also what its samples mean (photometric, bits per sample, alpha) and any
    conversion tilewise applies when reading it (e.g. MinIsWhite inverted).
    """
    from tilewise import api

    setup_logging(verbose, False)
    with reporting_errors(verbose):
        facts = api.info(input_path, max_pixels=max_pixels)
    if as_json:
        click.echo(json.dumps(facts, indent=1))
        return
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if isinstance(value, list):
            value = (" x " if key in ("shape", "chunks") else ", ").join(map(str, value))
        click.echo(f"{key:<{width}}  {value}")


def _param_text(definition: Any) -> str:
    if definition.params is None:
        return "any keyword arguments"
    if not definition.params:
        return "-"
    parts = []
    for p in definition.params:
        parts.append(f"{p.name}" if p.required else f"{p.name}={p.default}")
    return ", ".join(parts)


def _halo_text(definition: Any) -> str:
    if definition.halo_rule:
        return str(definition.halo_rule)
    return f"{definition.halo} px" if not callable(definition.halo) else "declared by the op"


def _takes_text(definition: Any) -> str:
    dtypes = "any dtype" if definition.dtypes is None else ", ".join(definition.dtypes)
    if definition.in_bands is None:
        return dtypes
    from tilewise.ops.base import either

    return f"{dtypes}; {either(definition.in_bands)} bands"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def ops(as_json: bool) -> None:
    """List every built-in op: parameters, halo rule, and the library function it equals."""
    from tilewise.ops import REGISTRY

    rows = []
    for name in sorted(REGISTRY):
        d = REGISTRY[name]
        rows.append(
            {
                "name": name,
                "params": _param_text(d),
                "halo": _halo_text(d),
                "equals": d.equals,
                "takes": _takes_text(d),
                "summary": d.summary,
                "exact": d.exact,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        click.echo(f"{row['name']}:{row['params']}")
        click.echo(f"    {row['summary']}")
        click.echo(f"    halo: {row['halo']}")
        click.echo(f"    takes: {row['takes']}")
        click.echo(f"    equals: {row['equals']}" + ("" if row["exact"] else "  [not exact]"))
    click.echo(
        "\nUser ops: --op package.module.function[:k=v,...]; the halo comes from "
        "@tilewise.op(halo=...) or a halo=N parameter."
    )
