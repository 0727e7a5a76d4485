"""Writing one whole output image into the output folder (worker side).

Every write goes to a hidden temporary name beside the target and is renamed
into place, so an output is either complete or absent. Folders are created
one component at a time; a component that is a symlink leading outside the
output folder is refused, so no write can escape it (a target that is itself
a symlink is replaced, not followed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OutputError, UsageError

__all__ = [
    "FORMATS",
    "output_intact",
    "output_size",
    "parse_write_options",
    "safe_parent",
    "write_output",
    "zarr_codec",
]

Array = npt.NDArray[Any]

FORMATS = ("tiff", "png", "jpeg", "npy", "zarr")
_TIFF_CODECS = {"NONE": None, "LZW": "lzw", "DEFLATE": "zlib", "ZSTD": "zstd"}


def parse_write_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``--co`` options for written files: COMPRESS, LEVEL (TIFF, Zarr), QUALITY (JPEG)."""
    options = {k.upper(): v for k, v in options.items()}
    unknown = sorted(set(options) - {"COMPRESS", "LEVEL", "QUALITY"})
    if unknown:
        raise UsageError(
            f"unknown creation option {', '.join(unknown)}; batch outputs take COMPRESS and "
            "LEVEL (TIFF, Zarr) and QUALITY (JPEG, 1-100)"
        )
    compress = str(options.get("COMPRESS", "DEFLATE")).upper()
    if compress not in _TIFF_CODECS and compress != "BLOSC":
        raise UsageError(f"COMPRESS={compress} is not supported; use NONE, LZW, DEFLATE or ZSTD")
    try:
        level = int(options["LEVEL"]) if "LEVEL" in options else None
        quality = int(options.get("QUALITY", 95))
    except ValueError as err:
        raise UsageError(f"LEVEL and QUALITY must be whole numbers ({err})") from err
    if not 1 <= quality <= 100:
        raise UsageError(f"QUALITY must be between 1 and 100, got {quality}")
    return {"COMPRESS": compress, "LEVEL": level, "QUALITY": quality}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def safe_parent(root: str, name: str) -> str:
    """Create (if needed) the folder of output ``name`` under ``root``; return its path.

    ``root`` must be a real path (symlinks resolved). Raises :class:`OutputError`
    if a component exists as a symlink leading outside ``root`` or as a file.
    """
    current = root
    for part in name.split("/")[:-1]:
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
                os.mkdir(current)
            info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(current)
            if not _inside(real, root) or not os.path.isdir(real):
                raise OutputError(
                    f"{current}: a symlink to {real}, outside the output folder {root}; "
                    "refusing to write through it (remove the link, or choose another --out)"
                )
        elif not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{current}: exists and is not a folder; cannot write {name} there")
    return current


def _encode_simple(fmt: str, array: Array, options: Mapping[str, Any]) -> bytes:
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
        level = options.get("LEVEL")
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3 if level is None else int(level)]
        ok, data = cv2.imencode(".png", np.ascontiguousarray(image), params)
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, int(options.get("QUALITY", 95))]
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image), params)
    if not ok:
        raise OutputError(f"OpenCV could not encode a {fmt.upper()} image")
    return bytes(data)


def _write_tiff(path: Any, array: Array, options: Mapping[str, Any]) -> None:
    codec = _TIFF_CODECS.get(str(options.get("COMPRESS", "DEFLATE")), "zlib")
    level = options.get("LEVEL")
    args: dict[str, Any] = {}
    if codec is not None:
        args["compression"] = codec
        if level is not None:
            args["compressionargs"] = {"level": int(level)}
    bands = 1 if array.ndim == 2 else array.shape[2]
    import tifffile

    tifffile.imwrite(
        path,
        array,
        photometric="rgb" if bands in (3, 4) else "minisblack",
        extrasamples=(2,) if bands == 4 else None,
        metadata=None,
        software="tilewise",
        **args,
    )


def zarr_codec(options: Mapping[str, Any]) -> Any:
    """The Zarr compressor for ``--co`` options (ZSTD unless NONE or BLOSC is asked for)."""
    from zarr.codecs import BloscCodec, ZstdCodec

    compress = str(options.get("COMPRESS", "ZSTD"))
    level = 3 if options.get("LEVEL") is None else int(options["LEVEL"])
    if compress == "NONE":
        return None
    if compress == "BLOSC":
        return BloscCodec(cname="zstd", clevel=level)
    return ZstdCodec(level=level)


def _write_zarr(path: str, array: Array, options: Mapping[str, Any]) -> None:
    import zarr

    codec = zarr_codec(options)
    zarr.create_array(
        path,
        data=array,
        chunks=array.shape,
        compressors=None if codec is None else [codec],
        overwrite=True,
    )


def output_size(path: str) -> int:
    """Bytes of an output file, or of every file under an output folder (Zarr)."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def _clear(path: str) -> None:
    """Remove whatever is at ``path`` (a leftover temporary file, folder or planted symlink)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def write_output(
    root: str, name: str, fmt: str, array: Array, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``array`` as ``root/name`` in ``fmt``, atomically; return a receipt (its size).

    The temporary file is created exclusively (``O_EXCL``: never through a
    symlink someone left at its name).
    """
    parent = safe_parent(root, name)
    base = name.rsplit("/", 1)[-1]
    target = os.path.join(parent, base)
    tmp = os.path.join(parent, f".{base}.partial")
    _clear(tmp)
    try:
        if fmt == "zarr":
            _write_zarr(tmp, array, options)
        elif fmt in FORMATS:
            data = _encode_simple(fmt, array, options) if fmt in ("png", "jpeg") else None
            with open(tmp, "xb") as fh:
                if data is not None:
                    fh.write(data)
                elif fmt == "tiff":
                    _write_tiff(fh, array, options)
                else:
                    np.save(fh, array, allow_pickle=False)
        else:
            raise UsageError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        size = output_size(tmp)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        _clear(tmp)
        raise
    return {"size": size}


def output_intact(root: str, name: str, receipt: Mapping[str, Any]) -> bool:
    """Whether the output a journal lists as written is still there with its size."""
    path = os.path.join(root, *name.split("/"))
    try:
        return output_size(path) == receipt.get("size")
    except OSError:
        return False
