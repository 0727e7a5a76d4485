"""One batch from inputs to report: collect, prepare, probe, run the groups, finish.

The main process plans, schedules and records; workers read, compute and
write. Small files travel in groups (``files_per_task``) to amortize the
per-task overhead; a group whose worker crashed is retried one file per
task, so one poison file costs itself only. Files over ``tile_above``
pixels go through the tiled runner (:func:`tilewise.api.run`) afterwards.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tilewise import io
from tilewise.collection import collect as collect_mod
from tilewise.collection import prepare as setup
from tilewise.collection.big import run_tiled, why_not_tiled
from tilewise.collection.collect import Item, output_format
from tilewise.collection.overlap import check_apart
from tilewise.collection.report import BatchReport, FileRecord
from tilewise.collection.stack import index_path, write_index
from tilewise.collection.work import (
    DONE,
    FAILED,
    LARGE,
    MISMATCH,
    PLANES,
    BatchCall,
    BatchJob,
    FileResult,
)
from tilewise.defaults import DEFAULT_TILE
from tilewise.errors import StackMismatchError, UsageError
from tilewise.executors import Done, Executor, Failed, Supervision, Task
from tilewise.executors.forkserver import worker_options
from tilewise.pipeline import OpLike, Pipeline, as_pipeline
from tilewise.runner.journal import Journal
from tilewise.runner.lifecycle import Lifecycle, committing, working
from tilewise.runner.lock import holding
from tilewise.runner.progress import Progress

__all__ = ["DEFAULT_FILES_PER_TASK", "DEFAULT_TILE_ABOVE", "batch"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
DEFAULT_FILES_PER_TASK = 32
#: Files with more pixels than this go through the tiled runner.
DEFAULT_TILE_ABOVE = 64_000_000


def batch(
    inputs: PathLike | Sequence[PathLike],
    *,
    ops: Pipeline | Sequence[OpLike] | OpLike,
    out: PathLike | None = None,
    stack: PathLike | None = None,
    format: str | None = None,
    files_per_task: int = DEFAULT_FILES_PER_TASK,
    tile_above: int = DEFAULT_TILE_ABOVE,
    tile: str | int | tuple[int, int] = DEFAULT_TILE,
    workers: int | None = None,
    executor: str | Executor = "local",
    overwrite: bool = False,
    resume: bool = False,
    retries: int = 2,
    timeout: float | None = None,
    memory_limit: int | None = None,
    max_tasks_per_worker: int | None = None,
    creation_options: dict[str, Any] | None = None,
    max_pixels: int = io.DEFAULT_MAX_PIXELS,
    max_whole_pixels: int = io.DEFAULT_MAX_WHOLE_PIXELS,
    progress: bool | None = None,
    report: PathLike | None = None,
    nodata: float | str = "file",
    axes: str | None = None,
    channel_axis: int | None = None,
    planes: str | None = None,
    page: int | None = None,
    **executor_options: Any,
) -> BatchReport:
    """Run one pipeline over every image of a collection, in parallel.

    Parameters
    ----------
    inputs
        Files, folders (searched recursively for .tif/.tiff/.png/.jpg/.jpeg/.npy
        files and Zarr arrays), glob patterns, or ``"@LIST"`` text files with
        one path per line; one of them or a list.
    ops
        Ops as strings (``"resize:shape=256x256"``), decorated functions, or a Pipeline.
    out
        Output folder: outputs mirror the inputs' folder tree inside it.
    stack
        Instead of ``out``: one ``.npy`` or ``.zarr`` array of shape
        ``(N, H, W[, C])`` in input order, with ``NAME.index.csv`` beside it
        (row, source, status, cause). Every result must have the same shape.
    format
        Output format for ``out``: ``tiff``, ``png``, ``jpeg``, ``npy`` or
        ``zarr``; default: each input's own.
    files_per_task
        Files handed to a worker at once, at most (fewer when there are few
        files per worker).
    tile_above
        Files with more pixels go through the tiled runner, tile by tile.
    tile
        Tile size for those files.
    workers, executor, retries, timeout, memory_limit, max_tasks_per_worker
        As for :func:`tilewise.run`; ``timeout`` is per file.
    overwrite, resume
        Write into a non-empty folder / replace a stack; or continue a
        stopped batch from its journal (finished files are not redone).
    creation_options
        ``COMPRESS``/``LEVEL`` (TIFF, Zarr), ``LEVEL`` (PNG), ``QUALITY``
        (JPEG); each output format takes the keys it knows, and a key none of
        them takes, or a value one refuses, raises :class:`UsageError`
        (:func:`tilewise.io.parse_options_for_formats`).
    max_pixels, max_whole_pixels
        Refuse inputs whose header declares more pixels.
    progress
        Show a progress bar (files/s and time left): a widget in Jupyter, a bar on
        stderr in a terminal. Default: when interactive (a terminal or a Jupyter kernel).
    report
        Write the JSON report to this path.
    nodata
        As for :func:`tilewise.run`, for each file: ``"file"`` (default) leaves
        out each file's own nodata value, a number that value in every file,
        ``"none"`` nothing. A file whose nodata an op cannot leave out fails.
    axes, channel_axis, planes, page
        How to read the stacks among the files, as for :func:`tilewise.run`; given,
        they apply to every file (a 2-D file given ``planes`` fails, by name). A stack
        (a multi-page TIFF, ImageJ hyperstack, OME-TIFF, N-D array) goes through the
        tiled runner plane by plane, into a TIFF, Zarr or ``.npy`` output keeping its
        axes; a PNG or JPEG output, or a row of ``stack``, cannot hold one, and such a
        file fails with that cause (``page`` reads one plane as a 2-D image instead).

    Returns
    -------
    BatchReport
        ``report.ok`` is true when every file is done; ``report.failures``
        names each failed file and its cause.
    """
    if (out is None) == (stack is None):
        raise UsageError("give exactly one of out= (a folder) or stack= (an .npy or .zarr file)")
    whole = [name for name, fmt in io.FORMATS.items() if fmt.whole]
    if format is not None and format not in whole:
        raise UsageError(
            f"format must be one of {', '.join(whole)}, got {format!r}"
            + ("; COG output is written by 'tilewise run --format cog'" if format == "cog" else "")
        )
    if format is not None and stack is not None:
        raise UsageError("format= is for out=; a stack's format comes from its extension")
    if files_per_task < 1:
        raise UsageError(f"files per task must be at least 1, got {files_per_task}")
    if tile_above < 1:
        raise UsageError(f"the tiling threshold must be positive, got {tile_above}")
    pipeline = as_pipeline(ops)
    pipeline.check_portable()
    arguments = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    chosen = out if out is not None else stack
    assert chosen is not None  # exactly one was given, checked above
    if io.is_url(os.fspath(chosen)):
        raise UsageError(
            f"{os.fspath(chosen)}: batch does not write to object storage yet; give a local "
            "--out folder or --stack file (or write one image to a bucket with 'tilewise run')"
        )
    target = Path(os.path.abspath(os.fspath(chosen)))
    if target.name == "":
        raise UsageError(f"{target}: cannot write into the root folder; give a folder below it")
    items = collect_mod.collect([os.fspath(a) for a in arguments], exclude=[str(target)])
    if out is not None:
        items = collect_mod.unique_outputs(items, format)
        formats = {collect_mod.output_format(item.name, None) for item in items}
    else:
        formats = {io.stack_format(target)}
    options = io.parse_options_for_formats(formats, creation_options or {})
    check_apart([os.fspath(a) for a in arguments], items, target, folder=out is not None)
    if planes is not None:
        from tilewise.geometry.planes import parse_plane_range

    given: dict[str, Any] = {
        "axes": axes,
        "channel_axis": channel_axis,
        "planes": None if planes is None else parse_plane_range(planes),
        "page": page,
    }
    read = {key: value for key, value in given.items() if value is not None}
    supervision = Supervision(retries, timeout, memory_limit, max_tasks_per_worker)
    # files over the threshold run through tilewise.run, with its own default start method
    large_options = {} if isinstance(executor, Executor) else dict(executor_options)
    startup = worker_options(executor, "batch", (op.definition.locator for op in pipeline))
    with Lifecycle(
        executor,
        workers=workers,
        supervision=supervision,
        report=report,
        **{**startup, **executor_options},
    ) as lifecycle:
        job = _Batch(
            items=items,
            pipeline=pipeline,
            target=target,
            stack_mode=stack is not None,
            fmt=format,
            options=options,
            files_per_task=files_per_task,
            tile_above=tile_above,
            limits=(max_pixels, max_whole_pixels),
            lifecycle=lifecycle,
            progress=progress,
            nodata=nodata,
            read=read,
        )
        if out is not None:
            target.parent.mkdir(parents=True, exist_ok=True)  # --out creates its parents
        with holding(target):  # one batch per output at a time
            prepared = job.prepare(overwrite=overwrite, resume=resume)
            result = job.execute(
                prepared,
                large_run={
                    "tile": tile,
                    "workers": workers,
                    "executor": executor,
                    "retries": retries,
                    "timeout": timeout,
                    "memory_limit": memory_limit,
                    "max_tasks_per_worker": max_tasks_per_worker,
                    "nodata": nodata,
                    **read,
                    **large_options,
                },
            )
        lifecycle.write(result)
    return result


def _chunks(values: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


class _Batch:
    """The state of one batch while it runs (main process)."""

    def __init__(
        self,
        *,
        items: list[Item],
        pipeline: Pipeline,
        target: Path,
        stack_mode: bool,
        fmt: str | None,
        options: dict[str, Any],
        files_per_task: int,
        tile_above: int,
        limits: tuple[int, int],
        lifecycle: Lifecycle,
        progress: bool | None,
        read: dict[str, Any],
        nodata: float | str = "file",
    ) -> None:
        self.items = items
        self.read = read
        self.nodata = nodata
        self.pipeline = pipeline
        self.target = target
        self.stack_mode = stack_mode
        self.fmt = fmt
        self.options = options
        self.files_per_task = files_per_task
        self.tile_above = tile_above
        self.limits = limits
        self.lifecycle = lifecycle
        self.executor = lifecycle.executor
        self.progress = progress
        self.root = None if stack_mode else os.path.realpath(target)
        #: The stack, once created (by :meth:`_probe`) or reopened (by :meth:`prepare`).
        self.stack: io.StackSpec | None = None
        self.stack_options = self.options[io.stack_format(target)] if stack_mode else {}
        #: New for every batch, so a worker never reuses a handle to an older stack of that name.
        self.token = uuid.uuid4().hex
        #: Files for the tiled runner: index, shape, and a stack's description ("" if 2-D).
        self.large: list[tuple[int, tuple[int, ...], str]] = []
        self.report = BatchReport(
            input=f"{len(items)} files",
            output=str(target),
            pipeline=pipeline.specs(),
            grid={},
            executor=self.executor.describe(),
            total=len(items),
        )

    # -- set-up -----------------------------------------------------------------------------

    def _output_print(self) -> dict[str, Any]:
        if self.stack_mode:
            return {"mode": "stack", "path": str(self.target), "options": self.options}
        return {
            "mode": "folder",
            "path": str(self.target),
            "format": self.fmt or "as input",
            "options": self.options,
        }

    def prepare(self, *, overwrite: bool, resume: bool) -> setup.Prepared:
        """Create or reopen the output and its journal."""
        specs = self.pipeline.specs()
        if self.nodata != "file":  # another nodata is another result
            specs.append(f"nodata={self.nodata}")
        print_ = setup.fingerprint(self.items, specs, self._output_print())
        if self.stack_mode:
            prepared = setup.prepare_stack(
                self.target,
                print_,
                count=len(self.items),
                options=self.stack_options,
                token=self.token,
                overwrite=overwrite,
                resume=resume,
            )
            self.stack = prepared.stack
        else:
            prepared = setup.prepare_tree(self.target, print_, overwrite=overwrite, resume=resume)
            self.root = os.path.realpath(self.target)
        if prepared.resumed:
            self.report.extra["redone_changed"] = setup.forget_changed(prepared, self.items)
            self.report.extra["redone_damaged"] = setup.verify_done(prepared, self.items, self.root)
        self.report.skipped = len(prepared.journal.done)
        return prepared

    def _job(self, *, probe: bool = False) -> BatchJob:
        return BatchJob(
            pipeline=self.pipeline,
            root=self.root,
            options=self.options,
            stack=self.stack,
            max_pixels=self.limits[0],
            max_whole_pixels=self.limits[1],
            tile_above=self.tile_above,
            probe=probe,
            nodata=self.nodata,
            read=self.read,
        )

    def _task(self, indices: Iterable[int]) -> list[tuple[int, str, str]]:
        return [(i, self.items[i].source, self.items[i].name) for i in indices]

    # -- the run ----------------------------------------------------------------------------

    def execute(self, prepared: setup.Prepared, *, large_run: dict[str, Any]) -> BatchReport:
        """Run every unfinished file; finish the output; return the report."""
        journal = prepared.journal
        report = self.report
        done = set(journal.done)
        todo = [i for i in range(len(self.items)) if i not in done]
        bar = Progress(len(self.items), unit="file", enabled=self.progress)
        bar.skip(report.skipped)
        start = time.perf_counter()
        with working(report, journal, bar):
            if self.stack_mode and not prepared.resumed and todo:
                todo = self._probe(todo, bar)
                log.debug("stack created after %.3f s", time.perf_counter() - start)
            if todo:
                self._run_groups(todo, journal, bar)
                log.debug("%d files run after %.3f s", len(todo), time.perf_counter() - start)
            if self.large:
                self.lifecycle.close_workers()  # the tiled runner brings its own workers
                self._run_large(journal, bar, large_run)
            else:
                self.lifecycle.stop_workers()  # they wind down while the output is finished
            bar.close()
            journal.close()
            report.seconds = time.perf_counter() - start
            self._finish(prepared)
        return report

    def _probe(self, todo: list[int], bar: Progress) -> list[int]:
        """Find the stack's row shape from the first readable file (in a worker), then create it."""
        call = BatchCall(self._job(probe=True))
        width = max(1, self.executor.workers or 1)
        failed: set[int] = set()
        for window in _chunks(todo, width):
            found: list[FileResult] = []
            tasks = (Task(i, self._task([i])) for i in window)
            for outcome in self.executor.map_tasks(call, tasks):
                if isinstance(outcome, Failed):
                    self._failed_outcome(outcome, [outcome.key], bar)
                    failed.add(outcome.key)
                    continue
                for result in outcome.value:
                    if result.status == "probed":
                        found.append(result)
                    elif result.status == LARGE:
                        self._fail_large_in_stack(result, bar)
                        failed.add(result.file)
                    else:
                        self._record(result, None, outcome, bar)
                        failed.add(result.file)
            if found:
                first = min(found, key=lambda r: r.file)
                fmt = io.stack_format(self.target)
                stack = io.StackSpec.of(
                    str(self.target),
                    fmt,
                    len(self.items),
                    first.shape,
                    first.dtype,
                    self.stack_options,
                    token=self.token,
                )
                io.stack_sink_class(fmt).create(stack)
                self.stack = stack
                self.report.extra["stack_set_by"] = self.items[first.file].source
                return [i for i in todo if i not in failed]
        return []

    def _per_task(self, count: int) -> int:
        workers = max(1, self.executor.workers or 1)
        return max(1, min(self.files_per_task, math.ceil(count / (4 * workers))))

    def _run_groups(self, todo: list[int], journal: Journal, bar: Progress) -> None:
        """Run files in groups; retry the files of crashed groups one per task.

        A group gets one attempt and a timeout of one file's times its size; its
        files' own retries come in the second pass, one file per task.
        """
        per_task = self._per_task(len(todo))
        self.report.extra["files_per_task"] = per_task
        call = BatchCall(self._job())
        supervision = self.executor.supervision
        if per_task > 1:
            timeout = None if supervision.timeout is None else supervision.timeout * per_task
            supervision = replace(supervision, retries=0, timeout=timeout)
        crashed: list[int] = []
        groups = dict(enumerate(_chunks(todo, per_task)))
        tasks = (Task(n, self._task(group)) for n, group in groups.items())
        for outcome in self.executor.map_tasks(call, tasks, supervision=supervision):
            if isinstance(outcome, Failed):
                if per_task == 1:
                    self._failed_outcome(outcome, groups[outcome.key], bar)
                else:
                    log.info(
                        "a group of files failed (%s); retrying them one by one", outcome.cause
                    )
                    crashed.extend(groups[outcome.key])
                continue
            self._record_all(outcome, journal, bar)
        if crashed:
            tasks = (Task(i, self._task([i])) for i in sorted(crashed))
            for outcome in self.executor.map_tasks(call, tasks):
                if isinstance(outcome, Failed):
                    self._failed_outcome(outcome, [outcome.key], bar)
                else:
                    self._record_all(outcome, journal, bar)

    def _run_large(self, journal: Journal, bar: Progress, settings: dict[str, Any]) -> None:
        """Run each file the workers found over the threshold through the tiled runner."""
        assert self.root is not None
        for index, shape, stack in self.large:
            item = self.items[index]
            rows, cols = shape[-2:]
            pixels = math.prod(shape)
            reason = why_not_tiled(self.pipeline, output_format(item.name, None))
            if reason is not None:
                over = (
                    f"a stack of planes {stack}, processed plane by plane by the tiled runner, "
                    f"but {reason.replace(', or raise --tile-above to process it whole', '')}"
                    if stack
                    else f"{rows} x {cols} = {rows * cols:,} pixels is over the tiling "
                    f"threshold ({self.tile_above:,}) but {reason}"
                )
                self.fail(FileRecord(index, item.source, over, "input"), bar)
                continue
            log.info("%s: %s, processing it tile by tile", item.source, stack or f"{rows} x {cols}")
            fmt = output_format(item.name, None)
            target, cause = run_tiled(
                item, self.root, self.pipeline, self.options[fmt], self.limits, settings
            )
            if cause is not None:
                self.fail(FileRecord(index, item.source, cause, "exception"), bar)
                continue
            entry: dict[str, Any] = {"r": {"size": io.stored_size(target)}}
            if item.identity:
                entry["i"] = item.identity
            journal.record(index, entry)
            self.report.done += 1
            self.report.pixels += pixels
            self.report.tiled.append(item.source)
            bar.advance(rows * cols)

    # -- outcomes ---------------------------------------------------------------------------

    def _record_all(self, outcome: Done, journal: Journal, bar: Progress) -> None:
        """Record a group's results; its journal lines go to disk together."""
        for result in outcome.value:
            self._record(result, journal, outcome, bar)
        journal.flush()

    def _record(
        self, result: FileResult, journal: Journal | None, outcome: Done, bar: Progress
    ) -> None:
        report = self.report
        report.compute_seconds += result.seconds
        if result.status == DONE:
            assert journal is not None
            entry: dict[str, Any] = {"r": result.receipt} if result.receipt else {}
            identity = self.items[result.file].identity
            if identity:
                entry["i"] = identity
            journal.record(result.file, entry, flush=False)
            report.done += 1
            report.pixels += result.pixels
            bar.advance(result.pixels)
        elif result.status == LARGE:
            if self.stack_mode:
                self._fail_large_in_stack(result, bar)
            else:
                stack = result.cause if result.kind == PLANES else ""
                self.large.append((result.file, result.shape, stack))
        elif result.status == MISMATCH:
            raise self._mismatch(result)
        else:
            assert result.status == FAILED
            self.fail(
                FileRecord(
                    result.file,
                    self.items[result.file].source,
                    result.cause,
                    result.kind,
                    outcome.attempts,
                    outcome.worker,
                    result.detail,
                ),
                bar,
            )

    def _mismatch(self, result: FileResult) -> StackMismatchError:
        """The error that stops a stack when a result's shape or dtype differs from the rows'."""
        assert self.stack is not None
        rows = self.stack.row_shape
        if result.shape[:2] != rows[:2]:
            advice = f"add e.g. --op resize:shape={rows[0]}x{rows[1]}"
        elif result.shape[2:] != rows[2:]:
            advice = "make every image the same number of bands, e.g. with --op grayscale"
        else:
            advice = f"add --op to_dtype:dtype={self.stack.dtype}"
        first = self.report.extra.get("stack_set_by", "the first readable file")
        return StackMismatchError(
            f"{self.items[result.file].source}: {result.cause} (set by {first}); every image "
            f"must come out the same in a stack: {advice}, then start again with --overwrite"
        )

    def _failed_outcome(self, outcome: Failed, indices: list[int], bar: Progress) -> None:
        for index in indices:
            self.fail(
                FileRecord(
                    index,
                    self.items[index].source,
                    outcome.cause,
                    outcome.kind.value,
                    outcome.attempts,
                    outcome.worker,
                    outcome.detail,
                    list(outcome.history),
                ),
                bar,
            )

    def _fail_large_in_stack(self, result: FileResult, bar: Progress) -> None:
        if result.kind == PLANES:
            cause = (
                f"a stack of planes {result.cause}; a row of --stack holds one 2-D image: "
                "give --page N to take one plane, or write the batch to a folder (--out)"
            )
            self.fail(FileRecord(result.file, self.items[result.file].source, cause, "input"), bar)
            return
        rows, cols = result.shape[:2]
        self.fail(
            FileRecord(
                result.file,
                self.items[result.file].source,
                f"{rows} x {cols} = {rows * cols:,} pixels, over the tiling threshold "
                f"({self.tile_above:,}); a stack holds images processed whole: raise "
                "--tile-above if the image fits in memory",
                "input",
            ),
            bar,
        )

    def fail(self, record: FileRecord, bar: Progress) -> None:
        """Count one failed file, log it and advance the bar."""
        self.report.fail(record)
        log.info("failed: %s: %s", record.source, record.cause)
        bar.advance(failed=True)

    # -- the end ----------------------------------------------------------------------------

    def _finish(self, prepared: setup.Prepared) -> None:
        with committing():  # the files are written: signals now wait for the end of the batch
            self._make_final(prepared)

    def _make_final(self, prepared: setup.Prepared) -> None:
        report = self.report
        journal = prepared.journal
        if self.stack_mode:
            if self.stack is not None:
                # every row is already in place: a stack is finished without its receipts
                io.stack_sink_class(self.stack.format).finalize(self.stack, {})
                causes = {r.index: r.cause for r in report.failed_files}
                done = set(journal.done)
                rows = (
                    (
                        i,
                        item.source,
                        "done" if i in done else "failed",
                        causes.get(i, "" if i in done else "not processed"),
                    )
                    for i, item in enumerate(self.items)
                )
                index = index_path(self.target)
                write_index(index, rows)
                report.extra["stack"] = {
                    "path": str(self.target),
                    "shape": list(self.stack.stack_shape),
                    "dtype": self.stack.dtype,
                    "index": str(index),
                }
                report.finalized = True
        else:
            report.finalized = True
        if report.failed == 0:
            journal.remove()
