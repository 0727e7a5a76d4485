"""PNG and JPEG: formats that cannot be read by window, so they are decoded whole, once.

The header is parsed here (a few bytes; see :mod:`tilewise.io._simple_header`) and
checked against the ``--max-whole-pixels`` budget before anything is decoded. The
pixels are decoded by imagecodecs (libpng, libjpeg-turbo) with their true dtype and
band count: a 16-bit PNG is uint16, a palette PNG is expanded to RGB (RGBA when
it has transparency), a CMYK JPEG is refused.

A read of the whole image (a batch reading one file) decodes into a fresh array.
A read of part of it (a tiled run) uses one decoded copy per machine: the first
worker to need it decodes the image into a ``.npy`` file under
``$TMPDIR/tilewise-UID/decoded/``, and every worker maps that file and reads its
window from it. Memory then holds one decoded image however many workers read it
(the operating system shares the mapped pages), where decoding in each worker held
one per worker. Decoding happens under a file lock, so workers that start together
wait for the first one instead of decoding too; the file is written under a
temporary name and renamed, so a worker never maps a half-written image. Files
unused for :data:`KEEP_SECONDS` are removed by the next worker that decodes one.
If the temporary directory cannot be written (full, read-only; the file's blocks are
reserved before decoding, so a full disk is found then), the worker decodes into its
own memory, as a batch does.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from tilewise.errors import CorruptInputError, ImageTooLargeError
from tilewise.geometry import Window
from tilewise.io._reading import DECODE_ERRORS
from tilewise.io._simple_header import read_header
from tilewise.io.base import Array, Source, SourceSpec

__all__ = ["KEEP_SECONDS", "SimpleSource", "decoded_dir"]

#: Decoded copies not used for this long are removed.
KEEP_SECONDS = 3600

log = logging.getLogger(__name__)


def decoded_dir() -> Path:
    """Where decoded copies of PNG/JPEG inputs are kept, one directory per user."""
    return Path(tempfile.gettempdir()) / f"tilewise-{os.getuid()}" / "decoded"


class SimpleSource(Source):
    """PNG or JPEG, decoded whole with imagecodecs after a header check."""

    path: Path

    reader = "pillow (whole file)"

    def __init__(self, spec: SourceSpec) -> None:
        self.path = Path(spec.path)
        header = read_header(self.path)
        height, width = header.shape
        pixels = height * width
        if pixels > spec.max_whole_pixels:
            raise ImageTooLargeError(
                f"{self.path}: {height} x {width} = {pixels:,} pixels; {header.format.upper()} "
                f"files are decoded whole and the limit is {spec.max_whole_pixels:,}; raise it "
                "with --max-whole-pixels, or convert the file to a tiled TIFF"
            )
        self._header = header
        self.shape = header.shape
        self.bands = header.bands
        self.dtype = np.dtype(header.dtype)
        self.photometric = header.photometric
        self.bits_per_sample = header.bits if header.bits != self.dtype.itemsize * 8 else None
        self.alpha = header.alpha
        self.conversion = header.conversion
        self._decoded: Array | None = None

    @property
    def format_name(self) -> str:
        return self._header.format

    @property
    def _array_shape(self) -> tuple[int, ...]:
        return self.shape if self.bands == 1 else (*self.shape, self.bands)

    def _decode_into(self, out: Array) -> None:
        """Decode the file into ``out`` (of the header's shape and dtype)."""
        import imagecodecs

        decode = (
            imagecodecs.png_decode if self._header.format == "png" else imagecodecs.jpeg8_decode
        )
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise CorruptInputError(f"{self.path}: cannot read: {err.strerror or err}") from err
        try:
            result = decode(data, out=out)
        except DECODE_ERRORS as err:
            raise CorruptInputError(
                f"{self.path}: cannot decode the {self._header.format.upper()} data "
                f"({type(err).__name__}: {err})"
            ) from err
        if result.shape != out.shape or result.dtype != out.dtype:
            raise CorruptInputError(
                f"{self.path}: decodes to {result.shape} {result.dtype}, but its header "
                f"describes {out.shape} {out.dtype}"
            )

    def _shared(self) -> Array:
        """The decoded image, mapped from this machine's one decoded copy (module docstring)."""
        if self._decoded is None:
            try:
                self._decoded = self._map_decoded_copy()
            except OSError as err:
                log.info(
                    "%s: no decoded copy in %s (%s); decoding here", self.path, decoded_dir(), err
                )
                array = np.empty(self._array_shape, self.dtype)
                self._decode_into(array)
                self._decoded = array
        return self._decoded

    def _map_decoded_copy(self) -> Array:
        directory = decoded_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(self.path)
        identity = (
            f"{self.path.resolve()}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
        )
        key = hashlib.sha256(identity.encode()).hexdigest()[:32]
        target = directory / f"{key}.npy"
        with open(directory / f"{key}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._usable(target):
                tmp = directory / f"{key}.{os.getpid()}.tmp"
                try:
                    out = np.lib.format.open_memmap(
                        tmp, mode="w+", dtype=self.dtype, shape=self._array_shape
                    )
                    # reserve the blocks now: a full disk is an OSError here (and a decode
                    # in memory instead), not a SIGBUS when a mapped page is first written
                    with open(tmp, "r+b") as fh:
                        os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
                    self._decode_into(out)
                    out.flush()
                    del out
                    os.replace(tmp, target)
                finally:
                    tmp.unlink(missing_ok=True)
                _remove_stale(directory, keep=key)
            os.utime(target)
        return np.load(target, mmap_mode="r")

    def _usable(self, target: Path) -> bool:
        try:
            existing = np.load(target, mmap_mode="r")
        except (OSError, ValueError):
            return False
        return bool(existing.shape == self._array_shape and existing.dtype == self.dtype)

    def read(self, window: Window, plane: int | None = None) -> Array:
        if window.shape == self.shape and self._decoded is None:
            array = np.empty(self._array_shape, self.dtype)
            self._decode_into(array)
            return array
        return np.array(self._shared()[window.slices])

    def close(self) -> None:
        self._decoded = None


def _remove_stale(directory: Path, keep: str) -> None:
    """Remove decoded copies (and their locks) unused for :data:`KEEP_SECONDS`.

    A worker that still maps a removed copy keeps reading it (the mapping holds
    the file); one that opens it afresh decodes it again.
    """
    cutoff = time.time() - KEEP_SECONDS
    for path in directory.iterdir():
        if path.name.startswith(keep):
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue  # another worker removed it first
