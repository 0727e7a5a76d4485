"""Reports in a notebook: a short ``repr`` and a compact HTML summary with the tile map inline.

The HTML stays small whatever the run's size: totals, where the workers' time went,
the first failures, and the tile map as one PNG data URI (never one row per tile).
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import TYPE_CHECKING, Any

from tilewise.runner.report import format_stages

if TYPE_CHECKING:
    from tilewise.runner.report import RunReport

__all__ = ["report_html", "report_repr", "tile_map_png"]

#: Failures listed in the HTML; the rest are counted (all are in ``report.failures``).
_SHOWN_FAILURES = 10
_STATUS = {True: "ok", False: "with failures"}


def _status(report: RunReport) -> str:
    if report.interrupted:
        return "interrupted"
    return "stopped" if report.stopped_by is not None else _STATUS[report.ok]


def report_repr(report: RunReport) -> str:
    """One line: the class, the counts and the outcome (the full record is ``to_dict()``)."""
    status = _status(report)
    return (
        f"<{type(report).__name__} {status}: {report.total} {report.unit}, {report.done} done, "
        f"{report.failed} failed, {report.skipped} already done, {report.seconds:.1f} s; "
        f"output {report.output!r}{'' if report.finalized else ' (not finalized)'}>"
    )


def tile_map_png(report: RunReport, dpi: int = 72) -> bytes | None:
    """The tile map as PNG bytes, or None without matplotlib or per-tile records."""
    if not report.tiles:
        return None
    try:
        import matplotlib  # noqa: F401 - only whether it is there
    except ImportError:
        return None
    from tilewise.runner.tilemap import tile_map_figure

    buffer = io.BytesIO()
    tile_map_figure(report.to_dict()).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def report_html(report: RunReport, failures: list[tuple[str, str]], tile_map: bool) -> str:
    """A compact HTML summary; ``failures`` are (where, cause) pairs, in order."""
    status = _status(report)
    rows: list[tuple[str, str]] = [
        ("input", str(report.input)),
        (
            "output",
            f"{report.output}" + ("" if report.finalized else " (not finalized)"),
        ),
        ("pipeline", " → ".join(report.pipeline) or "—"),
        (
            report.unit,
            f"{report.total} total · {report.done} done · {report.failed} failed · "
            f"{report.skipped} already done",
        ),
        ("time", f"{report.seconds:.2f} s" + (f" ({report.rate()})" if report.rate() else "")),
        (
            "executor",
            f"{report.executor.get('name', '?')}, {report.executor.get('workers')} workers",
        ),
    ]
    stages: dict[str, Any] = report.to_dict().get("stages") or {}
    if stages:
        rows.append(("worker time", format_stages(stages)))
    if report.stopped_by is not None:
        rows.append(("stopped by", f"{report.stopped_by}; {report.not_run} not run"))
    filled = report.extra.get("filled")
    if filled:
        rows.append(("filled", f"{len(filled['tiles'])} failed tile(s) with {filled['value']:g}"))
    body = "".join(
        f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>"
        f"{escape(v)}</td></tr>"
        for k, v in rows
    )
    parts = [
        f"<div><b>tilewise {escape(type(report).__name__)}</b>: {escape(status)}",
        f"<table>{body}</table>",
    ]
    if failures:
        items = "".join(
            f"<li>{escape(where)}: {escape(cause)}</li>"
            for where, cause in failures[:_SHOWN_FAILURES]
        )
        more = len(failures) - _SHOWN_FAILURES
        parts.append(
            f"<details open><summary>{len(failures)} failed</summary><ul>{items}</ul>"
            + (f"<p>… and {more} more (report.failures)</p>" if more > 0 else "")
            + "</details>"
        )
    png = tile_map_png(report) if tile_map else None
    if png is not None:
        uri = base64.b64encode(png).decode("ascii")
        parts.append(f"<img alt='tile map' src='data:image/png;base64,{uri}'/>")
    parts.append("</div>")
    return "".join(parts)
