"""Scaling measurements: one pipeline at several worker counts, timed, with peak memory.

What parallelism buys on a given machine and image: for each worker count the
same run is repeated; the best wall time gives throughput (MPix/s of input),
speed-up against the first count and parallel efficiency (speed-up divided by
the ratio of worker counts). Memory is the peak of the process tree's
proportional set size (PSS: shared pages divided among the processes sharing
them, so the fork server's preloaded libraries count once), sampled every
50 ms while the runs go on.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tilewise.errors import UsageError
from tilewise.pipeline import OpLike, Pipeline, as_pipeline

__all__ = ["BenchResult", "Measurement", "bench", "default_workers", "draw_scaling"]

_SAMPLE_EVERY_S = 0.05


def default_workers(cores: int | None = None) -> list[int]:
    """1, 2, 4, … up to the number of cores, and the core count itself.

    >>> default_workers(6)
    [1, 2, 4, 6]
    >>> default_workers(1)
    [1]
    """
    cores = cores or os.cpu_count() or 1
    counts = []
    count = 1
    while count < cores:
        counts.append(count)
        count *= 2
    return [*counts, cores]


def _tree_memory(root: psutil.Process) -> int:
    """PSS (RSS where PSS is unknown) summed over ``root`` and its descendants, in bytes."""
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += int(getattr(info, "pss", info.rss))
        except psutil.Error:  # exited meanwhile, or not ours to read
            continue
    return total


class _PeakSampler:
    """Samples the process tree's memory in a thread; ``peak`` is the largest seen."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._root = psutil.Process()
        self._thread = threading.Thread(target=self._loop, name="tilewise-bench", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_memory(self._root))
            self._stop.wait(_SAMPLE_EVERY_S)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_memory(self._root))


@dataclass
class Measurement:
    """One worker count: every repeat's wall time and the figures derived from the best."""

    workers: int
    walls: list[float]
    megapixels: float
    peak_tree_bytes: int
    speedup: float = 1.0
    efficiency: float = 1.0

    @property
    def wall(self) -> float:
        """Best wall time of the repeats, in seconds."""
        return min(self.walls)

    @property
    def mpix_per_s(self) -> float:
        """Input megapixels per second at the best wall time."""
        return self.megapixels / self.wall


