"""``tilewise bench``: scaling measurements, their table, JSON and plot."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from tilewise.bench import BenchResult, Measurement, default_workers, draw_scaling
from tilewise.cli.app import cli
from tilewise.errors import UsageError


def test_bench_on_a_generated_sample_prints_json_and_draws_the_plot(tmp_path):
    png = tmp_path / "scaling.png"
    args = ["bench", "--sample", "256", "--dir", str(tmp_path), "--workers", "1,2",
            "--repeat", "1", "--tile", "128", "--json", "--png", str(png)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["shape"] == [256, 256] and (tmp_path / "sample-256.tif").exists()
    assert [row["workers"] for row in data["rows"]] == [1, 2]
    first, second = data["rows"]
    assert first["speedup"] == 1.0 and first["efficiency"] == 1.0
    assert second["efficiency"] == pytest.approx(second["speedup"] / 2)
    for row in data["rows"]:
        assert row["wall"] > 0 and row["mpix_per_s"] > 0 and len(row["walls"]) == 1
        # this process, the fork server and the workers: far above one bare interpreter
        assert row["peak_tree_bytes"] > 20 * 2**20
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.iterdir()) != [] and not list(tmp_path.glob("out*"))


def test_bench_needs_an_input_or_a_sample_and_sane_counts(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["bench"]).exit_code == 2
    res = runner.invoke(cli, ["bench", "--sample", "256", "--workers", "0,2"])
    assert res.exit_code == 2 and "1,2,4" in res.output


def test_default_workers_double_up_to_the_cores():
    assert default_workers(8) == [1, 2, 4, 8]
    assert default_workers(2) == [1, 2]


def test_a_missing_matplotlib_gives_the_install_hint(tmp_path, monkeypatch):
    result = BenchResult("x.tif", (8, 8), ["invert"], "local", "8", 1, 2,
                         [Measurement(1, [1.0], 1.0, 1)])  # fmt: skip
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageError, match=r"pip install 'tilewise\[report\]'"):
        draw_scaling(result, tmp_path / "s.png")


def test_the_table_shows_the_best_wall_and_derived_figures():
    rows = [Measurement(1, [2.5, 2.0], 4.0, 100 * 2**20), Measurement(2, [1.5, 1.25], 4.0, 2**28)]
    rows[1].speedup, rows[1].efficiency = 1.6, 0.8
    table = BenchResult("x.tif", (2000, 2000), ["invert"], "local", "512", 2, 2, rows).table()
    assert "best of 2" in table
    assert "| 1 | 2.00 | 2 | 1.00x | 100% | 100 |" in table
    assert "| 2 | 1.25 | 3.2 | 1.60x | 80% | 256 |" in table
