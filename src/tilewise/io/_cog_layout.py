"""The byte layout of a Cloud Optimized GeoTIFF, written by one process from encoded tiles.

The file is laid out as GDAL's COG driver lays it out, so a reader fetching
a window over HTTP needs the first bytes and then only the tiles it wants:

1. the TIFF header (classic, or BigTIFF);
2. GDAL's "ghost" structural metadata (``LAYOUT=IFDS_BEFORE_DATA``,
   ``BLOCK_ORDER=ROW_MAJOR``, ``BLOCK_LEADER=SIZE_AS_UINT4``,
   ``BLOCK_TRAILER=LAST_4_BYTES_REPEATED``);
3. every IFD, full resolution first, then the overviews from the largest,
   each followed by its tag values (tile offsets and byte counts included);
4. the tiles, smallest overview first and full resolution last, each in row
   order, each preceded by its byte count (4 bytes) and followed by a copy of
   its last 4 bytes, as the ghost metadata announces.

Every tile's size is known before the first byte is written (the workers
encoded them), so offsets are computed first and the file is written in one
pass, copying the encoded tiles.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = ["Ifd", "Layout", "Tag", "ghost_metadata", "plan_layout", "write_layout"]

#: TIFF field types: struct format of one value.
_TYPES = {
    1: "B",
    2: "s",
    3: "H",
    4: "I",
    6: "b",
    8: "h",
    9: "i",
    11: "f",
    12: "d",
    16: "Q",
    17: "q",
}
_SHORT, _LONG, _LONG8 = 3, 4, 16
TILE_OFFSETS, TILE_BYTE_COUNTS = 324, 325


def ghost_metadata() -> bytes:
    """GDAL's structural metadata block, as GDAL writes it after a COG's header."""
    body = (
        "LAYOUT=IFDS_BEFORE_DATA\n"
        "BLOCK_ORDER=ROW_MAJOR\n"
        "BLOCK_LEADER=SIZE_AS_UINT4\n"
        "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\n"
        "KNOWN_INCOMPATIBLE_EDITION=NO\n"
    )
    text = f"GDAL_STRUCTURAL_METADATA_SIZE={len(body):06d} bytes\n{body}"
    return text.encode("ascii")


@dataclass(frozen=True, slots=True)
class Tag:
    """One TIFF tag: code, field type and values (a ``str`` or ``bytes`` for ASCII)."""

    code: int
    type: int
    values: Sequence[Any] | str | bytes

    def payload(self, endian: str) -> bytes:
        """The tag's values as stored."""
        if isinstance(self.values, str | bytes):
            raw = self.values.encode() if isinstance(self.values, str) else self.values
            if self.type != 2:  # BYTE or UNDEFINED given as bytes
                return raw
            return raw if raw.endswith(b"\0") else raw + b"\0"
        if self.type not in _TYPES:
            raise ValueError(f"TIFF tag {self.code}: field type {self.type} is not written")
        values = list(self.values)
        return struct.pack(f"{endian}{len(values)}{_TYPES[self.type]}", *values)

    def count(self) -> int:
        """Number of values (bytes, with the final NUL, for ASCII)."""
        if isinstance(self.values, str | bytes):
            return len(self.payload("<"))
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Ifd:
    """One image: its tags (without tile offsets and byte counts) and its tiles' byte counts."""

    tags: tuple[Tag, ...]
    tile_sizes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything goes: the IFDs' bytes and each image's tile offsets."""

    bigtiff: bool
    head: bytes
    #: Per image (IFD order), the offset of each tile's data.
    offsets: tuple[tuple[int, ...], ...]
    size: int


class _Format:
    def __init__(self, bigtiff: bool) -> None:
        self.bigtiff = bigtiff
        self.header = 16 if bigtiff else 8
        self.entry = 20 if bigtiff else 12
        self.inline = 8 if bigtiff else 4
        self.count = "Q" if bigtiff else "H"
        self.pointer = "Q" if bigtiff else "I"
        self.offset_type = _LONG8 if bigtiff else _LONG

    def ifd_size(self, tags: Sequence[Tag]) -> int:
        """Bytes of an IFD and its values stored out of line (each at an even offset)."""
        fixed = struct.calcsize(self.count) + len(tags) * self.entry + self.inline
        return fixed + sum(_even(len(p)) for p in self._outside(tags))

    def _outside(self, tags: Sequence[Tag]) -> list[bytes]:
        payloads = (tag.payload("<") for tag in tags)
        return [p for p in payloads if len(p) > self.inline]

    def pack_ifd(self, tags: Sequence[Tag], at: int, following: int) -> bytes:
        """An IFD written at offset ``at``, its out-of-line values after it, ``following`` next."""
        tags = sorted(tags, key=lambda tag: tag.code)
        values_at = at + struct.calcsize(self.count) + len(tags) * self.entry + self.inline
        entries = [struct.pack(f"<{self.count}", len(tags))]
        after = []
        for tag in tags:
            payload = tag.payload("<")
            head = struct.pack("<HH", tag.code, tag.type)
            count = struct.pack(f"<{self.pointer}", tag.count())
            if len(payload) <= self.inline:
                field = payload.ljust(self.inline, b"\0")
            else:
                field = struct.pack(f"<{self.pointer}", values_at)
                after.append(payload.ljust(_even(len(payload)), b"\0"))
                values_at += _even(len(payload))
            entries.append(head + count + field)
        entries.append(struct.pack(f"<{self.pointer}", following))
        return b"".join(entries) + b"".join(after)


def _even(size: int) -> int:
    return size + (size & 1)


#: Bytes around each tile: its byte count before it, its last 4 bytes repeated after it.
_LEADER = _TRAILER = 4


def _with_offsets(ifd: Ifd, fmt: _Format, offsets: Sequence[int]) -> tuple[Tag, ...]:
    return (
        *ifd.tags,
        Tag(TILE_OFFSETS, fmt.offset_type, tuple(offsets)),
        Tag(TILE_BYTE_COUNTS, _LONG, ifd.tile_sizes),
    )


def plan_layout(ifds: Sequence[Ifd], bigtiff: bool) -> Layout:
    """Place the header, ghost metadata, IFDs and tiles (see the module docstring).

    ``ifds`` is full resolution first, then the overviews from the largest. Tiles are
    placed smallest overview first.
    """
    fmt = _Format(bigtiff)
    ghost = ghost_metadata()
    placeholder = [[0] * len(ifd.tile_sizes) for ifd in ifds]
    sizes = [
        fmt.ifd_size(_with_offsets(ifd, fmt, zeros))
        for ifd, zeros in zip(ifds, placeholder, strict=True)
    ]
    first_ifd = fmt.header + _even(len(ghost))
    ifd_at = []
    cursor = first_ifd
    for size in sizes:
        ifd_at.append(cursor)
        cursor += size
    offsets: list[tuple[int, ...]] = [()] * len(ifds)
    for number in reversed(range(len(ifds))):
        placed = []
        for size in ifds[number].tile_sizes:
            placed.append(cursor + _LEADER)
            cursor += _LEADER + size + _TRAILER
        offsets[number] = tuple(placed)
    parts = [_header(fmt, first_ifd), ghost.ljust(_even(len(ghost)), b" ")]
    for number, ifd in enumerate(ifds):
        following = ifd_at[number + 1] if number + 1 < len(ifds) else 0
        packed = fmt.pack_ifd(_with_offsets(ifd, fmt, offsets[number]), ifd_at[number], following)
        assert len(packed) == sizes[number]
        parts.append(packed)
    return Layout(bigtiff, b"".join(parts), tuple(offsets), cursor)


def _header(fmt: _Format, first_ifd: int) -> bytes:
    if fmt.bigtiff:
        return b"II" + struct.pack("<HHHQ", 43, 8, 0, first_ifd)
    return b"II" + struct.pack("<HI", 42, first_ifd)


def fits_classic(ifds: Sequence[Ifd]) -> bool:
    """Whether a classic TIFF (32-bit offsets) can hold the file."""
    return plan_layout(ifds, bigtiff=False).size < 2**32


def write_layout(
    fh: BinaryIO,
    layout: Layout,
    tiles: Callable[[int], Iterable[bytes]],
    expected: Sequence[Sequence[int]],
) -> None:
    """Write ``layout``'s head, then each image's tiles, smallest overview first.

    ``tiles(number)`` yields the encoded tiles of image ``number`` in row order; each
    must be as long as ``expected[number]`` says (the layout was planned with it).
    """
    fh.write(layout.head)
    for number in reversed(range(len(layout.offsets))):
        for data, size in zip(tiles(number), expected[number], strict=True):
            if len(data) != size:
                raise ValueError(f"a tile of image {number} is {len(data)} bytes, not {size}")
            fh.write(struct.pack("<I", size))
            fh.write(data)
            fh.write(data[-4:].rjust(4, b"\0"))
