"""Whole images: an output written in one piece by the process that computed it.

A batch's per-file outputs are these: a worker reads a file, runs the pipeline
and writes the result, in any of the output formats (TIFF, PNG, JPEG, ``.npy``,
Zarr). The image is written under the hidden temporary name beside the target
(created exclusively, so never through a symlink left at that name) and renamed
into place, so an output is complete or absent. A TIFF is written as most
writers do for a small image (classic TIFF, strips); a Zarr array as one chunk.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tilewise.errors import OutputError
from tilewise.geometry import Window
from tilewise.io.base import Array, Receipt, Sink, SinkSpec, stored_size
from tilewise.io.georef import Georef

__all__ = ["WholeImageSink", "image_intact", "write_image"]


def _encode_simple(fmt: str, array: Array, options: Mapping[str, Any]) -> bytes:
    """PNG or JPEG bytes, by OpenCV; refuses what the format cannot hold."""
    bands = 1 if array.ndim == 2 else array.shape[2]
    allowed = (np.dtype("uint8"), np.dtype("uint16")) if fmt == "png" else (np.dtype("uint8"),)
    band_ok = (1, 3, 4) if fmt == "png" else (1, 3)
    if array.dtype not in allowed or bands not in band_ok:
        raise OutputError(
            f"{fmt.upper()} cannot hold a {bands}-band {array.dtype.name} image "
            f"({fmt.upper()} holds {' or '.join(d.name for d in allowed)} with "
            f"{', '.join(map(str, band_ok))} bands); add e.g. --op to_dtype:dtype=uint8 "
            "or write --format tiff"
        )
    import cv2

    image = array[..., 0] if array.ndim == 3 and bands == 1 else array
    if bands == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif bands == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    if fmt == "png":
        ok, data = cv2.imencode(
            ".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, options["LEVEL"]]
        )
    else:
        ok, data = cv2.imencode(
            ".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, options["QUALITY"]]
        )
    if not ok:
        raise OutputError(f"OpenCV could not encode a {fmt.upper()} image")
    return bytes(data)


def _clear(path: Path) -> None:
    """Remove whatever is at ``path`` (a leftover temporary file, folder or planted symlink)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


class WholeImageSink(Sink):
    """An image written in one piece: one :meth:`write` of the whole image, then :meth:`finalize`.

    The receipt is the output's size in bytes (all files of a Zarr array).
    :meth:`verify` checks it against the temporary output while it exists, else
    against the final one (the writer finalizes at once).
    """

    concurrent_writes = False

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        _clear(spec.partial)

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        spec = self.spec
        if window != Window(0, 0, *spec.shape):
            raise OutputError(f"{spec.path}: a whole image is written in one piece, not {window}")
        partial = spec.partial
        if spec.format == "zarr":
            from tilewise.io._zarr import write_whole_zarr

            write_whole_zarr(partial, array, spec.options, spec.georef)
        else:
            simple = spec.format in ("png", "jpeg")
            data = _encode_simple(spec.format, array, spec.options) if simple else None
            with open(partial, "xb") as fh:
                if data is not None:
                    fh.write(data)
                elif spec.format == "tiff":
                    from tilewise.io._tiff import write_whole_tiff

                    write_whole_tiff(fh, array, spec.options, spec.georef)
                elif spec.format == "npy":
                    np.save(fh, array, allow_pickle=False)
                else:
                    raise OutputError(f"{spec.path}: no whole-image writer for {spec.format!r}")
        return {"size": stored_size(partial)}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        partial = self.spec.partial
        return image_intact(partial if os.path.lexists(partial) else self.spec.path, receipt)

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        final = Path(spec.path)
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(spec.partial, final)


def write_image(
    path: str | os.PathLike[str],
    fmt: str,
    array: Array,
    options: Mapping[str, Any],
    georef: Georef | None = None,
) -> Receipt:
    """Write ``array`` as ``path`` in ``fmt``, atomically; return its receipt (size).

    Parameters
    ----------
    path : str or PathLike
        The final output; its folder must exist.
    fmt : str
        An output format (:data:`tilewise.io.FORMATS`).
    array : ndarray
        ``(H, W)`` or ``(H, W, bands)``.
    options : Mapping
        The format's creation options, as :func:`tilewise.io.parse_creation_options`
        returns them.
    georef : Georef, optional
        Georeferencing for a TIFF (GeoTIFF tags) or Zarr (attributes) output;
        other formats cannot hold it and leave it out.

    Returns
    -------
    dict
        ``{"size": bytes}``, for :func:`image_intact`.
    """
    shape = (int(array.shape[0]), int(array.shape[1]))
    spec = SinkSpec(
        str(path),
        fmt,
        shape,
        1 if array.ndim == 2 else int(array.shape[2]),
        array.dtype.name,
        shape,
        dict(options),
        georef=georef if fmt in ("tiff", "zarr") else None,
    )
    WholeImageSink.create(spec)
    sink = WholeImageSink(spec)
    try:
        receipt = sink.write(0, Window(0, 0, *shape), array)
        WholeImageSink.finalize(spec, {0: receipt})
    except BaseException:
        _clear(spec.partial)
        raise
    finally:
        sink.close()
    return receipt


def image_intact(path: str | os.PathLike[str], receipt: Mapping[str, Any]) -> bool:
    """Whether the output a receipt describes is still there with its size."""
    try:
        return stored_size(Path(path)) == receipt.get("size")
    except OSError:
        return False
