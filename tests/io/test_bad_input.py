"""RELIABILITY.md rows 19-21 (and a truncated big TIFF): bad input gets a named, one-line error."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile

import tilewise
from tests.conftest import leftovers, make_image, write_image
from tilewise.errors import CorruptInputError, ImageTooLargeError, UnsupportedFormatError


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"II*\x00\x08\x00", "not a readable TIFF"),
        (b"GIF89a", "truncated header"),
        (b"hello, this is text, not an image\n", "not a TIFF, Zarr, .npy, PNG or JPEG"),
    ],
)
def test_row19_empty_short_and_non_image_files(tmp_path, content, message):
    path = tmp_path / "bad.tif"
    path.write_bytes(content)
    with pytest.raises((CorruptInputError, UnsupportedFormatError), match=message):
        tilewise.info(path)
    proc = cli("run", str(path), str(tmp_path / "out.tif"), "--op", "invert")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: ")
    assert "struct.error" not in proc.stderr
    assert leftovers(tmp_path) == []


def _tile_offsets(path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        return list(page.dataoffsets), list(page.databytecounts)


def test_row20_a_corrupt_tile_inside_a_big_tiff_is_named_never_zero_filled(tmp_path):
    image = make_image((512, 512))
    src = write_image(tmp_path / "in.tif", image, tile=(128, 128))
    offsets, counts = _tile_offsets(src)
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    target = 5  # TIFF tile 5: rows 128:256, cols 128:256
    data[offsets[target] : offsets[target] + counts[target]] = rng.bytes(counts[target])
    src.write_bytes(bytes(data))
    out = tmp_path / "out.npy"
    report = tilewise.run(src, out, ["invert"], tile=128, workers=2, retries=0)
    assert report.failed == 1
    failure = report.failures[0]
    assert failure.tile == 5
    assert "corrupt tile 5 (rows 128:, cols 128:)" in failure.cause and str(src) in failure.cause
    assert not out.exists()
    proc = cli("run", str(src), str(tmp_path / "o2.npy"), "--op", "invert", "--tile", "128", "-q")
    assert proc.returncode == 3
    assert "tile 5" in proc.stderr and "corrupt" in proc.stderr and "Traceback" not in proc.stderr


def test_a_truncated_big_tiff_fails_the_tiles_past_the_cut(tmp_path):
    image = make_image((512, 512))
    src = write_image(tmp_path / "in.tif", image, tile=(128, 128))
    offsets, _ = _tile_offsets(src)
    cut = offsets[12]  # tiles 12-15 (the last TIFF tile row) are lost
    src.write_bytes(src.read_bytes()[:cut])
    report = tilewise.run(src, tmp_path / "out.npy", ["invert"], tile=128, workers=2, retries=0)
    assert sorted(f.tile for f in report.failures) == [12, 13, 14, 15]
    assert all("truncated" in f.cause for f in report.failures)


def test_row21_a_tiff_declaring_absurd_dimensions_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((256, 256), np.uint8), tile=(256, 256), compression="deflate")
    with tifffile.TiffFile(path, mode="r+") as tif:
        tags = tif.pages.first.tags
        tags["ImageWidth"].overwrite(2_000_000)
        tags["ImageLength"].overwrite(2_000_000)
    assert path.stat().st_size < 10_000
    with pytest.raises(ImageTooLargeError, match=r"2000000 x 2000000.*--max-pixels"):
        tilewise.info(path)
    proc = cli("run", str(path), str(tmp_path / "out.zarr"), "--op", "invert")
    assert proc.returncode == 2
    assert "4,000,000,000,000 pixels" in proc.stderr and "--max-pixels" in proc.stderr
    assert leftovers(tmp_path) == []


def _png_with_size(path, width, height):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then length + "IHDR"
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_row21_a_png_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    _png_with_size(path, 100_000, 100_000)
    with pytest.raises(ImageTooLargeError, match=r"100000 x 100000.*--max-whole-pixels"):
        tilewise.run(path, tmp_path / "out.npy", ["invert"])
    assert leftovers(tmp_path) == []


def test_png_and_jpeg_inputs_are_read_whole_within_the_budget(tmp_path):
    from PIL import Image

    image = make_image((200, 150), "uint8", bands=3)
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(image).save(tmp_path / "in.jpg", quality=95)
    for name in ("in.png", "in.jpg"):
        src = tmp_path / name
        decoded = np.asarray(Image.open(src))
        report = tilewise.run(src, tmp_path / f"{name}.npy", ["invert"], tile=64, workers=2)
        assert report.ok
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), 255 - decoded)
