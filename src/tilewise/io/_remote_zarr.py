"""Zarr v3 arrays in object storage: read by chunk, written by the workers' own chunks.

Reading opens the array through :class:`zarr.storage.ObjectStore` (obstore), so a
window fetches only the chunks it touches.

Writing (``s3://bucket/out.zarr``): S3 has no rename, so an output cannot be
built under a temporary name and moved into place without copying every chunk.
Instead the chunks are written under their final keys, and the array's metadata
is held back: while the run works it is stored as ``out.zarr/.tilewise-partial.json``,
and only :meth:`RemoteZarrSink.finalize` copies it to ``out.zarr/zarr.json``. Until
then ``out.zarr`` is not an array any reader opens — never an array whose missing
chunks read back silently as the fill value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import zarr
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import ObjectStore, WrapperStore

from tilewise.errors import OutputError, StorageError
from tilewise.geometry import Window
from tilewise.io import _remote
from tilewise.io._zarr import ZarrSink, ZarrSource, compressor, georef_attributes
from tilewise.io.base import Array, Receipt, SinkSpec, SourceSpec

__all__ = ["PARTIAL_METADATA", "RemoteZarrSink", "RemoteZarrSource", "zarr_store"]

#: Where the array's metadata waits until the output is final.
PARTIAL_METADATA = ".tilewise-partial.json"


def zarr_store(url: str, *, read_only: bool) -> ObjectStore:
    """A Zarr store over the folder ``url`` (``s3://bucket/a.zarr``)."""
    root, key = _remote.split_url(url)
    return ObjectStore(_remote.get_store(root, key), read_only=read_only)


class RemoteZarrSource(ZarrSource):
    """A Zarr array in object storage, read by window (only the chunks it touches)."""

    def __init__(self, spec: SourceSpec) -> None:
        _remote.head(spec.path.rstrip("/") + "/zarr.json")  # not found / denied: named
        super().__init__(spec)

    def _location(self, spec: SourceSpec) -> str:
        return spec.path.rstrip("/")

    def _store(self) -> Any:
        return zarr_store(str(self.path), read_only=True)

    def read(self, window: Window, plane: int | None = None) -> Array:
        from obstore.exceptions import BaseError

        try:
            return super().read(window, plane)
        except BaseError as err:  # not an OSError: the server, not the data
            raise _remote.storage_error(f"{self.path} ({window})", err) from err

    def identity(self) -> dict[str, Any]:
        """The URL, the metadata's hash, and the count, total size and newest time of objects."""
        root, key = _remote.split_url(str(self.path))
        store = _remote.get_store(root, key)
        import obstore

        try:
            metadata = bytes(obstore.get(store, "zarr.json").bytes())
            count, size, newest = 0, 0, ""
            for batch in obstore.list(store, chunk_size=1000):
                for meta in batch:
                    count += 1
                    size += int(meta["size"])
                    newest = max(newest, str(meta["last_modified"]))
        except Exception as err:
            raise _remote.storage_error(str(self.path), err) from err
        return {
            "path": str(self.path),
            "objects": count,
            "size": size,
            "newest": newest,
            "metadata": hashlib.blake2b(metadata, digest_size=16).hexdigest(),
        }

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["storage"] = "object (chunks)"
        return info


class _HeldMetadata(WrapperStore[ObjectStore]):
    """The output's store: ``zarr.json`` is kept as :data:`PARTIAL_METADATA` until final,
    and every value written is remembered with its size and CRC32C (the sink's receipts)."""

    def __init__(self, store: ObjectStore) -> None:
        super().__init__(store)
        self.written: dict[str, tuple[int, int] | None] = {}

    @staticmethod
    def _key(key: str) -> str:
        return PARTIAL_METADATA if key == "zarr.json" else key

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        return await self._store.get(self._key(key), prototype, byte_range)

    async def exists(self, key: str) -> bool:
        return await self._store.exists(self._key(key))

    async def set(self, key: str, value: Buffer) -> None:
        import google_crc32c
        import numpy as np

        await self._store.set(self._key(key), value)
        data = value.as_numpy_array().view(np.uint8).reshape(-1)
        self.written[key] = (int(data.size), int(google_crc32c.value(data)))

    async def delete(self, key: str) -> None:
        await self._store.delete(self._key(key))
        self.written[key] = None


class RemoteZarrSink(ZarrSink):
    """Zarr v3 output in a bucket; workers write their own chunks, the metadata comes last."""

    concurrent_writes = True

    def __init__(self, spec: SinkSpec) -> None:
        self.spec = spec
        self._store = _HeldMetadata(zarr_store(spec.path, read_only=False))  # type: ignore[assignment]
        try:
            self._array = zarr.open_array(self._store, mode="r+")
        except Exception as err:
            raise _remote.storage_error(spec.path, err, "open") from err
        self._sizes: dict[str, int] | None = None

    @classmethod
    def started(cls, spec: SinkSpec) -> bool:
        """Whether an earlier run left this output unfinished (its held metadata exists)."""
        try:
            _remote.head(f"{spec.path}/{PARTIAL_METADATA}")
        except FileNotFoundError:
            return False
        return True

    @classmethod
    def exists(cls, spec: SinkSpec) -> bool:
        """Whether a finished array is under the URL."""
        try:
            _remote.head(f"{spec.path}/zarr.json")
        except FileNotFoundError:
            return False
        return True

    @classmethod
    def clear(cls, spec: SinkSpec) -> None:
        """Delete every object under the output's prefix (an earlier or unfinished output)."""
        import obstore

        root, key = _remote.split_url(spec.path)
        names = list(_remote.list_sizes(spec.path))
        try:
            for start in range(0, len(names), 1000):
                obstore.delete(_remote.get_store(root, key), names[start : start + 1000])
        except Exception as err:
            raise _remote.storage_error(spec.path, err, "delete") from err

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        chunks = spec.chunks if spec.bands == 1 else (*spec.chunks, spec.bands)
        codec = compressor(spec.options)
        try:
            zarr.create_array(
                _HeldMetadata(zarr_store(spec.path, read_only=False)),
                shape=spec.array_shape,
                dtype=spec.dtype,
                chunks=chunks,
                compressors=None if codec is None else [codec],
                fill_value=0,
                dimension_names=("row", "col") if spec.bands == 1 else ("row", "col", "band"),
                overwrite=False,
                attributes=georef_attributes(spec.georef) if spec.georef is not None else None,
            )
        except StorageError:
            raise
        except Exception as err:
            raise _remote.storage_error(spec.path, err, "create") from err

    def _chunk_keys(self, window: Window) -> list[str]:
        ch, cw = self.spec.chunks
        band = "/0" if self.spec.bands > 1 else ""
        return [
            f"c/{r}/{c}{band}"
            for r in range(window.row // ch, (window.stop_row - 1) // ch + 1)
            for c in range(window.col // cw, (window.stop_col - 1) // cw + 1)
        ]

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        try:
            self._array[window.slices] = array
        except Exception as err:
            raise _remote.storage_error(f"{self.spec.path} {window}", err, "write") from err
        sizes: dict[str, int] = {}
        crcs: dict[str, int] = {}
        for name in self._chunk_keys(window):
            written = self._store.written.pop(name, None)
            if written is not None:
                sizes[name], crcs[name] = written
            else:  # equal to the fill value: Zarr stores nothing
                sizes[name] = 0
        return {"chunks": sizes, "crc32c": crcs}

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        """Sizes only: every chunk the receipt lists is present with its size (one listing).

        The CRC32C is not checked again: that would download every chunk on resume.
        """
        if self._sizes is None:
            self._sizes = _remote.list_sizes(self.spec.path)
        sizes = self._sizes
        return all(sizes.get(name, 0) == size for name, size in receipt["chunks"].items())

    @classmethod
    def commit(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        """Publish the array's metadata: until then the prefix holds no readable array."""
        import obstore

        root, key = _remote.split_url(spec.path)
        store = _remote.get_store(root, key)
        try:
            obstore.copy(store, PARTIAL_METADATA, "zarr.json")
            obstore.delete(store, PARTIAL_METADATA)
        except Exception as err:
            raise OutputError(
                f"{spec.path}: cannot publish the array's metadata ({err}); run again with --resume"
            ) from err

    def close(self) -> None:
        pass
