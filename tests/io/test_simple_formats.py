"""PNG and JPEG are read with their true dtype and band count, or refused (issue 16: 4, 11).

Also: importing tilewise leaves Pillow's global limit alone, and a tiled run of a PNG
decodes it once per machine, into a mapped file every worker reads.
"""

from __future__ import annotations

import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import tilewise
from tests.conftest import leftovers
from tilewise import io
from tilewise.errors import CorruptInputError, UnsupportedFormatError
from tilewise.geometry import Window
from tilewise.io import _simple

RNG = np.random.default_rng(3)


def read(path, window=None):
    source = io.open_source(path)
    try:
        return source.read(window or Window(0, 0, *source.shape))
    finally:
        source.close()


def test_a_16bit_rgb_png_is_read_as_uint16(tmp_path):
    path = tmp_path / "in.png"
    image = RNG.integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    path.write_bytes(imagecodecs.png_encode(image))
    facts = tilewise.info(path)
    assert (facts["dtype"], facts["bands"], facts["photometric"]) == ("uint16", 3, "rgb")
    np.testing.assert_array_equal(read(path), image)
    np.testing.assert_array_equal(read(path, Window(3, 5, 10, 20)), image[3:13, 5:25])


@pytest.mark.parametrize(
    ("mode", "transparency", "bands", "alpha", "conversion"),
    [
        ("LA", None, 2, True, None),
        ("P", None, 3, False, "palette expanded to RGB"),
        ("P", 0, 4, True, "palette expanded to RGB; tRNS transparency turned into an alpha band"),
        ("1", None, 1, False, "1-bit grey scaled to 8 bits (value x 255)"),
    ],
)
def test_png_modes_are_described_as_decoded(tmp_path, mode, transparency, bands, alpha, conversion):
    path = tmp_path / "in.png"
    grey = Image.fromarray(RNG.integers(0, 256, (20, 30), dtype=np.uint8))
    image = grey.convert(mode) if mode != "LA" else Image.merge("LA", (grey, grey))
    image.save(path, **({} if transparency is None else {"transparency": transparency}))
    facts = tilewise.info(path)
    assert (facts["bands"], facts["alpha"], facts["conversion"]) == (bands, alpha, conversion)
    pixels = read(path)
    assert pixels.shape == ((20, 30) if bands == 1 else (20, 30, bands))
    np.testing.assert_array_equal(pixels, imagecodecs.png_decode(path.read_bytes()))


def test_a_cmyk_jpeg_is_refused_before_work(tmp_path):
    path = tmp_path / "in.jpg"
    Image.fromarray(RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8), mode="CMYK").save(path)
    with pytest.raises(UnsupportedFormatError, match="CMYK"):
        tilewise.info(path)
    command = ["run", str(path), str(tmp_path / "o.tif"), "--op", "invert"]
    proc = subprocess.run(
        [sys.executable, "-m", "tilewise.cli.main", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith(f"Error: {path}: a CMYK"), proc.stderr
    assert leftovers(tmp_path) == []


def test_a_truncated_png_is_named(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptInputError, match=f"{path}: cannot decode the PNG data"):
        read(path)


def test_importing_the_reader_leaves_pillows_limit_alone():
    code = (
        "from PIL import Image; limit = Image.MAX_IMAGE_PIXELS; "
        "import tilewise.io._simple, tilewise.io; "
        "assert Image.MAX_IMAGE_PIXELS == limit, Image.MAX_IMAGE_PIXELS"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_windows_are_read_from_one_decoded_copy_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(_simple, "decoded_dir", lambda: tmp_path / "decoded")
    path = tmp_path / "in.png"
    image = RNG.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    decoded = []
    original = _simple.SimpleSource._decode_into

    def counting(self, out):
        decoded.append(type(out).__name__)
        return original(self, out)

    monkeypatch.setattr(_simple.SimpleSource, "_decode_into", counting)
    for _ in range(2):  # two workers, one after the other
        np.testing.assert_array_equal(read(path, Window(10, 0, 20, 60)), image[10:30])
    assert decoded == ["memmap"]
    copies = list((tmp_path / "decoded").glob("*.npy"))
    assert len(copies) == 1 and np.array_equal(np.load(copies[0]), image)
    # the whole image, as a batch reads it, is decoded into memory, never to disk
    np.testing.assert_array_equal(read(path), image)
    assert decoded == ["memmap", "ndarray"]


def test_a_decoded_copy_that_cannot_be_written_falls_back_to_memory(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    monkeypatch.setattr(_simple, "decoded_dir", lambda: blocked / "decoded")
    path = tmp_path / "in.png"
    image = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(read(path, Window(1, 2, 5, 6)), image[1:6, 2:8])


def test_a_full_disk_for_the_decoded_copy_means_decoding_in_memory(tmp_path, monkeypatch):
    import errno
    import os

    monkeypatch.setattr(_simple, "decoded_dir", lambda: tmp_path / "decoded")

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    path = tmp_path / "in.png"
    image = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(read(path, Window(1, 2, 5, 6)), image[1:6, 2:8])
    assert not list((tmp_path / "decoded").glob("*.npy")) + list(
        (tmp_path / "decoded").glob("*.tmp")
    )
