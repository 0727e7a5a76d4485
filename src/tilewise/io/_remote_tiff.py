"""TIFF/COG inputs and outputs in object storage (see :mod:`tilewise.io._remote`).

tifffile parses the header through a :class:`~tilewise.io._remote.RangeFile`
(small reads served from a bounded block cache); a window's segments (TIFF
tiles or strips) are then fetched in one call, concurrently, exactly the bytes
the window needs that are not already decoded in the source's segment cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import obstore

from tilewise.errors import OutputError, StorageError, UnsupportedFormatError, UsageError
from tilewise.geometry import Window
from tilewise.io import _remote
from tilewise.io._checksum import crc32c
from tilewise.io._remote import RangeFile
from tilewise.io._tiff import TiffSink, TiffSource, assemble_tiff, assembling_path
from tilewise.io.base import Array, Receipt, SinkSpec, SourceSpec
from tilewise.io.georef import Georef

__all__ = ["RemoteTiffSink", "RemoteTiffSource"]

#: Bytes of the object's start hashed into its identity (with its size and ETag).
_SAMPLE = 64 * 1024


class RemoteTiffSource(TiffSource):
    """A TIFF or COG object (``s3://``, ``https://``) read by window, one range per segment."""

    def __init__(self, spec: SourceSpec, handle: RangeFile, meta: dict[str, Any]) -> None:
        self._handle = handle
        self._meta = meta
        self._prefetched: dict[int, bytes] = {}
        super().__init__(spec)
        if self.planes is not None:  # the prefetch below reads the first page's segments
            self.close()
            raise UsageError(
                f"{spec.path}: a stack of planes in object storage is not read yet; "
                "copy it to a local disk first"
            )

    def _location(self, spec: SourceSpec) -> str:
        return spec.path

    def _file(self) -> Any:
        return self._handle

    def _bytes(self, index: int, offset: int, count: int) -> bytes:
        data = self._prefetched.pop(index, None)
        return data if data is not None else self._handle.pread(offset, count)

    @property
    def fetched(self) -> int:
        """Bytes asked of the server so far (headers, blocks and segments)."""
        return self._handle.fetched

    def read(self, window: Window, plane: int | None = None) -> Array:
        bh, bw = self._block
        wanted: list[tuple[int, int, int]] = []
        for plane in range(self._separate):
            for br in range(window.row // bh, (window.stop_row - 1) // bh + 1):
                top = max(window.row - br * bh, 0)
                bottom = min(window.stop_row - br * bh, bh, self.shape[0] - br * bh)
                for bc in range(window.col // bw, (window.stop_col - 1) // bw + 1):
                    index = plane * self._per_plane + br * self._across + bc
                    offset = int(self._page.dataoffsets[index])
                    count = int(self._page.databytecounts[index])
                    ok = count and offset and offset + count <= self._filesize
                    if ok and not self._cache.has(index, top, bottom):
                        wanted.append((index, offset, count))
        if len(wanted) > 1:
            parts = self._handle.read_ranges([w[1] for w in wanted], [w[2] for w in wanted])
            self._prefetched = {w[0]: part for w, part in zip(wanted, parts, strict=True)}
        try:
            return super().read(window, plane)
        finally:
            self._prefetched = {}

    @property
    def georef(self) -> Georef | None:
        from tilewise.io._tiff_ifd import GEO_TAGS

        if not any(code in self._page.tags for code in GEO_TAGS):
            return None
        from tilewise.io import _raster

        if not _raster.available():
            raise UnsupportedFormatError(
                f"{self.path}: a GeoTIFF; reading its georeferencing needs rasterio: "
                f"{_raster.INSTALL_HINT}"
            )
        import rasterio

        url = str(self.path)
        size = self._handle.size
        with rasterio.open(url, opener=lambda _path, _mode: RangeFile(url, size)) as ds:
            return _raster.georef_of(ds)

    def identity(self) -> dict[str, Any]:
        """The URL, size, ETag and last-modified time, and a hash of the first 64 KiB."""
        sample = hashlib.blake2b(self._handle.pread(0, _SAMPLE), digest_size=16).hexdigest()
        return {
            "path": str(self.path),
            "size": int(self._meta["size"]),
            "etag": self._meta.get("e_tag"),
            "last_modified": str(self._meta.get("last_modified")),
            "sample": sample,
        }

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["storage"] = "object (byte ranges)"
        return info

    def close(self) -> None:
        super().close()
        self._handle.close()


class RemoteTiffSink(TiffSink):
    """Tiled TIFF output uploaded to object storage in one piece when complete.

    Workers encode their own TIFF tiles and put each tilewise tile's bytes as one
    object under the hidden prefix ``.NAME.partial/`` beside the final key (a
    worker on another machine needs no shared disk). :meth:`finalize` assembles
    the TIFF from those objects (one range read per TIFF tile) into a local
    temporary file beside the journal, uploads it with one ``put`` — a multipart
    upload for files over 8 MiB, so nothing is under the final key until the
    upload completes, and an earlier object there is replaced whole — then
    deletes the prefix. The driver's disk holds the output once, briefly.
    """

    @classmethod
    def partial_url(cls, spec: SinkSpec) -> str:
        """The prefix the workers' encoded tiles go under."""
        parent, _, name = spec.path.rpartition("/")
        return f"{parent}/.{name}.partial"

    @classmethod
    def started(cls, spec: SinkSpec) -> bool:
        """Whether an earlier run left encoded tiles of this output."""
        return bool(_remote.list_sizes(cls.partial_url(spec)))

    @classmethod
    def exists(cls, spec: SinkSpec) -> bool:
        """Whether an object is under the output's URL."""
        try:
            _remote.head(spec.path)
        except FileNotFoundError:
            return False
        return True

    @classmethod
    def clear(cls, spec: SinkSpec) -> None:
        """Delete an earlier run's encoded tiles (a finished object is replaced at the end)."""
        _delete_prefix(cls.partial_url(spec))

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        TiffSink.check_options(spec)
        _remote.split_url(spec.path)

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        root, key = _remote.split_url(self.partial_url(spec))
        self._prefix_store = _remote.get_store(root, key)
        self._sizes: dict[str, int] | None = None

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        if window.row % self._block[0] or window.col % self._block[1]:
            raise OutputError(f"{window} is not aligned to the TIFF tile {self._block}")
        name = f"tile-{tile_index:07d}.seg"
        segments: list[list[int]] = []
        parts: list[bytes] = []
        offset = 0
        for index, data in self._segments(window, array):
            parts.append(data)
            segments.append([index, offset, len(data), crc32c(data)])
            offset += len(data)
        try:  # a put is atomic: a tile done twice leaves one whole object
            obstore.put(self._prefix_store, name, b"".join(parts), use_multipart=False)
        except Exception as err:
            raise _remote.storage_error(
                f"{self.partial_url(self.spec)}/{name}", err, "write"
            ) from err
        return {"file": name, "size": offset, "segments": segments}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        """Sizes only (one listing); the CRC32C is not checked again, which would download
        every tile on resume."""
        if self._sizes is None:
            self._sizes = _remote.list_sizes(self.partial_url(self.spec))
        return self._sizes.get(str(receipt["file"])) == receipt["size"]

    @classmethod
    def assemble(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Build the TIFF in a local file from the spool in the bucket (interruptible)."""
        partial = cls.partial_url(spec)
        root, key = _remote.split_url(partial)
        prefix_store = _remote.get_store(root, key)
        tmp = _assembled(spec)
        # assemble locally with the local sink's code: the spool is read from the bucket
        local_spec = replace(spec, path=str(_remote.state_path(spec.path)), token="")

        def fetch(name: str, offset: int, length: int) -> bytes:
            try:
                data = obstore.get_range(prefix_store, name, start=offset, length=length)
            except Exception as err:
                raise _remote.storage_error(f"{partial}/{name}", err) from err
            return bytes(data)

        try:
            assemble_tiff(local_spec, receipts, tmp, fetch)
        except (StorageError, OutputError):
            tmp.unlink(missing_ok=True)
            raise
        except Exception as err:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"{spec.path}: cannot assemble the TIFF: {err}") from err

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Upload the assembled TIFF under its final key in one put (multipart: nothing is
        under the key until it is complete), then delete the spool."""
        tmp = _assembled(spec)
        try:
            final_root, final_key = _remote.split_url(spec.path)
            obstore.put(_remote.get_store(final_root), final_key, tmp, chunk_size=_PART_BYTES)
        except StorageError:
            raise
        except Exception as err:
            raise _remote.storage_error(spec.path, err, "upload") from err
        finally:
            tmp.unlink(missing_ok=True)
        _delete_prefix(cls.partial_url(spec))


def _assembled(spec: SinkSpec) -> Path:
    """The local file the TIFF of an output in a bucket is assembled in."""
    return assembling_path(_remote.state_path(spec.path))


#: Multipart upload part size.
_PART_BYTES = 8 << 20


def _delete_prefix(url: str) -> None:
    root, key = _remote.split_url(url)
    names = list(_remote.list_sizes(url))
    try:
        store = _remote.get_store(root, key)
        for start in range(0, len(names), 1000):
            obstore.delete(store, names[start : start + 1000])
    except Exception as err:
        raise _remote.storage_error(url, err, "delete") from err