@dataclass
class BenchResult:
    """A scaling run: what was measured, how, and one :class:`Measurement` per worker count."""

    input: str
    shape: tuple[int, int]
    pipeline: list[str]
    executor: str
    tile: str
    repeat: int
    cores: int
    rows: list[Measurement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (``tilewise bench --json``)."""
        out = asdict(self)
        for row, data in zip(self.rows, out["rows"], strict=True):
            data["wall"] = round(row.wall, 4)
            data["mpix_per_s"] = round(row.mpix_per_s, 3)
        return out

    def table(self) -> str:
        """The measurements as a Markdown table."""
        lines = [
            f"| workers | wall (s, best of {self.repeat}) | MPix/s | speed-up | efficiency "
            "| peak tree memory (MiB, PSS) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.workers} | {row.wall:.2f} | {row.mpix_per_s:.3g} | {row.speedup:.2f}x "
                f"| {row.efficiency:.0%} | {row.peak_tree_bytes / 2**20:.0f} |"
            )
        return "\n".join(lines)


def bench(
    src: str | os.PathLike[str],
    ops: Pipeline | Sequence[OpLike] | OpLike,
    *,
    workers: Sequence[int] | None = None,
    repeat: int = 3,
    tile: str | int | tuple[int, int] = 2048,
    executor: str = "local",
    output_suffix: str = ".tif",
    progress: Any = None,
    **executor_options: Any,
) -> BenchResult:
    """Run ``ops`` over ``src`` at each worker count, ``repeat`` times each, and measure.

    Each run writes a fresh output in a temporary folder (removed afterwards),
    starts its own workers (counted in the wall time, as a user's run would)
    and must finish with every tile done.

    Parameters
    ----------
    src
        The input image.
    ops
        The pipeline, as for :func:`tilewise.run`.
    workers
        Worker counts to try (default :func:`default_workers`).
    repeat
        Runs per worker count; the best wall time is kept.
    tile, executor, executor_options
        As for :func:`tilewise.run`.
    output_suffix
        Output format of the runs: ``.tif``, ``.zarr`` or ``.npy``.
    progress
        Called as ``progress(workers, repeat_number, seconds)`` after each run.

    Returns
    -------
    BenchResult
        One :class:`Measurement` per worker count, with speed-up and efficiency
        against the first count.
    """
    from tilewise import api

    counts = list(workers) if workers else default_workers()
    if not counts or min(counts) < 1:
        raise UsageError(f"worker counts must be 1 or more, got {counts}")
    if repeat < 1:
        raise UsageError(f"repeat must be 1 or more, got {repeat}")
    pipeline = as_pipeline(ops)
    shape = tuple(api.info(src)["shape"][:2])
    megapixels = shape[0] * shape[1] / 1e6
    result = BenchResult(
        str(src), (int(shape[0]), int(shape[1])), pipeline.specs(), executor, str(tile),
        repeat, os.cpu_count() or 1,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tilewise-bench-") as scratch:
        out = Path(scratch) / f"out{output_suffix}"
        for count in counts:
            walls = []
            with _PeakSampler() as sampler:
                for number in range(repeat):
                    started = time.perf_counter()
                    report = api.run(
                        src, out, pipeline, tile=tile, workers=count, executor=executor,
                        overwrite=True, **executor_options,
                    )  # fmt: skip
                    walls.append(time.perf_counter() - started)
                    if not report.ok:
                        raise UsageError(
                            f"{src}: the benchmark run with {count} worker(s) had "
                            f"{report.failed} failed tile(s), first: {report.failures[0].cause}"
                        )
                    if progress is not None:
                        progress(count, number + 1, walls[-1])
            result.rows.append(Measurement(count, walls, megapixels, sampler.peak))
    base = result.rows[0]
    for row in result.rows:
        row.speedup = base.wall / row.wall
        row.efficiency = row.speedup / (row.workers / base.workers)
    return result


def draw_scaling(result: BenchResult, png: str | os.PathLike[str], *, dpi: int = 120) -> None:
    """Plot speed-up (with the ideal line) and peak memory against the worker count."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise UsageError(
            "drawing the scaling plot needs matplotlib: pip install 'tilewise[report]' "
            "(or leave out --png)"
        ) from err
    counts = [row.workers for row in result.rows]
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    speed, memory = figure.subplots(1, 2)
    base = counts[0]
    speed.plot(counts, [c / base for c in counts], "--", color="grey", label="ideal")
    speed.plot(counts, [row.speedup for row in result.rows], "o-", label="measured")
    for row in result.rows:
        speed.annotate(
            f"{row.mpix_per_s:.3g} MPix/s", (row.workers, row.speedup),
            textcoords="offset points", xytext=(4, -12), fontsize=8,
        )  # fmt: skip
    speed.set(xlabel="workers", ylabel=f"speed-up vs {base} worker(s)", xticks=counts)
    speed.set_title("Speed-up (best wall time)", fontsize=10)
    speed.margins(x=0.2)
    speed.set_ylim(bottom=0)
    speed.legend(loc="upper left")
    memory.bar([str(c) for c in counts], [row.peak_tree_bytes / 2**20 for row in result.rows])
    memory.set(xlabel="workers", ylabel="MiB")
    memory.set_title("Peak memory of the process tree (PSS)", fontsize=10)
    rows, cols = result.shape
    figure.suptitle(
        f"{' | '.join(result.pipeline)} on {rows} x {cols} px, tile {result.tile}, "
        f"{result.executor} executor, {result.cores} cores",
        fontsize=10,
    )
    figure.savefig(os.fspath(png), dpi=dpi)
