"""The output formats and their one ``--co`` parser: known keys, checked values, no swaps."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

import tilewise
from tests.collection.conftest import GOOD, write_good
from tilewise import io
from tilewise.errors import UsageError


@pytest.mark.parametrize("fmt", list(io.FORMATS))
def test_parsed_options_parse_to_themselves(fmt):
    parsed = io.parse_creation_options(fmt, {})
    assert io.parse_creation_options(fmt, parsed) == parsed


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [
        ("tiff", {"TILED": "YES"}, "option TILED; TIFF output takes COMPRESS"),
        ("tiff", {"BLOCKSIZE": "200"}, "TIFF tiles are multiples of 16 pixels, 200 is not"),
        ("tiff", {"PREDICTOR": "3"}, r"PREDICTOR=3 .* use 1 \(none\) or 2"),
        ("tiff", {"COMPRESS": "NONE", "PREDICTOR": "2"}, "a predictor needs compression"),
        ("tiff", {"BIGTIFF": "MAYBE"}, "use YES, NO, IF_NEEDED"),
        ("tiff", {"COMPRESS": "BLOSC"}, "BLOSC is not valid for TIFF output: use NONE, LZW"),
        ("tiff", {"COMPRESS": "LZW", "LEVEL": "3"}, "COMPRESS=LZW takes no level"),
        ("tiff", {"LEVEL": "12"}, r"LEVEL=12 .* from 0 to 9"),
        ("zarr", {"COMPRESS": "DEFLATE"}, "DEFLATE is not valid for ZARR output: use ZSTD, BLOSC"),
        ("npy", {"COMPRESS": "ZSTD"}, "NPY output takes no creation options"),
        ("jpeg", {"QUALITY": "high"}, r"QUALITY=high .* from 1 to 100"),
    ],
)
def test_an_unknown_key_or_value_is_refused_with_what_is_known(fmt, options, message):
    with pytest.raises(UsageError, match=message):
        io.parse_creation_options(fmt, options)


def test_a_batch_key_applies_to_the_formats_that_know_it():
    parsed = io.parse_options_for_formats(["tiff", "png"], {"compress": "zstd"})
    assert parsed == {
        "tiff": {"COMPRESS": "ZSTD", "LEVEL": 3, "BIGTIFF": "YES"},
        "png": {"LEVEL": 3},
    }
    with pytest.raises(UsageError, match="unknown creation option QUALITY"):
        io.parse_options_for_formats(["tiff", "png"], {"QUALITY": "90"})


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("zarr", {"COMPRESS": "DEFLATE"}), ("tiff", {"COMPRESS": "BLOSC"}), (None, {"X": "1"})],
)
def test_batch_refuses_options_its_outputs_cannot_take_before_work(tmp_path, fmt, options):
    # these were once swapped silently: DEFLATE became Zstd for Zarr, BLOSC became Deflate
    root = tmp_path / "in"
    write_good(root, {"a.tif": GOOD["a.tif"]})
    with pytest.raises(UsageError, match=r"is not valid|unknown creation option"):
        tilewise.batch(
            root, out=tmp_path / "out", ops=["invert"], format=fmt, creation_options=options
        )
    assert not (tmp_path / "out").exists()


def test_batch_writes_with_the_options_given(tmp_path):
    root = tmp_path / "in"
    write_good(root, {"a.tif": GOOD["a.tif"]})
    for fmt, options in (("zarr", {"COMPRESS": "BLOSC", "LEVEL": "7"}), ("tiff", {"LEVEL": "1"})):
        out = tmp_path / fmt
        result = tilewise.batch(
            root, out=out, ops=["invert"], format=fmt, creation_options=options, executor="serial"
        )
        assert result.ok, result.failures
    (codec,) = zarr.open_array(tmp_path / "zarr" / "a.zarr", mode="r").compressors
    assert isinstance(codec, zarr.codecs.BloscCodec) and codec.clevel == 7
    with tifffile.TiffFile(tmp_path / "tiff" / "a.tif") as tif:
        assert tif.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        np.testing.assert_array_equal(tif.asarray(), 255 - GOOD["a.tif"]())
