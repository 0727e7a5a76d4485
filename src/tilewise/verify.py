"""Checking an op's declarations against what it does, on a few tiles, before a run.

A user op declares its halo, output dtype and band count; a wrong halo makes
tiles silently differ from the whole image, a wrong dtype or band count fails
every tile. Two checks catch both before the run, on pixels, in a worker
process (the main process never runs an op on pixels):

* :func:`check_first_tile` runs the first tile and compares the result's dtype
  and bands with what the pipeline declares for the output.
* :func:`verify` runs a sample of tiles — the corners, the middle of each edge
  and the centre — with the declared halo and with much larger ones. For each
  op it grows its halo (the others held large) until the tile's core agrees
  with the large-halo result: the smallest such halo is the one the op needs.
  An op whose result keeps changing as the halo grows depends on where the tile
  starts: it is not translation-invariant and cannot be tiled exactly.

The image is never processed whole, so a halo wider than the largest one tried
(``max(64, 4 x declared)`` per op) is reported as the op not being
translation-invariant, with the difference seen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise import io
from tilewise.defaults import DEFAULT_TILE
from tilewise.errors import PipelineError
from tilewise.executors import Done, Executor, Supervision, Task, make_executor
from tilewise.geometry import Layout, Stage, StageMap, Tile, Window
from tilewise.io import SourceSpec, cached_source
from tilewise.pipeline import OpLike, Pipeline, as_pipeline
from tilewise.runner.plan import Plan, make_plan

__all__ = ["OpVerdict", "Verdict", "check_first_tile", "has_user_ops", "verify"]

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]

#: The smallest largest halo tried for an op, and how many times its declared halo.
_MIN_LARGE_HALO, _LARGE_FACTOR = 64, 4


def has_user_ops(pipeline: Pipeline) -> bool:
    """Whether some op is not built in (built-in ops' declarations are tested)."""
    return any(op.definition.source or op.definition.by_value for op in pipeline)


def _bands(image: Array) -> int:
    return 1 if image.ndim == 2 else int(image.shape[2])


@dataclass(frozen=True, slots=True)
class _Declared:
    """What a worker needs to run ops on one tile and report dtype/bands op by op."""

    source: SourceSpec
    pipeline: Pipeline
    stages: StageMap

    def __call__(self, core: Window) -> list[tuple[str, int]] | None:
        try:
            return self._found(core)
        except Exception:  # not judged here: the run reports this tile's failure itself
            return None

    def _found(self, core: Window) -> list[tuple[str, int]]:
        windows = self.stages.windows(core)
        image = cached_source(self.source).read(windows[0])
        current = windows[0]
        found = []
        for index, op in enumerate(self.pipeline.ops):
            wanted = windows[index]
            image = Pipeline((op,))(image[wanted.relative_to(current).slices])
            current = self.stages.forward(index, wanted)
            found.append((image.dtype.name, _bands(image)))
        return found


def _run_all(
    executor: Executor, call: Any, tasks: list[Task]
) -> tuple[dict[int, Any], dict[int, str]]:
    """Run ``tasks``; return the values of those done and the causes of those failed."""
    values, failed = {}, {}
    for outcome in executor.map_tasks(call, tasks):
        if isinstance(outcome, Done):
            values[outcome.key] = outcome.value
        else:
            log.info("verify: tile %d failed: %s", outcome.key, outcome.cause)
            failed[outcome.key] = outcome.cause
    return values, failed


def check_first_tile(plan: Plan, executor: Executor) -> None:
    """Run the first tile in a worker; raise if its dtype or bands differ from the declared.

    An op whose result does not run (an exception, a crash) is not judged here:
    the run goes on and reports that tile as it would any other.

    Raises
    ------
    PipelineError
        Naming the first op whose output differs from its declaration, and how
        to declare it.
    """
    pipeline = plan.pipeline
    stages = pipeline.stage_map(plan.grid.source_shape)
    core = plan.grid.tile(0).core
    found, _ = _run_all(executor, _Declared(plan.source, pipeline, stages), [Task(0, core)])
    if found.get(0) is None:
        return
    _compare_declarations(plan, found[0], core)


def _compare_declarations(plan: Plan, found: list[tuple[str, int]], core: Window) -> None:
    dtype = np.dtype(plan.source_info["dtype"])
    bands = int(plan.source_info["bands"])
    final = (plan.out_dtype.name, plan.out_bands)
    if tuple(found[-1]) == final:
        return
    for op, (got_dtype, got_bands) in zip(plan.pipeline.ops, found, strict=True):
        dtype, bands = op.out_dtype(dtype), op.out_bands(bands)
        if (dtype.name, bands) != (got_dtype, got_bands):
            break
    raise PipelineError(
        f"op {op.spec()} is declared to give {bands}-band {dtype.name} images, but on the "
        f"first tile ({core}) it gave {got_bands}-band {got_dtype}; declare its output, e.g. "
        f"@tilewise.op(dtype={got_dtype!r}, bands={got_bands}), and run the command again "
        "(nothing was written)"
    )


@dataclass(frozen=True, slots=True)
class _Probe:
    """Worker side of :func:`verify`: compare one tile's core at several halos."""

    source: SourceSpec
    pipeline: Pipeline
    input_shape: tuple[int, int]

    def core(self, core: Window, halos: Sequence[int]) -> Array:
        stages = []
        for op, halo in zip(self.pipeline.ops, halos, strict=True):
            up, down = op.scale or (1, 1)
            stages.append(Stage(halo, up, down))
        stage_map = StageMap(self.input_shape, tuple(stages))
        read = stage_map.windows(core)[0]
        image = cached_source(self.source).read(read)
        return self.pipeline.apply_tile(image, Tile(0, core, read), stage_map)

    def __call__(self, core: Window) -> dict[str, Any]:
        declared = [op.halo for op in self.pipeline.ops]
        large = [max(_MIN_LARGE_HALO, _LARGE_FACTOR * h) for h in declared]
        reference = self.core(core, large)
        result = self.core(core, declared)
        out: dict[str, Any] = {
            "equal": _same(result, reference),
            "max_diff": _max_diff(result, reference),
            "needed": list(declared),
            "variant": [False] * len(declared),
        }
        if out["equal"]:
            return out
        for index, halo in enumerate(declared):
            larger = [*large[:index], 2 * large[index], *large[index + 1 :]]
            if not _same(self.core(core, larger), reference):
                out["variant"][index] = True
                continue
            low, high = halo, large[index]  # low gives another result, high the reference
            trial = [*large[:index], halo, *large[index + 1 :]]
            if _same(self.core(core, trial), reference):
                continue
            while high - low > 1:
                middle = (low + high) // 2
                trial[index] = middle
                if _same(self.core(core, trial), reference):
                    high = middle
                else:
                    low = middle
            if high == large[index]:  # no halo short of the largest tried will do
                out["variant"][index] = True
            else:
                out["needed"][index] = high
        return out


def _same(a: Array, b: Array) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=bool(np.issubdtype(a.dtype, np.inexact))))


