"""WholeTiffSource: small, simple TIFFs read whole by libtiff, exactly as TiffSource reads them."""

from __future__ import annotations

import io as bytes_io
from typing import Any

import imagecodecs
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilewise
from tilewise import io
from tilewise.errors import CorruptInputError, ImageTooLargeError
from tilewise.geometry import Window
from tilewise.io import SourceSpec, _tiff_ifd, _tiff_whole
from tilewise.io._tiff import TiffSource
from tilewise.io._tiff_ifd import parse_layout
from tilewise.io._tiff_whole import WholeTiffSource

SHAPE = (37, 53)  # not a multiple of any strip or tile below


def random_image(dtype, bands, shape=SHAPE, seed=0):
    """Full-range values (every bit of every byte matters)."""
    rng = np.random.default_rng(seed)
    full = shape if bands == 1 else (*shape, bands)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(full) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, full, dtype=dtype, endpoint=True)


def write(path, image, **kwargs):
    """Write ``image`` as tilewise's tests do: RGB for 3 or 4 bands (4: with alpha)."""
    bands = 1 if image.ndim == 2 else image.shape[2]
    options: dict[str, Any] = {
        "photometric": "rgb" if bands in (3, 4) else "minisblack",
        "metadata": None,
    }
    if bands == 4:
        options["extrasamples"] = (2,)
    options.update(kwargs)
    tifffile.imwrite(path, image, **options)
    return path


def windows(shape):
    h, w = shape
    return [
        Window(0, 0, h, w),
        Window(0, 0, 1, 1),
        Window(h - 1, w - 1, 1, 1),
        Window(5, 7, 20, 30),
        Window(h - 3, 0, 3, w),
        Window(0, w - 2, h, 2),
    ]


def assert_read_like_tiffsource(path, whole=True):
    """open_source chose WholeTiffSource (or, when not ``whole``, TiffSource) and it reads and
    describes ``path`` as TiffSource does."""
    expected = tifffile.imread(path)
    source = io.open_source(path)
    assert type(source) is (WholeTiffSource if whole else TiffSource)
    reference = TiffSource(SourceSpec(str(path)))
    try:
        assert source.shape == reference.shape == expected.shape[:2]
        assert source.bands == reference.bands
        assert source.dtype == reference.dtype == expected.dtype
        assert source.chunks == reference.chunks
        assert source.compression == reference.compression
        # the same facts, but for the reader that decodes the pixels
        assert source.info() | {"reader": ""} == reference.info() | {"reader": ""}
        assert source.reader == ("libtiff (whole file)" if whole else "tifffile")
        for window in windows(source.shape):
            got = source.read(window)
            assert got.dtype == expected.dtype and got.dtype.isnative
            np.testing.assert_array_equal(got, expected[window.slices])
    finally:
        source.close()
        reference.close()


def predictor_for(dtype):
    return 3 if np.dtype(dtype).kind == "f" else 2


CODECS = [
    (None, False),
    ("packbits", False),
    ("lzw", False),
    ("lzw", True),
    ("deflate", False),
    ("deflate", True),
    ("adobe_deflate", True),
    ("zstd", False),
    ("zstd", True),
]


@pytest.mark.parametrize(("compression", "predict"), CODECS)
@pytest.mark.parametrize("bands", [1, 3, 4])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "uint32", "float32", "float64"])
def test_every_dtype_band_count_and_codec_reads_like_tiffsource(
    tmp_path, dtype, bands, compression, predict
):
    image = random_image(dtype, bands)
    predictor = predictor_for(dtype) if predict else None
    path = write(
        tmp_path / "in.tif", image, compression=compression, predictor=predictor, rowsperstrip=7
    )
    assert_read_like_tiffsource(path, whole=compression is None)


LAYOUTS: dict[str, dict[str, Any]] = {
    "one strip": {},
    "strips of 1 row": {"rowsperstrip": 1},
    "strips of 7 rows": {"rowsperstrip": 7},
    "strips of 36 rows": {"rowsperstrip": 36},
    "tiles": {"tile": (16, 32)},
    "one big tile": {"tile": (64, 64)},
}
CONTAINERS: dict[str, dict[str, Any]] = {
    "little-endian": {},
    "big-endian": {"byteorder": ">"},
    "BigTIFF": {"bigtiff": True},
    "big-endian BigTIFF": {"bigtiff": True, "byteorder": ">"},
}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("dtype", "bands", "compression"),
    [("uint16", 1, None), ("float32", 3, None), ("int16", 4, None), ("float64", 1, None)],
)
def test_every_layout_and_container_reads_like_tiffsource(
    tmp_path, layout, container, dtype, bands, compression
):
    image = random_image(dtype, bands, seed=1)
    predictor = predictor_for(dtype) if compression else None
    options: dict[str, Any] = {**LAYOUTS[layout], **CONTAINERS[container]}
    options.update(compression=compression, predictor=predictor)
    path = write(tmp_path / "in.tif", image, **options)
    assert_read_like_tiffsource(path)


