"""Cloud Optimized GeoTIFF output: tiles and overviews encoded by the workers, one writer.

A COG is written in three steps:

1. The run's workers encode the full-resolution TIFF tiles of their tilewise tiles and
   spool them, as for a tiled TIFF (:class:`~tilewise.io._tiff.TiffSink`).
2. Once every tile is done, overview level 1 is built from the finished full-resolution
   tiles, then level 2 from level 1, and so on (see :mod:`tilewise.io._overviews` for
   what each resampling computes). A level is cut into strips of TIFF tiles, and each
   strip is one task for the run's executor: a worker decodes the spooled tiles of the
   level before under its strip, reduces them 2 x 2, encodes the strip's tiles and
   spools them. Levels follow one another; the strips of a level run in parallel.
3. The main process places the bytes in the COG layout (:mod:`tilewise.io._cog_layout`):
   IFDs first, then the tiles from the smallest overview to full resolution. It only
   copies bytes the workers encoded.

On ``--resume`` the full-resolution tiles are taken from the journal; the overviews
are built again (they are a third of the pixels, and a tile redone changes them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import imagecodecs
import numpy as np
import tifffile

from tilewise.errors import OutputError, UsageError
from tilewise.geometry import Window
from tilewise.io._cog_layout import Ifd, Tag, fits_classic, plan_layout, write_layout
from tilewise.io._geotiff_tags import GeoTiffTags, geotiff_tags
from tilewise.io._overviews import default_resampling, level_shapes, reduce2
from tilewise.io._tiff import COMPRESSIONS, TiffSink, assembling_path
from tilewise.io.base import Array, Receipt, SinkSpec

__all__ = ["CogSink", "OverviewStrip", "RunTasks", "resampling_of"]

log = logging.getLogger(__name__)

#: ``run(fn, payloads)`` -> ``fn(payload)`` of each payload, in order (the runner's executor).
RunTasks = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
#: Pixels of the level before that one overview task decodes, at most (plus one strip of tiles).
STRIP_BYTES = 32 << 20
#: TIFF SampleFormat by NumPy kind.
_SAMPLE_FORMATS = {"u": 1, "i": 2, "f": 3}
#: Where a TIFF tile of one image lies in the spool: file name, offset, length.
Where = dict[int, tuple[str, int, int]]


def resampling_of(spec: SinkSpec) -> str:
    """The overview resampling of ``spec``: as given, or the dtype's default."""
    given = spec.options.get("OVERVIEW_RESAMPLING")
    return str(given).lower() if given else default_resampling(spec.dtype)


def _nodata(spec: SinkSpec) -> float | None:
    return None if spec.georef is None else spec.georef.nodata


class CogSink(TiffSink):
    """A Cloud Optimized GeoTIFF: the full-resolution tiles as :class:`TiffSink` writes them,
    overviews built after them in parallel, and the COG byte layout (see the module)."""

    @classmethod
    def create(cls, spec: SinkSpec) -> None:
        dtype = np.dtype(spec.dtype)
        if dtype.kind not in _SAMPLE_FORMATS or (dtype.itemsize == 2 and dtype.kind == "f"):
            raise UsageError(
                f"{spec.path}: --format cog writes integer and float32/float64 pixels, the "
                f"output is {dtype.name}; convert it first (e.g. --op to_dtype:dtype=uint8)"
            )
        super().create(spec)

    @classmethod
    def assemble(cls, spec: SinkSpec, receipts: Mapping[int, Receipt]) -> None:
        cls.assemble_with(spec, receipts, _run_here)

    @classmethod
    def assemble_with(cls, spec: SinkSpec, receipts: Mapping[int, Receipt], run: RunTasks) -> None:
        """Build the overviews with ``run`` (tasks in parallel), then write the COG as
        ``.NAME.assembling``; :meth:`TiffSink.commit` renames it and removes the tiles."""
        block = spec.chunks
        images = [_where(receipts)]
        shapes = [spec.shape, *level_shapes(spec.shape, block)]
        _check_complete(spec, shapes[0], images[0], "full-resolution")
        resampling = resampling_of(spec)
        for level in range(1, len(shapes)):
            strip = OverviewStrip(spec, level, shapes[level - 1], shapes[level], resampling)
            payloads = list(strip.payloads(images[-1]))
            log.info("overview level %d (%s): %d task(s)", level, shapes[level], len(payloads))
            images.append(_where(dict(enumerate(run(strip, payloads)))))
            _check_complete(spec, shapes[level], images[-1], f"overview level {level}")
        _assemble(spec, shapes, images)


def _run_here(fn: Callable[[Any], Any], payloads: Sequence[Any]) -> list[Any]:
    return [fn(payload) for payload in payloads]


def _where(receipts: Mapping[int, Receipt]) -> Where:
    where: Where = {}
    for receipt in receipts.values():
        for index, offset, length, *_ in receipt["segments"]:
            where[int(index)] = (str(receipt["file"]), int(offset), int(length))
    return where


def _tiles_of(shape: tuple[int, int], block: tuple[int, int]) -> tuple[int, int]:
    return -(-shape[0] // block[0]), -(-shape[1] // block[1])


def _check_complete(spec: SinkSpec, shape: tuple[int, int], where: Where, what: str) -> None:
    rows, cols = _tiles_of(shape, spec.chunks)
    missing = rows * cols - sum(1 for i in range(rows * cols) if i in where)
    if missing:
        raise OutputError(f"{spec.path}: {missing} {what} TIFF tiles were never written")


class _LevelSink(TiffSink):
    """Writes one overview level's tiles to the spool, named after the level."""

    def __init__(self, spec: SinkSpec, level: int) -> None:
        super().__init__(spec)
        self._overview = level

    def _spool_name(self, tile_index: int) -> str:
        return f"ovr{self._overview:02d}-{tile_index:07d}.seg"


@dataclass(frozen=True, slots=True)
class OverviewStrip:
    """A picklable task: build one strip of TIFF tiles of overview ``level`` (in a worker).

    Its payload is ``(row, first_col, stop_col, sources)``: the strip's tile row and
    columns, and where the tiles of the level before that it covers are spooled.
    """

    spec: SinkSpec
    level: int
    below: tuple[int, int]
    shape: tuple[int, int]
    resampling: str

    def payloads(self, below: Where) -> Iterator[tuple[int, int, int, Where]]:
        """One payload per strip of this level, with the spooled tiles it reads."""
        bh, bw = self.spec.chunks
        rows, cols = _tiles_of(self.shape, self.spec.chunks)
        below_rows, below_cols = _tiles_of(self.below, self.spec.chunks)
        itemsize = np.dtype(self.spec.dtype).itemsize * self.spec.bands
        per_strip = max(1, STRIP_BYTES // (4 * bh * bw * itemsize))
        for row in range(rows):
            for first in range(0, cols, per_strip):
                stop = min(cols, first + per_strip)
                sources = {
                    r * below_cols + c: below[r * below_cols + c]
                    for r in range(2 * row, min(2 * row + 2, below_rows))
                    for c in range(2 * first, min(2 * stop, below_cols))
                }
                yield row, first, stop, sources

    def __call__(self, payload: tuple[int, int, int, Where]) -> Receipt:
        row, first, stop, sources = payload
        bh, bw = self.spec.chunks
        top, left = 2 * row * bh, 2 * first * bw
        height = min(2 * bh, self.below[0] - top)
        width = min(2 * (stop - first) * bw, self.below[1] - left)
        region = _decode_region(self.spec, self.below, sources, Window(top, left, height, width))
        reduced = reduce2(region, self.resampling, _nodata(self.spec))
        window = Window(row * bh, first * bw, reduced.shape[0], reduced.shape[1])
        level_spec = replace(self.spec, shape=self.shape)
        sink = _LevelSink(level_spec, self.level)
        across = _tiles_of(self.shape, self.spec.chunks)[1]
        return sink.write(row * across + first, window, reduced)


def _decode_region(spec: SinkSpec, shape: tuple[int, int], sources: Where, window: Window) -> Array:
    """The pixels of ``window`` of an image of ``shape`` whose tiles are spooled at ``sources``."""
    bh, bw = spec.chunks
    cols = _tiles_of(shape, spec.chunks)[1]
    dtype = np.dtype(spec.dtype)
    full = (bh, bw) if spec.bands == 1 else (bh, bw, spec.bands)
    out = np.empty(window.shape if spec.bands == 1 else (*window.shape, spec.bands), dtype)
    code = COMPRESSIONS[spec.options["COMPRESS"]]
    decode = None if code == 1 else tifffile.TIFF.DECOMPRESSORS[code]
    predictor = spec.options.get("PREDICTOR", 1) == 2
    files: dict[str, BinaryIO] = {}
    try:
        for index, (name, offset, length) in sources.items():
            fh = files.get(name)
            if fh is None:
                fh = files[name] = open(spec.partial / name, "rb")  # noqa: SIM115
            fh.seek(offset)
            data = fh.read(length)
            raw = data if decode is None else decode(data)
            tile = np.frombuffer(raw, dtype=dtype).reshape(full)
            if predictor:
                tile = imagecodecs.delta_decode(tile, axis=1)
            r0, c0 = (index // cols) * bh - window.row, (index % cols) * bw - window.col
            rows = slice(max(r0, 0), min(r0 + bh, window.height))
            cols_ = slice(max(c0, 0), min(c0 + bw, window.width))
            out[rows, cols_] = tile[
                rows.start - r0 : rows.stop - r0, cols_.start - c0 : cols_.stop - c0
            ]
    except OSError as err:
        raise OutputError(f"{spec.path}: cannot read the spooled tiles: {err}") from err
    finally:
        for fh in files.values():
            fh.close()
    return out


def _tags(
    spec: SinkSpec, shape: tuple[int, int], level: int, found: GeoTiffTags | None
) -> tuple[Tag, ...]:
    """The tags of one image of the COG (without tile offsets and byte counts); the
    georeferencing ``found`` goes to the full-resolution image only."""
    dtype = np.dtype(spec.dtype)
    bands = spec.bands
    photometric = "rgb" if bands in (3, 4) else "minisblack"
    extrasamples: tuple[int, ...] = (2,) if bands == 4 else ()
    geo: tuple[Tag, ...] = ()
    if found is not None:
        photometric, extrasamples = found.photometric, found.extrasamples
        if level == 0:
            geo = tuple(
                Tag(code, kind, _values(value)) for code, kind, _, value, _ in found.extratags
            )
    own = 3 if photometric == "rgb" else 1
    extra = (*extrasamples, *(0,) * (bands - own - len(extrasamples)))[: bands - own]
    tags = [
        Tag(254, 4, (0 if level == 0 else 1,)),
        Tag(256, 4, (shape[1],)),
        Tag(257, 4, (shape[0],)),
        Tag(258, 3, (dtype.itemsize * 8,) * bands),
        Tag(259, 3, (COMPRESSIONS[spec.options["COMPRESS"]],)),
        Tag(262, 3, (2 if photometric == "rgb" else 1,)),
        Tag(277, 3, (bands,)),
        Tag(284, 3, (1,)),
        Tag(322, 4, (spec.chunks[1],)),
        Tag(323, 4, (spec.chunks[0],)),
        Tag(339, 3, (_SAMPLE_FORMATS[dtype.kind],) * bands),
    ]
    if level == 0:
        tags.append(Tag(305, 2, "tilewise"))
    if spec.options.get("PREDICTOR", 1) == 2:
        tags.append(Tag(317, 3, (2,)))
    if extra:
        tags.append(Tag(338, 3, extra))
    return (*tags, *geo)


def _values(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, tuple | list):
        return tuple(value)
    return (value,)


def _assemble(spec: SinkSpec, shapes: Sequence[tuple[int, int]], images: Sequence[Where]) -> None:
    """Write the COG from the spooled tiles of every image (main process)."""
    found = None if spec.georef is None else geotiff_tags(spec.georef, spec.dtype)
    ifds = []
    for level, (shape, where) in enumerate(zip(shapes, images, strict=True)):
        rows, cols = _tiles_of(shape, spec.chunks)
        sizes = tuple(where[i][2] for i in range(rows * cols))
        ifds.append(Ifd(_tags(spec, shape, level, found), sizes))
    choice = spec.options.get("BIGTIFF", "IF_NEEDED")
    classic = fits_classic(ifds)
    if choice == "NO" and not classic:
        raise OutputError(
            f"{spec.path}: the COG passes 4 GiB, more than a classic TIFF holds "
            "(--co BIGTIFF=NO); use BIGTIFF=IF_NEEDED or YES, then --resume"
        )
    layout = plan_layout(ifds, bigtiff=choice == "YES" or not classic)
    final = Path(spec.path)
    tmp = assembling_path(final)
    files: dict[str, BinaryIO] = {}

    def tiles(number: int) -> Iterator[bytes]:
        where = images[number]
        for index in range(len(ifds[number].tile_sizes)):
            name, offset, length = where[index]
            fh = files.get(name)
            if fh is None:
                if len(files) >= 64:
                    files.pop(next(iter(files))).close()
                fh = files[name] = open(spec.partial / name, "rb")  # noqa: SIM115
            fh.seek(offset)
            yield fh.read(length)

    try:
        with open(tmp, "wb") as fh:
            write_layout(fh, layout, tiles, [ifd.tile_sizes for ifd in ifds])
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{final}: cannot write the COG: {err}") from err
    finally:
        for handle in files.values():
            handle.close()
