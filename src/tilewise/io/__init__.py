"""Sources and sinks by format, chosen from the file's extension (and checked by its content)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tilewise._lazy import attach
from tilewise.errors import InputError, NoDecoderError, UnsupportedFormatError, UsageError
from tilewise.io._urls import is_url
from tilewise.io.base import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_WHOLE_PIXELS,
    Receipt,
    Sink,
    SinkSpec,
    Source,
    SourceSpec,
    partial_path,
    stored_size,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_WHOLE_PIXELS",
    "FORMATS",
    "OutputFormat",
    "Receipt",
    "Sink",
    "SinkSpec",
    "Source",
    "SourceSpec",
    "StackSink",
    "StackSpec",
    "align_tile",
    "cached_sink",
    "cached_source",
    "format_for_suffix",
    "image_intact",
    "is_url",
    "local_state",
    "open_source",
    "output_format",
    "parse_creation_options",
    "parse_options_for_formats",
    "partial_path",
    "reopen_stack",
    "sink_chunks",
    "sink_class",
    "sink_for",
    "stack_format",
    "stack_sink_class",
    "stored_size",
    "write_image",
]

#: Names loaded on first use: a worker that reads and writes a stack needs neither the
#: format table nor the whole-image writer, and the fork server imports this package.
_EXPORTS = {
    "FORMATS": "tilewise.io._formats",
    "OutputFormat": "tilewise.io._formats",
    "format_for_suffix": "tilewise.io._formats",
    "parse_creation_options": "tilewise.io._formats",
    "parse_options_for_formats": "tilewise.io._formats",
    "StackSink": "tilewise.io._stack",
    "StackSpec": "tilewise.io._stack",
    "reopen_stack": "tilewise.io._stack",
    "stack_format": "tilewise.io._stack",
    "stack_sink_class": "tilewise.io._stack",
    "image_intact": "tilewise.io._whole",
    "write_image": "tilewise.io._whole",
}

__getattr__, __dir__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from tilewise.io._formats import FORMATS as FORMATS
    from tilewise.io._formats import OutputFormat as OutputFormat
    from tilewise.io._formats import format_for_suffix as format_for_suffix
    from tilewise.io._formats import parse_creation_options as parse_creation_options
    from tilewise.io._formats import parse_options_for_formats as parse_options_for_formats
    from tilewise.io._stack import StackSink as StackSink
    from tilewise.io._stack import StackSpec as StackSpec
    from tilewise.io._stack import reopen_stack as reopen_stack
    from tilewise.io._stack import stack_format as stack_format
    from tilewise.io._stack import stack_sink_class as stack_sink_class
    from tilewise.io._whole import image_intact as image_intact
    from tilewise.io._whole import write_image as write_image


def _sniff(path: Path) -> tuple[str, bytes, int]:
    """Format from the first bytes of a file (or the layout of a directory).

    Also returns the bytes read and the file's size: for a TIFF, its first
    :data:`~tilewise.io._tiff_whole.HEAD_BYTES`, where the header usually is.
    """
    from tilewise.io import _tiff_whole

    fd = os.open(path, os.O_RDONLY)  # a collection opens thousands: plain system calls
    try:
        info = os.fstat(fd)
        head = b"" if stat.S_ISDIR(info.st_mode) else os.pread(fd, _tiff_whole.HEAD_BYTES, 0)
    finally:
        os.close(fd)
    if stat.S_ISDIR(info.st_mode):
        if (path / "zarr.json").is_file() or (path / ".zarray").is_file():
            return "zarr", b"", 0
        raise UnsupportedFormatError(f"{path}: a directory, but not a Zarr array")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff", head, info.st_size
    if not head:
        raise UnsupportedFormatError(f"{path}: empty file (0 bytes), not an image")
    if head[:6] == b"\x93NUMPY":
        return "npy", head, 0
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff":
        return "simple", head, 0
    if len(head) < 8:
        raise UnsupportedFormatError(f"{path}: truncated header ({len(head)} bytes), not an image")
    return "gdal", head, info.st_size


def open_source(spec: SourceSpec | str | Path) -> Source:
    """Open an input for windowed reading; the format is taken from its content."""
    if not isinstance(spec, SourceSpec):
        spec = SourceSpec(str(spec))
    if is_url(spec.path):
        return _remote_source(spec)
    path = Path(spec.path)
    try:
        kind, head, size = _sniff(path)
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file or directory") from err
    except PermissionError as err:
        raise InputError(f"{path}: cannot read: permission denied") from err
    if kind in ("simple", "gdal") and spec.stack_options:
        from tilewise.io._stacks import no_stack_options

        no_stack_options(spec, "a PNG or JPEG image" if kind == "simple" else "a GDAL raster")
    if kind == "tiff":
        from tilewise.io._tiff_whole import WholeTiffSource

        # small, simple files skip tifffile's parse (see _tiff_whole); the rest read by segment
        whole = WholeTiffSource.from_head(spec, head, size, path)
        if whole is not None:
            return whole  # without loading tifffile: a batch's workers may never need it
        from tilewise.io._tiff import TiffSource

        try:
            return TiffSource(spec)
        except NoDecoderError as err:  # a sample format tifffile has no type for; not a refusal
            return _gdal_source(spec, err)
    if kind == "gdal":
        return _gdal_source(spec, None, head)
    if kind == "zarr":
        from tilewise.io._zarr import ZarrSource

        return ZarrSource(spec)
    if kind == "npy":
        from tilewise.io._npy import NpySource

        return NpySource(spec)
    from tilewise.io._simple import SimpleSource

    return SimpleSource(spec)


def _remote_source(spec: SourceSpec) -> Source:
    """An input in object storage: a TIFF/COG object, or a Zarr array's folder."""
    from tilewise.io import _remote, _tiff_whole

    url = spec.path.rstrip("/")
    if url.lower().endswith(".zarr"):
        from tilewise.io._remote_zarr import RemoteZarrSource

        return RemoteZarrSource(spec)
    try:
        meta = _remote.head(url)
    except FileNotFoundError:  # a Zarr folder not named .zarr?
        try:
            _remote.head(f"{url}/zarr.json")
        except FileNotFoundError:
            raise _remote.storage_error(url, FileNotFoundError(url)) from None
        from tilewise.io._remote_zarr import RemoteZarrSource

        return RemoteZarrSource(spec)
    handle = _remote.RangeFile(url, int(meta["size"]))
    head = handle.pread(0, min(_tiff_whole.HEAD_BYTES, _remote.BLOCK))
    if head[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        handle.close()
        raise UnsupportedFormatError(
            f"{url}: not a TIFF (starts with {head[:8]!r}); from object storage tilewise "
            "reads TIFF/COG objects and Zarr arrays; copy other formats to a local disk first"
        )
    from tilewise.io._remote_tiff import RemoteTiffSource

    try:
        return RemoteTiffSource(spec, handle, meta)
    except BaseException:
        handle.close()
        raise


def _gdal_source(
    spec: SourceSpec, tiff_error: UnsupportedFormatError | None, head: bytes = b""
) -> Source:
    """A file tifffile, Zarr, NumPy and Pillow do not read: GDAL's, through rasterio, if any."""
    from tilewise.io import _raster

    if tiff_error is not None:
        if not _raster.available():
            raise UnsupportedFormatError(f"{tiff_error}; GDAL may read it: {_raster.INSTALL_HINT}")
        try:
            return _raster.RasterSource(spec)
        except UnsupportedFormatError as err:
            raise UnsupportedFormatError(f"{tiff_error}; nor does GDAL read it ({err})") from err
    known = f"{spec.path}: not a TIFF, Zarr, .npy, PNG or JPEG file (starts with {head[:8]!r})"
    if not _raster.available():
        raise UnsupportedFormatError(
            f"{known}; other raster formats (JPEG2000, ENVI, NITF, VRT, ...) are read through "
            f"GDAL: {_raster.INSTALL_HINT}"
        )
    try:
        return _raster.RasterSource(spec)
    except UnsupportedFormatError as err:
        if err.__cause__ is None:
            raise
        raise UnsupportedFormatError(f"{known}, nor a raster GDAL reads ({err.__cause__})") from err


def output_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format of a tiled output (``tilewise run``): ``fmt`` if given, else the extension's.

    A named format must be one tiles write, and ``path`` must carry one of its
    extensions (``cog`` writes ``.tif``): an output is never written in one
    format under another's name.

    >>> output_format("out.tif"), output_format("out.tif", "cog")
    ('tiff', 'cog')
    """
    from tilewise.io._formats import FORMATS, format_for_suffix

    suffix = Path(path).suffix.lower()
    if is_url(os.fspath(path)):
        named_or_found = fmt if fmt is not None else format_for_suffix(suffix)
        if named_or_found not in REMOTE_OUTPUTS:
            raise UsageError(
                f"{path}: tilewise writes {' and '.join(REMOTE_OUTPUTS.values())} to object "
                "storage; write other formats to a local disk"
            )
    tiled = ", ".join(f.extensions[0] for f in FORMATS.values() if f.tiled and not f.by_name)
    if fmt is not None:
        named = FORMATS.get(fmt)
        if named is None or not named.tiled:
            choices = ", ".join(name for name, f in FORMATS.items() if f.tiled)
            raise UsageError(f"--format {fmt}: tiled runs write {choices}")
        if suffix not in named.extensions:
            raise UsageError(
                f"{path}: --format {fmt} writes {' or '.join(named.extensions)} files, "
                f"not {suffix or 'a name without an extension'}; name the output e.g. "
                f"{Path(path).with_suffix(named.extensions[0]).name}"
            )
        return fmt
    found = format_for_suffix(suffix)
    if found is not None and FORMATS[found].tiled:
        return found
    if found is not None:
        raise UsageError(
            f"{path}: tilewise does not write {suffix} (it is not tiled); write {tiled}"
        )
    raise UsageError(f"{path}: unknown output extension {suffix!r}; use {tiled}")


#: The formats written to object storage, and their extensions.
REMOTE_OUTPUTS = {"tiff": ".tif", "zarr": ".zarr"}


def sink_for(spec: SinkSpec) -> type[Sink]:
    """The Sink implementation for an output: by format, and local or object storage."""
    if not is_url(spec.path):
        return sink_class(spec.format)
    if spec.planes:
        raise UsageError(
            f"{spec.path}: a stack of planes is not written to object storage yet; "
            "write it to a local disk"
        )
    if spec.format == "tiff":
        from tilewise.io._remote_tiff import RemoteTiffSink

        return RemoteTiffSink
    if spec.format == "zarr":
        from tilewise.io._remote_zarr import RemoteZarrSink

        return RemoteZarrSink
    raise UsageError(f"{spec.path}: no writer for format {spec.format!r} in object storage")


def local_state(output: str | os.PathLike[str]) -> Path:
    """Where the journal and lock of ``output`` are named from: the output itself, or for an
    output in object storage a local stand-in (see :func:`tilewise.io._remote.state_path`)."""
    if is_url(os.fspath(output)):
        from tilewise.io._remote import state_path

        return state_path(os.fspath(output))
    return Path(output)


def sink_class(fmt: str) -> type[Sink]:
    """The Sink implementation for an output format."""
    if fmt == "tiff":
        from tilewise.io._tiff import TiffSink

        return TiffSink
    if fmt == "cog":
        from tilewise.io._cog import CogSink

        return CogSink
    if fmt == "zarr":
        from tilewise.io._zarr import ZarrSink

        return ZarrSink
    if fmt == "npy":
        from tilewise.io._npy import NpySink

        return NpySink
    raise UsageError(f"no writer for format {fmt!r}")


def align_tile(
    fmt: str,
    tile_shape: tuple[int, int],
    image_shape: tuple[int, int],
    options: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """Adjust a tile shape so tiles fall on the output's block grid (TIFF: its tile size)."""
    if fmt in ("tiff", "cog"):
        from tilewise.io._tiff import align_tile_for_tiff

        return align_tile_for_tiff(tile_shape, image_shape, options)
    return tile_shape


def sink_chunks(
    fmt: str,
    tile_shape: tuple[int, int],
    image_shape: tuple[int, int],
    options: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """The output's block shape for tiles of ``tile_shape`` (each block owned by one tile)."""
    if fmt in ("tiff", "cog"):
        from tilewise.io._tiff import tiff_block

        return tiff_block(tile_shape, image_shape, options)
    if fmt == "zarr":
        from tilewise.io._zarr import zarr_chunks

        return zarr_chunks(tile_shape, image_shape)
    return tile_shape


_sources: dict[tuple[SourceSpec, int, int], Source] = {}
_sinks: dict[tuple[str, str], Sink] = {}


def cached_source(spec: SourceSpec) -> Source:
    """Open ``spec`` once per process (workers read many tiles of one input).

    The cache is keyed by the file's size and mtime too, so a file replaced
    under the same name is opened afresh (not an object in storage: its ETag was
    checked when the run was planned).
    """
    if is_url(spec.path):
        key = (spec, 0, 0)
    else:
        try:
            st = os.stat(spec.path)
        except OSError as err:
            raise InputError(f"{spec.path}: cannot open: {err.strerror}") from err
        key = (spec, st.st_size, st.st_mtime_ns)
    source = _sources.get(key)
    if source is None:
        for old in _sources.values():
            old.close()
        _sources.clear()
        source = _sources[key] = open_source(spec)
    return source


def cached_sink(spec: SinkSpec) -> Sink:
    """Open the partial output of ``spec`` for writing, once per process (a stack's too)."""
    key = (spec.path, spec.token)
    sink = _sinks.get(key)
    if sink is None:
        for old in _sinks.values():
            old.close()
        _sinks.clear()
        from tilewise.io._stack import StackSpec, stack_sink_class

        cls = stack_sink_class(spec.format) if isinstance(spec, StackSpec) else sink_for(spec)
        sink = _sinks[key] = cls(spec)
    return sink
