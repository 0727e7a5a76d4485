"""What a TIFF's samples mean travels with them, or the file is refused (issue 16: 3, 6, 7).

Photometric interpretation, bit depth and damaged header tags, decided from the header; and
errors that are not about the file (MemoryError) keep their meaning when reading TIFF or Zarr.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import tilewise
from tests.conftest import leftovers
from tilewise import io
from tilewise.errors import CorruptInputError, UnsupportedFormatError
from tilewise.geometry import Window

RNG = np.random.default_rng(7)


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def read_all(path):
    source = io.open_source(path)
    try:
        return source, source.read(Window(0, 0, *source.shape))
    finally:
        source.close()


@pytest.mark.parametrize(
    ("photometric", "bands", "name"),
    [("separated", 4, "SEPARATED"), ("cielab", 3, "CIELAB"), ("palette", 1, "PALETTE")],
)
def test_cmyk_cielab_and_palette_tiffs_are_refused_before_work(tmp_path, photometric, bands, name):
    path = tmp_path / "in.tif"
    shape = (40, 48) if bands == 1 else (40, 48, bands)
    tifffile.imwrite(path, RNG.integers(0, 256, shape, dtype=np.uint8), photometric=photometric)
    with pytest.raises(UnsupportedFormatError, match=f"photometric interpretation {name}"):
        tilewise.info(path)
    proc = cli("run", str(path), str(tmp_path / "out.tif"), "--op", "invert")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"Error: {path}: photometric interpretation {name}")
    assert leftovers(tmp_path) == []


def test_a_4bit_miniswhite_tiff_is_scaled_and_inverted_and_says_so(tmp_path):
    path = tmp_path / "in.tif"
    stored = RNG.integers(0, 16, (40, 48), dtype=np.uint8)
    tifffile.imwrite(path, stored, photometric="miniswhite", bitspersample=4)
    _, pixels = read_all(path)
    np.testing.assert_array_equal(pixels, (15 - stored) * 17)
    facts = tilewise.info(path)
    assert facts["dtype"] == "uint8" and facts["bits_per_sample"] == 4
    assert facts["photometric"] == "minisblack"
    assert "4-bit samples scaled to 8 bits" in facts["conversion"]
    assert "MinIsWhite inverted" in facts["conversion"]
    # and through a run: the output shows the image the input shows
    proc = cli("run", str(path), str(tmp_path / "out.npy"), "--op", "invert", "-q")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), 255 - (15 - stored) * 17)


def test_miniswhite_tiffs_are_inverted_in_every_dtype_they_can_be(tmp_path):
    mask = RNG.integers(0, 2, (24, 40), dtype=bool)
    tifffile.imwrite(tmp_path / "bilevel.tif", mask, photometric="miniswhite")
    np.testing.assert_array_equal(read_all(tmp_path / "bilevel.tif")[1], ~mask)
    grey = RNG.integers(0, 65536, (300, 260), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "u16.tif", grey, photometric="miniswhite", tile=(64, 64))
    source, pixels = read_all(tmp_path / "u16.tif")
    np.testing.assert_array_equal(pixels, 65535 - grey)
    assert source.conversion == "MinIsWhite inverted to MinIsBlack (65535 - value)"
    tifffile.imwrite(tmp_path / "f.tif", grey.astype(np.float32), photometric="miniswhite")
    with pytest.raises(UnsupportedFormatError, match="MinIsWhite image of float32"):
        tilewise.info(tmp_path / "f.tif")


def test_bit_depths_that_are_not_whole_bytes_are_refused_unless_a_rule_covers_them(tmp_path):
    tifffile.imwrite(
        tmp_path / "12.tif", RNG.integers(0, 4096, (16, 16), dtype=np.uint16), bitspersample=12
    )
    with pytest.raises(UnsupportedFormatError, match="12-bit samples"):
        tilewise.info(tmp_path / "12.tif")
    stored = RNG.integers(0, 4, (16, 24), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "2.tif", stored, bitspersample=2, photometric="minisblack")
    np.testing.assert_array_equal(read_all(tmp_path / "2.tif")[1], stored * 85)


def test_rgb_tiffs_say_what_they_are(tmp_path):
    rgba = RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=[2])
    facts = tilewise.info(tmp_path / "rgba.tif")
    assert (facts["photometric"], facts["alpha"], facts["conversion"]) == ("rgb", True, None)
    np.testing.assert_array_equal(read_all(tmp_path / "rgba.tif")[1], rgba)


def _retyped(tmp_path, code, field_type):
    """A small tiled TIFF whose tag ``code`` claims field type ``field_type``."""
    path = tmp_path / f"tag{code}.tif"
    tifffile.imwrite(path, np.zeros((64, 80), np.uint16), tile=(16, 16), compression="zlib")
    data = bytearray(path.read_bytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for pos in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, pos)[0] == code:
            struct.pack_into("<H", data, pos + 2, field_type)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("code", "field_type", "message"),
    [
        (256, 2, r"tag ImageWidth \(256\) has field type ASCII"),
        (322, 5, r"tag TileWidth \(322\) has field type RATIONAL"),
        (324, 99, r"tag TileOffsets \(324\) is unreadable \(tag 324: invalid data type 99\)"),
        (258, 2, "header is damaged"),
    ],
)
def test_a_header_tag_of_an_invalid_type_is_a_named_input_error(
    tmp_path, code, field_type, message
):
    path = _retyped(tmp_path, code, field_type)
    with pytest.raises(CorruptInputError, match=message):
        tilewise.info(path)
    for command in (
        ["info", str(path)],
        ["run", str(path), str(tmp_path / "o.tif"), "--op", "invert"],
    ):
        proc = cli(*command)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), proc.stderr


@pytest.mark.parametrize(
    ("offset", "cause"), [(0, "contains no pages"), (10**6, "invalid offset to first page")]
)
def test_a_tiff_without_an_image_gets_a_cause_and_no_library_log_lines(tmp_path, offset, cause):
    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 4, offset)
    path.write_bytes(data)
    proc = cli("info", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Error: {path}: not a readable TIFF: no image in it ({cause}")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    proc = cli("info", str(path), "-v")
    assert "tifffile: " in proc.stderr  # the library's own words, with -v


def test_a_memory_error_while_decoding_is_not_a_corrupt_tile(tmp_path, monkeypatch):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), tile=(32, 32), compression="zlib")
    source = io.open_source(path)

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(source, "_decode", out_of_memory)
    with pytest.raises(MemoryError):
        source.read(Window(0, 0, 8, 8))
    source.close()


def test_library_log_lines_are_restored_after_reading(tmp_path):
    path = _retyped(tmp_path, 324, 99)
    logger = logging.getLogger("tifffile")
    before = (logger.level, logger.propagate, list(logger.handlers))
    with pytest.raises(CorruptInputError):
        tilewise.info(path)
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_a_memory_error_reading_zarr_is_not_a_corrupt_chunk(tmp_path, monkeypatch):
    import zarr

    zarr.create_array(tmp_path / "in.zarr", shape=(32, 32), dtype="uint8", chunks=(16, 16))
    source = io.open_source(tmp_path / "in.zarr")

    class Exhausted:
        def __getitem__(self, key):
            raise MemoryError

    monkeypatch.setattr(source, "_array", Exhausted())
    with pytest.raises(MemoryError):
        source.read(Window(0, 0, 8, 8))