def test_descriptive_tags_do_not_prevent_reading_whole(tmp_path):
    image = random_image("uint8", 3)
    path = write(
        tmp_path / "in.tif",
        image,
        metadata={"note": "shaped description"},
        resolution=(300, 300),
        software="test",
        datetime="2024:01:01 00:00:00",
        extratags=[(42113, "s", 0, "0", True)],  # GDAL_NODATA
    )
    assert_read_like_tiffsource(path)


# Each writes an ineligible file for an image and returns the pixels TiffSource reads from it.


def _plain(**options):
    def make(path, image):
        tifffile.imwrite(path, image, **options)
        with tifffile.TiffFile(path) as tif:
            return tif.pages.first.asarray()

    return make


def _overview_page(path, image):
    with tifffile.TiffWriter(path) as tif:
        tif.write(image)
        tif.write(image[::2, ::2], subfiletype=1)  # a reduced copy, not a second plane
    return image


def _subifds(path, image):
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, subifds=1)
        tif.write(image[::2, ::2], subfiletype=1)
    return image


def _planar_separate(path, image):
    rgb = np.stack([image, 255 - image, image // 2], axis=-1)
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    return rgb


def _sparse_tile(path, image):
    tifffile.imwrite(path, image, tile=(16, 16))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tag = tif.pages.first.tags["TileByteCounts"]
        tag.overwrite((tag.value[0], 0, *tag.value[2:]))
    expected = image.copy()
    expected[:16, 16:32] = 0  # a sparse tile reads as zeros
    return expected


INELIGIBLE = {
    "an overview page": _overview_page,
    "SubIFDs": _subifds,
    "JPEG": _plain(compression="jpeg"),
    # read inverted to MinIsBlack (io/_tiff_header.py)
    "MinIsWhite": lambda p, im: 255 - _plain(photometric="miniswhite")(p, im),
    "planar separate": _planar_separate,
    "float16": lambda p, im: _plain()(p, im.astype(np.float16)),
    "1-bit": lambda p, im: _plain(photometric="minisblack")(p, im > 128),
    "PackBits with a predictor": _plain(compression="packbits", predictor=2),
    "a private tag": _plain(extratags=[(65000, "s", 0, "x", True)]),
    "a sparse tile": _sparse_tile,
}


@pytest.mark.parametrize("kind", INELIGIBLE)
def test_ineligible_files_are_read_by_tiffsource(tmp_path, kind):
    path = tmp_path / "in.tif"
    expected = INELIGIBLE[kind](path, random_image("uint8", 1))
    assert parse_layout(path.read_bytes()) is None
    source = io.open_source(path)
    assert type(source) is TiffSource
    np.testing.assert_array_equal(source.read(Window(0, 0, *source.shape)), expected)
    source.close()


@pytest.mark.parametrize(
    ("module", "limit"), [(_tiff_whole, "MAX_FILE_BYTES"), (_tiff_ifd, "MAX_DECODED_BYTES")]
)
def test_files_over_the_size_limits_are_read_by_tiffsource(
    tmp_path, monkeypatch, module, limit, opened
):
    path = write(tmp_path / "in.tif", random_image("uint16", 1), compression=None)
    assert type(opened(path)) is WholeTiffSource
    monkeypatch.setattr(module, limit, 37 * 53 * 2 - 1)
    assert type(opened(path)) is TiffSource


def test_a_short_uncompressed_strip_is_left_to_tiffsource(tmp_path, opened):
    # libtiff would read past the declared byte count; TiffSource calls the strip corrupt
    path = write(tmp_path / "in.tif", random_image("uint8", 1), rowsperstrip=8)
    with tifffile.TiffFile(path, mode="r+") as tif:
        tag = tif.pages.first.tags["StripByteCounts"]
        tag.overwrite((tag.value[0], tag.value[1] - 1, *tag.value[2:]))
    source = opened(path)
    assert type(source) is TiffSource
    with pytest.raises(CorruptInputError, match=r"corrupt strip 1 \(rows 8:, cols 0:\)"):
        source.read(Window(0, 0, *SHAPE))


def test_the_pixel_budget_is_checked_from_the_header_with_tiffsources_message(tmp_path):
    path = write(tmp_path / "in.tif", random_image("uint8", 3))
    spec = SourceSpec(str(path), max_pixels=1000)
    with pytest.raises(ImageTooLargeError) as whole:
        io.open_source(spec)
    with pytest.raises(ImageTooLargeError) as by_segment:
        TiffSource(spec)
    assert str(whole.value) == str(by_segment.value)
    assert "37 x 53 = 1,961 pixels" in str(whole.value) and "--max-pixels" in str(whole.value)


def test_a_truncated_small_tiff_fails_with_tiffsources_error(tmp_path, opened):
    image = random_image("uint8", 1)
    path = write(tmp_path / "in.tif", image, compression="deflate", rowsperstrip=8)
    with tifffile.TiffFile(path) as tif:
        cut = tif.pages.first.dataoffsets[2] + 3
    path.write_bytes(path.read_bytes()[:cut])
    source = opened(path)
    assert type(source) is TiffSource  # strips past the end: not eligible
    np.testing.assert_array_equal(source.read(Window(0, 0, 8, 53)), image[:8])
    with pytest.raises(CorruptInputError, match="truncated") as err:
        source.read(Window(0, 0, *SHAPE))
    assert str(path) in str(err.value) and "strip 2" in str(err.value)


def _corrupt_strip(path, index):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    data = bytearray(path.read_bytes())
    data[offset : offset + count] = np.random.default_rng(0).bytes(count)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", ["deflate", "zstd", "packbits", "lzw"])
def test_a_corrupt_compressed_strip_is_always_named(tmp_path, compression, opened):
    """Compressed files are read by segment: libtiff would cut some damaged segments short
    without an error (module docstring), TiffSource names them."""
    image = random_image("uint8", 1)
    path = write(tmp_path / "in.tif", image, compression=compression, rowsperstrip=8)
    assert parse_layout(path.read_bytes()) is None
    _corrupt_strip(path, 1)
    source = opened(path)
    assert type(source) is TiffSource
    with pytest.raises(CorruptInputError) as whole:
        source.read(Window(0, 0, *SHAPE))
    # as with TiffSource, windows away from the corrupt strip still read
    np.testing.assert_array_equal(source.read(Window(0, 20, 8, 3)), image[0:8, 20:23])
    with pytest.raises(CorruptInputError) as by_segment:
        opened(path, TiffSource).read(Window(0, 0, *SHAPE))
    assert str(whole.value) == str(by_segment.value)
    assert str(whole.value).startswith(f"{path}: corrupt strip 1 (rows 8:, cols 0:): ")


def test_a_corrupt_strip_fails_only_the_tiles_that_touch_it(tmp_path):
    image = random_image("uint8", 1, shape=(64, 64))
    src = write(tmp_path / "in.tif", image, compression="deflate", rowsperstrip=16)
    _corrupt_strip(src, 2)  # rows 32:48
    report = tilewise.run(src, tmp_path / "out.npy", ["invert"], tile=32, workers=2, retries=0)
    assert sorted(f.tile for f in report.failures) == [2, 3]
    assert all("corrupt strip 2 (rows 32:, cols 0:)" in f.cause for f in report.failures)


def test_decoding_is_lazy_and_happens_once(tmp_path, monkeypatch, opened):
    path = write(tmp_path / "in.tif", random_image("uint16", 3), tile=(16, 16))  # libtiff's
    calls = []
    decode = imagecodecs.tiff_decode

    def counted(data: bytes) -> Any:
        calls.append(1)
        return decode(data)

    monkeypatch.setattr(imagecodecs, "tiff_decode", counted)
    source = opened(path)
    assert source.info()["shape"] == [37, 53] and calls == []
    first = source.read(Window(0, 0, 10, 10))
    second = source.read(Window(0, 0, 37, 53))
    assert len(calls) == 1
    first[...] = 0  # a read is the caller's copy
    np.testing.assert_array_equal(source.read(Window(0, 0, 10, 10)), second[:10, :10])


@pytest.mark.parametrize(
    "fake_decode",
    [
        pytest.param(lambda data: 1 / 0, id="libtiff raises"),
        pytest.param(lambda data: np.zeros((37, 53), np.uint16), id="wrong shape"),
        pytest.param(lambda data: np.zeros((37, 53, 3), np.int16), id="wrong dtype"),
    ],
)
def test_when_libtiff_disagrees_tiffsource_reads_the_file(tmp_path, monkeypatch, fake_decode):
    image = random_image("uint16", 3)
    path = write(tmp_path / "in.tif", image)
    monkeypatch.setattr(imagecodecs, "tiff_decode", fake_decode)
    source = io.open_source(path)
    assert type(source) is WholeTiffSource
    for window in windows(SHAPE):
        np.testing.assert_array_equal(source.read(window), image[window.slices])
    source.close()


# Header parser against tifffile on generated files.

FILES = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(
            ["uint8", "int8", "uint16", "int32", "uint64", "float32", "float64"]
        ),
        "bands": st.sampled_from([1, 2, 3, 4]),
        "shape": st.tuples(st.integers(1, 70), st.integers(1, 70)),
        "compression": st.sampled_from([None, "lzw", "deflate", "packbits", "zstd"]),
        "predict": st.booleans(),
        "tile": st.one_of(st.none(), st.sampled_from([(16, 16), (32, 16), (16, 48)])),
        "rowsperstrip": st.integers(1, 80),
        "byteorder": st.sampled_from(["<", ">"]),
        "bigtiff": st.booleans(),
        "photometric": st.sampled_from(["minisblack", "rgb", "miniswhite"]),
        "planar": st.sampled_from(["contig", "separate"]),
    }
)


