"""bands and expr: GDAL's 1-based band numbers, band math by a checked syntax tree."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_image
from tilewise.errors import OpError
from tilewise.pipeline import Pipeline, parse_op


def run(spec, image):
    return parse_op(spec)(image)


def test_bands_selects_and_reorders_from_one():
    image = make_image((31, 29), "uint16", 3)
    np.testing.assert_array_equal(run("bands:3,1", image), image[..., [2, 0]])
    np.testing.assert_array_equal(run("bands:bands=2", image), image[..., 1])
    np.testing.assert_array_equal(run("bands:1,1,1", image[..., 0]), image[..., [0, 0, 0]])
    pipeline = Pipeline.from_specs(["bands:3,1,2,1"])
    assert pipeline.out_bands(3) == 4


@pytest.mark.parametrize(
    ("spec", "bands", "message"),
    [
        ("bands:1,4", 3, r"band 4 asked for, but the image has 3 band"),
        ("bands:0,1", 3, "start at 1"),
        ("bands:a", 3, "band numbers like 1,3,4"),
        ("expr:b1+b7", 3, r"band 7 asked for, but the image has 3"),
    ],
)
def test_band_numbers_are_checked_before_any_tile(spec, bands, message):
    with pytest.raises(OpError, match=message):
        Pipeline.from_specs([spec]).out_bands(bands)


def test_ndvi_equals_numpy_in_float64_and_division_by_zero_is_nan():
    image = make_image((61, 47), "uint16", 4)
    image[:5, :5] = 0  # b4 + b3 == 0 there
    got = run("expr:(b4-b3)/(b4+b3)", image)
    b3, b4 = image[..., 2].astype(np.float64), image[..., 3].astype(np.float64)
    with np.errstate(all="ignore"):
        expected = ((b4 - b3) / (b4 + b3)).astype(np.float32)
    assert got.dtype == np.float32 and got.shape == image.shape[:2]
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[:5, :5]).all() and np.isfinite(got[5:, 5:]).all()


def test_quoted_expressions_with_commas_and_every_function():
    image = make_image((20, 30), "float32", 2) + 0.5
    spec = 'expr:"where(b1 > 0.9, clip(sqrt(b1) + abs(-b2), 0, 1.5), log(b2))",dtype=float64'
    got = run(spec, image)
    b1, b2 = image[..., 0].astype(np.float64), image[..., 1].astype(np.float64)
    expected = np.where(b1 > 0.9, np.clip(np.sqrt(b1) + np.abs(-b2), 0, 1.5), np.log(b2))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    assert run("expr:0 < b1 <= 0.9", image).tolist() == ((b1 > 0) & (b1 <= 0.9)).tolist()


def test_integer_output_needs_nodata_rounds_and_clips():
    image = np.array([[0.0, 1.5, 2.5, 300.0, -4.0]], np.float32)
    with pytest.raises(OpError, match="cannot hold NaN; give nodata"):
        Pipeline.from_specs(["expr:1/b1,dtype=uint8"]).out_dtype(np.dtype("float32"))
    got = run("expr:b1,dtype=uint8,nodata=7", image)
    assert got.dtype == np.uint8 and got.tolist() == [[0, 2, 2, 255, 0]]
    assert run("expr:1/b1,dtype=int16,nodata=-1", image)[0, 0] == -1


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os").system("true")',
        "b1.__class__",
        "b1[0]",
        "x + 1",
        "b0",
        "lambda: 1",
        "b1 if b2 else 1",
        "log(b1, b2)",
        "'a'",
        "b1 and b2",
        "(",
    ],
)
def test_anything_but_the_allowed_grammar_is_refused(text):
    with pytest.raises(OpError, match=r"expr: .*(not allowed|takes 1|cannot parse)"):
        parse_op(f"expr:expr={text!r}")(make_image((4, 4)))


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ("bands:1,5", "band 5 asked for, but the image has 3 band(s)"),
        ("expr:b1/b2,dtype=uint8", "cannot hold NaN; give nodata"),
        ("expr:b1.real", "not allowed"),
    ],
)
def test_the_cli_refuses_bad_band_ops_before_work_with_exit_2(tmp_path, op, message):
    from click.testing import CliRunner

    from tests.conftest import write_image
    from tilewise.cli.app import cli

    src = write_image(tmp_path / "in.tif", make_image((40, 30), "uint16", 3))
    out = tmp_path / "out.npy"
    result = CliRunner().invoke(cli, ["run", str(src), str(out), "--op", op, "-q"])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()
