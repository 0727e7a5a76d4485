"""PNG and JPEG: formats that cannot be read by window, so they are decoded whole.

The decoded image is kept per worker process, so tiles of one file decode it once.
The header is checked against a pixel budget before anything is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tilewise.errors import CorruptInputError, ImageTooLargeError
from tilewise.geometry import Window
from tilewise.io.base import Array, Source, SourceSpec

__all__ = ["SimpleSource"]

_MODES = {
    "L": (1, "uint8"),
    "RGB": (3, "uint8"),
    "RGBA": (4, "uint8"),
    "I;16": (1, "uint16"),
    "I;16B": (1, "uint16"),
    "LA": (2, "uint8"),
    "P": (3, "uint8"),
    "1": (1, "uint8"),
    "I": (1, "int32"),
    "F": (1, "float32"),
}
_cache: dict[tuple[str, int], Array] = {}

# tilewise applies its own budget (max_whole_pixels) from the header, with an error
# that names the option; Pillow's global limit would refuse first, with its own words.
Image.MAX_IMAGE_PIXELS = None


class SimpleSource(Source):
    """PNG or JPEG, decoded whole with Pillow (after a header check)."""

    reader = "pillow (whole file)"

    def __init__(self, spec: SourceSpec) -> None:
        self.path = Path(spec.path)
        self._max = spec.max_whole_pixels
        try:
            with Image.open(self.path) as img:
                width, height = img.size
                mode = img.mode
                self._format = (img.format or "image").lower()
        except (OSError, SyntaxError, ValueError) as err:
            raise CorruptInputError(f"{self.path}: not a readable image ({err})") from err
        pixels = width * height
        if pixels > self._max:
            raise ImageTooLargeError(
                f"{self.path}: {height} x {width} = {pixels:,} pixels; {self._format.upper()} "
                f"files are decoded whole and the limit is {self._max:,}; raise it with "
                "--max-whole-pixels, or convert the file to a tiled TIFF"
            )
        bands, dtype = _MODES.get(mode, (3, "uint8"))
        self.shape = (height, width)
        self.bands = bands
        self.dtype = np.dtype(dtype)
        self._mode = mode

    @property
    def format_name(self) -> str:
        return self._format

    def _decoded(self) -> Array:
        key = (str(self.path), self.path.stat().st_mtime_ns)
        if key not in _cache:
            _cache.clear()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    with Image.open(self.path) as img:
                        img.load()
                        if self._mode == "P":
                            array: Any = np.asarray(img.convert("RGB"))
                        elif self._mode == "1":
                            array = np.asarray(img.convert("L"))
                        else:
                            array = np.asarray(img)
            except (OSError, SyntaxError, ValueError) as err:
                raise CorruptInputError(f"{self.path}: cannot decode: {err}") from err
            if self._mode in ("I;16", "I;16B"):
                array = array.astype(np.uint16)
            _cache[key] = array
        return _cache[key]

    def read(self, window: Window) -> Array:
        return np.array(self._decoded()[window.slices])
