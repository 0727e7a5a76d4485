"""``tilewise batch``: one pipeline over a collection of images."""

from __future__ import annotations

from typing import Any

import click

from tilewise.cli.errors import finish, reporting_errors
from tilewise.cli.options import (
    apply,
    dask_options,
    executor_options,
    input_limits,
    nodata_option,
    parse_key_values,
    setup_logging,
    stack_options,
    stack_settings,
    supervision_options,
    verbosity_options,
)
from tilewise.cli.warm import start_workers_early

__all__ = ["batch"]


class _OutputFormat(click.ParamType):
    """A name from :data:`tilewise.io.FORMATS`, looked up on use (the CLI loads without NumPy)."""

    name = "format"

    @staticmethod
    def _names() -> list[str]:
        from tilewise.io import FORMATS

        return [name for name, fmt in FORMATS.items() if fmt.whole]

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(self._names())}]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value in self._names():
            return str(value)
        self.fail(f"{value!r} is not one of {', '.join(self._names())}.", param, ctx)


@click.command(
    epilog="\b\nExit codes:\n"
    "  0    every file done\n"
    "  1    the batch stopped on an error after work started (resumable: --resume)\n"
    "  2    bad usage or bad input found before work started (an output that is,\n"
    "       contains or lies inside an input; an output another batch is writing);\n"
    "       or, with --stack, a result whose size differs from the stack's (add a\n"
    "       resize op)\n"
    "  3    finished, but some files failed (named on stderr and in --report;\n"
    "       --resume retries only those)\n"
    "  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM (resumable: --resume)"
)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Output folder; outputs mirror the inputs' folder tree inside it.",
)
@click.option(
    "--stack",
    "stack",
    type=click.Path(dir_okay=True),
    default=None,
    metavar="OUT.npy|OUT.zarr",
    help="Instead of --out: one (N, H, W[, C]) array in input order, with OUT.index.csv "
    "(row, source, status, cause) beside it. Every result must have the same size.",
)
@click.option(
    "--op",
    "ops",
    multiple=True,
    required=True,
    metavar="NAME[:k=v,...]",
    help="An op, repeated in order, e.g. --op resize:shape=256x256 --op to_dtype:dtype=uint8 "
    "(see 'tilewise ops').",
)
@click.option(
    "--format",
    "fmt",
    type=_OutputFormat(),
    default=None,
    help="Format of the files written to --out [default: each input's own].",
)
@click.option(
    "--files-per-task",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    metavar="N",
    help="Files handed to a worker at once, at most (amortizes per-task overhead).",
)
@click.option(
    "--tile-above",
    type=click.FloatRange(min=0, min_open=True),
    default=64.0,
    show_default=True,
    metavar="MPIX",
    help="Files with more megapixels run tile by tile, like 'tilewise run' (ops that "
    "change the size cannot, yet).",
)
@click.option(
    "--tile",
    default="1024",
    show_default=True,
    metavar="N|ROWSxCOLS",
    help="Tile size for files over --tile-above.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: one per core].",
)
@apply(stack_options)
@apply(executor_options)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into a non-empty --out folder (same names are replaced), or replace --stack.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a stopped batch from its journal; finished files are not redone.",
)
@click.option(
    "--co",
    "creation",
    multiple=True,
    metavar="KEY=VALUE",
    help="Output option: COMPRESS=NONE|LZW|DEFLATE|ZSTD (TIFF, default DEFLATE) or "
    "ZSTD|BLOSC|NONE (Zarr, default ZSTD), LEVEL=N (the codec's level; PNG 0-9), "
    "QUALITY=1-100 (JPEG, default 95), PREDICTOR=2, BLOCKSIZE, BIGTIFF (TIFF). Each output "
    "format takes the keys it knows; a key "
    "none of them takes, or a value one refuses, is an error.",
)
@nodata_option
@apply(supervision_options)
@apply(input_limits)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.json",
    help="Write a JSON report: file counts, and each failed file with its cause.",
)
@apply(verbosity_options)
def batch(
    inputs: tuple[str, ...],
    out: str | None,
    stack: str | None,
    ops: tuple[str, ...],
    fmt: str | None,
    files_per_task: int,
    tile_above: float,
    tile: str,
    workers: int | None,
    axes: str | None,
    channel_axis: int | None,
    plane_range: str | None,
    page: int | None,
    executor: str,
    scheduler: str | None,
    scheduler_file: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    overwrite: bool,
    resume: bool,
    creation: tuple[str, ...],
    nodata: float | str,
    retries: int,
    timeout: float | None,
    memory_limit: int | None,
    max_tasks_per_worker: int | None,
    max_pixels: int,
    max_whole_pixels: int,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    **_: Any,
) -> None:
    """Run ops over every image in INPUTS, into a folder tree (--out) or one array (--stack).

    INPUTS are files, folders (searched recursively for .tif/.tiff/.png/.jpg/.jpeg/.npy
    files and Zarr arrays; hidden entries skipped), glob patterns (quoted: 'scans/**/*.tif'),
    or @LIST: a text file with one path per line (relative to the list's folder).
    Outputs are named by their path below the folder given (a glob's fixed leading
    folder; for @LIST, the folder common to every line) and never leave --out.
    Inputs may be URLs with the same rules: 's3://bucket/scenes/**/*.tif' (the prefix
    before the first wildcard is listed), s3://bucket/prefix/ (a folder), one
    https:// or s3:// object, or @LIST lines of URLs (https cannot be listed: no
    patterns or folders there). --out and --stack stay local files; a URL there is
    refused.

    A file that is corrupt, empty, truncated or not an image is reported by name with
    its cause and skipped; the rest completes (exit 3). A stack (multi-page TIFF,
    ImageJ hyperstack, OME-TIFF, N-D array) is processed plane by plane into a .tif,
    .zarr or .npy keeping its axes; PNG/JPEG outputs and --stack rows cannot hold one
    (that file fails; --page N takes one plane). A journal beside the output
    records finished files: --resume continues a stopped batch without redoing them.

    \b
    Examples:
      tilewise batch scans/ --out small/ --op resize:scale=0.25
      tilewise batch 'photos/**/*.jpg' --stack thumbs.npy --op resize:shape=256x256
      tilewise batch @files.txt --out out/ --format png --op normalize \\
          --op to_dtype:dtype=uint8,scale=auto
      tilewise batch 's3://archive/scenes/**/*.tif' --out out/ --op invert
    """
    setup_logging(verbose, quiet)
    if (out is None) == (stack is None):
        raise click.UsageError("give exactly one of --out DIR or --stack OUT.npy|OUT.zarr")
    connection: dict[str, Any] = dask_options(
        executor,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    start_workers_early(executor, "batch")
    from tilewise.collection import batch as run_batch
    from tilewise.runner.lifecycle import HeldSignals

    # A signal after the output is final is held to the end of the command.
    with HeldSignals(give_back=False) as held, reporting_errors(verbose):
        result = run_batch(
            list(inputs),
            ops=list(ops),
            out=out,
            stack=stack,
            format=fmt,
            files_per_task=files_per_task,
            tile_above=max(1, int(tile_above * 1e6)),
            tile=tile,
            workers=workers,
            executor=executor,
            overwrite=overwrite,
            resume=resume,
            retries=retries,
            timeout=timeout,
            memory_limit=memory_limit,
            max_tasks_per_worker=max_tasks_per_worker,
            creation_options=parse_key_values(creation, "--co"),
            max_pixels=max_pixels,
            max_whole_pixels=max_whole_pixels,
            progress=not quiet,
            report=report_path,
            nodata=nodata,
            **stack_settings(axes, channel_axis, plane_range, page),
            **connection,
        )
        finish(
            result,
            quiet=quiet,
            wrote=str(out or stack),
            unit="file",
            failures=[f"{f.source}: {f.cause}" for f in result.failures],
            late_signal=held.held,
        )
