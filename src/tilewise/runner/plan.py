"""Planning a run: open the input's header, build the pipeline and grid, describe the output."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tilewise import io
from tilewise.defaults import DEFAULT_TILE
from tilewise.errors import OpError, OutputError, PipelineError, UsageError
from tilewise.geometry import Grid, Layout, Window, parse_tile_shape
from tilewise.geometry.planes import parse_plane_range
from tilewise.io import SinkSpec, Source, SourceSpec
from tilewise.io.georef import Georef
from tilewise.pipeline import Pipeline
from tilewise.runner.georef import NodataOption, input_georef, input_nodata, output_georef

__all__ = ["DEFAULT_TILE", "Plan", "make_plan"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Everything decided before the first tile runs."""

    source: SourceSpec
    source_info: dict[str, Any]
    source_identity: dict[str, Any]
    pipeline: Pipeline
    grid: Grid
    sink: SinkSpec | None

    @property
    def out_dtype(self) -> np.dtype[Any]:
        """dtype of the output."""
        return self.pipeline.out_dtype(np.dtype(self.source_info["dtype"]))

    @property
    def out_bands(self) -> int:
        """Band count of the output."""
        return self.pipeline.out_bands(int(self.source_info["bands"]))

    @property
    def planes(self) -> dict[str, Any] | None:
        """The input's stack (axes, stored shape, the planes read), or None for a 2-D image."""
        stack: dict[str, Any] | None = self.source_info.get("stack")
        return stack

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that started the output."""
        stack = {"stack": self.planes} if self.planes is not None else {}
        fingerprint = {
            "input": self.source_identity,
            **stack,
            "pipeline": self.pipeline.specs(),
            "grid": self.grid.to_dict(),
            "output": self.sink.fingerprint() if self.sink else None,
        }
        if self.pipeline.nodata is not None:
            fingerprint["nodata"] = self.pipeline.nodata.to_dict()
        return fingerprint

    def _largest_window(self) -> int:
        """Pixels of the largest window a worker holds for a full tile, at any stage."""
        rows, cols = self.grid.effective_tile_shape
        if self.grid.stages is None:
            halo = self.grid.halo
            return (rows + 2 * halo) * (cols + 2 * halo)
        # a rescaling pipeline reads in the input's scale, with each stage's halo there
        height, width = self.grid.image_shape
        core = Window((height - rows) // 2, (width - cols) // 2, rows, cols)
        return max(window.area for window in self.grid.stages.windows(core))

    def memory_estimate(self, workers: int) -> int:
        """Rough peak bytes per run: each worker holds a read window and a few copies of it."""
        window = self._largest_window()
        bands = max(int(self.source_info["bands"]), self.out_bands)
        itemsize = max(np.dtype(self.source_info["dtype"]).itemsize, self.out_dtype.itemsize, 4)
        per_worker = window * bands * itemsize * (len(self.pipeline) + 2)
        return int(workers * per_worker + workers * 60 * 2**20)

    def summary(self, workers: int) -> dict[str, Any]:
        """A description for ``tilewise plan`` and the report."""
        image_pixels = self.grid.source_shape[0] * self.grid.source_shape[1]
        read = self.grid.read_pixels() if self.grid.per_plane <= 200_000 else None
        return {
            "input": self.source_info,
            "pipeline": self.pipeline.specs(),
            "nodata": None if self.pipeline.nodata is None else self.pipeline.nodata.to_dict(),
            "halo": self.pipeline.halo,
            "grid": self.grid.to_dict(),
            "read_overhead": None if read is None else round(read / image_pixels - 1, 4),
            "output": None
            if self.sink is None
            else {
                "path": self.sink.path,
                "format": self.sink.format,
                "dtype": self.sink.dtype,
                "bands": self.sink.bands,
                "chunks": list(self.sink.chunks),
                "options": self.sink.options,
                **(
                    {"planes": list(self.sink.planes), "axes": self.sink.axes}
                    if self.sink.planes
                    else {}
                ),
            },
            "workers": workers,
            "memory_estimate_bytes": self.memory_estimate(workers),
        }


def make_plan(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None,
    pipeline: Pipeline,
    *,
    tile: str | int | tuple[int, int] = DEFAULT_TILE,
    layout: str | Layout = Layout.GRID,
    creation_options: dict[str, Any] | None = None,
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    max_whole_pixels: int = io.DEFAULT_MAX_WHOLE_PIXELS,
    drop_georef: bool = False,
    dst_nodata: float | None = None,
    format: str | None = None,
    nodata: NodataOption = "file",
    axes: str | None = None,
    channel_axis: int | None = None,
    planes: str | tuple[int | None, int | None, int] | None = None,
    page: int | None = None,
) -> Plan:
    """Plan a run of ``pipeline`` from ``src`` to ``dst`` (``None`` for ``tilewise plan``).

    Opens only the input's header. The tile shape is adjusted to the output's
    block grid when the format needs it (TIFF tiles are multiples of 16 px).
    The input's georeferencing, as the pipeline maps it, goes to the output
    (``dst_nodata`` replaces its nodata value); an output format that cannot hold
    it is refused unless ``drop_georef`` (see :func:`tilewise.runner.georef.output_georef`).
    ``format`` names the output format (``"cog"``); by default the extension picks it.
    The ops leave out the pixels of the input's nodata value, or of ``nodata``
    (``"none"``: none), and write ``dst_nodata`` there (see
    :meth:`Pipeline.with_nodata`); the returned plan's pipeline carries both.

    A stack's planes are tiled alike, one after another, and its output keeps the
    leading axes (see :mod:`tilewise.io._stacks`): ``axes``, ``channel_axis``,
    ``planes`` (``"0:10"``) and ``page`` say how to read it.
    """
    if dst is not None and _same_place(src, dst):
        raise UsageError(f"{dst}: the output would replace the input; write to another path")
    if dst is not None and not io.is_url(os.fspath(dst)) and Path(dst).is_symlink():
        raise OutputError(
            f"{dst}: is a symlink (to {os.readlink(dst)}); a finished output replaces whatever "
            "is under its name, which would be the link, not what it points to: write to the "
            "link's target path instead, or remove the link"
        )
    spec = SourceSpec(
        str(src),
        max_pixels=max_pixels,
        max_whole_pixels=max_whole_pixels,
        axes=axes,
        channel_axis=channel_axis,
        planes=parse_plane_range(planes) if isinstance(planes, str) else planes,
        page=page,
    )
    source: Source = io.open_source(spec)
    try:
        info = source.info()
        identity = source.identity()
        image_shape = source.shape
        bands, dtype = source.bands, source.dtype
        stack = source.planes
        stack_kind = source.stack_kind or ""
        georef = input_georef(source, drop=drop_georef or dst is None)
        missing = input_nodata(source, nodata)
    finally:
        source.close()
    pipeline.check_tileable()
    pipeline.check_input(dtype, bands, source=str(src))
    pipeline = pipeline.with_nodata(missing, dtype, dst_nodata=dst_nodata, source=str(src))
    if georef is not None:
        georef = replace(georef, nodata=missing)
    elif missing is not None and dst is not None and not drop_georef:
        georef = Georef(band_count=bands, nodata=missing)  # --nodata on a plain image
    try:
        pipeline.out_bands(bands)
    except OpError as err:
        raise PipelineError(f"{src}: {bands}-band input: {err}") from err
    stages = pipeline.stage_map(image_shape) if pipeline.rescales else None
    out_shape = stages.output_shape if stages is not None else image_shape
    tile_shape = parse_tile_shape(tile)
    layout = Layout(layout)
    fmt = io.output_format(dst, format) if dst is not None else None
    options = io.parse_creation_options(fmt, dict(creation_options or {})) if fmt else {}
    if fmt is not None:
        aligned = io.align_tile(fmt, tile_shape, out_shape, options)
        if aligned != tile_shape:
            log.info("tile %s rounded to %s to align with %s blocks", tile_shape, aligned, fmt)
            tile_shape = aligned
    grid = Grid(
        out_shape,
        tile_shape,
        layout,
        halo=0 if stages else pipeline.halo,
        stages=stages,
        planes=stack.count if stack is not None else 1,
    )
    sink = None
    if dst is not None and fmt is not None:
        out_georef = output_georef(
            pipeline,
            georef,
            dtype,
            bands,
            fmt,
            Path(dst),
            shape=image_shape,
            drop=drop_georef,
            dst_nodata=dst_nodata,
        )
        sink = SinkSpec(
            path=_output_name(dst),
            format=fmt,
            shape=out_shape,
            bands=pipeline.out_bands(bands),
            dtype=pipeline.out_dtype(dtype).name,
            chunks=io.sink_chunks(fmt, grid.effective_tile_shape, out_shape, options),
            options=options,
            token=uuid.uuid4().hex,
            georef=out_georef,
            planes=stack.shape if stack is not None else (),
            axes=stack.out_axes if stack is not None else "",
            stack_kind=stack_kind if stack is not None and stack.shape else "",
        )
    return Plan(spec, info, identity, pipeline, grid, sink)


def _same_place(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> bool:
    """Whether ``dst`` names the input itself (URLs compared as written, paths resolved)."""
    remote = io.is_url(os.fspath(src)), io.is_url(os.fspath(dst))
    if any(remote):
        return all(remote) and os.fspath(src).rstrip("/") == os.fspath(dst).rstrip("/")
    return Path(dst).resolve() == Path(src).resolve()


def _output_name(dst: str | os.PathLike[str]) -> str:
    """The output's path as the sink gets it: a URL as written (no trailing ``/``), or a path."""
    if io.is_url(os.fspath(dst)):
        return os.fspath(dst).rstrip("/")
    return str(Path(dst))
