"""The floor: the least work the reference pipeline needs, written by hand with no framework.

Usage::

    python benchmarks/floor.py INPUT.tif OUTPUT.tif|OUTPUT.zarr [--workers 2] [--band 2048]

What "overhead" means for tilewise is measured against this script.  It does exactly
the work the job needs and nothing else, with the same libraries tilewise uses:

* ``--workers`` processes (forked once); worker *p* owns one contiguous run of output
  rows, so the input is split into as many equal shares as there are workers (no
  scheduling, no supervision, no journal, no retries);
* each worker decodes exactly the input TIFF segments its rows need (tifffile's own
  segment decoder, byte ranges read with ``os.pread``), each segment once: a decoded
  row of segments is kept until the next band no longer needs it; only the segment row
  at a share's border is decoded by both neighbours (the halo);
* the same kernels as tilewise's ``gaussian:sigma=4`` + ``threshold:value=127`` on
  uint8 — ``cv2.GaussianBlur`` 33 x 33, ``BORDER_REFLECT_101``, then ``cv2.threshold``
  — one OpenCV thread per process, on bands that span the image's whole width (the
  fastest shape for the kernel) and carry a 16-px halo above and below;
* the same codecs and settings as tilewise's defaults: TIFF tiles of 512 x 512 with
  Deflate level 6 (``tifffile.TIFF.COMPRESSORS``), or Zarr v3 chunks of ``band`` x
  ``band`` with Zstd level 3 written as chunk files directly (no zarr API per chunk);
* TIFF: the workers spool their encoded tiles, and the main process writes one tiled
  BigTIFF from them in order (tifffile accepts pre-encoded segments), as tilewise's
  assembly does; Zarr: the main process writes the array's metadata, the workers the
  chunk files.

The output is bit-identical to the whole-image result (checked by
``reference_pipeline.py``, where it runs as the peers ``floor_tif`` and ``floor_zarr``).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import tifffile

RADIUS = 16
KSIZE = (2 * RADIUS + 1, 2 * RADIUS + 1)
SIGMA = 4.0
THRESHOLD = 127
TIFF_BLOCK = 512
DEFLATE_LEVEL = 6
ZSTD_LEVEL = 3

Segments = list[tuple[int, int, int]]  # (tile index, offset in spool, length)


def _shares(rows: int, unit: int, workers: int) -> list[tuple[int, int]]:
    """Split ``rows`` into ``workers`` contiguous runs whose borders are multiples of ``unit``."""
    units = -(-rows // unit)
    bounds = [round(units * p / workers) * unit for p in range(workers + 1)]
    bounds[-1] = rows
    return [(a, min(b, rows)) for a, b in itertools.pairwise(bounds) if a < b]


class _Input:
    """One worker's reader of the input's segment rows, each decoded once."""

    def __init__(self, path: str) -> None:
        self.tif = tifffile.TiffFile(path)
        self.page = self.tif.pages.first
        self.fd = os.open(path, os.O_RDONLY)
        self.shape = self.page.shape
        self.seg_h, self.seg_w = self.page.chunks[:2]
        self.across = -(-self.shape[1] // self.seg_w)
        self.decoded: dict[int, np.ndarray] = {}

    def segment_row(self, srow: int) -> np.ndarray:
        """Segment row ``srow`` decoded, as an array of ``seg_h`` rows x the full width."""
        if srow not in self.decoded:
            height = min(self.seg_h, self.shape[0] - srow * self.seg_h)
            out = np.empty((height, self.shape[1]), np.uint8)
            for scol in range(self.across):
                index = srow * self.across + scol
                offset = self.page.dataoffsets[index]
                count = self.page.databytecounts[index]
                data = os.pread(self.fd, count, offset)
                block, _, _ = self.page.decode(data, index)
                c0 = scol * self.seg_w
                width = min(self.seg_w, self.shape[1] - c0)
                out[:, c0 : c0 + width] = block.reshape(self.seg_h, self.seg_w)[:height, :width]
            self.decoded[srow] = out
        return self.decoded[srow]

    def rows(self, top: int, bottom: int) -> np.ndarray:
        """Input rows ``[top, bottom)``; forgets segment rows above ``top``."""
        first, last = top // self.seg_h, (bottom - 1) // self.seg_h
        for stale in [s for s in self.decoded if s < first]:
            del self.decoded[stale]
        parts = [self.segment_row(s) for s in range(first, last + 1)]
        stacked = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return stacked[top - first * self.seg_h : bottom - first * self.seg_h]


def _work(args: tuple[str, str, str, int, int, int]) -> Segments:
    """One worker: filter its share of rows band by band; encode and write its output."""
    src, dst, kind, start, stop, band = args
    cv2.setNumThreads(1)
    reader = _Input(src)
    height, width = reader.shape
    spool = None if kind == "zarr" else open(dst, "wb")  # noqa: SIM115 - closed below
    segments: Segments = []
    offset = 0
    across = -(-width // TIFF_BLOCK)
    try:
        for y0 in range(start, stop, band):
            y1 = min(y0 + band, stop)
            top, bottom = max(0, y0 - RADIUS), min(height, y1 + RADIUS)
            blurred = cv2.GaussianBlur(
                reader.rows(top, bottom), KSIZE, SIGMA, borderType=cv2.BORDER_REFLECT_101
            )
            core = blurred[y0 - top : y1 - top]
            _, result = cv2.threshold(core, THRESHOLD, 255, cv2.THRESH_BINARY)
            if kind == "zarr":
                for c0 in range(0, width, band):
                    chunk = np.zeros((band, band), np.uint8)
                    piece = result[:, c0 : c0 + band]
                    chunk[: piece.shape[0], : piece.shape[1]] = piece
                    path = Path(dst) / "c" / str(y0 // band) / str(c0 // band)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(imagecodecs.zstd_encode(chunk, level=ZSTD_LEVEL))
                continue
            assert spool is not None
            for r in range(0, y1 - y0, TIFF_BLOCK):
                for c in range(0, width, TIFF_BLOCK):
                    tile = np.zeros((TIFF_BLOCK, TIFF_BLOCK), np.uint8)
                    piece = result[r : r + TIFF_BLOCK, c : c + TIFF_BLOCK]
                    tile[: piece.shape[0], : piece.shape[1]] = piece
                    data = imagecodecs.deflate_encode(tile, level=DEFLATE_LEVEL)
                    spool.write(data)
                    index = ((y0 + r) // TIFF_BLOCK) * across + c // TIFF_BLOCK
                    segments.append((index, offset, len(data)))
                    offset += len(data)
    finally:
        if spool is not None:
            spool.close()
        os.close(reader.fd)
        reader.tif.close()
    return segments


def run(src: str, dst: str, workers: int, band: int) -> None:
    """Filter ``src`` into ``dst`` (``.tif`` or ``.zarr``) with ``workers`` processes."""
    with tifffile.TiffFile(src) as tif:
        shape = tif.pages.first.shape
    if len(shape) != 2:
        raise SystemExit(f"{src}: the floor handles one-band images, got shape {shape}")
    kind = "zarr" if dst.endswith(".zarr") else "tif"
    unit = band if kind == "zarr" else TIFF_BLOCK
    if band % TIFF_BLOCK:
        raise SystemExit(f"--band must be a multiple of {TIFF_BLOCK}")
    shares = _shares(shape[0], unit, workers)
    out = Path(dst)
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    spool_dir = tempfile.mkdtemp(prefix="floor-", dir=out.parent)
    try:
        if kind == "zarr":  # imported here: the TIFF route pays nothing for zarr
            import zarr
            from zarr.codecs import ZstdCodec

            zarr.create_array(
                out,
                shape=shape,
                chunks=(band, band),
                dtype="uint8",
                compressors=ZstdCodec(level=ZSTD_LEVEL),
                fill_value=0,
            )
            targets = [dst] * len(shares)
        else:
            targets = [os.path.join(spool_dir, f"{p}.spool") for p in range(len(shares))]
        jobs = [(src, t, kind, a, b, band) for t, (a, b) in zip(targets, shares, strict=True)]
        with mp.get_context("fork").Pool(len(jobs)) as pool:
            results = pool.map(_work, jobs, chunksize=1)
        if kind == "tif":
            where = {i: (targets[p], o, n) for p, segs in enumerate(results) for i, o, n in segs}

            def encoded() -> object:
                handles = {t: open(t, "rb") for t in targets}  # noqa: SIM115 - closed below
                try:
                    for index in range(len(where)):
                        name, offset, length = where[index]
                        handles[name].seek(offset)
                        yield handles[name].read(length)
                finally:
                    for handle in handles.values():
                        handle.close()

            with tifffile.TiffWriter(dst, bigtiff=True) as writer:
                writer.write(
                    encoded(),
                    shape=shape,
                    dtype=np.uint8,
                    tile=(TIFF_BLOCK, TIFF_BLOCK),
                    compression="deflate",
                    photometric="minisblack",
                    metadata=None,
                )
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="tiled uint8 TIFF (the reference image)")
    parser.add_argument("output", help="OUTPUT.tif or OUTPUT.zarr")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--band", type=int, default=2048, help="rows per band (and Zarr chunk)")
    args = parser.parse_args(argv)
    run(args.input, args.output, args.workers, args.band)
    return 0


if __name__ == "__main__":
    sys.exit(main())