#: Up to four (position, new byte) changes; positions wrap to the header and IFD.
DAMAGE = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4)


def _generated(params):
    dtype, bands = params["dtype"], params["bands"]
    photometric = params["photometric"]
    if photometric == "rgb" and bands < 3:
        photometric = "minisblack"
    planar = params["planar"] if bands > 1 else None
    image = random_image(dtype, bands, params["shape"])
    if planar == "separate":
        image = np.moveaxis(image, -1, 0)
    options = {
        "photometric": photometric,
        "planarconfig": planar,
        "compression": params["compression"],
        "predictor": predictor_for(dtype) if params["predict"] and params["compression"] else None,
        "byteorder": params["byteorder"],
        "bigtiff": params["bigtiff"],
        "extrasamples": (0,) * (bands - 3) if photometric == "rgb" else None,
        "metadata": None,
    }
    if params["tile"]:
        options["tile"] = params["tile"]
    else:
        options["rowsperstrip"] = params["rowsperstrip"]
    buffer = bytes_io.BytesIO()
    tifffile.imwrite(buffer, image, **options)
    uncompressed = params["compression"] is None  # compressed files: module docstring
    eligible = photometric != "miniswhite" and planar != "separate" and uncompressed
    return buffer.getvalue(), eligible


def _tiffsource_view(page):
    """What TiffSource reports for a page: shape, bands, dtype, block."""
    separate, _, length, width, contig = page.shaped
    if page.is_tiled:
        block = (page.tilelength, page.tilewidth)
    else:
        block = (min(page.rowsperstrip or length, length), width)
    return (length, width), separate * contig, np.dtype(page.dtype), block


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES)
def test_the_header_parser_agrees_with_tifffile(params):
    data, eligible = _generated(params)
    layout = parse_layout(data)
    assert (layout is not None) == eligible
    if layout is None:
        return
    with tifffile.TiffFile(bytes_io.BytesIO(data)) as tif:
        page = tif.pages.first
        assert (layout.shape, layout.bands, layout.dtype, layout.block) == _tiffsource_view(page)
        assert (layout.tiled, layout.bigtiff) == (page.is_tiled, tif.is_bigtiff)
        np.testing.assert_array_equal(imagecodecs.tiff_decode(data), page.asarray())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES, DAMAGE)