def _max_diff(a: Array, b: Array) -> float:
    if a.shape != b.shape:
        return float("inf")
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    finite = diff[np.isfinite(diff)]
    return float(finite.max()) if finite.size else 0.0


@dataclass
class OpVerdict:
    """What :func:`verify` found for one op."""

    op: str
    declared_halo: int
    needed_halo: int
    translation_invariant: bool = True
    max_diff: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the declared halo is enough and the op tiles exactly."""
        return self.translation_invariant and self.needed_halo <= self.declared_halo

    def message(self) -> str:
        """One line for people: what is wrong and what to do."""
        if not self.translation_invariant:
            return (
                f"op {self.op} is not translation-invariant (differs by up to "
                f"{self.max_diff:g}): its result depends on where a tile starts, beyond "
                f"any halo tried (up to {max(_MIN_LARGE_HALO, _LARGE_FACTOR * self.declared_halo)}"
                " px); tiles cannot equal the whole image — run it on whole images with "
                "'tilewise batch', or make it local"
            )
        if self.needed_halo > self.declared_halo:
            return (
                f"op {self.op} needs a halo of at least {self.needed_halo} (declared "
                f"{self.declared_halo}); declare it — @tilewise.op(halo={self.needed_halo}) on "
                f"the function, or ...,halo={self.needed_halo} in the --op of an undecorated "
                "one — and run the command again"
            )
        return f"op {self.op}: halo {self.declared_halo} is enough"


@dataclass
class Verdict:
    """The result of :func:`verify`: one verdict per op, and the tiles sampled."""

    input: str
    tiles: list[int]
    ops: list[OpVerdict] = field(default_factory=list)
    #: Sampled tiles whose ops failed to run: tile number -> cause.
    failed: dict[int, str] = field(default_factory=dict)
    #: Largest difference of a tile from its large-halo result that no op explains.
    unexplained: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every op passed on every sampled tile."""
        return all(v.ok for v in self.ops) and not self.failed and not self.unexplained

    def problems(self) -> list[str]:
        """What failed, one line each."""
        lines = [v.message() for v in self.ops if not v.ok]
        by_cause: dict[str, list[str]] = {}
        for tile, cause in sorted(self.failed.items()):
            by_cause.setdefault(cause, []).append(str(tile))
        lines += [f"tile {', '.join(t)} could not be run: {c}" for c, t in by_cause.items()]
        if self.unexplained and all(v.ok for v in self.ops):
            lines.append(
                f"tiles differ from their large-halo result by up to {self.unexplained:g}, "
                "though each op alone keeps to its halo; the pipeline is not tiled exactly"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (``tilewise verify --json``)."""
        return {
            "input": self.input,
            "ok": self.ok,
            "tiles": self.tiles,
            "failed": {str(t): cause for t, cause in self.failed.items()},
            "ops": [
                {
                    "op": v.op,
                    "declared_halo": v.declared_halo,
                    "needed_halo": v.needed_halo,
                    "translation_invariant": v.translation_invariant,
                    "max_diff": v.max_diff,
                    "ok": v.ok,
                }
                for v in self.ops
            ],
        }


def sample_tiles(counts: tuple[int, int]) -> list[int]:
    """Tile numbers of the corners, the middle of each edge and the centre of a grid.

    >>> sample_tiles((3, 4))
    [0, 2, 3, 4, 6, 7, 8, 10, 11]
    >>> sample_tiles((1, 1))
    [0]
    """
    down, across = counts
    rows = {0, down // 2, down - 1}
    cols = {0, across // 2, across - 1}
    return sorted({r * across + c for r in rows for c in cols})


def verify(
    src: str | os.PathLike[str],
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    tile: str | int | tuple[int, int] = DEFAULT_TILE,
    layout: str | Layout = Layout.GRID,
    workers: int | None = None,
    executor: str | Executor = "local",
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    max_whole_pixels: int = io.DEFAULT_MAX_WHOLE_PIXELS,
    axes: str | None = None,
    channel_axis: int | None = None,
    planes: str | None = None,
    page: int | None = None,
    **executor_options: Any,
) -> Verdict:
    """Check on a sample of tiles that every op's halo, dtype and bands are declared right.

    Runs in worker processes: first the first tile (dtype and bands), then up to
    nine tiles (corners, edge middles, centre), each with the declared halos
    and larger ones.

    Parameters
    ----------
    src
        The input the run will read.
    ops
        The pipeline, as for :func:`tilewise.run`.
    tile, layout
        The tiling the run will use (the sampled tiles are its tiles).
    workers, executor, executor_options
        Where the sample runs (default: local worker processes).
    max_pixels, max_whole_pixels
        Header limits, as for :func:`tilewise.run`.
    axes, channel_axis, planes, page
        How to read a stack, as for :func:`tilewise.run` (the sample is taken in its
        first plane read).

    Returns
    -------
    Verdict
        ``verdict.ok``, and one :class:`OpVerdict` per op with the halo it needs.

    Raises
    ------
    PipelineError
        When the first tile's dtype or band count differs from the declared one.
    """
    pipeline = as_pipeline(ops)
    plan = make_plan(
        src,
        None,
        pipeline,
        tile=tile,
        layout=layout,
        max_pixels=max_pixels,
        max_whole_pixels=max_whole_pixels,
        nodata="none",  # declarations are checked on the pixels as they are
        axes=axes,
        channel_axis=channel_axis,
        planes=planes,
        page=page,
    )
    tiles = sample_tiles(plan.grid.counts)
    count = min(len(tiles), workers or os.cpu_count() or 1)
    sampler = make_executor(
        executor, workers=count, supervision=Supervision(retries=0), **executor_options
    )
    try:
        check_first_tile(plan, sampler)
        probe = _Probe(plan.source, pipeline, plan.grid.source_shape)
        tasks = [Task(t, plan.grid.tile(t).core) for t in tiles]
        results, failed = _run_all(sampler, probe, tasks)
    finally:
        if sampler is not executor:  # an Executor given by the caller stays open
            sampler.close()
    verdict = Verdict(str(src), tiles, failed=failed)
    seen = [results[t] for t in sorted(results)]
    verdict.unexplained = max((r["max_diff"] for r in seen if not r["equal"]), default=0.0)
    for index, op in enumerate(pipeline.ops):
        verdict.ops.append(
            OpVerdict(
                op.spec(),
                op.halo,
                max((r["needed"][index] for r in seen), default=op.halo),
                not any(r["variant"][index] for r in seen),
                max(
                    (
                        r["max_diff"]
                        for r in seen
                        if r["variant"][index] or r["needed"][index] > op.halo
                    ),
                    default=0.0,
                ),
            )
        )
    return verdict
