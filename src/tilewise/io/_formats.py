"""The output formats: their extensions, whether tiles can write them, and their ``--co`` options.

One table serves ``tilewise run`` (tiled outputs) and ``tilewise batch`` (whole
images, and stacks). Each format lists the creation options it knows, in
order; an option is a default and a validator, and a validator sees the values
chosen before it (LEVEL's range depends on COMPRESS). Adding an option, e.g.
TIFF's PREDICTOR or BIGTIFF, is one entry in a format's ``options``.

A format that shares its extension with another (COG writes ``.tif`` like TIFF)
is chosen by name only (``--format cog``), never by the extension.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tilewise.errors import UsageError

__all__ = [
    "FORMATS",
    "Option",
    "OutputFormat",
    "format_for_suffix",
    "parse_creation_options",
    "parse_options_for_formats",
]

Chosen = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Option:
    """One creation option of a format.

    ``check(value, chosen)`` returns the value to use or raises ``ValueError``
    with what is allowed; ``default(chosen)`` gives the value when the option is
    not given (None: the option is left out).
    """

    check: Callable[[Any, Chosen], Any]
    default: Callable[[Chosen], Any] = lambda chosen: None
    help: str = ""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """An output format: its name, file extensions (the first names a converted output),
    whether tiles can write it (``tilewise run``), and its creation options.

    ``by_name`` formats are chosen only when named (``--format``), never by an
    extension; ``whole`` formats can be written whole, as ``tilewise batch`` does.
    """

    name: str
    extensions: tuple[str, ...]
    tiled: bool
    options: Mapping[str, Option] = field(default_factory=dict)
    by_name: bool = False
    whole: bool = True


def _choice(*values: str) -> Callable[[Any, Chosen], str]:
    def check(value: Any, chosen: Chosen) -> str:
        text = str(value).upper()
        if text not in values:
            raise ValueError(f"use {', '.join(values)}")
        return text

    return check


def _whole(low: int, high: int) -> Callable[[Any, Chosen], int]:
    def check(value: Any, chosen: Chosen) -> int:
        try:
            number = int(str(value))
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise ValueError(f"use a whole number from {low} to {high}")
        return number

    return check


def _predictor(value: Any, chosen: Chosen) -> int:
    if str(value) not in ("1", "2"):
        raise ValueError("use 1 (none) or 2 (horizontal differencing)")
    if value in (2, "2") and chosen.get("COMPRESS") == "NONE":
        raise ValueError("a predictor needs compression: add --co COMPRESS=DEFLATE, LZW or ZSTD")
    return int(str(value))


def _block(value: Any, chosen: Chosen) -> int:
    number = _whole(16, 4096)(value, chosen)
    if number % 16:
        raise ValueError(f"TIFF tiles are multiples of 16 pixels, {number} is not")
    return number


def _level_for(ranges: Mapping[str, tuple[int, int, int]]) -> Option:
    """A LEVEL whose range (and default, the range's third value) depends on COMPRESS."""

    def check(value: Any, chosen: Chosen) -> int:
        compress = str(chosen.get("COMPRESS"))
        if compress not in ranges:
            with_level = " and ".join(ranges)
            raise ValueError(f"COMPRESS={compress} takes no level (only {with_level} do)")
        low, high, _ = ranges[compress]
        return _whole(low, high)(value, chosen)

    def default(chosen: Chosen) -> int | None:
        found = ranges.get(chosen.get("COMPRESS", ""))
        return None if found is None else found[2]

    helps = ", ".join(f"{low}-{high} for {c}" for c, (low, high, _) in ranges.items())
    return Option(check, default, helps)


_TIFF_COMPRESS = Option(
    _choice("NONE", "LZW", "DEFLATE", "ZSTD"),
    lambda chosen: "DEFLATE",
    "NONE, LZW, DEFLATE (default), ZSTD",
)
_TIFF_LEVEL = _level_for({"DEFLATE": (0, 9, 6), "ZSTD": (1, 22, 3)})
_TIFF_PREDICTOR = Option(
    _predictor, help="1 (none, default), 2 (horizontal differencing, integers)"
)

FORMATS: dict[str, OutputFormat] = {
    "tiff": OutputFormat(
        "tiff",
        (".tif", ".tiff", ".btf", ".tf8"),
        tiled=True,
        options={
            "COMPRESS": _TIFF_COMPRESS,
            "LEVEL": _TIFF_LEVEL,
            "PREDICTOR": _TIFF_PREDICTOR,
            "BLOCKSIZE": Option(_block, help="TIFF tile side in pixels, a multiple of 16"),
            "BLOCKXSIZE": Option(_block, help="TIFF tile width (overrides BLOCKSIZE)"),
            "BLOCKYSIZE": Option(_block, help="TIFF tile height (overrides BLOCKSIZE)"),
            "BIGTIFF": Option(
                _choice("YES", "NO", "IF_NEEDED"),
                lambda chosen: "YES",
                "YES (default), NO, IF_NEEDED (when the uncompressed image passes 4 GiB)",
            ),
        },
    ),
    "cog": OutputFormat(
        "cog",
        (".tif", ".tiff"),
        tiled=True,
        options={
            "COMPRESS": _TIFF_COMPRESS,
            "LEVEL": _TIFF_LEVEL,
            "PREDICTOR": _TIFF_PREDICTOR,
            "BLOCKSIZE": Option(
                _block, lambda chosen: 512, "tile side in pixels, a multiple of 16 (default 512)"
            ),
            "BIGTIFF": Option(
                _choice("YES", "NO", "IF_NEEDED"),
                lambda chosen: "IF_NEEDED",
                "IF_NEEDED (default: when the file passes 4 GiB), YES, NO",
            ),
            "OVERVIEW_RESAMPLING": Option(
                _choice("NEAREST", "AVERAGE", "MODE"),
                help="NEAREST, AVERAGE, MODE (default: NEAREST for integer pixels, "
                "AVERAGE for floating point)",
            ),
        },
        by_name=True,
        whole=False,
    ),
    "png": OutputFormat(
        "png",
        (".png",),
        tiled=False,
        options={"LEVEL": Option(_whole(0, 9), lambda chosen: 3, "0-9 (default 3)")},
    ),
    "jpeg": OutputFormat(
        "jpeg",
        (".jpg", ".jpeg"),
        tiled=False,
        options={"QUALITY": Option(_whole(1, 100), lambda chosen: 95, "1-100 (default 95)")},
    ),
    "npy": OutputFormat("npy", (".npy",), tiled=True),
    "zarr": OutputFormat(
        "zarr",
        (".zarr",),
        tiled=True,
        options={
            "COMPRESS": Option(
                _choice("ZSTD", "BLOSC", "NONE"),
                lambda chosen: "ZSTD",
                "ZSTD (default), BLOSC, NONE",
            ),
            "LEVEL": _level_for({"ZSTD": (1, 22, 3), "BLOSC": (0, 9, 3)}),
        },
    ),
}


def format_for_suffix(suffix: str) -> str | None:
    """The output format an extension names (``.TIF`` -> ``tiff``), or None.

    >>> format_for_suffix(".JPEG"), format_for_suffix(".txt")
    ('jpeg', None)
    """
    suffix = suffix.lower()
    for name, fmt in FORMATS.items():
        if suffix in fmt.extensions and not fmt.by_name:
            return name
    return None


def _known(fmt: OutputFormat) -> str:
    if not fmt.options:
        return f"{fmt.name.upper()} output takes no creation options"
    keys = "; ".join(f"{key} ({option.help})" for key, option in fmt.options.items())
    return f"{fmt.name.upper()} output takes {keys}"


def _lookup(name: str) -> OutputFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(
            f"unknown output format {name!r}; choose one of {', '.join(FORMATS)}"
        ) from None


def parse_creation_options(fmt: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``--co KEY=VALUE`` options for output format ``fmt``; fill in the defaults.

    Keys are case-insensitive; values are checked by the format's table, and
    the result holds every option the format uses (given or default), so it
    parses to itself again.

    Raises
    ------
    UsageError
        A key the format does not know, or a value it does not take; the
        message lists what it knows.

    >>> parse_creation_options("tiff", {"compress": "zstd"})
    {'COMPRESS': 'ZSTD', 'LEVEL': 3, 'BIGTIFF': 'YES'}
    """
    table = _lookup(fmt)
    given = {str(k).upper(): v for k, v in options.items()}
    unknown = sorted(set(given) - set(table.options))
    if unknown:
        raise UsageError(f"unknown creation option {', '.join(unknown)}; {_known(table)}")
    chosen: dict[str, Any] = {}
    for key, option in table.options.items():
        if key in given:
            try:
                chosen[key] = option.check(given[key], chosen)
            except ValueError as err:
                raise UsageError(
                    f"--co {key}={given[key]} is not valid for {fmt.upper()} output: {err}"
                ) from None
        else:
            value = option.default(chosen)
            if value is not None:
                chosen[key] = value
    return chosen


def parse_options_for_formats(
    formats: Iterable[str], options: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Validate one set of ``--co`` options for outputs in several formats (a batch).

    Each format takes the keys it knows (a batch of TIFFs and PNGs may give
    COMPRESS for the TIFFs and LEVEL for both); a key that none of them knows is
    an error, and so is a value that one of the formats taking the key refuses.

    >>> parse_options_for_formats(["png", "jpeg"], {"QUALITY": "80"})
    {'jpeg': {'QUALITY': 80}, 'png': {'LEVEL': 3}}
    """
    names = sorted(set(formats))
    tables = [_lookup(name) for name in names]
    given = {str(k).upper(): v for k, v in options.items()}
    unknown = sorted(k for k in given if not any(k in t.options for t in tables))
    if unknown:
        known = "; ".join(_known(t) for t in tables)
        raise UsageError(f"unknown creation option {', '.join(unknown)}; {known}")
    return {
        t.name: parse_creation_options(t.name, {k: v for k, v in given.items() if k in t.options})
        for t in tables
    }
