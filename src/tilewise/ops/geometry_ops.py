"""Ops that change the image size: resize, crop, pad.

They set ``changes_shape=True``: whole-image pipelines (``tilewise batch``)
use them all. Tiled runs take ``resize`` by an integer factor (it declares its
``scale``; see :mod:`tilewise.geometry.stages`) and refuse the rest
(:meth:`Pipeline.check_tileable`); ``crop``/``pad`` in tiled runs would need
output windows shifted by their offsets.

With nodata (:mod:`tilewise.ops.nodata`): ``resize`` shrinking by an integer
factor with ``area`` averages the valid pixels of each k x k block (a block
with none is nodata), and ``nearest`` moves each pixel's flag with it; other
interpolations would blend nodata into their neighbours and are refused.
``crop`` keeps the flags of the pixels it keeps; ``pad`` adds nodata pixels
with ``mode=constant`` and copies the flags with the other modes.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError
from tilewise.ops._bands import OPENCV_MAX_BANDS, check_dtype, per_band
from tilewise.ops.base import OpDefinition, Param, PixelGrid, register

__all__ = ["crop", "pad", "parse_range", "parse_shape", "resize"]

Array = npt.NDArray[Any]

_SHAPE_RE = re.compile(r"^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$")
_RANGE_RE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")
#: OpenCV's flag for each interpolation (looked up when a resize runs: the main
#: process parses pipelines without loading OpenCV).
_INTERPOLATION = {
    "area": "INTER_AREA",
    "linear": "INTER_LINEAR",
    "cubic": "INTER_CUBIC",
    "nearest": "INTER_NEAREST",
}
_RESIZE_DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def parse_shape(op_name: str, value: Any) -> tuple[int, int]:
    """Parse ``"HxW"`` (rows x cols) or a single number (square) into positive ints.

    >>> parse_shape("resize", "256x128"), parse_shape("crop", 64)
    ((256, 128), (64, 64))
    """
    match = _SHAPE_RE.match(str(value))
    if match is None:
        raise OpError(
            f"{op_name}: shape must look like HxW (rows x cols), e.g. 256x256, got {value!r}"
        )
    rows = int(match.group(1))
    cols = int(match.group(2)) if match.group(2) else rows
    if rows <= 0 or cols <= 0:
        raise OpError(f"{op_name}: shape must be positive, got {rows}x{cols}")
    return rows, cols


def parse_range(op_name: str, key: str, value: Any, size: int) -> tuple[int, int]:
    """Resolve ``"START:STOP"`` (Python slice rules, negatives count from the end) in ``size``.

    Unlike a slice, a range reaching past the image or an empty range is an error.

    >>> parse_range("crop", "rows", "10:-10", 100), parse_range("crop", "cols", ":50", 80)
    ((10, 90), (0, 50))
    """
    match = _RANGE_RE.match(str(value))
    if match is None:
        raise OpError(f"{op_name}: {key} must look like START:STOP, e.g. 10:200, got {value!r}")
    start = int(match.group(1)) if match.group(1) else 0
    stop = int(match.group(2)) if match.group(2) else size
    start_abs = start + size if start < 0 else start
    stop_abs = stop + size if stop < 0 else stop
    if not 0 <= start_abs < stop_abs <= size:
        raise OpError(
            f"{op_name}: {key}={value} selects nothing or reaches past the image, which has "
            f"{size} {key}; give START:STOP with 0 <= START < STOP <= {size}"
        )
    return start_abs, stop_abs


def _resize_plane(image: Array, dsize: tuple[int, int] | None, scale: float, flag: int) -> Array:
    import cv2

    if dsize is not None:
        return np.asarray(cv2.resize(image, dsize, interpolation=flag))
    return np.asarray(cv2.resize(image, None, fx=scale, fy=scale, interpolation=flag))


def resize(image: Array, shape: str = "", scale: float = 1.0, interpolation: str = "auto") -> Array:
    """Resize to ``shape=HxW`` or by ``scale=F``, with OpenCV.

    Equals ``cv2.resize(image, (W, H), interpolation=FLAG)`` for ``shape``, and
    ``cv2.resize(image, None, fx=F, fy=F, interpolation=FLAG)`` for ``scale``
    (the size is then OpenCV's: ``H*F`` and ``W*F`` rounded half to even).
    ``interpolation``: ``area`` (``INTER_AREA``), ``linear``, ``cubic``,
    ``nearest``, or ``auto`` (default): ``area`` when no dimension grows,
    else ``linear``. Images of more than 4 bands are resized band by band.
    Float images shrunk by an integer factor with ``area`` use exact k x k
    block means (NumPy, float64 sums), which equal OpenCV's to float32 rounding.
    Integer factors (``scale=2``, ``scale=0.25``; not cubic) also work in tiled runs.
    With neither ``shape`` nor ``scale`` (``scale=1``) the size is unchanged.
    """
    if shape and scale != 1.0:
        raise OpError("resize: give shape=HxW or scale=F, not both")
    dsize: tuple[int, int] | None = None
    if shape:
        rows, cols = parse_shape("resize", shape)
        dsize = (cols, rows)
        grows = rows > image.shape[0] or cols > image.shape[1]
    else:
        if scale <= 0:
            raise OpError(f"resize: scale must be positive, got {scale}")
        if round(image.shape[0] * scale) < 1 or round(image.shape[1] * scale) < 1:
            raise OpError(
                f"resize: scale={scale} makes a {image.shape[0]}x{image.shape[1]} image "
                "smaller than one pixel"
            )
        grows = scale > 1
    if interpolation == "auto":
        interpolation = "linear" if grows else "area"
    if interpolation not in _INTERPOLATION:
        raise OpError(
            f"resize: interpolation must be auto, {', '.join(_INTERPOLATION)}; "
            f"got {interpolation!r}"
        )
    check_dtype("resize", image, _RESIZE_DTYPES)
    down = _integer(1 / scale) if not shape and scale < 1 else None
    if (down and interpolation == "area" and image.dtype.kind == "f"
            and image.shape[0] % down == 0 and image.shape[1] % down == 0):  # fmt: skip
        return _block_mean(image, down)
    import cv2

    flag = getattr(cv2, _INTERPOLATION[interpolation])
    result = per_band(
        lambda plane: _resize_plane(plane, dsize, scale, flag), image, max_bands=OPENCV_MAX_BANDS
    )
    if image.ndim == 3 and result.ndim == 2:  # OpenCV drops a single trailing band
        result = result[..., np.newaxis]
    return result


def _integer(value: float) -> int | None:
    nearest = round(value)
    return nearest if nearest >= 2 and abs(value - nearest) < 1e-9 else None


def _tiled_scale(shape: str, scale: float, interpolation: str) -> tuple[int, int] | None:
    """``(up, down)`` when this resize can be tiled exactly, else ``None``.

    Tiled runs take integer factors: enlarging by k with nearest or linear
    interpolation, or shrinking by k with area (k x k block means). Cubic
    interpolation is not translation-invariant in OpenCV and is not tiled.
    """
    if shape:
        return None
    up = _integer(scale)
    if up is not None and interpolation in ("auto", "linear", "nearest"):
        return (up, 1)
    down = _integer(1 / scale) if scale < 1 else None
    if down is not None and interpolation in ("auto", "area"):
        return (1, down)
    return None


def _block_mean(image: Array, k: int) -> Array:
    """k x k block means of a float image, computed the same way wherever the block sits.

    OpenCV's INTER_AREA on floats rounds differently in its SIMD tail, so a
    tile's result could differ from the whole image's in the last bit.
    """
    h, w = image.shape[:2]
    blocks = image.reshape(h // k, k, w // k, k, *image.shape[2:])
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(image.dtype)


def _resize_nodata_refusal(
    shape: str = "", scale: float = 1.0, interpolation: str = "auto"
) -> str | None:
    """Why this resize cannot leave nodata out (None: it can)."""
    if interpolation == "nearest":
        return None
    down = _integer(1 / scale) if not shape and scale < 1 else None
    if down is not None and interpolation in ("auto", "area"):
        return None
    return (
        f"would blend nodata into its neighbours with interpolation={interpolation}; "
        "shrink by an integer factor (scale=0.5, interpolation area), or use "
        "interpolation=nearest"
    )


def resize_masked(
    image: Array, valid: Array, shape: str = "", scale: float = 1.0, interpolation: str = "auto"
) -> tuple[Array, Array]:
    """``resize`` leaving nodata out: area means of valid pixels, or nearest with the flags.

    Shrinking by an integer factor k with ``area``: each output pixel is the
    float64 mean of the valid pixels of its k x k block (rounded half to even for
    integer types); a block without a valid pixel is nodata. An image whose sides
    are not multiples of k is refused (OpenCV would weight partial blocks).
    """
    reason = _resize_nodata_refusal(shape, scale, interpolation)
    if reason is not None:
        raise OpError(f"resize: {reason}")
    if interpolation == "nearest":
        flags = resize(valid.astype(np.uint8), shape, scale, interpolation)
        return resize(image, shape, scale, interpolation), flags.astype(bool)
    check_dtype("resize", image, _RESIZE_DTYPES)
    k = _integer(1 / scale)
    assert k is not None  # _resize_nodata_refusal checked it
    h, w = image.shape[:2]
    if h % k or w % k:
        raise OpError(
            f"resize: with nodata, scale={scale} needs sides that are multiples of {k}, "
            f"not {h}x{w}; crop or pad the image first"
        )
    from tilewise.ops.nodata import as_dtype

    def blocks(x: Array) -> Array:
        return x.reshape(h // k, k, w // k, k, *image.shape[2:]).sum(axis=(1, 3), dtype=np.float64)

    total = blocks(np.where(valid, image, 0))
    count = blocks(valid)
    flags = count > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / np.where(flags, count, 1.0)
    return as_dtype(mean, image.dtype, flags), flags


def crop_masked(image: Array, valid: Array, **params: Any) -> tuple[Array, Array]:
    """``crop``: the flags of the pixels kept go with them."""
    return crop(image, **params), crop(valid, **params)


def pad_masked(image: Array, valid: Array, **params: Any) -> tuple[Array, Array]:
    """``pad``: ``mode=constant`` adds nodata pixels; the other modes copy the flags."""
    flag_params = {**params, "value": 0} if params.get("mode", "constant") == "constant" else params
    return pad(image, **params), pad(valid.astype(np.uint8), **flag_params).astype(bool)


def crop(image: Array, rows: str = "", cols: str = "", shape: str = "") -> Array:
    """Cut out ``rows=START:STOP`` and/or ``cols=START:STOP``, or a centred ``shape=HxW``.

    Ranges follow Python's slice rules (half-open, negatives count from the
    end; an omitted bound is the image edge) but must lie inside the image.
    ``shape=HxW`` keeps the centre: the top-left corner is
    ``((H0 - H) // 2, (W0 - W) // 2)``. Equals
    ``skimage.util.crop(image, ((top, bottom), (left, right)[, (0, 0)]), copy=True)``,
    i.e. ``image[top:H0 - bottom, left:W0 - right].copy()``. With no
    parameters the whole image is kept.
    """
    r0, r1, c0, c1 = _crop_box(image.shape[:2], rows, cols, shape)
    return image[r0:r1, c0:c1].copy()


def _crop_box(size: tuple[int, ...], rows: str, cols: str, shape: str) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` rows and columns (half-open) that ``crop`` keeps."""
    height, width = size[:2]
    if shape:
        if rows or cols:
            raise OpError("crop: give shape=HxW, or rows=/cols= ranges, not both")
        h, w = parse_shape("crop", shape)
        if h > height or w > width:
            raise OpError(
                f"crop: shape={h}x{w} is larger than the {height}x{width} image; use "
                f"pad:shape={h}x{w} to enlarge it"
            )
        top, left = (height - h) // 2, (width - w) // 2
        return top, top + h, left, left + w
    r0, r1 = parse_range("crop", "rows", rows, height) if rows else (0, height)
    c0, c1 = parse_range("crop", "cols", cols, width) if cols else (0, width)
    return r0, r1, c0, c1


def _crop_grid(size: tuple[int, int], rows: str = "", cols: str = "", shape: str = "") -> PixelGrid:
    r0, r1, c0, c1 = _crop_box(size, rows, cols, shape)
    return PixelGrid(r0, c0, 1, 1, (r1 - r0, c1 - c0))


def _pad_widths(
    size: tuple[int, ...],
    width: int,
    top: int | None,
    bottom: int | None,
    left: int | None,
    right: int | None,
    shape: str,
) -> tuple[int, int, int, int]:
    sides = {"width": width, "top": top, "bottom": bottom, "left": left, "right": right}
    negative = [f"{k}={v}" for k, v in sides.items() if v is not None and v < 0]
    if negative:
        raise OpError(f"pad: widths must not be negative, got {', '.join(negative)}")
    explicit = bool(width) or any(v is not None for v in (top, bottom, left, right))
    if shape:
        if explicit:
            raise OpError("pad: give shape=HxW, or widths (width/top/bottom/left/right), not both")
        h, w = parse_shape("pad", shape)
        height, cols = size[:2]
        if h < height or w < cols:
            raise OpError(
                f"pad: shape={h}x{w} is smaller than the {height}x{cols} image; use "
                f"crop:shape={h}x{w} to make it smaller"
            )
        top, left = (h - height) // 2, (w - cols) // 2
        return top, h - height - top, left, w - cols - left
    return tuple(width if v is None else v for v in (top, bottom, left, right))  # type: ignore[return-value]


def pad(
    image: Array,
    width: int = 0,
    top: int | None = None,
    bottom: int | None = None,
    left: int | None = None,
    right: int | None = None,
    shape: str = "",
    mode: str = "constant",
    value: float = 0,
) -> Array:
    """Add a border: ``width=N`` on every side, ``top/bottom/left/right=N``, or up to ``shape=HxW``.

    A side given explicitly overrides ``width``; with no widths nothing is
    added. ``shape=HxW`` centres the image (the odd pixel goes to the
    bottom/right). ``mode`` is NumPy's:
    ``constant`` (filled with ``value``), ``edge``, ``reflect`` (OpenCV's
    BORDER_REFLECT_101), ``symmetric`` (BORDER_REFLECT) or ``wrap``. Equals
    ``numpy.pad(image, ((top, bottom), (left, right)[, (0, 0)]), mode=mode)``
    (with ``constant_values=value`` for ``constant``).
    """
    if mode not in _PAD_MODES:
        raise OpError(f"pad: mode must be one of {', '.join(_PAD_MODES)}; got {mode!r}")
    t, b, lft, r = _pad_widths(image.shape, width, top, bottom, left, right, shape)
    widths: list[tuple[int, int]] = [(t, b), (lft, r)] + [(0, 0)] * (image.ndim - 2)
    if mode != "constant":
        return np.pad(image, widths, mode=mode)  # type: ignore[call-overload]
    if image.dtype.kind in "ui":
        info = np.iinfo(image.dtype)
        if not (info.min <= value <= info.max and float(value).is_integer()):
            raise OpError(
                f"pad: value={value} does not fit a {image.dtype.name} image "
                f"({info.min}..{info.max}, whole numbers)"
            )
    return np.pad(image, widths, mode="constant", constant_values=image.dtype.type(value))


def _pad_grid(
    size: tuple[int, int],
    width: int = 0,
    top: int | None = None,
    bottom: int | None = None,
    left: int | None = None,
    right: int | None = None,
    shape: str = "",
    **_: Any,
) -> PixelGrid:
    t, b, lft, r = _pad_widths(size, width, top, bottom, left, right, shape)
    return PixelGrid(-t, -lft, 1, 1, (size[0] + t + b, size[1] + lft + r))


def _resize_grid(size: tuple[int, int], shape: str = "", scale: float = 1.0, **_: Any) -> PixelGrid:
    """OpenCV's resize maps image corners to corners: ``shape`` stretches each axis by
    ``old / new``; ``scale=F`` makes pixels ``1/F`` as large (its size rounds half to even)."""
    height, width = size
    if shape:
        rows, cols = parse_shape("resize", shape)
        return PixelGrid(0, 0, height / rows, width / cols, (rows, cols))
    if scale <= 0:
        raise OpError(f"resize: scale must be positive, got {scale}")
    return PixelGrid(0, 0, 1 / scale, 1 / scale, (round(height * scale), round(width * scale)))


register(
    OpDefinition(
        name="resize",
        func=resize,
        dtypes=_RESIZE_DTYPES,
        params=(
            Param("shape", str, "", help="output size HxW (rows x cols)"),
            Param("scale", float, 1.0, help="factor for both axes", rule="positive"),
            Param("interpolation", str, "auto", help="auto, area, linear, cubic or nearest"),
        ),
        equals="cv2.resize(image, (W, H) | fx=fy=F, interpolation=INTER_AREA|LINEAR|CUBIC|NEAREST)",
        summary="resize to HxW or by a factor (INTER_AREA when shrinking)",
        changes_shape=True,
        masked=resize_masked,
        nodata_refuses=_resize_nodata_refusal,
        halo=lambda shape="", scale=1.0, interpolation="auto": (
            1
            if _tiled_scale(shape, scale, interpolation)
            and scale > 1
            and interpolation != "nearest"
            else 0
        ),
        halo_rule="1 for linear enlargement, else 0",
        scale=lambda shape="", scale=1.0, interpolation="auto": _tiled_scale(
            shape, scale, interpolation
        ),
        pixel_grid=_resize_grid,
    )
)
register(
    OpDefinition(
        name="crop",
        func=crop,
        params=(
            Param("rows", str, "", help="START:STOP rows to keep"),
            Param("cols", str, "", help="START:STOP columns to keep"),
            Param("shape", str, "", help="HxW, centred"),
        ),
        equals="skimage.util.crop(image, ((top, bottom), (left, right)), copy=True)",
        summary="cut out rows/cols ranges, or a centred HxW",
        changes_shape=True,
        masked=crop_masked,
        pixel_grid=_crop_grid,
    )
)
register(
    OpDefinition(
        name="pad",
        func=pad,
        params=(
            Param("width", int, 0, help="pixels on every side"),
            Param("top", int, None, help="pixels above (default: width)"),
            Param("bottom", int, None, help="pixels below (default: width)"),
            Param("left", int, None, help="pixels on the left (default: width)"),
            Param("right", int, None, help="pixels on the right (default: width)"),
            Param("shape", str, "", help="pad (centred) up to HxW"),
            Param("mode", str, "constant", help="constant, edge, reflect, symmetric, wrap"),
            Param("value", float, 0, help="fill value for mode=constant"),
        ),
        equals="numpy.pad(image, ((top, bottom), (left, right)), mode=mode)",
        summary="add a border (numpy.pad modes)",
        changes_shape=True,
        masked=pad_masked,
        pixel_grid=_pad_grid,
    )
)
