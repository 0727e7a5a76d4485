"""Conformance suites: every Source and Sink keeps the same contract (as zarr's StoreTests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import make_image, write_image
from tilewise import io
from tilewise.errors import OutputError
from tilewise.geometry import Grid, Window
from tilewise.io import SinkSpec, SourceSpec, _tiff_whole


class SourceTests:
    """Subclass and set ``name``/``kwargs``: reading any window equals slicing the image."""

    name = "in.tif"
    kwargs: dict = {}
    bands = 1
    dtype = "uint8"
    #: The Source class open_source must choose for the file (None: not checked).
    source_class: str | None = None

    def write(self, path, image):
        return write_image(path, image, **self.kwargs)

    @pytest.fixture
    def image_and_path(self, tmp_path):
        image = make_image((157, 203), self.dtype, self.bands)
        return image, self.write(tmp_path / self.name, image)

    def test_shape_dtype_bands(self, image_and_path, opened):
        image, path = image_and_path
        source = opened(path)
        if self.source_class is not None:
            assert type(source).__name__ == self.source_class
        assert source.shape == image.shape[:2]
        assert source.dtype == image.dtype
        assert source.bands == self.bands

    @pytest.mark.parametrize(
        "window",
        [
            Window(0, 0, 157, 203),
            Window(0, 0, 1, 1),
            Window(156, 202, 1, 1),
            Window(13, 17, 50, 90),
            Window(100, 0, 57, 203),
            Window(0, 150, 157, 53),
        ],
    )
    def test_any_window_equals_slicing(self, image_and_path, window, opened):
        image, path = image_and_path
        got = opened(path).read(window)
        np.testing.assert_array_equal(got, image[window.slices])

    def test_info_is_json_ready(self, image_and_path, opened):
        import json

        _, path = image_and_path
        json.dumps(opened(path).info())

    def test_cached_source_reopens_a_replaced_file(self, image_and_path, tmp_path):
        image, path = image_and_path
        spec = SourceSpec(str(path))
        first = io.cached_source(spec).read(Window(0, 0, 5, 5))
        replaced = make_image((157, 203), self.dtype, self.bands, seed=9)
        self.write(path if self.name != "in.zarr" else tmp_path / "unused.zarr", replaced)
        if self.name == "in.zarr":
            return  # a Zarr directory is replaced chunk by chunk; nothing to check here
        second = io.cached_source(spec).read(Window(0, 0, 5, 5))
        np.testing.assert_array_equal(first, image[:5, :5])
        np.testing.assert_array_equal(second, replaced[:5, :5])


class TiffSourceTests(SourceTests):
    """TiffSource, forced for these small files (which would otherwise be read whole)."""

    source_class = "TiffSource"

    @pytest.fixture(autouse=True)
    def _read_by_segment(self, monkeypatch):
        monkeypatch.setattr(_tiff_whole, "MAX_FILE_BYTES", 0)


class TestTiledTiff(TiffSourceTests):
    kwargs = {"tile": (32, 48)}


class TestStripedTiff(TiffSourceTests):
    kwargs = {"tile": None, "rowsperstrip": 19}


class TestRgbUint16Tiff(TiffSourceTests):
    bands = 3
    dtype = "uint16"
    kwargs = {"tile": (64, 64), "compression": "zstd"}


class TestFloatTiff(TiffSourceTests):
    dtype = "float32"
    kwargs = {"tile": (16, 16)}


class WholeTiffSourceTests(SourceTests):
    """Small, simple TIFFs: read whole by WholeTiffSource."""

    source_class = "WholeTiffSource"


class TestWholeTiledTiff(WholeTiffSourceTests):
    kwargs = {"compression": None, "tile": (32, 48)}


class TestWholeStripedTiff(WholeTiffSourceTests):
    kwargs = {"compression": None, "tile": None, "rowsperstrip": 19}


class TestWholeRgbUint16Tiff(WholeTiffSourceTests):
    bands = 3
    dtype = "uint16"
    kwargs = {"compression": None, "tile": (64, 64)}


class TestWholeFloatBigEndianTiff(WholeTiffSourceTests):
    dtype = "float32"
    kwargs = {"compression": None, "tile": None, "rowsperstrip": 40, "byteorder": ">"}


class TestWholeInt16BigTiff(WholeTiffSourceTests):
    dtype = "int16"
    kwargs = {"compression": None, "tile": (16, 16), "bigtiff": True}


class TestZarr(SourceTests):
    name = "in.zarr"


class TestNpy(SourceTests):
    name = "in.npy"
    bands = 3


class SinkTests:
    """Subclass and set ``fmt``: tiles written in any order assemble into the exact image."""

    fmt = "npy"
    options: dict = {}
    tile = (64, 96)
    bands = 1
    dtype = "uint8"

    def sink_class(self):
        return io.sink_class(self.fmt)

    def spec(self, tmp_path, image):
        shape = image.shape[:2]
        tile = io.align_tile(self.fmt, self.tile, shape)
        return SinkSpec(
            str(tmp_path / f"out{io.FORMATS[self.fmt].extensions[0]}"),
            self.fmt,
            shape,
            self.bands,
            self.dtype,
            io.sink_chunks(self.fmt, tile, shape),
            io.parse_creation_options(self.fmt, self.options),
            token="t",
        ), tile

    def write_all(self, tmp_path, image, order=None):
        spec, tile = self.spec(tmp_path, image)
        cls = self.sink_class()
        cls.create(spec)
        sink = cls(spec)
        grid = Grid(image.shape[:2], tile)
        tiles = list(grid)
        if order is not None:
            tiles = [tiles[i] for i in order(len(tiles))]
        receipts = {t.index: sink.write(t.index, t.core, image[t.core.slices]) for t in tiles}
        return spec, cls, sink, grid, receipts

    def read(self, spec):
        from tests.conftest import read_image

        return read_image(spec.path)

    @pytest.mark.parametrize("order", [None, lambda n: list(reversed(range(n)))])
    def test_tiles_in_any_order_assemble_exactly(self, tmp_path, order):
        image = make_image((301, 257), self.dtype, self.bands)
        spec, cls, sink, _, receipts = self.write_all(tmp_path, image, order)
        sink.close()
        cls.finalize(spec, receipts)
        np.testing.assert_array_equal(self.read(spec), image)
        assert not spec.partial.exists()

    def test_receipts_verify_and_notice_damage(self, tmp_path):
        image = make_image((301, 257), self.dtype, self.bands)
        spec, _, sink, grid, receipts = self.write_all(tmp_path, image)
        try:
            assert all(sink.verify(grid.tile(i).core, r) for i, r in receipts.items())
            self.damage(spec, sink, grid)
            assert not sink.verify(grid.tile(0).core, receipts[0])
        finally:
            sink.close()

    def damage(self, spec, sink, grid):
        raise NotImplementedError


class TestNpySink(SinkTests):
    def damage(self, spec, sink, grid):
        array = np.load(spec.partial, mmap_mode="r+")
        array[0, 0] = ~array[0, 0]
        array.flush()


class TestZarrSink(SinkTests):
    fmt = "zarr"
    bands = 3
    dtype = "uint16"

    def damage(self, spec, sink, grid):
        (spec.partial / "c" / "0" / "0" / "0").unlink()


class TestTiffSink(SinkTests):
    fmt = "tiff"
    tile = (64, 100)  # rounded up to 64 x 112 for the TIFF's 16-px grid

    def damage(self, spec, sink, grid):
        path = spec.partial / "tile-0000000.seg"
        path.write_bytes(path.read_bytes()[:-1])

    def test_a_spool_cut_short_before_the_assembly_is_an_error_not_a_short_tile(self, tmp_path):
        from tilewise.io._tiff import assembling_path

        image = make_image((301, 257), self.dtype, self.bands)
        spec, cls, sink, grid, receipts = self.write_all(tmp_path, image)
        sink.close()
        self.damage(spec, sink, grid)
        with pytest.raises(OutputError, match=r"tile-0000000\.seg: ends before the encoded tile"):
            cls.assemble(spec, receipts)
        assert not assembling_path(Path(spec.path)).exists()
        assert not Path(spec.path).exists()


class TestTiffSinkZstdFloat(TestTiffSink):
    options = {"COMPRESS": "ZSTD"}
    dtype = "float32"
    bands = 3


class WholeImageSinkTests(SinkTests):
    """Whole images (a batch's per-file outputs): one write of the whole image, any format."""

    def sink_class(self):
        from tilewise.io._whole import WholeImageSink

        return WholeImageSink

    def spec(self, tmp_path, image):
        spec, _ = super().spec(tmp_path, image)
        return spec, image.shape[:2]

    def damage(self, spec, sink, grid):
        found = sorted(spec.partial.rglob("*")) if spec.partial.is_dir() else [spec.partial]
        files = [p for p in found if p.is_file() and p.name != "zarr.json"]
        files[0].write_bytes(files[0].read_bytes()[:-1])

    def test_only_the_whole_image_is_written(self, tmp_path):
        image = make_image((30, 20), self.dtype, self.bands)
        spec, _ = self.spec(tmp_path, image)
        with pytest.raises(OutputError, match="in one piece"):
            self.sink_class()(spec).write(0, Window(0, 0, 10, 20), image[:10])


class TestWholeTiff(WholeImageSinkTests):
    fmt = "tiff"
    options = {"COMPRESS": "LZW"}

    def read(self, spec):
        with tifffile.TiffFile(spec.path) as tif:  # a classic TIFF in strips
            assert not tif.is_bigtiff and not tif.pages.first.is_tiled
            assert tif.pages.first.compression == tifffile.COMPRESSION.LZW
            return tif.asarray()


class TestWholePng(WholeImageSinkTests):
    fmt = "png"
    bands = 3
    dtype = "uint16"

    def read(self, spec):
        import cv2

        image = cv2.imread(spec.path, cv2.IMREAD_UNCHANGED)
        assert image is not None
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class TestWholeNpy(WholeImageSinkTests):
    fmt = "npy"
    dtype = "float32"


class TestWholeZarr(WholeImageSinkTests):
    fmt = "zarr"
    bands = 3
    options = {"COMPRESS": "BLOSC", "LEVEL": 5}


class StackSinkTests(SinkTests):
    """Stacks (a batch's ``--stack``): the rows stacked downwards, one tile a whole row.

    The 301 x 257 image is 7 rows of 43 x 257; each tile of the grid is one row.
    """

    rows = 7

    def sink_class(self):
        return io.stack_sink_class(self.fmt)

    def spec(self, tmp_path, image):
        row_shape = (image.shape[0] // self.rows, *image.shape[1:])
        options = io.parse_creation_options(self.fmt, self.options)
        path = str(tmp_path / f"out.{self.fmt}")
        spec = io.StackSpec.of(path, self.fmt, self.rows, row_shape, self.dtype, options, token="t")
        return spec, spec.chunks

    def read(self, spec):
        if self.fmt == "zarr":
            import zarr

            stack = np.asarray(zarr.open_array(spec.path, mode="r")[...])
        else:
            stack = np.load(spec.path)
        assert stack.shape == spec.stack_shape and stack.dtype == spec.dtype
        return stack.reshape(-1, *stack.shape[2:])

    def test_only_whole_rows_are_written(self, tmp_path):
        image = make_image((301, 257), self.dtype, self.bands)
        spec, _ = self.spec(tmp_path, image)
        cls = self.sink_class()
        cls.create(spec)
        sink = cls(spec)
        try:
            with pytest.raises(OutputError, match="a whole 43 x 257 row"):
                sink.write(0, Window(10, 0, 43, 257), image[10:53])
            with pytest.raises(OutputError, match="has 7 rows, not row 7"):
                sink.write(7, spec.row_window(7), image[:43])
            with pytest.raises(OutputError, match="the stack's rows are"):
                sink.write(0, spec.row_window(0), image[:43, :, ...].astype("float64"))
        finally:
            sink.close()

    def test_reopened_spec_equals_the_created_one(self, tmp_path):
        image = make_image((301, 257), self.dtype, self.bands)
        spec, _ = self.spec(tmp_path, image)
        self.sink_class().create(spec)
        again = io.reopen_stack(spec.path, str(spec.partial), self.rows, spec.options, token="t")
        assert again == spec
        with pytest.raises(OutputError, match="has 7 rows but there are 8 inputs"):
            io.reopen_stack(spec.path, str(spec.partial), 8, spec.options, token="t")


class TestNpyStackSink(StackSinkTests):
    def damage(self, spec, sink, grid):
        os.truncate(spec.partial, 200)  # the header and a little of row 0


class TestZarrStackSink(StackSinkTests):
    fmt = "zarr"
    bands = 3
    dtype = "uint16"
    options = {"COMPRESS": "ZSTD", "LEVEL": 3}

    def damage(self, spec, sink, grid):
        (spec.partial / "c" / "0" / "0" / "0" / "0").unlink()


def test_tiff_output_is_tiled_bigtiff_with_the_chosen_compression(tmp_path):
    image = make_image((301, 257), "uint8")
    src = write_image(tmp_path / "in.tif", image)
    import tilewise

    tilewise.run(
        src,
        tmp_path / "o.tif",
        ["invert"],
        tile=128,
        executor="serial",
        creation_options={"COMPRESS": "ZSTD", "LEVEL": 5},
    )
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        page = tif.pages.first
        assert tif.is_bigtiff and page.is_tiled
        assert (page.tilelength, page.tilewidth) == (128, 128)
        assert page.compression == tifffile.COMPRESSION.ZSTD


class TestInt16Tiff(TiffSourceTests):
    dtype = "int16"
    kwargs = {"tile": (32, 32), "compression": "zstd"}


class RasterSourceTests(SourceTests):
    """Formats only GDAL reads, written with rasterio and read through RasterSource."""

    source_class = "RasterSource"
    driver = "ENVI"
    creation: dict = {}

    def write(self, path, image):
        from tests.io.test_raster import write_raster

        return write_raster(path, image, driver=self.driver, **self.creation)


class TestEnviRaster(RasterSourceTests):
    name = "in.img"
    bands = 3
    dtype = "uint16"


class TestJpeg2000Raster(RasterSourceTests):
    name = "in.jp2"
    driver = "JP2OpenJPEG"
    creation = {"QUALITY": 100, "REVERSIBLE": "YES", "BLOCKXSIZE": 64, "BLOCKYSIZE": 64}
