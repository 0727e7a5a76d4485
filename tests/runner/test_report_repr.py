"""A report reads well in a notebook: short repr, compact HTML, the tile map as a Figure."""

from __future__ import annotations

import logging
import sys

from matplotlib.figure import Figure

from tilewise.runner.progress import Progress
from tilewise.runner.report import RunReport, TileRecord


def _report(tiles: int = 1024, failed: int = 12) -> RunReport:
    report = RunReport(
        input="in.tif",
        output="out.tif",
        pipeline=["gaussian:sigma=2"],
        grid={"image_shape": [32 * 32, 32 * 32]},
        executor={"name": "local", "workers": 2},
        total=tiles,
        seconds=3.5,
    )
    for index in range(tiles):
        window = {"row": 32 * (index // 32), "col": 32 * (index % 32), "height": 32, "width": 32}
        if index < failed:
            report.tiles.append(TileRecord(index, window, "failed", "w1", 0.1, 3, "boom <b>"))
            report.failed += 1
        else:
            stages = (0.002, 0.001, 0.001)
            report.tiles.append(TileRecord(index, window, "done", f"w{index % 2}", 0.005, 1,
                                           stages=stages))  # fmt: skip
            report.done += 1
    return report


def test_repr_is_one_short_line():
    text = repr(_report())
    assert text.startswith("<RunReport with failures: 1024 tiles, 1012 done, 12 failed")
    assert "\n" not in text and len(text) < 200


def test_a_stopped_run_says_so_and_counts_the_tiles_not_run():
    report = _report(tiles=16, failed=0)
    report.tiles = type(report.tiles)()
    report.done, report.failed = 5, 1
    report.stopped_by = "tile 5: OutputError: /o/.out.tif.partial/5: cannot write: No space"
    assert not report.ok and report.not_run == 10
    assert repr(report).startswith("<RunReport stopped: 16 tiles, 5 done, 1 failed")
    assert "5 done, 1 failed, 10 not run" in report.summary()
    assert "tile 5: OutputError" in report._repr_html_()
    assert report.to_dict()["stopped_by"] == report.stopped_by


def test_html_is_compact_and_escapes_causes():
    html = _report()._repr_html_()
    assert "1024 total · 1012 done · 12 failed" in html
    assert "read+decode" in html and "encode+write" in html  # time per stage
    assert "boom &lt;b&gt;" in html and "boom <b>" not in html
    assert html.count("<li>") == 10 and "… and 2 more" in html
    assert "data:image/png;base64," in html
    assert len(html) < 120_000  # the text dump was 195 KB for 1,024 tiles


def test_tilemap_is_a_figure():
    figure = _report(tiles=16, failed=1).tilemap()
    assert isinstance(figure, Figure)
    assert "16 tiles: 15 done, 1 failed" in figure.axes[0].get_title()


def test_log_lines_go_through_the_bar_while_it_shows(capsys):
    console = logging.StreamHandler(sys.stderr)
    level = logging.root.level  # other tests' command lines may have set it (-q)
    logging.root.addHandler(console)
    logging.root.setLevel(logging.WARNING)
    try:
        bar = Progress(4, enabled=True)
        assert console not in logging.root.handlers  # replaced by one writing through tqdm
        logging.getLogger("tests.progress").warning("a line above the bar")
        bar.close()
        assert console in logging.root.handlers
    finally:
        logging.root.removeHandler(console)
        logging.root.setLevel(level)
    assert "a line above the bar" in capsys.readouterr().err