def test_a_damaged_header_is_refused_or_read_as_tifffile_reads_it(params, damage):
    data, _ = _generated(params)
    with tifffile.TiffFile(bytes_io.BytesIO(data)) as tif:
        page = tif.pages.first
        header_end = min(page.dataoffsets)  # damage only the header and IFD, not the pixels
    damaged = bytearray(data)
    for where, byte in damage:
        damaged[where % header_end] = byte
    layout = parse_layout(bytes(damaged))  # never raises
    if layout is None:
        return
    with tifffile.TiffFile(bytes_io.BytesIO(bytes(damaged))) as tif:
        page = tif.pages.first
        assert len(tif.pages) == 1
        assert (layout.shape, layout.bands, layout.dtype, layout.block) == _tiffsource_view(page)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES, DAMAGE)
def test_a_remembered_layout_is_only_reused_for_a_file_that_parses_the_same(params, damage):
    """parse_layout remembers the last layout with the bytes it read: a file that
    differs anywhere in them, or in size, must be parsed afresh."""
    data, _ = _generated(params)
    changed = bytearray(data)
    for where, byte in damage:
        changed[where % len(changed)] = byte
    parse_layout(data)  # remembered, if eligible
    fresh, _ = _tiff_ifd._parse_layout(bytes(changed), len(changed))
    assert parse_layout(bytes(changed)) == fresh
    assert (
        parse_layout(bytes(changed[:-1]))
        == _tiff_ifd._parse_layout(bytes(changed[:-1]), len(changed) - 1)[0]
    )


