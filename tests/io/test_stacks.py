"""Stacks (issue 14): multi-page TIFF, ImageJ hyperstacks, OME-TIFF and N-D arrays, plane by plane.

Every plane is tiled and processed as a 2-D image; the output keeps the leading
axes and their names, and each plane equals the ops run on that whole plane.
What tilewise does not understand is refused (exit 2), never cut to page 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pytest
import tifffile
import zarr

from tests.cli.test_cli import invoke
from tests.conftest import leftovers, make_image, read_image
from tests.runner.helpers import journal_lines, start_cli, wait_for_journal
from tilewise.pipeline import Pipeline

OPS = ["median:size=5", "invert"]
OP_ARGS = ["--op", OPS[0], "--op", OPS[1]]
PLANES = np.stack([make_image((97, 131), seed=s) for s in range(12)])  # (12, 97, 131)
RGB = np.stack([make_image((97, 131), bands=3, seed=s) for s in range(4)])  # (4, 97, 131, 3)


def whole_planes(stack: np.ndarray, ops: list[str] = OPS, bands: bool = False) -> np.ndarray:
    """The ops run on each whole plane of ``stack``, stacked back in its leading shape."""
    lead = stack.shape[:-3] if bands else stack.shape[:-2]
    flat = stack.reshape(-1, *stack.shape[len(lead) :])
    done = [Pipeline.from_specs(ops)(plane) for plane in flat]
    return np.stack(done).reshape(*lead, *done[0].shape)


def _multipage(path):
    with tifffile.TiffWriter(path) as tif:  # plain pages, no metadata: tifffile's axes IYX
        for plane in PLANES[:6]:
            tif.write(plane, metadata=None)
    return PLANES[:6], "IYX"


def _imagej(path):
    stack = PLANES.reshape(2, 3, 2, 97, 131)
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TZCYX"})
    return stack, "TZCYX"


def _ome(path):
    stack = PLANES[:6].reshape(3, 2, 97, 131)
    tifffile.imwrite(
        path, stack, ome=True, metadata={"axes": "ZCYX"}, tile=(32, 32), compression="zlib"
    )
    return stack, "ZCYX"


def _rgb_pages(path):
    tifffile.imwrite(path, RGB, photometric="rgb", metadata={"axes": "TYXS"})
    return RGB, "TYXS"


TIFF_STACKS = {"multipage": _multipage, "imagej": _imagej, "ome": _ome, "rgb": _rgb_pages}
#: The TIFF metadata each kind of input gives its TIFF output (series kind).
TIFF_KIND = {"multipage": "shaped", "imagej": "imagej", "ome": "ome", "rgb": "shaped"}


def _axes_of(out):
    """A TIFF output's (axes, series kind); a Zarr output's (axes attribute, dimension names)."""
    if out.suffix == ".tif":
        with tifffile.TiffFile(out) as tif:
            return tif.series[0].axes, tif.series[0].kind
    array = zarr.open_array(out, mode="r")
    return array.attrs["axes"], getattr(array.metadata, "dimension_names", None)


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy"])
@pytest.mark.parametrize("kind", TIFF_STACKS)
def test_tiff_stacks_run_plane_by_plane_and_keep_their_axes(tmp_path, kind, suffix):
    src = tmp_path / "in.tif"
    stack, axes = TIFF_STACKS[kind](src)
    out = tmp_path / f"out{suffix}"
    result = invoke(
        "run", str(src), str(out), *OP_ARGS,
        "--tile", "48x64", "--executor", "serial", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    output = read_image(out)
    assert output.shape == stack.shape
    np.testing.assert_array_equal(output, whole_planes(stack, bands=kind == "rgb"))
    if suffix == ".tif":
        assert _axes_of(out) == (axes, TIFF_KIND[kind])
    elif suffix == ".zarr":
        leading = axes[:-3] if kind == "rgb" else axes[:-2]
        image = ("row", "col", "band") if kind == "rgb" else ("row", "col")
        assert _axes_of(out) == (axes, (*leading.lower(), *image))


@pytest.mark.parametrize(
    ("layout", "tile", "executor"),
    [("grid", "33x29", "serial"), ("rows", "37", "local"), ("columns", "29", "local")],
)
def test_planes_equal_whole_planes_in_every_layout(tmp_path, layout, tile, executor):
    src = tmp_path / "in.tif"
    stack, _ = _ome(src)
    out = tmp_path / "out.npy"
    result = invoke(
        "run", str(src), str(out), "--op", "gaussian:sigma=2", "--op", "threshold:value=120",
        "--layout", layout, "--tile", tile, "--executor", executor, "--workers", "2", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = whole_planes(stack, ["gaussian:sigma=2", "threshold:value=120"])
    np.testing.assert_array_equal(np.load(out), expected)


def test_a_channels_first_array_is_planes_or_with_channel_axis_bands(tmp_path):
    cyx = PLANES[:3]
    src = tmp_path / "cyx.npy"
    np.save(src, cyx)
    out = tmp_path / "planes.zarr"
    ops = ["--op", "median:size=5", "--executor", "serial", "--tile", "40", "-q"]
    assert invoke("run", str(src), str(out), "--axes", "CYX", *ops).exit_code == 0
    np.testing.assert_array_equal(read_image(out), whole_planes(cyx, ["median:size=5"]))
    assert _axes_of(out) == ("CYX", ("c", "row", "col"))

    # --channel-axis 0: the channels are bands, combined by grayscale; the result is 2-D
    gray = tmp_path / "gray.npy"
    args = ("run", str(src), str(gray), "--channel-axis", "0", "--op", "grayscale")
    assert invoke(*args, "--executor", "serial", "-q").exit_code == 0
    expected = Pipeline.from_specs(["grayscale"])(np.moveaxis(cyx, 0, -1).copy())
    np.testing.assert_array_equal(np.load(gray), expected)


def test_an_nd_zarr_keeps_named_axes_and_a_short_last_axis_stays_bands(tmp_path):
    tzyx = PLANES[:6].reshape(2, 3, 97, 131)
    src = tmp_path / "in.zarr"
    zarr.create_array(src, data=tzyx, chunks=(1, 1, 64, 64))
    out = tmp_path / "out.tif"
    result = invoke(
        "run", str(src), str(out), "--axes", "TZYX", *OP_ARGS,
        "--tile", "64", "--workers", "2", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out), whole_planes(tzyx))
    assert _axes_of(out) == ("TZYX", "ome")  # T and Z are OME axes

    rgb = tmp_path / "rgb.npy"  # (planes, rows, cols, 3) without --axes: QYXS
    np.save(rgb, RGB[:2])
    out = tmp_path / "rgb.tif"
    assert (
        invoke("run", str(rgb), str(out), "--op", "invert", "-q", "--workers", "1").exit_code == 0
    )
    np.testing.assert_array_equal(read_image(out), 255 - RGB[:2])
    assert _axes_of(out) == ("QYXS", "shaped")


def test_overview_pages_are_not_planes_only_full_resolution_is_processed(tmp_path):
    image = PLANES[0]
    cog = tmp_path / "cog.tif"
    with tifffile.TiffWriter(cog) as tif:
        tif.write(image, tile=(16, 16))
        tif.write(image[::2, ::2], subfiletype=1, tile=(16, 16))  # reduced-resolution pages
        tif.write(image[::4, ::4], subfiletype=1, tile=(16, 16))
    stack = PLANES[:6].reshape(3, 2, 97, 131)
    pyramid = tmp_path / "pyramid.ome.tif"  # OME planes, each with an overview in a SubIFD
    with tifffile.TiffWriter(pyramid, ome=True) as tif:
        tif.write(stack, subifds=1, tile=(32, 32), metadata={"axes": "ZCYX"})
        tif.write(stack[..., ::2, ::2], subfiletype=1, tile=(32, 32))
    for src, expected in ((cog, image), (pyramid, stack)):
        out = tmp_path / f"{src.name}.npy"
        result = invoke("run", str(src), str(out), "--op", "median:size=5", "--tile", "32", "-q")
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(np.load(out), whole_planes(expected, ["median:size=5"]))


def test_planes_and_page_select(tmp_path):
    src = tmp_path / "in.tif"
    stack, _ = _ome(src)  # Z=3, C=2
    some = tmp_path / "some.tif"
    args = ("--op", "invert", "--executor", "serial", "-q")
    assert invoke("run", str(src), str(some), "--planes", "1:3", *args).exit_code == 0
    np.testing.assert_array_equal(read_image(some), 255 - stack[1:3])
    assert _axes_of(some) == ("ZCYX", "ome")

    hyper = tmp_path / "hyper.tif"
    stack, _ = _imagej(hyper)  # T=2, Z=3, C=2: page 7 is T=1, Z=0, C=1
    one = tmp_path / "one.npy"
    assert invoke("run", str(hyper), str(one), "--page", "7", *args).exit_code == 0
    np.testing.assert_array_equal(np.load(one), 255 - stack[1, 0, 1])


def _two_images(path):
    with tifffile.TiffWriter(path) as tif:
        tif.write(PLANES[:2], metadata={"axes": "ZYX"})
        tif.write(PLANES[0, :50], metadata={"axes": "YX"})


def _plain_tif(path):
    tifffile.imwrite(path, PLANES[0])


@pytest.mark.parametrize(
    ("make", "args", "said"),
    [
        (_two_images, (), "holds 2 images"),
        (_multipage, ("--axes", "ZYXS"), "--axes"),
        (_multipage, ("--planes", "6:9"), "--planes 6:9"),
        (_multipage, ("--channel-axis", "0"), "--channel-axis"),
        (_plain_tif, ("--page", "1"), "not a stack"),
    ],
)
def test_a_layout_not_understood_is_refused_before_work(tmp_path, make, args, said):
    src = tmp_path / "in.tif"
    make(src)
    out = tmp_path / "out.tif"
    result = invoke("run", str(src), str(out), "--op", "invert", "--workers", "1", "-q", *args)
    assert result.exit_code == 2, result.output
    assert f"{src}:" in result.output and said in result.output
    assert leftovers(tmp_path) == [] and not out.exists()


def test_a_stack_run_resumes_after_an_interruption_by_plane_and_tile(tmp_path):
    src = tmp_path / "in.tif"
    stack, _ = _ome(src)  # 6 planes of 2 x 3 tiles
    out = tmp_path / "out.tif"
    args = [
        "run", str(src), str(out), "--op", "tests.faults.slow:seconds=0.1", "--op", "invert",
        "--tile", "64", "--workers", "2", "-q",
    ]  # fmt: skip
    proc = start_cli(*args)
    wait_for_journal(out, 10, proc)  # past the first planes
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    journaled = journal_lines(out)
    report_path = tmp_path / "report.json"
    resumed = subprocess.run(
        [*_cli(), *args, "--resume", "--report", str(report_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(read_image(out), 255 - stack)
    report = json.loads(report_path.read_text())
    assert report["tiles"]["total"] == 36 and report["tiles"]["skipped"] == journaled
    redone = {
        (t["window"]["plane"], t["window"]["row"], t["window"]["col"]) for t in report["per_tile"]
    }
    assert len(redone) == 36 - journaled
    assert leftovers(tmp_path) == []


def _cli():
    import sys

    return [sys.executable, "-m", "tilewise.cli.main"]


def test_stacks_in_a_batch_are_processed_plane_by_plane_or_refused_by_name(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    hyper, _ = _imagej(inputs / "hyper.tif")
    ome, _ = _ome(inputs / "cells.ome.tif")
    tifffile.imwrite(inputs / "plain.tif", PLANES[0])
    out = tmp_path / "out"
    result = invoke("batch", str(inputs), "--out", str(out), "--op", "invert", "-q")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out / "hyper.tif"), 255 - hyper)
    assert _axes_of(out / "hyper.tif") == ("TZCYX", "imagej")
    np.testing.assert_array_equal(read_image(out / "cells.ome.tif"), 255 - ome)
    assert _axes_of(out / "cells.ome.tif") == ("ZCYX", "ome")
    np.testing.assert_array_equal(read_image(out / "plain.tif"), 255 - PLANES[0])

    pngs = tmp_path / "pngs"
    result = invoke("batch", str(inputs), "--out", str(pngs), "--format", "png", "--op", "invert")
    assert result.exit_code == 3, result.output
    assert "hyper.tif: a stack of planes" in result.output and "PNG" in result.output
    assert sorted(p.name for p in pngs.iterdir()) == ["plain.png"]

    rows = tmp_path / "rows.npy"  # a row of --stack holds one 2-D image, not a stack
    result = invoke("batch", str(inputs), "--stack", str(rows), "--op", "invert")
    assert result.exit_code == 3, result.output
    assert "hyper.tif: a stack of planes" in result.output and "--page N" in result.output

    arrays = tmp_path / "arrays"  # (C, Y, X) arrays named by --axes
    arrays.mkdir()
    for i in range(2):
        np.save(arrays / f"a{i}.npy", PLANES[3 * i : 3 * i + 3])
    out = tmp_path / "arrays_out"
    result = invoke("batch", str(arrays), "--out", str(out), "--axes", "CYX", "--op", "invert")
    assert result.exit_code == 0, result.output
    for i in range(2):
        np.testing.assert_array_equal(np.load(out / f"a{i}.npy"), 255 - PLANES[3 * i : 3 * i + 3])
