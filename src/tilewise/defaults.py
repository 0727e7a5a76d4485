"""Defaults shared by the library and the command line (a light module: no imports)."""

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_WHOLE_PIXELS", "DEFAULT_TILE", "WORKER_MODULES"]

#: Tile side in pixels when none is given.
DEFAULT_TILE = 2048
#: Largest image (in pixels) accepted from a header, for formats read by window.
DEFAULT_MAX_PIXELS = 1 << 36
#: Largest image decoded whole (PNG, JPEG): these formats cannot be read by window.
DEFAULT_MAX_WHOLE_PIXELS = 1 << 28
#: What worker processes import, by kind of work: the fork server imports it ahead for them.
WORKER_MODULES = {
    "run": ("tilewise.runner.work", "tilewise.io._tiff"),
    "batch": ("tilewise.collection.work", "tilewise.io._tiff_whole"),
}
