"""Option parsing shared by the commands: sizes, KEY=VALUE pairs, logging."""

from __future__ import annotations

import re
from typing import Any

import click

from tilewise.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_WHOLE_PIXELS
from tilewise.executors import EXECUTORS

__all__ = [
    "EXIT_DONE",
    "EXIT_FAILED_TILES",
    "EXIT_RUN_ERROR",
    "EXIT_USAGE",
    "parse_key_values",
    "parse_size",
    "setup_logging",
    "stack_options",
    "stack_settings",
]

EXIT_DONE = 0
EXIT_RUN_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED_TILES = 3

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """Parse a byte size such as ``512M``, ``2G``, ``1.5GiB`` or ``1000000``.

    >>> parse_size("2G"), parse_size("512MiB")
    (2147483648, 536870912)
    """
    match = _SIZE_RE.match(text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a size; write e.g. 512M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


class SizeType(click.ParamType):
    """A click parameter type for byte sizes."""

    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        return value if isinstance(value, int) else parse_size(str(value))


class NodataType(click.ParamType):
    """``--nodata``: a number, ``nan``, or ``none`` (no pixel is nodata)."""

    name = "V|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        if isinstance(value, float):
            return value
        text = str(value).strip().lower()
        if text in ("none", "file"):
            return text
        try:
            return float(text)
        except ValueError:
            self.fail(f"{value!r} is not a number, nan or none", param, ctx)


NODATA = NodataType()

nodata_option = click.option(
    "--nodata",
    type=NODATA,
    default="file",
    metavar="V|none",
    help="The input's nodata value, which the ops leave out (docs/nodata.md): "
    "default the file's (GeoTIFF/GDAL, Zarr attributes); a number or nan overrides it; "
    "none processes every pixel as data. An op that cannot leave nodata out is refused.",
)


def parse_key_values(items: tuple[str, ...], what: str) -> dict[str, str]:
    """Turn ``("COMPRESS=ZSTD", "LEVEL=5")`` into a dict, with a clear error for bad items."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{what} must look like KEY=VALUE, got {item!r}")
        out[key.strip().upper()] = value.strip()
    return out


def setup_logging(verbose: int, quiet: bool) -> None:
    """-v shows info, -vv debug; -q shows errors only (see :mod:`tilewise.cli.logs`)."""
    from tilewise.cli.logs import route_logging

    route_logging(verbose, quiet)


SIZE = SizeType()

input_limits = [
    click.option(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse inputs whose header declares more pixels (decompression bombs).",
    ),
    click.option(
        "--max-whole-pixels",
        type=int,
        default=DEFAULT_MAX_WHOLE_PIXELS,
        show_default=True,
        help="Pixel limit for PNG/JPEG, which are decoded whole.",
    ),
]


stack_options = [
    click.option("--axes", default=None, metavar="LETTERS",
                 help="Name an array's axes, e.g. TZCYX or CYX (Y rows, X columns, S bands); "
                      "a TIFF stack names its own, and --axes renames the axes before its "
                      "pages'. [default: the last two axes are YX, a short last axis is bands, "
                      "the others planes]"),
    click.option("--channel-axis", type=int, default=None, metavar="N",
                 help="Read axis N of an array (negative from the end) as bands, as "
                      "scikit-image's channel_axis; the output has them last. Without it, a "
                      "channel axis is planes, each processed on its own."),
    click.option("--planes", "plane_range", default=None, metavar="START:STOP[:STEP]",
                 help="Of a stack, process only this range of its first axis, e.g. 0:10."),
    click.option("--page", type=click.IntRange(min=0), default=None, metavar="N",
                 help="Of a stack, process only plane N (numbered over all its leading axes, "
                      "overview pages not counted), as a 2-D image."),
]  # fmt: skip


def stack_settings(
    axes: str | None, channel_axis: int | None, plane_range: str | None, page: int | None
) -> dict[str, Any]:
    """The stack options given on the command line, as ``tilewise.run`` takes them."""
    given = {"axes": axes, "channel_axis": channel_axis, "planes": plane_range, "page": page}
    return {key: value for key, value in given.items() if value is not None}


executor_options = [
    click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
                 help="local: supervised worker processes; serial: this process (debugging); "
                      "dask: a Dask cluster."),
    click.option("--scheduler", default=None, metavar="ADDRESS",
                 help="With --executor dask: a running scheduler, e.g. tcp://HOST:8786 "
                      "[default: start a local cluster on 127.0.0.1 with --workers workers]."),
    click.option("--scheduler-file", type=click.Path(dir_okay=False), default=None,
                 metavar="FILE",
                 help="With --executor dask: the file written by 'dask scheduler "
                      "--scheduler-file'."),
    click.option("--tls-ca-file", default=None, metavar="PEM", help="Dask TLS: CA certificate."),
    click.option("--tls-cert", default=None, metavar="PEM", help="Dask TLS: certificate."),
    click.option("--tls-key", default=None, metavar="PEM", help="Dask TLS: private key."),
]  # fmt: skip

supervision_options = [
    click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
                 help="Extra attempts for a tile or file whose worker failed or crashed."),
    click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                 metavar="SECONDS",
                 help="Kill and replace a worker that spends longer on one tile or file. "
                      "Without it, one far slower than the run's own tiles so far is "
                      "given up as stalled (docs/reliability.md)."),
    click.option("--memory-limit", type=SizeType(), default=None, metavar="SIZE",
                 help="Memory one worker may allocate, e.g. 2G; the work going past it fails."),
    click.option("--max-tasks-per-worker", type=click.IntRange(min=1), default=None,
                 metavar="N", help="Replace each worker after N tasks (for ops that leak memory)."),
]  # fmt: skip

verbosity_options = [
    click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors only."),
    click.option("-v", "--verbose", count=True, help="More detail (-vv for debug); tracebacks."),
]


def dask_options(executor: str, **values: str | None) -> dict[str, str]:
    """The Dask connection options that were given; refused unless ``--executor dask``."""
    given = {key: value for key, value in values.items() if value is not None}
    if given and executor != "dask":
        names = ", ".join("--" + key.replace("_", "-") for key in given)
        raise click.UsageError(f"{names} only apply to --executor dask")
    return given


def apply(options: list[Any]) -> Any:
    """Decorate a command with a list of click options."""

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate
