"""Defaults shared by the library and the command line (a light module: no imports)."""

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_WHOLE_PIXELS", "DEFAULT_TILE"]

#: Tile side in pixels when none is given.
DEFAULT_TILE = 2048
#: Largest image (in pixels) accepted from a header, for formats read by window.
DEFAULT_MAX_PIXELS = 1 << 36
#: Largest image decoded whole (PNG, JPEG): these formats cannot be read by window.
DEFAULT_MAX_WHOLE_PIXELS = 1 << 28
