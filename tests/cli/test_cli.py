"""The command line: help, info/plan/ops, runs, errors as one-liners with documented exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import leftovers, make_image, read_image, write_image
from tilewise.cli.app import cli
from tilewise.pipeline import Pipeline

OPS = ["--op", "gaussian:sigma=2", "--op", "threshold:value=127"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tilewise_cmd(*args: str, **kwargs):
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=240,
        **kwargs,
    )


@pytest.mark.parametrize(
    "command", ["run", "plan", "info", "ops", "demo", "report", "verify", "bench"]
)
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_top_level_help_documents_exit_codes():
    result = invoke("--help")
    for code in ("0 ", "2 ", "3 ", "130"):
        assert code in result.output


def test_ops_lists_every_op_with_halo_and_library_function():
    result = invoke("ops")
    for name in (
        "gaussian",
        "median",
        "mean",
        "erode",
        "dilate",
        "opening",
        "closing",
        "sobel",
        "threshold",
        "grayscale",
        "invert",
        "stamp",
    ):
        assert f"{name}:" in result.output
    assert "cv2.GaussianBlur" in result.output
    rows = json.loads(invoke("ops", "--json").output)
    assert {r["name"] for r in rows} >= {"gaussian", "stamp"}


def test_info_shows_shape_dtype_blocks_and_compression(image_file):
    path = image_file((300, 200), "uint16", bands=3)
    result = invoke("info", str(path))
    assert result.exit_code == 0
    assert "300 x 200" in result.output and "uint16" in result.output
    assert "ADOBE_DEFLATE" in result.output or "DEFLATE" in result.output
    facts = json.loads(invoke("info", str(path), "--json").output)
    assert facts["bands"] == 3 and facts["chunks"] == [128, 128]


def test_plan_reports_tiles_halo_and_memory_and_writes_nothing(image_file, tmp_path):
    path = image_file((3001, 2203))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("plan", str(path), *OPS, "--tile", "1000x333")
    assert result.exit_code == 0, result.output
    assert "28 (4 x 7" in result.output
    assert "halo       8 px" in result.output
    assert "memory" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_run_writes_an_exact_output_and_a_report(tmp_path):
    image = make_image((500, 400))
    src = write_image(tmp_path / "in.tif", image)
    out = tmp_path / "out.tif"
    report = tmp_path / "run.json"
    result = invoke(
        "run",
        str(src),
        str(out),
        *OPS,
        "--tile",
        "128",
        "--workers",
        "2",
        "--report",
        str(report),
        "-q",
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        read_image(out), Pipeline.from_specs(["gaussian:sigma=2", "threshold:value=127"])(image)
    )
    data = json.loads(report.read_text())
    assert data["tiles"] == {"total": 16, "done": 16, "failed": 0, "skipped": 0}
    assert data["executor"] == "local" and data["workers"] == 2
    assert data["pipeline"] == ["gaussian:sigma=2.0,truncate=4.0", "threshold:value=127.0"]
    assert data["grid"]["tiles"] == 16 and data["failures"] == []
    assert leftovers(tmp_path) == []
    # where the time went: each done tile's stages, and their sums, within the busy time
    stages = data["stages"]
    per_tile = [t["stages"] for t in data["per_tile"]]
    assert len(per_tile) == 16 and all(set(t) == {"read_s", "ops_s", "write_s"} for t in per_tile)
    assert all(value >= 0 for t in per_tile for value in t.values())
    for key in ("read_s", "ops_s", "write_s"):
        assert stages[key] == pytest.approx(sum(t[key] for t in per_tile), abs=1e-3)
    staged = stages["read_s"] + stages["ops_s"] + stages["write_s"]
    assert 0 < staged <= stages["busy_s"] + 1e-3
    assert stages["busy_s"] == pytest.approx(sum(t["seconds"] for t in data["per_tile"]), abs=1e-3)
    assert stages["wait_s"] >= 0
    summary = invoke("report", str(report))
    assert summary.exit_code == 0, summary.output
    assert "worker time: read+decode " in summary.output and " · ops " in summary.output
    assert " · encode+write " in summary.output


def test_existing_output_needs_overwrite(image_file, tmp_path):
    src = image_file()
    out = tmp_path / "out.npy"
    assert (
        invoke("run", str(src), str(out), "--op", "invert", "--executor", "serial", "-q").exit_code
        == 0
    )
    proc = tilewise_cmd("run", str(src), str(out), "--op", "invert", "-q")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: ") and "--overwrite" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        invoke(
            "run", str(src), str(out), "--op", "invert", "--overwrite", "-q", "--executor", "serial"
        ).exit_code
        == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--op", "blur:size=3"], "unknown op 'blur'"),
        (["--op", "median:size=4"], "odd"),
        (["--op", "invert", "--tile", "12x"], "tile size"),
        (["--op", "invert", "--co", "COMPRESS=JPEG2000"], "COMPRESS=JPEG2000"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(image_file, tmp_path, args, message):
    src = image_file()
    proc = tilewise_cmd("run", str(src), str(tmp_path / "o.tif"), *args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]
    assert leftovers(tmp_path) == []


def test_unknown_output_format_is_refused(image_file, tmp_path):
    proc = tilewise_cmd("run", str(image_file()), str(tmp_path / "o.png"), "--op", "invert")
    assert proc.returncode == 2 and "does not write .png" in proc.stderr


def test_missing_input_names_the_file(tmp_path):
    proc = tilewise_cmd(
        "run", str(tmp_path / "nope.tif"), str(tmp_path / "o.tif"), "--op", "invert"
    )
    assert proc.returncode == 2
    assert "nope.tif: no such file" in proc.stderr


def test_progress_bar_goes_to_stderr(image_file, tmp_path):
    proc = tilewise_cmd(
        "run",
        str(image_file()),
        str(tmp_path / "o.zarr"),
        "--op",
        "invert",
        "--tile",
        "64",
        "--executor",
        "serial",
    )
    assert proc.returncode == 0, proc.stderr
    assert "tile" in proc.stderr and "MPix/s" in proc.stderr
    assert proc.stdout == ""


def test_verbose_shows_the_traceback(tmp_path):
    proc = tilewise_cmd("info", str(tmp_path / "missing.tif"), "-v")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_demo_runs_small_and_checks_exactness(tmp_path):
    result = invoke("demo", "--size", "1024", "--dir", str(tmp_path / "d"), "--tile", "256", "-q")
    assert result.exit_code == 0, result.output
    assert "identical to whole-image processing: True" in result.output
    assert (tmp_path / "d" / "result.tif").is_file()
    assert (tmp_path / "d" / "tilemap.png").is_file()


def test_report_command_summarizes_and_draws_the_tile_map(tmp_path):
    from tests.runner.helpers import marked_file

    src, _ = marked_file(tmp_path)
    report = tmp_path / "run.json"
    proc = tilewise_cmd(
        "run",
        str(src),
        str(tmp_path / "o.zarr"),
        "--op",
        "tests.faults.crash_on_marker:how=abort",
        "--tile",
        "64",
        "--retries",
        "0",
        "--report",
        str(report),
        "-q",
    )
    assert proc.returncode == 3
    assert "Error: tile 7 (rows 64:128, cols 192:256): worker died (SIGABRT" in proc.stderr
    result = invoke("report", str(report), "--png", str(tmp_path / "map.png"))
    assert result.exit_code == 0, result.output
    assert "16 tiles, 15 done, 1 failed" in result.output
    assert "tile 7: worker died (SIGABRT" in result.output
    png = (tmp_path / "map.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_report_command_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    proc = tilewise_cmd("report", str(path))
    assert proc.returncode == 2 and "not a tilewise run report" in proc.stderr


def test_output_may_not_replace_the_input(image_file):
    src = image_file()
    proc = tilewise_cmd("run", str(src), str(src), "--op", "invert", "--overwrite")
    assert proc.returncode == 2 and "would replace the input" in proc.stderr


def test_grayscale_on_seven_bands_is_refused_from_the_header(tmp_path):
    src = write_image(tmp_path / "seven.npy", make_image((40, 30), bands=7))
    result = invoke("run", str(src), str(tmp_path / "out.npy"), "--op", "grayscale", "-q")
    assert result.exit_code == 2
    assert (
        "seven.npy" in result.output and "grayscale takes 1, 3 or 4 bands, not 7" in result.output
    )
    assert not (tmp_path / "out.npy").exists() and leftovers(tmp_path) == []


def test_demo_writes_the_files_its_help_names(tmp_path):
    help_text = " ".join(invoke("demo", "--help").output.split())
    names = sorted(set(re.findall(r"DIR/([\w.-]+\.(?:tif|json|png))", help_text)))
    assert names == [
        "report.json",
        "result.tif",
        "sample-8192.tif",
        "sample-SIZE.tif",
        "tilemap.png",
    ]
    result = invoke("demo", "--size", "256", "--dir", str(tmp_path), "--tile", "128",
                    "--workers", "1", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in names:
        if name != "sample-8192.tif":
            assert (tmp_path / name.replace("SIZE", "256")).exists(), name


def test_commands_are_imported_when_asked_for():
    import click

    from tilewise.cli.app import COMMANDS

    with click.Context(cli) as ctx:
        for name in COMMANDS:
            command = cli.get_command(ctx, name)
            assert command is not None and command.name == name
    code = "import sys; from tilewise.cli.app import cli; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "tilewise.cli.measure_cmd" not in loaded.stdout, loaded.stderr
