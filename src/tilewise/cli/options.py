"""Option parsing shared by the commands: sizes, KEY=VALUE pairs, logging."""

from __future__ import annotations

import logging
import re
from typing import Any

import click

from tilewise.io import DEFAULT_MAX_PIXELS, DEFAULT_MAX_WHOLE_PIXELS

__all__ = [
    "EXIT_DONE",
    "EXIT_FAILED_TILES",
    "EXIT_RUN_ERROR",
    "EXIT_USAGE",
    "parse_key_values",
    "parse_size",
    "setup_logging",
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
    """-v shows info, -vv debug; -q shows errors only."""
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)
    logging.getLogger("tilewise").setLevel(level)


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


def apply(options: list[Any]) -> Any:
    """Decorate a command with a list of click options."""

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate
