"""Cloud Optimized GeoTIFF output: tiles and overviews encoded by the workers, one writer.

A COG is written in three steps:

1. The run's workers encode the full-resolution TIFF tiles of their tilewise tiles and
   spool them, as for a tiled TIFF (:class:`~tilewise.io._tiff.TiffSink`).
   Each worker also reduces its tile 2 x 2 while it holds it, and writes those pixels
   of overview level 1 raw beside them (see :mod:`tilewise.io._cog_halves`).
2. Once every tile is done, overview level 1 is encoded from those reduced tiles, then
   level 2 is built from level 1, and so on (see :mod:`tilewise.io._overviews` for
   what each resampling computes). A level is cut into strips of TIFF tiles, and each
   strip is one task for the run's executor: a worker reads the reduced tiles under its
   strip (level 1), or decodes the spooled tiles of the level before under it and
   reduces them 2 x 2 (the levels after), encodes the strip's tiles and spools them.
   Levels follow one another; the strips of a level run in parallel. When a tile's
   receipt has no reduced tile (written by a tilewise that made none), level 1 too is
   made from the decoded full-resolution tiles.
3. The main process places the bytes in the COG layout (:mod:`tilewise.io._cog_layout`):
   IFDs first, then the tiles from the smallest overview to full resolution. It only
   copies bytes the workers encoded.

On ``--resume`` the full-resolution tiles and their reduced tiles are taken from the
journal (a tile either of whose files is missing or damaged is redone); the overviews are
built again from them (they are a third of the pixels, and a tile redone changes them).
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
from tilewise.io._cog_halves import (
    Half,
    by_block_row,
    half_intact,
    half_of,
    overlapping,
    read_halves,
    reducible,
    write_half,
)
from tilewise.io._cog_layout import Ifd, Tag, fits_classic, plan_layout, write_layout
from tilewise.io._geotiff_tags import GeoTiffTags, geotiff_tags
from tilewise.io._overviews import default_resampling, level_shapes, reduce2
from tilewise.io._tiff import COMPRESSIONS, TiffSink, assembling_path
from tilewise.io.base import Array, Receipt, SinkSpec

__all__ = ["CogSink", "HalvesStrip", "OverviewStrip", "RunTasks", "resampling_of"]

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

    def __init__(self, spec: SinkSpec) -> None:
        super().__init__(spec)
        #: Whether the COG has overviews: then each tile is also written reduced 2 x 2.
        self._halves = bool(level_shapes(spec.shape, spec.chunks))
        self._resampling = resampling_of(spec)

    def write(
        self, tile_index: int, window: Window, array: Array, plane: int | None = None
    ) -> Receipt:
        """Spool the tile's encoded TIFF tiles and, when the COG has overviews, the tile
        reduced 2 x 2 (overview level 1's pixels, see :mod:`tilewise.io._cog_halves`)."""
        receipt = super().write(tile_index, window, array, plane)
        if self._halves and plane is None and reducible(self.spec, window):
            reduced = reduce2(array, self._resampling, _nodata(self.spec))
            receipt["half"] = write_half(self.spec, tile_index, window, reduced)
        return receipt

    def verify(self, window: Window, receipt: Receipt, plane: int | None = None) -> bool:
        if not super().verify(window, receipt, plane):
            return False
        half = receipt.get("half")
        return half is None or half_intact(self.spec, half)

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
        shapes = [spec.shape, *level_shapes(spec.shape, spec.chunks)]
        where, halves = _scan(receipts, shapes[1] if len(shapes) > 1 else None)
        images = [where]
        _check_complete(spec, shapes[0], images[0], "full-resolution")
        resampling = resampling_of(spec)
        for level in range(1, len(shapes)):
            strip: OverviewStrip | HalvesStrip
            payloads: list[Any]
            if level == 1 and halves is not None:
                strip = HalvesStrip(spec, shapes[1])
                payloads = list(strip.payloads(halves))
            else:
                strip = OverviewStrip(spec, level, shapes[level - 1], shapes[level], resampling)
                payloads = list(strip.payloads(images[-1]))
            log.info(
                "overview level %d (%s, from %s): %d task(s)",
                level,
                shapes[level],
                "the reduced tiles" if isinstance(strip, HalvesStrip) else "the level before",
                len(payloads),
            )
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


def _scan(
    receipts: Mapping[int, Receipt], first: tuple[int, int] | None
) -> tuple[Where, list[Half] | None]:
    """Where the full-resolution tiles are spooled, and the reduced tiles that make
    overview level 1 of shape ``first`` (None: there is no level 1, or it is made from
    the full resolution), in one pass over ``receipts``."""
    where: Where = {}
    halves: list[Half] | None = [] if first is not None else None
    area = 0
    for receipt in receipts.values():
        for index, offset, length, *_ in receipt["segments"]:
            where[int(index)] = (str(receipt["file"]), int(offset), int(length))
        if halves is None:
            continue
        half = half_of(receipt)
        if half is None:
            halves = None
            continue
        halves.append(half)
        area += half[5] * half[6]
    if halves is not None and first is not None and area != first[0] * first[1]:
        halves = None
    return where, halves


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


def _strips(spec: SinkSpec, shape: tuple[int, int]) -> Iterator[tuple[int, int, int]]:
    """``(row, first_col, stop_col)`` of each strip of TIFF tiles of a level of ``shape``:
    as many tiles of one row as make at most :data:`STRIP_BYTES` of the level before."""
    bh, bw = spec.chunks
    rows, cols = _tiles_of(shape, spec.chunks)
    itemsize = np.dtype(spec.dtype).itemsize * spec.bands
    per_strip = max(1, STRIP_BYTES // (4 * bh * bw * itemsize))
    for row in range(rows):
        for first in range(0, cols, per_strip):
            yield row, first, min(cols, first + per_strip)


def _write_strip(
    spec: SinkSpec, level: int, shape: tuple[int, int], row: int, first: int, pixels: Array
) -> Receipt:
    """Encode and spool the strip of TIFF tiles of overview ``level`` (of ``shape``) that
    starts at tile ``(row, first)``."""
    bh, bw = spec.chunks
    window = Window(row * bh, first * bw, pixels.shape[0], pixels.shape[1])
    sink = _LevelSink(replace(spec, shape=shape), level)
    across = _tiles_of(shape, spec.chunks)[1]
    return sink.write(row * across + first, window, pixels)


@dataclass(frozen=True, slots=True)
class OverviewStrip:
    """A picklable task: build one strip of TIFF tiles of overview ``level`` (in a worker)
    from the level before, decoded.

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
        below_rows, below_cols = _tiles_of(self.below, self.spec.chunks)
        for row, first, stop in _strips(self.spec, self.shape):
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
        return _write_strip(self.spec, self.level, self.shape, row, first, reduced)


@dataclass(frozen=True, slots=True)
class HalvesStrip:
    """A picklable task: encode one strip of TIFF tiles of overview level 1 (of ``shape``,
    in a worker) from the tiles the workers reduced (see :mod:`tilewise.io._cog_halves`).

    Its payload is ``(row, first_col, stop_col, halves)``: the strip's tile row and
    columns, and the reduced tiles that overlap it.
    """

    spec: SinkSpec
    shape: tuple[int, int]

    def payloads(self, halves: list[Half]) -> Iterator[tuple[int, int, int, tuple[Half, ...]]]:
        """One payload per strip of level 1, with the reduced tiles it reads."""
        rows = by_block_row(halves, self.spec.chunks[0])
        for row, first, stop in _strips(self.spec, self.shape):
            window = self._window(row, first, stop)
            yield row, first, stop, tuple(overlapping(rows.get(row, ()), window))

    def _window(self, row: int, first: int, stop: int) -> Window:
        bh, bw = self.spec.chunks
        top, left = row * bh, first * bw
        return Window(
            top, left, min(bh, self.shape[0] - top), min((stop - first) * bw, self.shape[1] - left)
        )

    def __call__(self, payload: tuple[int, int, int, tuple[Half, ...]]) -> Receipt:
        row, first, stop, halves = payload
        pixels = read_halves(self.spec, self._window(row, first, stop), halves)
        return _write_strip(self.spec, 1, self.shape, row, first, pixels)


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
