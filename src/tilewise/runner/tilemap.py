"""Draw a run report as a tile map: who processed which tile, how long it took, what failed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tilewise.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_tile_map", "tile_map_figure"]


def _load(report: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(report, dict):
        return report
    try:
        data = json.loads(Path(report).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{report}: not a readable tilewise report ({err})") from err
    if not isinstance(data, dict) or "per_tile" not in data or "grid" not in data:
        raise UsageError(f"{report}: not a tilewise run report (no per-tile records)")
    return data


def _draw_counts(ax: Any, records: list[dict[str, Any]], objects: Any) -> None:
    """Write each tile's object count (a measurement's report) at its centre."""
    if not isinstance(objects, dict) or len(records) > 400:
        return
    for record in records:
        count = objects.get(str(record["tile"]))
        if count is None:
            continue
        win = record["window"]
        centre = (win["col"] + win["width"] / 2, win["row"] + win["height"] / 2)
        ax.text(*centre, str(count), ha="center", va="center", fontsize=7)


def draw_tile_map(
    report: str | os.PathLike[str] | dict[str, Any], png: str | os.PathLike[str], *, dpi: int = 120
) -> None:
    """Draw each tile colored by its worker, shaded by its time; failed tiles crossed in red.

    Parameters
    ----------
    report : path or dict
        A run report, as its JSON file or :meth:`RunReport.to_dict`.
    png : path
        The PNG to write (atomically).
    dpi : int
        Resolution of the PNG.
    """
    fig = tile_map_figure(report)
    target = Path(png)
    tmp = target.with_name(f".{target.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, target)


def tile_map_figure(report: str | os.PathLike[str] | dict[str, Any]) -> Figure:
    """The tile map as a matplotlib Figure on its own Agg canvas (pyplot is left alone).

    Parameters
    ----------
    report : path or dict
        A run report, as its JSON file or :meth:`RunReport.to_dict`.

    Returns
    -------
    matplotlib.figure.Figure
        Each tile colored by its worker and shaded by its time; failed tiles crossed in red.
    """
    try:  # a figure of its own on the Agg canvas: pyplot and the global backend are left alone
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch, Rectangle
    except ImportError as err:
        raise UsageError(
            "drawing a tile map needs matplotlib: pip install 'tilewise[report]'"
        ) from err
    data = _load(report)
    plane_h, plane_w = data["grid"]["image_shape"]
    planes = int(data["grid"].get("planes", 1))
    across = math.ceil(math.sqrt(planes))  # a stack's planes side by side, row after row
    gap = 0.05 * max(plane_h, plane_w) if planes > 1 else 0.0
    height = math.ceil(planes / across) * (plane_h + gap) - gap
    width = across * (plane_w + gap) - gap

    def corner(win: dict[str, int]) -> tuple[float, float]:
        down, over = divmod(int(win.get("plane", 0)), across)
        return (win["col"] + over * (plane_w + gap), win["row"] + down * (plane_h + gap))

    records = data["per_tile"]
    workers = sorted({r.get("worker", "") for r in records if r["outcome"] == "done"})
    cmap = colormaps["tab10" if len(workers) <= 10 else "tab20"]
    colors = {w: cmap(i % cmap.N) for i, w in enumerate(workers)}
    times = [r.get("seconds", 0.0) for r in records if r["outcome"] == "done"]
    slowest = max(times, default=0.0) or 1.0
    aspect = width / height
    fig_w = 9.0
    fig = Figure(figsize=(fig_w, max(3.0, min(14.0, fig_w / aspect + 1.2))))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for record in records:
        win = record["window"]
        xy = corner(win)
        if record["outcome"] == "done":
            shade = 0.35 + 0.65 * record.get("seconds", 0.0) / slowest
            ax.add_patch(
                Rectangle(
                    xy,
                    win["width"],
                    win["height"],
                    facecolor=colors[record["worker"]],
                    alpha=shade,
                    edgecolor="white",
                    linewidth=0.5,
                )
            )
        else:
            ax.add_patch(
                Rectangle(
                    xy,
                    win["width"],
                    win["height"],
                    facecolor="none",
                    edgecolor="red",
                    hatch="xx",
                    linewidth=1.2,
                )
            )
    _draw_counts(ax, records, data.get("objects"))
    for plane in range(planes if planes > 1 else 0):
        x, y = corner({"plane": plane, "row": 0, "col": 0})
        ax.add_patch(Rectangle((x, y), plane_w, plane_h, fill=False, edgecolor="0.6", lw=0.8))
        ax.text(x, y, f"plane {plane}", fontsize=7, va="bottom")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("column (px)")
    ax.set_ylabel("row (px)")
    tiles = data["tiles"]
    if data.get("stages"):
        from tilewise.runner.report import format_stages

        ax.text(
            0.0,
            -0.08,
            f"worker time: {format_stages(data['stages'])}",
            transform=ax.transAxes,
            fontsize=8,
            va="top",
        )
    ax.set_title(
        f"{Path(str(data.get('input', ''))).name} — {tiles['total']} tiles: {tiles['done']} done, "
        f"{tiles['failed']} failed, {tiles['skipped']} earlier; {data.get('seconds', 0):.1f} s\n"
        "color: worker · darker: slower · red cross: failed · blank: done by an earlier run",
        fontsize=9,
    )
    handles = [Patch(facecolor=colors[w], label=w) for w in workers]
    if any(r["outcome"] == "failed" for r in records):
        handles.append(Patch(facecolor="none", edgecolor="red", hatch="xx", label="failed"))
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title="worker",
            title_fontsize=8,
            frameon=False,
        )
    fig.tight_layout()
    return fig
