"""Stacks of planes are refused (exit 2), never cut to page 0 or read as bands (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

import tilewise
from tests.cli.test_cli import invoke
from tests.conftest import make_image, read_image

PLANES = np.stack([make_image((64, 64), seed=s) for s in range(6)])  # (6, 64, 64)


def _multipage(path):
    tifffile.imwrite(path, PLANES)


def _imagej_tzc(path):
    tifffile.imwrite(path, PLANES.reshape(1, 3, 2, 64, 64), imagej=True, metadata={"axes": "TZCYX"})


def _ome(path):
    tifffile.imwrite(path, PLANES.reshape(3, 2, 64, 64), ome=True, metadata={"axes": "ZCYX"})


def _channels_first_npy(path):
    np.save(path, PLANES[:3])


def _stack_zarr(path):
    zarr.create_array(path, data=PLANES, chunks=(1, 32, 32))


STACKS = {
    "in.tif": _multipage,
    "hyperstack.tif": _imagej_tzc,
    "in.ome.tif": _ome,
    "cyx.npy": _channels_first_npy,
    "zyx.zarr": _stack_zarr,
}


@pytest.mark.parametrize("name", STACKS)
def test_a_stack_is_refused_before_work_not_truncated(tmp_path, name):
    src = tmp_path / name
    STACKS[name](src)
    out = tmp_path / "out.npy"
    result = invoke("run", str(src), str(out), "--op", "invert", "--workers", "1", "-q")
    assert result.exit_code == 2, result.output
    assert f"{src}:" in result.output and "stack" in result.output
    assert not out.exists() and not (tmp_path / ".out.npy.partial").exists()


def test_a_stack_in_a_batch_fails_alone_by_name(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _multipage(inputs / "stack.tif")
    tifffile.imwrite(inputs / "plain.tif", PLANES[0])
    out = tmp_path / "out"
    result = invoke("batch", str(inputs), "--out", str(out), "--op", "invert", "-q")
    assert result.exit_code == 3, result.output
    assert "stack.tif" in result.output and "stack" in result.output
    np.testing.assert_array_equal(read_image(out / "plain.tif"), 255 - PLANES[0])
    assert not (out / "stack.tif").exists()


def test_overview_pages_are_not_planes_only_the_full_image_is_processed(tmp_path):
    src = tmp_path / "cog.tif"
    image = PLANES[0]
    with tifffile.TiffWriter(src) as tif:
        tif.write(image, tile=(16, 16))
        tif.write(image[::2, ::2], subfiletype=1, tile=(16, 16))  # reduced-resolution page
        tif.write(image[::4, ::4], subfiletype=1, tile=(16, 16))
    out = tmp_path / "out.npy"
    result = invoke("run", str(src), str(out), "--op", "median:size=5", "--tile", "32", "-q")
    assert result.exit_code == 0, result.output
    whole = tilewise.process(image, ["median:size=5"], tile=image.shape)
    np.testing.assert_array_equal(np.load(out), whole)


@pytest.mark.parametrize("shape", [(64, 64, 3), (64, 64, 7)])
def test_a_short_last_axis_stays_bands(tmp_path, shape):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    src = tmp_path / "in.npy"
    np.save(src, image)
    out = tmp_path / "out.npy"
    assert invoke("run", str(src), str(out), "--op", "invert", "-q").exit_code == 0
    np.testing.assert_array_equal(np.load(out), 255 - image)
