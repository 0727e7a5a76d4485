"""The promise: tiled output is bit-identical to the same pipeline run on the whole image.

Every op and chains of them; every layout; tile sizes that do not divide the
image; uint8, uint16 and float32; one and three bands; serial and local
executors; TIFF, Zarr and .npy outputs; TIFF (tiled and striped), Zarr and
.npy inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import tilewise
from tests.conftest import make_image, read_image, write_image
from tilewise.pipeline import Pipeline

THRESHOLD = {"uint8": 127, "uint16": 32767, "float32": 0.5}


def chains(dtype: str, bands: int) -> list[list[str]]:
    t = THRESHOLD[dtype]
    single = [
        ["gaussian:sigma=3"],
        ["median:size=5"],
        ["mean:size=5"],
        ["erode:size=5"],
        ["dilate:size=3"],
        ["opening:size=5"],
        ["closing:size=5"],
        ["sobel"],
        [f"threshold:value={t}"],
        ["invert"],
    ]
    combined = [
        ["gaussian:sigma=2", f"threshold:value={t}"],
        ["median:size=3", "sobel"],
        ["opening:size=3", "closing:size=3", "mean:size=3"],
    ]
    if bands == 3:
        combined.append(["grayscale", "gaussian:sigma=1.5", f"threshold:value={t}"])
    return single + combined


CASES = [(dtype, bands) for dtype in ("uint8", "uint16", "float32") for bands in (1, 3)]


@pytest.mark.parametrize(("dtype", "bands"), CASES)
@pytest.mark.parametrize("layout", ["grid", "rows", "columns"])
@pytest.mark.parametrize("tile", ["64", "100x33"])
def test_in_memory_tiling_equals_whole_image(dtype, bands, layout, tile):
    image = make_image((301, 257), dtype, bands)
    for ops in chains(dtype, bands):
        whole = Pipeline.from_specs(ops)(image)
        tiled = tilewise.process(image, ops, tile=tile, layout=layout)
        assert tiled.dtype == whole.dtype, ops
        np.testing.assert_array_equal(tiled, whole, err_msg=f"{ops} {layout} {tile}")


REFERENCE_OPS = ["gaussian:sigma=4", "threshold:value=127"]


@pytest.mark.parametrize("tile", ["256", "1000x333"])
@pytest.mark.parametrize("out", ["out.tif", "out.zarr", "out.npy"])
def test_large_uneven_image_local_executor(tmp_path, tile, out):
    image = make_image((3001, 2203), "uint8")
    src = write_image(tmp_path / "in.tif", image, tile=(256, 256))
    whole = Pipeline.from_specs(REFERENCE_OPS)(image)
    report = tilewise.run(src, tmp_path / out, REFERENCE_OPS, tile=tile, workers=2)
    assert report.ok
    assert report.done == report.total
    np.testing.assert_array_equal(read_image(tmp_path / out), whole)


@pytest.mark.parametrize(("dtype", "bands"), CASES)
@pytest.mark.parametrize("layout", ["grid", "rows", "columns"])
def test_file_runs_every_dtype_band_layout_serial(tmp_path, dtype, bands, layout):
    image = make_image((301, 257), dtype, bands)
    src = write_image(tmp_path / "in.tif", image, tile=(64, 64))
    ops = chains(dtype, bands)[-1]
    whole = Pipeline.from_specs(ops)(image)
    for out in ("o.tif", "o.zarr", "o.npy"):
        report = tilewise.run(
            src,
            tmp_path / out,
            ops,
            tile="100x33",
            layout=layout,
            executor="serial",
            overwrite=True,
        )
        assert report.ok
        np.testing.assert_array_equal(read_image(tmp_path / out), whole, err_msg=out)


@pytest.mark.parametrize(("dtype", "bands"), [("uint16", 3), ("float32", 1)])
def test_file_runs_local_executor_multiband_and_float(tmp_path, dtype, bands):
    image = make_image((301, 257), dtype, bands)
    src = write_image(tmp_path / "in.tif", image, tile=(64, 64))
    ops = chains(dtype, bands)[-1]
    whole = Pipeline.from_specs(ops)(image)
    for out in ("o.tif", "o.zarr", "o.npy"):
        report = tilewise.run(src, tmp_path / out, ops, tile="100x33", layout="grid", workers=2)
        assert report.ok
        np.testing.assert_array_equal(read_image(tmp_path / out), whole, err_msg=out)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("strips.tif", {"tile": None, "rowsperstrip": 37}),
        ("planar.tif", {"tile": (64, 64), "planarconfig": "separate"}),
        ("zstd.tif", {"tile": (32, 48), "compression": "zstd"}),
        ("raw.tif", {"tile": None, "compression": None}),
        ("in.zarr", {}),
        ("in.npy", {}),
    ],
)
def test_every_input_layout_reads_exactly(tmp_path, name, kwargs):
    image = make_image((301, 257), "uint8", 3 if "planar" in name else 1)
    if "planar" in name:
        src = tmp_path / name
        tifffile.imwrite(src, np.moveaxis(image, -1, 0), photometric="rgb", **kwargs)
    else:
        src = write_image(tmp_path / name, image, **kwargs)
    ops = ["median:size=3"]
    whole = Pipeline.from_specs(ops)(image)
    report = tilewise.run(src, tmp_path / "o.npy", ops, tile="100x33", executor="serial")
    assert report.ok
    np.testing.assert_array_equal(read_image(tmp_path / "o.npy"), whole)


@pytest.mark.parametrize(
    "ops",
    [
        ["gaussian:sigma=3"],
        ["median:size=5"],
        ["mean:size=5"],
        ["opening:size=5"],
        ["sobel"],
        ["gaussian:sigma=1", "threshold:value=-100"],
    ],
)
def test_int16_images_tile_exactly(tmp_path, ops):
    image = make_image((301, 257), "int16")
    src = write_image(tmp_path / "in.tif", image, tile=(64, 64))
    whole = Pipeline.from_specs(ops)(image)
    report = tilewise.run(src, tmp_path / "o.npy", ops, tile="100x33", executor="serial")
    assert report.ok
    np.testing.assert_array_equal(read_image(tmp_path / "o.npy"), whole)


def sar_chains(bands: int) -> list[list[str]]:
    chains = [["lee:size=7,looks=4"], ["lee:size=5,looks=1", "db"], ["db", "linear"]]
    if bands == 3:
        return [*chains, ["expr:(b3-b1)/(b3+b1)"], ["bands:3,1", "lee:size=3,looks=2"]]
    return [*chains, ["expr:log(b1)/(b1-b1)"]]  # every pixel undefined: all NaN


@pytest.mark.parametrize(("dtype", "bands"), [("uint16", 1), ("float32", 3), ("uint8", 3)])
@pytest.mark.parametrize("layout", ["grid", "rows", "columns"])
@pytest.mark.parametrize("tile", ["64", "100x33", "37x53"])
def test_sar_and_band_ops_tile_exactly(dtype, bands, layout, tile):
    image = make_image((301, 257), dtype, bands)
    for ops in sar_chains(bands):
        whole = Pipeline.from_specs(ops)(image)
        tiled = tilewise.process(image, ops, tile=tile, layout=layout)
        assert tiled.dtype == whole.dtype == np.float32, ops
        np.testing.assert_array_equal(tiled, whole, err_msg=f"{ops} {layout} {tile}")


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_lee_from_a_gdal_raster_tiles_exactly_in_workers(tmp_path, executor):
    pytest.importorskip("rasterio")
    from tests.io.test_raster import write_raster

    image = make_image((301, 257), "uint16", 3)
    src = write_raster(tmp_path / "scene.img", image, driver="ENVI")  # read by RasterSource
    ops = ["bands:3,2", "lee:size=7,looks=4", "db"]
    whole = Pipeline.from_specs(ops)(image)
    workers = 2 if executor == "local" else None
    for out in ("o.tif", "o.npy"):
        report = tilewise.run(
            src,
            tmp_path / out,
            ops,
            tile="100x33",
            executor=executor,
            workers=workers,
            drop_georef=out.endswith(".npy"),  # a .npy holds no georeferencing
        )
        assert report.ok
        np.testing.assert_array_equal(read_image(tmp_path / out), whole, err_msg=out)


# -- nodata: the ops leave nodata pixels out, tiled exactly as on the whole image --------------

NODATA_CHAINS = [
    ["gaussian:sigma=2"],
    ["mean:size=5"],
    ["median:size=3"],
    ["lee:size=5,looks=2"],
    ["erode:size=3"],
    ["opening:size=3"],
    ["sobel"],
    ["db"],
    ["invert"],
    ["median:size=3", "gaussian:sigma=1.5", "lee:size=3,looks=4", "db"],
]


def with_nodata_blocks(image: np.ndarray, nodata: float) -> np.ndarray:
    """``image`` with nodata regions across tile edges (of 64, 37x53, 100x33) and borders."""
    image = image.copy()
    image[50:80, 20:140] = nodata  # across rows 64 and cols 33/53/64/106
    image[:9, 240:] = nodata  # at the image corner
    image[150:250, 95:110] = nodata  # across cols 99 and 106, rows 185/200/212
    image[200, :] = nodata  # a one-pixel line through every tile column
    if image.ndim == 3:
        image[100:130, 150:200, 1] = nodata  # in one band only
    return image


@pytest.mark.parametrize(
    ("dtype", "bands", "nodata"),
    [("uint16", 1, 0), ("float32", 3, np.nan), ("float32", 1, -9999.0)],
)
@pytest.mark.parametrize(
    ("layout", "tile"), [("grid", "64"), ("rows", "37x53"), ("columns", "37x53")]
)
def test_nodata_ops_tile_exactly(dtype, bands, nodata, layout, tile):
    image = with_nodata_blocks(make_image((301, 257), dtype, bands), nodata)
    chains = [*NODATA_CHAINS, ["expr:(b3-b1)/(b3+b1)"]] if bands == 3 else NODATA_CHAINS
    for ops in chains:
        whole = Pipeline.from_specs(ops).with_nodata(nodata, image.dtype)(image)
        tiled = tilewise.process(image, ops, tile=tile, layout=layout, nodata=nodata)
        assert tiled.dtype == whole.dtype, ops
        np.testing.assert_array_equal(tiled, whole, err_msg=f"{ops} {layout} {tile}")


@pytest.mark.parametrize("layout", ["grid", "rows"])
def test_nodata_resize_and_threshold_tile_exactly(layout):
    image = with_nodata_blocks(make_image((300, 256), "uint16", 3), 0)
    for ops, dst in [
        (["resize:scale=0.5", "gaussian:sigma=1"], None),
        (["gaussian:sigma=1", "resize:scale=0.25"], None),
        (["resize:scale=2,interpolation=nearest", "median:size=3"], None),
        (["bands:3,1", "mean:size=3", "threshold:value=30000"], 1),
    ]:
        whole = Pipeline.from_specs(ops).with_nodata(0, image.dtype, dst_nodata=dst)(image)
        tiled = tilewise.process(image, ops, tile="40x36", layout=layout, nodata=0, dst_nodata=dst)
        np.testing.assert_array_equal(tiled, whole, err_msg=f"{ops} {layout}")


@pytest.mark.parametrize(("executor", "layout"), [("serial", "grid"), ("local", "rows")])
def test_nodata_geotiff_runs_tile_exactly_and_read_back(tmp_path, executor, layout):
    rasterio = pytest.importorskip("rasterio")
    from tests.io.test_raster import write_raster

    image = with_nodata_blocks(make_image((301, 257), "uint16", 3), 0)
    src = write_raster(tmp_path / "in.tif", image, nodata=0, tiled=True, blockxsize=64,
                       blockysize=64)  # fmt: skip
    ops = ["bands:3,2", "lee:size=7,looks=4", "median:size=3"]
    whole = Pipeline.from_specs(ops).with_nodata(0, image.dtype)(image)
    workers = 2 if executor == "local" else None
    for out in ("o.tif", "o.zarr"):
        report = tilewise.run(
            src, tmp_path / out, ops, tile="100x33", layout=layout, executor=executor,
            workers=workers,
        )  # fmt: skip
        assert report.ok
        np.testing.assert_array_equal(read_image(tmp_path / out), whole, err_msg=out)
    with rasterio.open(tmp_path / "o.tif") as o:
        assert o.nodata == 0 and o.dtypes == ("float32", "float32")
        mask = o.read_masks(1) == 0  # where GDAL sees nodata
    np.testing.assert_array_equal(mask, image[..., 2] == 0)
