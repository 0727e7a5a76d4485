"""Ops declare the dtypes and bands they take; pipelines refuse other images before any work."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import tilewise
from tests.conftest import leftovers
from tilewise.cli.app import cli
from tilewise.errors import PipelineError
from tilewise.ops import REGISTRY
from tilewise.pipeline import Pipeline


@tilewise.op(halo=0, dtypes=("uint8",), in_bands=(1,))
def declared(image):
    return image


def undeclared(image):
    return image


@pytest.mark.parametrize(
    ("dtype", "advice"),
    [
        ("bool", "to_dtype:dtype=uint8,scale=auto"),
        ("int8", "to_dtype:dtype=float32"),
        ("int32", "to_dtype:dtype=float32"),
    ],
)
def test_a_dtype_an_op_cannot_take_is_refused_before_work_with_advice_that_works(
    tmp_path, dtype, advice
):
    src = tmp_path / "in.npy"
    np.save(src, (np.arange(64 * 64).reshape(64, 64) % 3).astype(dtype))
    out = tmp_path / "out.zarr"
    runner = CliRunner()
    args = ["run", str(src), str(out), "--tile", "32", "--executor", "serial", "-q"]
    result = runner.invoke(cli, [*args, "--op", "gaussian:sigma=1"])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.count("\n") == 0
    assert str(src) in message and f"not {dtype}" in message
    assert f"add --op {advice} first" in message
    assert not out.exists() and leftovers(tmp_path) == []
    fixed = runner.invoke(cli, [*args, "--op", advice, "--op", "gaussian:sigma=1"])
    assert fixed.exit_code == 0, fixed.output
    assert out.exists()


def test_what_reaches_an_op_is_checked_after_the_ops_before_it():
    pipeline = Pipeline.from_specs(["sobel", "stamp"])
    with pytest.raises(PipelineError) as caught:
        pipeline.check_input(np.dtype("uint8"), 3, source="x.tif")
    assert "x.tif: op stamp takes uint8 images, not float32 as it reaches it" in str(caught.value)
    assert "add --op to_dtype:dtype=uint8 before --op stamp" in str(caught.value)
    with pytest.raises(PipelineError, match="takes 1, 3 or 4 bands, not 2 bands"):
        Pipeline.from_specs(["grayscale"]).check_input(np.dtype("uint8"), 2)
    Pipeline.from_specs(["grayscale", "stamp"]).check_input(np.dtype("uint8"), 3)


def test_user_ops_are_checked_only_when_they_declare():
    with pytest.raises(PipelineError, match="takes uint8 images, not uint16"):
        Pipeline.from_specs([declared]).check_input(np.dtype("uint16"), 1)
    with pytest.raises(PipelineError, match="takes 1 band, not 3 bands"):
        Pipeline.from_specs([declared]).check_input(np.dtype("uint8"), 3)
    Pipeline.from_specs([f"{__name__}.undeclared"]).check_input(np.dtype("complex64"), 7)


def test_in_memory_process_checks_too():
    with pytest.raises(PipelineError, match=r"image: op median takes .* not int32"):
        tilewise.process(np.zeros((8, 8), np.int32), ["median:size=3"])


_SPECS = {
    "resize": "resize:scale=0.5",
    "crop": "crop:shape=4",
    "pad": "pad:width=1",
    "threshold": "threshold:value=1",
    "to_dtype": "to_dtype:dtype=uint8",
}


@pytest.mark.parametrize("name", sorted(n for n, d in REGISTRY.items() if d.dtypes is not None))
def test_every_declared_dtype_and_band_count_runs(name):
    definition = REGISTRY[name]
    params = {p.name: 3 if p.kind is int else 1.0 for p in definition.params or () if p.required}
    spec = _SPECS.get(name) or ":".join(
        [name, ",".join(f"{k}={v}" for k, v in params.items())]
    ).rstrip(":")
    op = Pipeline.from_specs([spec])
    for dtype in definition.dtypes or ():
        for bands in definition.in_bands or (1, 3):
            shape = (16, 16) if bands == 1 else (16, 16, bands)
            image = (np.arange(np.prod(shape)).reshape(shape) % 2).astype(dtype)
            op.check_input(image.dtype, bands)
            result = op(image)
            assert result.dtype == op.out_dtype(image.dtype), (dtype, bands)


def test_in_a_batch_only_the_file_an_op_cannot_take_fails_with_the_advice(tmp_path):
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "mask.npy", np.eye(8, dtype=bool))
    np.save(tmp_path / "in" / "gray.npy", np.eye(8, dtype=np.uint8))
    result = tilewise.batch(tmp_path / "in", out=tmp_path / "out", ops=["median:size=3"])
    assert result.done == 1 and [f.source for f in result.failures] == [
        str(tmp_path / "in" / "mask.npy")
    ]
    assert result.failures[0].cause == (
        "op median takes uint8, uint16, int16, float32, float64 images, not bool; "
        "add --op to_dtype:dtype=uint8,scale=auto first"
    )
