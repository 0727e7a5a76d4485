"""Checking ops' declarations on a sample of tiles: halo, translation invariance, dtype, bands."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import tilewise
from tests.conftest import leftovers, make_image, read_image, write_image
from tests.userops import Offset, local_max
from tilewise.cli.app import cli
from tilewise.errors import PipelineError
from tilewise.executors.local import LocalExecutor
from tilewise.ops import REGISTRY
from tilewise.pipeline import Pipeline
from tilewise.verify import sample_tiles, verify

TILE = 48
TILEWISE = str(Path(sys.executable).parent / "tilewise")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return write_image(tmp_path_factory.mktemp("v") / "in.npy", make_image((150, 130)))


def builtin_specs() -> list[str]:
    specs = {
        "gaussian": "gaussian:sigma=2",
        "median": "median:size=5",
        "mean": "mean:size=5",
        "erode": "erode:size=3",
        "dilate": "dilate:size=5",
        "opening": "opening:size=3",
        "closing": "closing:size=3",
        "threshold": "threshold:value=120",
        "resize": "resize:scale=0.5",
        "to_dtype": "to_dtype:dtype=float32",
        "bands": "bands:1",
        "expr": "expr:b1*2+1",
        "lee": "lee:size=5,looks=4",
    }
    tileable = []
    for name, definition in sorted(REGISTRY.items()):
        if definition.whole_image or not definition.exact:
            continue
        spec = specs.get(name, name)
        if Pipeline.from_specs([spec]).ops[0].scale is not None:
            tileable.append(spec)
    return tileable


def test_every_builtin_op_passes(image):
    specs = builtin_specs()
    assert {"gaussian:sigma=2", "sobel", "grayscale", "resize:scale=0.5"} <= set(specs)
    with LocalExecutor(2) as executor:
        for spec in specs:
            verdict = verify(image, [spec], tile=TILE, executor=executor)
            assert verdict.ok, (spec, verdict.problems())
            assert len(verdict.tiles) >= 4


def test_an_under_declared_halo_is_found_with_the_halo_it_needs(image):
    verdict = verify(image, ["gaussian:sigma=1", "tests.userops.max9_halo2"], tile=TILE, workers=2)
    assert not verdict.ok
    gauss, user = verdict.ops
    assert gauss.ok and (user.declared_halo, user.needed_halo) == (2, 4) and user.max_diff > 0
    assert "needs a halo of at least 4 (declared 2)" in verdict.problems()[0]
    # declared right, it passes
    assert verify(image, ["tests.userops.local_max:size=9,halo=4"], tile=TILE, workers=2).ok


def test_an_op_that_depends_on_the_tiles_position_is_not_translation_invariant(image):
    verdict = verify(image, ["tests.userops.tile_normalized"], tile=TILE, workers=2)
    assert not verdict.ops[0].translation_invariant and verdict.ops[0].max_diff > 0
    assert "not translation-invariant (differs by up to" in verdict.problems()[0]


def test_cli_verify_and_run_verify_exit_2_before_writing(image, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["verify", str(image), "--op", "tests.userops.max9_halo2",
                              "--tile", str(TILE), "--workers", "2"])  # fmt: skip
    assert res.exit_code == 2 and "at least 4 (declared 2)" in res.output
    out = tmp_path / "out.npy"
    res = runner.invoke(cli, ["run", str(image), str(out), "--op", "tests.userops.max9_halo2",
                              "--tile", str(TILE), "--workers", "2", "--verify", "-q"])  # fmt: skip
    assert res.exit_code == 2 and "at least 4 (declared 2)" in res.output
    assert "--resume" not in res.output
    assert not out.exists() and leftovers(tmp_path) == []
    res = runner.invoke(cli, ["run", str(image), str(out), "--op", "median:size=3",
                              "--tile", str(TILE), "--workers", "2", "--verify", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output


def test_undeclared_dtype_stops_the_run_on_the_first_tile(image, tmp_path):
    log = tmp_path / "calls.txt"
    out = tmp_path / "out.npy"
    op = f"tests.userops.undeclared_float:log={log}"
    res = CliRunner().invoke(cli, ["run", str(image), str(out), "--op", op, "--tile", str(TILE),
                                   "--workers", "2", "-q"])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "declared to give 1-band uint8" in res.output and "1-band float64" in res.output
    assert "dtype='float64'" in res.output and "--resume" not in res.output
    assert len(log.read_text().splitlines()) == 1  # the first tile only
    assert not out.exists() and leftovers(tmp_path) == []


def test_sample_tiles_are_corners_edges_and_centre():
    assert sample_tiles((1, 1)) == [0]
    assert sample_tiles((2, 5)) == [0, 2, 4, 5, 7, 9]


def test_partial_and_callable_objects_run_as_ops(image, tmp_path):
    halo_taking: Any = local_max  # the partial's halo= is read by tilewise, not passed on
    ops = [functools.partial(halo_taking, size=5, halo=2)]
    report = tilewise.run(image, tmp_path / "a.npy", ops, tile=TILE, workers=2)
    assert report.ok, report.failures
    assert report.pipeline == ["tests.userops.local_max:size=5"]
    whole = local_max(np.load(image), size=5)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), whole)
    report = tilewise.run(image, tmp_path / "b.npy", [Offset(3)], tile=TILE, workers=2)
    assert report.ok, report.failures
    np.testing.assert_array_equal(read_image(tmp_path / "b.npy"), Offset(3)(np.load(image)))


def test_an_op_in_the_current_folder_needs_no_pythonpath(image, tmp_path):
    (tmp_path / "mymodule.py").write_text("def f(image):\n    return 255 - image\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [TILEWISE, "run", str(image), "out.npy", "--op", "mymodule.f", "--tile", str(TILE),
         "--workers", "2", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), 255 - np.load(image))


def test_a_lambda_is_still_refused_with_advice(image, tmp_path):
    with pytest.raises(PipelineError, match="lambda"):
        tilewise.run(image, tmp_path / "c.npy", [lambda a: a], tile=TILE, workers=1)
