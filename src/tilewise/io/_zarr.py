"""Zarr v3 arrays: windowed reads, concurrent chunk-aligned writes by the workers, and stacks.

The chunk key layout (:func:`chunk_file`) is known here only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from tilewise.errors import (
    CorruptInputError,
    ImageTooLargeError,
    InputError,
    OutputError,
    TilewiseError,
)
from tilewise.geometry import Window
from tilewise.io._checksum import file_crc32c
from tilewise.io._reading import DECODE_ERRORS
from tilewise.io._stack import StackSink, StackSpec
from tilewise.io._stacks import array_layout
from tilewise.io._zarr_chunks import ChunkWriter
from tilewise.io._zarr_store import ChecksumStore
from tilewise.io.base import Array, Receipt, Sink, SinkSpec, Source, SourceSpec
from tilewise.io.georef import Georef

__all__ = [
    "ZarrSink",
    "ZarrSource",
    "ZarrStackSink",
    "chunk_file",
    "compressor",
    "write_whole_zarr",
    "zarr_chunks",
]

#: Strip layouts span a whole dimension; chunks along it needn't be that long.
_MAX_CHUNK = 4096


class ZarrSource(Source):
    """A Zarr array read by window: ``(H, W)``, ``(H, W, bands)``, or a stack of such planes
    with leading axes (see :mod:`tilewise.io._stacks`; their names come from ``--axes``, else
    from the ``axes`` attribute tilewise writes)."""

    format_name = "zarr"
    reader = "zarr"
    #: The folder, or the array's URL (:class:`~tilewise.io._remote_zarr.RemoteZarrSource`).
    path: Path | str

    def __init__(self, spec: SourceSpec) -> None:
        self.path = self._location(spec)
        try:
            self._array = zarr.open_array(self._store(), mode="r")
        except OSError as err:
            raise InputError(f"{self.path}: cannot open the Zarr array: {err}") from err
        except DECODE_ERRORS as err:
            raise CorruptInputError(f"{self.path}: not a readable Zarr array ({err})") from err
        shape = tuple(int(n) for n in self._array.shape)
        named = self._array.attrs.get("axes")
        if spec.axes is None and isinstance(named, str) and len(named) == len(shape):
            spec = replace(spec, axes=named)  # the axes a tilewise output was written with
        self._layout = array_layout(spec, shape)
        if self._layout.planes is not None:
            self.planes, self.stack_kind = self._layout.planes, "array"
        self.shape = (shape[self._layout.rows], shape[self._layout.cols])
        self.bands = 1 if self._layout.band is None else shape[self._layout.band]
        self.dtype = np.dtype(self._array.dtype)
        if self.shape[0] * self.shape[1] > spec.max_pixels:
            raise ImageTooLargeError(
                f"{self.path}: array declares {shape} = {self.shape[0] * self.shape[1]:,} pixels, "
                f"over the limit of {spec.max_pixels:,}; raise it with --max-pixels"
            )

    def _location(self, spec: SourceSpec) -> Path | str:
        """What messages name: the folder (a remote source: its URL)."""
        return Path(spec.path)

    def _store(self) -> Any:
        """What Zarr opens: the folder (a remote source gives an object store)."""
        return self.path

    @property
    def chunks(self) -> tuple[int, int]:
        chunks = self._array.chunks
        return (int(chunks[self._layout.rows]), int(chunks[self._layout.cols]))

    @property
    def compression(self) -> str | None:
        compressors = getattr(self._array, "compressors", ())
        return ",".join(type(c).__name__ for c in compressors) or None

    @property
    def georef(self) -> Georef | None:
        """The georeferencing a tilewise Zarr output holds (see :func:`georef_attributes`)."""
        data = self._array.attrs.get("tilewise:georef")
        if not isinstance(data, dict):
            return None
        try:
            return Georef.from_dict(data)
        except (KeyError, TypeError, ValueError, TilewiseError) as err:
            raise CorruptInputError(
                f"{self.path}: damaged 'tilewise:georef' attribute ({err})"
            ) from err

    def read(self, window: Window, plane: int | None = None) -> Array:
        layout = self._layout
        try:
            if layout.simple:
                return np.asarray(self._array[window.slices])
            pixels = np.asarray(self._array[layout.index(window, plane)])
            if layout.band_at is None:
                return pixels
            return np.ascontiguousarray(np.moveaxis(pixels, layout.band_at, -1))
        except OSError as err:
            raise InputError(f"{self.path}: cannot read {window}: {err}") from err
        except DECODE_ERRORS as err:
            raise CorruptInputError(f"{self.path}: corrupt chunk in {window}: {err}") from err


def zarr_chunks(tile_shape: tuple[int, int], image_shape: tuple[int, int]) -> tuple[int, int]:
    """Chunk shape for an output written by tiles of ``tile_shape`` (one writer per chunk).

    >>> zarr_chunks((1024, 30000), (30000, 30000))
    (1024, 4096)
    """
    return tuple(  # type: ignore[return-value]
        min(t, _MAX_CHUNK) if t >= s else t for t, s in zip(tile_shape, image_shape, strict=True)
    )


def chunk_file(root: str | os.PathLike[str], key: tuple[int, ...]) -> Path:
    """The file that holds chunk ``key`` of the Zarr v3 array at ``root`` (default key encoding).

    >>> str(chunk_file("a.zarr", (3, 0, 1)))
    'a.zarr/c/3/0/1'
    """
    return Path(root, "c", *map(str, key))


def compressor(options: dict[str, Any]) -> Any:
    """The codec for options checked by :func:`tilewise.io.parse_creation_options`."""
    name = options["COMPRESS"]
    if name == "NONE":
        return None
    if name == "BLOSC":
        return BloscCodec(cname="zstd", clevel=options["LEVEL"])
    return ZstdCodec(level=options["LEVEL"])


def write_whole_zarr(
    path: Path, array: Array, options: dict[str, Any], georef: Georef | None = None
) -> None:
    """Write ``array`` as a Zarr array of one chunk (a whole image: :mod:`tilewise.io._whole`)."""
    codec = compressor(options)
    zarr.create_array(
        path,
        data=array,
        chunks=array.shape,
        compressors=None if codec is None else [codec],
        overwrite=True,
        attributes=georef_attributes(georef) if georef is not None else None,
    )


def georef_attributes(georef: Georef) -> dict[str, Any]:
    """A Zarr output's attributes for its georeferencing.

    ``tilewise:georef`` holds :meth:`Georef.to_dict` (everything, read back by
    :meth:`Georef.from_dict`); ``grid_mapping`` names ``spatial_ref``, which holds the
    CF grid-mapping attributes rioxarray writes (``crs_wkt``, ``spatial_ref``,
    ``GeoTransform``); ``_CRS`` is GDAL's Zarr-driver convention for the CRS
    (``{"wkt": ...}``); ``nodata`` the nodata value (``"nan"`` for NaN, as JSON has none).
    """
    attrs: dict[str, Any] = {"tilewise:georef": georef.to_dict()}
    spatial_ref = georef.spatial_ref_attrs()
    if spatial_ref:
        attrs["grid_mapping"] = "spatial_ref"
        attrs["spatial_ref"] = spatial_ref
    if georef.crs_wkt:
        attrs["_CRS"] = {"wkt": georef.crs_wkt}
    if georef.nodata is not None:
        attrs["nodata"] = attrs["tilewise:georef"]["nodata"]
    return attrs


def _dimension_names(axes: str) -> list[str]:
    """Zarr dimension names for a stack's leading axes: lower-case letters, numbered when
    repeated (``"QQ"`` -> ``q0, q1``).

    >>> _dimension_names("TZC"), _dimension_names("QQ")
    (['t', 'z', 'c'], ['q0', 'q1'])
    """
    return [
        a.lower() + (str(axes[:i].count(a)) if axes.count(a) > 1 else "")
        for i, a in enumerate(axes)
    ]


class ZarrSink(Sink):
    """Zarr v3 output; tiles are planned chunk-aligned, so workers write concurrently."""

    concurrent_writes = True

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        self._store = ChecksumStore(spec.partial)
        self._array = zarr.open_array(self._store, mode="r+")
        compress = spec.options["COMPRESS"]
        self._chunk_writer = (
            ChunkWriter(
                spec.shape,
                spec.chunks,
                spec.bands,
                spec.dtype,
                compress,
                spec.options.get("LEVEL", 0),
                spec.partial,
                lambda key: chunk_file(spec.partial, key),
            )
            if ChunkWriter.supports(compress) and not spec.planes
            else None
        )

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        image_chunks = spec.chunks if spec.bands == 1 else (*spec.chunks, spec.bands)
        chunks = (*(1 for _ in spec.planes), *image_chunks)
        codec = compressor(spec.options)
        names = ("row", "col") if spec.bands == 1 else ("row", "col", "band")
        attributes = georef_attributes(spec.georef) if spec.georef is not None else {}
        if spec.planes:
            names = (*_dimension_names(spec.axes), *names)
            attributes["axes"] = spec.axes + "YX" + ("S" if spec.bands > 1 else "")
        try:
            zarr.create_array(
                spec.partial,
                shape=spec.array_shape,
                dtype=spec.dtype,
                chunks=chunks,
                compressors=None if codec is None else [codec],
                fill_value=0,
                dimension_names=names,
                overwrite=True,
                attributes=attributes or None,
            )
        except OSError as err:
            raise OutputError(f"{spec.path}: cannot create the Zarr array: {err}") from err

    def _chunk_files(self, window: Window, plane: int | None) -> list[Path]:
        ch, cw = self.spec.chunks
        band = (0,) if self.spec.bands > 1 else ()
        lead = self.spec.plane_index(plane)
        return [
            chunk_file(self.spec.partial, (*lead, r, c, *band))
            for r in range(window.row // ch, (window.stop_row - 1) // ch + 1)
            for c in range(window.col // cw, (window.stop_col - 1) // cw + 1)
        ]

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        if self._chunk_writer is not None and plane is None:
            try:
                chunks = self._chunk_writer.write(window, array)
            except OSError as err:
                where = err.filename or self.spec.partial
                raise OutputError(f"{where}: cannot write: {err.strerror or err}") from err
            if chunks is not None:
                return {
                    "chunks": {name: size for name, (size, _) in chunks.items()},
                    "crc32c": {name: crc for name, (size, crc) in chunks.items() if size},
                }
        region: tuple[Any, ...] = (*self.spec.plane_index(plane), *window.slices)
        try:
            self._array[region] = array
        except OSError as err:
            where = err.filename or self.spec.partial
            raise OutputError(f"{where}: cannot write: {err.strerror or err}") from err
        # Zarr skips chunks equal to the fill value; record which exist so a
        # lost chunk is told apart from a deliberately empty one, and the CRC32C
        # of the bytes written to each, so one that changed is told apart too.
        sizes: dict[str, int] = {}
        crcs: dict[str, int] = {}
        for path in self._chunk_files(window, plane):
            name = path.relative_to(self.spec.partial).as_posix()
            written = self._store.written.pop(name, None)
            if written is not None:
                sizes[name], crcs[name] = written
                continue
            try:
                sizes[name] = os.path.getsize(path)
            except FileNotFoundError:
                sizes[name] = 0
        return {"chunks": sizes, "crc32c": crcs}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        crcs = receipt.get("crc32c")  # None in receipts written before checksums
        for name, size in receipt["chunks"].items():
            path = self.spec.partial / name
            if size == 0:  # left out as equal to the fill value: it must still be absent
                if crcs is not None and path.exists():
                    return False
                continue
            if not path.is_file() or path.stat().st_size != size:
                return False
            if crcs and name in crcs and file_crc32c(path) != crcs[name]:
                return False
        return True

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        final = Path(spec.path)
        try:
            if final.exists():
                shutil.rmtree(final) if final.is_dir() else final.unlink()
            os.replace(spec.partial, final)
        except OSError as err:
            raise OutputError(
                f"{final}: cannot move the finished output into place: {err}"
            ) from err


class ZarrStackSink(StackSink):
    """A stack as a Zarr v3 array of one chunk per row, so each row is its own chunk file.

    The receipt is the size of the row's chunk file (0: an all-zero row, which
    Zarr does not store and reads back as the fill value).
    """

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        self._array = zarr.open_array(self.spec.partial, mode="r+")

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        stack = StackSpec.require(spec)
        codec = compressor(stack.options)
        try:
            stack.partial.parent.mkdir(parents=True, exist_ok=True)
            zarr.create_array(
                stack.partial,
                shape=stack.stack_shape,
                dtype=stack.dtype,
                chunks=(1, *stack.row_shape),
                compressors=None if codec is None else [codec],
                fill_value=0,
                overwrite=True,
            )
        except OSError as err:
            raise OutputError(f"{stack.path}: cannot create the stack: {err}") from err

    @classmethod
    def layout(cls, path: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
        array = zarr.open_array(path, mode="r")
        return tuple(int(s) for s in array.shape), np.dtype(array.dtype)

    def _chunk(self, row: int) -> Path:
        return chunk_file(self.spec.partial, (row, *[0] * len(self.spec.row_shape)))

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        row = self._row(window, array)
        self._array[row] = array
        try:
            return {"size": os.path.getsize(self._chunk(row))}
        except FileNotFoundError:  # an all-zero row is not stored (it reads back as the fill value)
            return {"size": 0}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        row = self._row(window)
        if not receipt.get("size"):
            return True
        try:
            return os.path.getsize(self._chunk(row)) == receipt["size"]
        except OSError:
            return False
