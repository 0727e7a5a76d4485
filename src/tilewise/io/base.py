"""Sources (read a window) and sinks (write a region): the interfaces every format implements.

What travels between processes is a *spec* (path + options), never an open
file: each worker reopens sources and sinks by path (file handles and codec
state are neither picklable nor fork-safe). Opened handles are cached per
process, so a worker opens a file once, not once per tile.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tilewise.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_WHOLE_PIXELS
from tilewise.errors import ImageTooLargeError, UnsupportedFormatError
from tilewise.geometry import Window
from tilewise.io._identity import content_sample

if TYPE_CHECKING:
    from tilewise.geometry.planes import Planes
    from tilewise.io.georef import Georef

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_WHOLE_PIXELS",
    "Receipt",
    "Sink",
    "SinkSpec",
    "Source",
    "SourceSpec",
    "partial_path",
    "stored_size",
    "too_many_pixels",
]

Array = npt.NDArray[Any]
Receipt = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """How to open an input in any process: its path and read options.

    The last four say how to read a stack (see :mod:`tilewise.io._stacks`):
    ``axes`` names an array's axes (``"TZCYX"``), ``channel_axis`` is the axis
    read as bands (scikit-image's ``channel_axis``), ``planes`` the
    ``(start, stop, step)`` of the first leading axis to read
    (:func:`~tilewise.geometry.planes.parse_plane_range`), ``page`` one plane alone.
    """

    path: str
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_whole_pixels: int = DEFAULT_MAX_WHOLE_PIXELS
    axes: str | None = None
    channel_axis: int | None = None
    planes: tuple[int | None, int | None, int] | None = None
    page: int | None = None

    @property
    def stack_options(self) -> dict[str, Any]:
        """The stack options given (for fingerprints and messages)."""
        given = (self.axes, self.channel_axis, self.planes, self.page)
        if given == (None, None, None, None):  # nearly every file of a batch: asked per file
            return {}
        names = ("axes", "channel_axis", "planes", "page")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class Source(abc.ABC):
    """An image that can be read one window at a time.

    Pixel arrays are ``(height, width)`` for one band and ``(height, width,
    bands)`` (interleaved) for several. A stack (``planes`` set) holds
    ``planes.count`` such images, read one plane at a time.
    """

    #: The file or folder, or (in object storage) the URL as given.
    path: Path | str
    shape: tuple[int, int]
    bands: int
    dtype: np.dtype[Any]
    #: The library that decodes the pixels, for ``tilewise info``.
    reader: str = ""
    #: What the samples mean as read: ``"minisblack"`` (grey; several bands are separate
    #: channels) or ``"rgb"``; None when the format does not say (Zarr, .npy).
    photometric: str | None = None
    #: Bits per sample in the file, when fewer than the dtype holds (a 4-bit TIFF read as uint8).
    bits_per_sample: int | None = None
    #: Whether the last band is an alpha channel.
    alpha: bool = False
    #: A conversion applied on read, in words (e.g. MinIsWhite inverted), or None.
    conversion: str | None = None
    #: The leading axes of a stack and the planes read; None for one 2-D image.
    planes: Planes | None = None
    #: What named the stack's axes: ``"imagej"``, ``"ome"``, ``"tiff"`` (tifffile's
    #: own or generic pages) or ``"array"``; None for one 2-D image.
    stack_kind: str | None = None

    @property
    def chunks(self) -> tuple[int, int] | None:
        """The storage's own block shape (TIFF tile or strip, Zarr chunk), if any."""
        return None

    @property
    def compression(self) -> str | None:
        """Name of the storage compression, if any."""
        return None

    @property
    def georef(self) -> Georef | None:
        """Where the image lies on the map and what its bands mean; None for plain images."""
        return None

    @property
    def overviews(self) -> list[int]:
        """Decimation factors of the reduced-resolution copies the file holds (e.g. ``[2, 4]``)."""
        return []

    @abc.abstractmethod
    def read(self, window: Window, plane: int | None = None) -> Array:
        """Read the pixels of ``window`` (in plane ``plane`` of a stack; None or 0 for
        a 2-D image); never more than the blocks it touches."""

    def info(self) -> dict[str, Any]:
        """Facts about the source for ``tilewise info`` and reports."""
        info: dict[str, Any] = {
            "path": str(self.path),
            "format": self.format_name,
            "reader": self.reader,
            "shape": list(self.shape),
            "bands": self.bands,
            "dtype": self.dtype.name,
            "bits_per_sample": self.bits_per_sample
            or (1 if self.dtype == bool else self.dtype.itemsize * 8),
            "photometric": self.photometric,
            "alpha": self.alpha,
            "conversion": self.conversion,
            "chunks": list(self.chunks) if self.chunks else None,
            "compression": self.compression,
        }
        try:
            georef = self.georef
        except UnsupportedFormatError as err:  # e.g. a GeoTIFF without rasterio installed
            info["georef"] = f"not read: {err}"
        else:
            if georef is not None:
                info.update(georef.facts(self.shape))
        if self.overviews:
            info["overviews"] = self.overviews
        if self.planes is not None:
            info["stack"] = {
                "kind": self.stack_kind,
                "axes": self.planes.axes,
                "stored": list(self.planes.stored),
                "planes": list(self.planes.shape),
                **({"page": self.planes.page} if self.planes.page is not None else {}),
                **({"select": list(self.planes.select)} if self.planes.select else {}),
            }
        return info

    @property
    @abc.abstractmethod
    def format_name(self) -> str:
        """Short format name, e.g. ``tiff``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release file handles."""

    def identity(self) -> dict[str, Any]:
        """What identifies this input's content for a resume fingerprint: its path, size,
        newest mtime and a hash of a fixed sample of its bytes (see :mod:`tilewise.io._identity`).
        """
        path = Path(self.path)
        stat = _stat_tree(path)
        return {"path": str(path.resolve()), **stat, "sample": content_sample(path)}


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Everything needed to create, open and finish an output, in any process."""

    path: str
    format: str
    shape: tuple[int, int]
    bands: int
    dtype: str
    chunks: tuple[int, int]
    options: dict[str, Any] = field(default_factory=dict)
    #: Unique per created output, so workers never reuse a handle to an older file.
    token: str = ""
    #: The output's georeferencing (the input's, as the pipeline maps it), or None.
    georef: Georef | None = None
    #: A stack's leading shape (``()`` for a 2-D image), the letters naming those axes,
    #: and the kind of metadata that named them (``"imagej"``, ``"ome"``, ``"tiff"``, ``"array"``).
    planes: tuple[int, ...] = ()
    axes: str = ""
    stack_kind: str = ""

    @property
    def array_shape(self) -> tuple[int, ...]:
        """Full array shape: ``(*planes, H, W)`` or ``(*planes, H, W, bands)``."""
        image = self.shape if self.bands == 1 else (*self.shape, self.bands)
        return (*self.planes, *image)

    @property
    def plane_count(self) -> int:
        """How many 2-D planes the output holds."""
        count = 1
        for size in self.planes:
            count *= size
        return count

    def plane_index(self, plane: int | None) -> tuple[int, ...]:
        """The leading coordinates of plane ``plane`` (``()`` for a 2-D output)."""
        if not self.planes:
            return ()
        coords = []
        index = plane or 0
        for size in reversed(self.planes):
            index, coord = divmod(index, size)
            coords.append(coord)
        return tuple(reversed(coords))

    @property
    def partial(self) -> Path:
        """Where the output is built before it is moved into place."""
        return partial_path(Path(self.path))

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a run and its resume."""
        return {
            "format": self.format,
            "shape": list(self.shape),
            "bands": self.bands,
            "dtype": self.dtype,
            "chunks": list(self.chunks),
            "options": {k: self.options[k] for k in sorted(self.options)},
            **({"georef": self.georef.to_dict()} if self.georef is not None else {}),
            **({"planes": list(self.planes), "axes": self.axes} if self.planes else {}),
        }


def too_many_pixels(path: Path | str, shape: tuple[int, int], limit: int) -> ImageTooLargeError:
    """The error for a header declaring more than ``limit`` pixels (read-by-window formats)."""
    length, width = shape
    return ImageTooLargeError(
        f"{path}: header declares {length} x {width} = {length * width:,} pixels, over the "
        f"limit of {limit:,}; if the file is genuine, raise it with --max-pixels"
    )


def partial_path(path: Path) -> Path:
    """The temporary name an output is built under: ``.NAME.partial`` beside it."""
    return path.with_name(f".{path.name}.partial")


class Sink(abc.ABC):
    """An output that workers write region by region.

    The main process calls :meth:`create` once, workers call :meth:`write`, the
    main process calls :meth:`finalize` once every region is written.
    """

    #: Whether several processes may write disjoint tile regions at the same time.
    concurrent_writes: bool = True

    def __init__(self, spec: SinkSpec) -> None:
        self.spec = spec

    @classmethod
    @abc.abstractmethod
    def create(cls, spec: SinkSpec) -> None:
        """Create the empty partial output (main process, once)."""

    @abc.abstractmethod
    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        """Write ``array`` into ``window`` (of plane ``plane`` of a stack); return a small
        receipt for the journal."""

    @abc.abstractmethod
    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        """Whether a region the journal says is written is still intact."""

    @classmethod  # noqa: B027 - optional hook
    def assemble(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Build the final output from the partial one under a temporary name (main process).

        For formats whose tiles cannot be written in place (TIFF); it may take a
        while and may be interrupted: the next ``--resume`` builds it again. The
        default has nothing to build.
        """

    @classmethod
    @abc.abstractmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Move the assembled output under its final name, atomically (main process).

        Quick (a rename, then removing what is left of the partial output): once
        the rename is done the output is final.
        """

    @classmethod
    def finalize(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Turn the partial output into the final one: :meth:`assemble`, then :meth:`commit`.

        ``receipts`` maps each written tile to its receipt; it may be read from the
        journal as it is asked for, so a sink only reads it, and in one pass
        (``values()``/``items()``) when it needs them all.
        """
        cls.assemble(spec, receipts)
        cls.commit(spec, receipts)

    @classmethod
    def assemble_with(
        cls,
        spec: SinkSpec,
        receipts: Mapping[int, Receipt],
        run: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]],
    ) -> None:
        """:meth:`assemble`, given ``run(fn, payloads)`` to do work in parallel first.

        ``run`` returns ``fn(payload)`` for each payload, in order, computed by the
        run's executor (it raises if a payload fails on every attempt). Outputs that
        need work after the tiles (a COG's overviews) use it; the rest just assemble.
        """
        cls.assemble(spec, receipts)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release file handles."""


def stored_size(path: str | os.PathLike[str]) -> int:
    """Bytes of a file, or of every file under a directory (Zarr)."""
    return int(_stat_tree(Path(path))["size"])


def _stat_tree(path: Path) -> dict[str, Any]:
    """Size and newest mtime of a file, or of every file under a directory (Zarr)."""
    if path.is_dir():
        size = 0
        newest = 0
        for root, _, files in os.walk(path):
            for name in files:
                st = os.stat(os.path.join(root, name))
                size += st.st_size
                newest = max(newest, st.st_mtime_ns)
        return {"size": size, "mtime_ns": newest}
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