def test_files_written_alike_share_one_parse(tmp_path):
    first = write(tmp_path / "a.tif", random_image("uint8", 1, shape=(64, 48), seed=1))
    second = write(tmp_path / "b.tif", random_image("uint8", 1, shape=(64, 48), seed=2))
    other = write(tmp_path / "c.tif", random_image("uint8", 1, shape=(48, 64), seed=3))
    layouts = [parse_layout(path.read_bytes()) for path in (first, second, other)]
    assert layouts[0] is layouts[1]  # the second file cost one comparison
    assert layouts[2] is not None and layouts[2].shape == (48, 64)
    for path in (first, second, other, first):
        assert_read_like_tiffsource(path)


def test_the_bench_like_collection_file_reads_whole(tmp_path, opened):
    """The case this source exists for: 512 x 512 uint8, one uncompressed strip."""
    image = random_image("uint8", 1, shape=(512, 512))
    path = write(tmp_path / "in.tif", image)
    assert_read_like_tiffsource(path)
    assert opened(path).info()["chunks"] == [512, 512]


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("rowsperstrip", [None, 5])
def test_back_to_back_strips_are_read_as_a_view_of_the_file(tmp_path, byteorder, rowsperstrip):
    image = random_image("uint16", 3)
    path = write(tmp_path / "in.tif", image, byteorder=byteorder, rowsperstrip=rowsperstrip)
    layout = parse_layout(path.read_bytes())
    assert layout is not None and layout.contiguous_at is not None
    assert_read_like_tiffsource(path)


def test_strips_out_of_order_are_not_read_as_a_view(tmp_path):
    image = random_image("uint8", 1)
    path = write(tmp_path / "in.tif", image, rowsperstrip=8)
    with tifffile.TiffFile(path, mode="r+") as tif:  # swap the first two strips
        tag = tif.pages.first.tags["StripOffsets"]
        offsets = list(tag.value)
        offsets[0], offsets[1] = offsets[1], offsets[0]
        tag.overwrite(offsets)
    data = bytearray(path.read_bytes())
    first, second = sorted(offsets[:2])
    data[first : first + 8 * 53], data[second : second + 8 * 53] = (
        data[second : second + 8 * 53],
        data[first : first + 8 * 53],
    )
    path.write_bytes(bytes(data))
    layout = parse_layout(bytes(data))
    assert layout is not None and layout.contiguous_at is None
    assert_read_like_tiffsource(path)


def test_a_file_cut_short_after_it_was_opened_names_the_missing_rows(tmp_path, opened):
    image = random_image("uint8", 1)
    path = write(tmp_path / "in.tif", image)
    source = opened(path)
    assert type(source) is WholeTiffSource
    path.write_bytes(path.read_bytes()[:-100])  # e.g. rewritten while the batch runs
    np.testing.assert_array_equal(source.read(Window(0, 0, 10, 53)), image[:10])
    with pytest.raises(CorruptInputError, match="ends before the rows") as err:
        source.read(Window(0, 0, *SHAPE))
    assert str(path) in str(err.value)


def test_a_header_after_the_pixels_is_found_by_reading_the_whole_file(tmp_path, monkeypatch):
    image = random_image("uint16", 3, shape=(64, 64))
    path = write(tmp_path / "in.tif", image)
    monkeypatch.setattr(_tiff_whole, "HEAD_BYTES", 16)  # the header is beyond what is read first
    assert_read_like_tiffsource(path)
