"""Small, simple TIFFs: read whole and decoded by libtiff, without tifffile's parse.

Why this exists: in a collection of small images (say 512 x 512 uint8 in one
strip), opening each file with :class:`tifffile.TiffFile` costs more than
decoding its pixels. This source reads the file's first bytes, parses the first
IFD with a few ``struct`` calls (:mod:`tilewise.io._tiff_ifd`, which lists the
files eligible), and reads the rows a window needs straight from the file, or
decodes the whole image with ``imagecodecs.tiff_decode`` (libtiff) on the first
:meth:`~WholeTiffSource.read`. Files over :data:`MAX_FILE_BYTES` and files the
parser does not accept are opened by :class:`~tilewise.io._tiff.TiffSource`. So
is a file that libtiff fails to decode, or decodes to another shape or dtype than
its header promised: TiffSource then reads it, or names what is corrupt exactly
as it always has.

Compressed files are left to TiffSource on purpose. libtiff decodes LZW,
Deflate, PackBits and Zstd losslessly, but a damaged segment that decodes to
*more* bytes than it should is cut short without an error (1.6 % of damaged
Deflate/PackBits/Zstd files in a fuzz run), where TiffSource reports the segment
as corrupt; tilewise never returns silently wrong pixels. Compressed files also
gained least (about 1.15x; LZW 1.7x), as decoding dominates their cost.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tilewise.errors import CorruptInputError
from tilewise.geometry import Window
from tilewise.io._tiff_ifd import StripLayout, parse_layout
from tilewise.io.base import Array, Source, SourceSpec, too_many_pixels
from tilewise.io.georef import Georef

if TYPE_CHECKING:
    from tilewise.io._tiff import TiffSource

__all__ = ["HEAD_BYTES", "MAX_FILE_BYTES", "WholeTiffSource"]

#: Largest file read whole (bigger files are read by segment by TiffSource).
MAX_FILE_BYTES = 16 << 20
#: Bytes read first: a header found in them is parsed without reading the rest.
HEAD_BYTES = 8192


class WholeTiffSource(Source):
    """A small, simple TIFF, read without tifffile's parse.

    When its strips lie back to back (how most writers store an uncompressed
    image), each read fetches exactly the rows it needs into the array it
    returns: one copy from the operating system's cache, nothing kept. Otherwise
    libtiff decodes the whole file on the first read and reads slice that.

    Open with :meth:`from_head`, which returns None for files that are not
    eligible (see the module docstring).
    """

    path: Path

    format_name = "tiff"
    reader = "libtiff (whole file)"

    def __init__(self, spec: SourceSpec, data: bytes, layout: StripLayout, path: Path) -> None:
        self.path = path
        self.shape = layout.shape
        self.bands = layout.bands
        self.dtype = layout.dtype
        self.photometric = "rgb" if layout.photometric == 2 else "minisblack"
        self.alpha = layout.alpha
        self._spec = spec
        self._data = data
        self._layout = layout
        #: The samples as the file stores them (its byte order).
        self._stored = layout.dtype.newbyteorder("<" if layout.byteorder == "<" else ">")
        self._array: Array | None = None
        self._fallback: TiffSource | None = None

    @classmethod
    def from_head(
        cls, spec: SourceSpec, head: bytes, size: int, path: Path
    ) -> WholeTiffSource | None:
        """Open the file if it is eligible (module docstring).

        Parameters
        ----------
        spec : SourceSpec
            The input and its pixel budget.
        head : bytes
            The file's first bytes (:data:`HEAD_BYTES`, as the format check read them).
        size : int
            The file's size.
        path : Path
            The file, for reading the rest and for messages.

        Returns
        -------
        WholeTiffSource or None
            None when the file is not eligible (or cannot be read here); open it
            with TiffSource then. A file whose header lies in ``head`` and whose
            strips lie back to back is opened without reading further; others are
            read whole.

        Raises
        ------
        ImageTooLargeError
            The header declares more than ``spec.max_pixels`` pixels.
        """
        if size > MAX_FILE_BYTES or spec.stack_options:  # TiffSource says what they mean
            return None
        layout = parse_layout(head, size) if len(head) < size else None
        if layout is not None and layout.contiguous_at is not None:
            return cls._checked(spec, b"", layout, path)  # rows are read as needed
        data = head
        if len(head) < size:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                return None  # TiffSource reports it
        layout = parse_layout(data)
        if layout is None:
            return None
        return cls._checked(spec, b"" if layout.contiguous_at is not None else data, layout, path)

    @classmethod
    def _checked(
        cls, spec: SourceSpec, data: bytes, layout: StripLayout, path: Path
    ) -> WholeTiffSource:
        if layout.shape[0] * layout.shape[1] > spec.max_pixels:
            raise too_many_pixels(path, layout.shape, spec.max_pixels)
        return cls(spec, data, layout, path)

    @property
    def chunks(self) -> tuple[int, int]:
        return self._layout.block

    @property
    def compression(self) -> str:
        import tifffile

        return tifffile.COMPRESSION(self._layout.compression).name

    @property
    def georef(self) -> Georef | None:
        if not self._layout.geotagged:
            return None
        from tilewise.io._raster import tiff_georef

        return tiff_georef(self.path)

    def info(self) -> dict[str, Any]:
        info = super().info()
        info.update(
            layout="tiled" if self._layout.tiled else "striped",
            bigtiff=self._layout.bigtiff,
            planar="contig",
            pages=1,
        )
        return info

    def _read_rows(self, window: Window, start: int) -> Array:
        """The window, from back-to-back strips: its rows are one run of bytes."""
        bands = () if self.bands == 1 else (self.bands,)
        stored = self._stored
        rows = np.empty((window.height, self.shape[1], *bands), stored)
        row_bytes = rows.nbytes // max(1, window.height)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            got = os.preadv(fd, [rows.data], start + window.row * row_bytes)
        finally:
            os.close(fd)
        if got != rows.nbytes:
            raise CorruptInputError(
                f"{self.path}: the file ends before the rows its header lists "
                f"({got:,} of {rows.nbytes:,} bytes at rows {window.row}:{window.stop_row}); "
                "it was truncated"
            )
        if window.col or window.width != self.shape[1]:
            rows = rows[:, window.col : window.stop_col].copy()
        return rows if stored.isnative else rows.astype(self.dtype)

    def _decode(self) -> None:
        """Decode the whole image, or hand the file to TiffSource if libtiff cannot."""
        expected = self.shape if self.bands == 1 else (*self.shape, self.bands)
        try:
            import imagecodecs  # imported here: files read row by row never need it

            array = imagecodecs.tiff_decode(self._data)
        except Exception:  # TiffSource names what is wrong
            array = None
        self._data = b""
        if array is not None and array.shape == expected and array.dtype == self.dtype:
            self._array = array
        else:
            from tilewise.io._tiff import TiffSource

            self._fallback = TiffSource(self._spec)

    def read(self, window: Window, plane: int | None = None) -> Array:
        start = self._layout.contiguous_at
        if start is not None:
            return self._read_rows(window, start)
        if self._array is None and self._fallback is None:
            self._decode()
        if self._fallback is not None:
            return self._fallback.read(window)
        assert self._array is not None
        return self._array[window.slices].copy()

    def close(self) -> None:
        self._array = None
        self._data = b""
        if self._fallback is not None:
            self._fallback.close()
