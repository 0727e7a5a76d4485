"""A small mixed collection: nested folders, TIFF/PNG/JPEG, 8/16-bit, gray/RGB, and bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from tilewise.geometry import Window
from tilewise.io import SourceSpec, open_source
from tilewise.pipeline import Pipeline
from tilewise.testing.samples import photo_block

Array = np.ndarray[Any, Any]
TILEWISE = str(Path(sys.executable).parent / "tilewise")
REPO = Path(__file__).resolve().parents[2]


def gray(shape: tuple[int, int], index: int) -> Array:
    return photo_block(shape, index, seed=3)


def rgb(shape: tuple[int, int], index: int) -> Array:
    return np.stack([photo_block(shape, index * 3 + k, seed=5) for k in range(3)], axis=-1)


def read_whole(path: Path | str) -> Array:
    """Decode a whole image with tilewise's own readers (as the workers do)."""
    source = open_source(SourceSpec(str(path)))
    try:
        return source.read(Window(0, 0, *source.shape))
    finally:
        source.close()


def expected(path: Path | str, ops: list[str]) -> Array:
    """The pipeline run in this process on the whole decoded input."""
    return Pipeline.from_specs(ops)(read_whole(path))


GOOD = {
    "a.tif": lambda: gray((90, 120), 1),
    "b.tif": lambda: gray((64, 80), 2).astype(np.uint16) * 257,
    "nested/c.tif": lambda: rgb((70, 50), 3),
    "nested/d.png": lambda: rgb((40, 60), 4),
    "nested/deeper/e.png": lambda: gray((33, 47), 5).astype(np.uint16) * 200,
    "nested/deeper/f.jpg": lambda: gray((48, 64), 6),
    "nested/deeper/g.jpeg": lambda: rgb((52, 36), 7),
}


def write_good(root: Path, names: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the good images under ``root``; return name -> path."""
    paths = {}
    for name, make in (names or GOOD).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = make()
        if path.suffix == ".tif":
            photometric = "rgb" if image.ndim == 3 else "minisblack"
            tifffile.imwrite(path, image, photometric=photometric, compression="zlib")
        elif path.suffix == ".png":
            Image.fromarray(image).save(path)
        else:
            Image.fromarray(image).save(path, quality=92)
        paths[name] = path
    return paths


def write_bad(root: Path) -> dict[str, str]:
    """Write broken files under ``root``; return name -> a word their cause must contain."""
    (root / "bad").mkdir(parents=True, exist_ok=True)
    (root / "bad" / "empty.tif").write_bytes(b"")
    (root / "bad" / "six.png").write_bytes(b"\x89PNG\r\n")
    (root / "bad" / "text.jpg").write_text("this is not an image, it is text\n")
    good = root / "bad" / "_whole.tif"
    tifffile.imwrite(good, gray((200, 160), 9))
    data = good.read_bytes()
    (root / "bad" / "truncated.tif").write_bytes(data[: len(data) // 2])
    good.unlink()
    return {
        "bad/empty.tif": "empty",
        "bad/six.png": "truncated",
        "bad/text.jpg": "not a TIFF",
        "bad/truncated.tif": "truncated",
    }


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """A folder with the good images (nested) plus a stray non-image file, skipped by name."""
    root = tmp_path / "in"
    write_good(root)
    (root / "notes.txt").write_text("not an image, skipped by its extension")
    (root / ".hidden.tif").write_text("hidden files are skipped")
    return root


def tilewise_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real ``tilewise`` entry point in a subprocess."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [TILEWISE, *args], capture_output=True, text=True, env=env, timeout=120, **kwargs
    )
