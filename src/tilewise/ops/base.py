"""The op contract: a pure function ``ndarray -> ndarray`` plus the metadata tiling needs.

An op declares:

* its **halo**: how many pixels beyond a tile's core it reads, derived from
  its own parameters (Gaussian: ``int(truncate * sigma + 0.5)``; a K x K window:
  ``K // 2``). The pipeline's halo is the sum of its ops' halos.
* its output **dtype** and **band count** as functions of the input's, so the
  output can be created before any pixel is computed.
* optionally, the input **dtypes** and **band counts** it takes, so a pipeline
  refuses an image it cannot process from the header, before any tile runs
  (an op that declares none is not checked).
* the library function it **equals** on the whole image.
* optionally, how it treats **nodata** (:mod:`tilewise.ops.nodata`): a second
  function ``masked(image, valid, **params) -> (image, valid)`` that leaves
  pixels where ``valid`` is false out of every computation, and a rule for the
  output's nodata value. An op without one is refused when the image has nodata.

Ops never touch files and never modify their input.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError

__all__ = [
    "DECLARATION",
    "REGISTRY",
    "BoundOp",
    "OpDefinition",
    "Param",
    "PixelGrid",
    "declaration",
    "op",
    "parse_value",
    "register",
    "resolve",
]

Array = npt.NDArray[Any]
HaloRule = int | Callable[..., int]
DtypeRule = Callable[..., np.dtype[Any]] | None
BandsRule = Callable[..., int] | None
#: ``masked(image, valid, **params) -> (image, valid)``: the op with nodata left out.
MaskedFunc = Callable[..., tuple[Any, Any]]
#: ``rule(value, in_dtype, out_dtype, **params)``: the output's nodata value, or None.
NodataRule = Callable[..., float | None]
F = TypeVar("F", bound=Callable[..., Any])

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$")


def parse_value(text: str) -> Any:
    """Convert a parameter written on the command line to a Python value.

    >>> parse_value("4"), parse_value("0.5"), parse_value("true"), parse_value("256x256")
    (4, 0.5, True, '256x256')
    """
    lowered = text.strip().lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if _NUMBER_RE.match(lowered):
        number = float(lowered)
        if number.is_integer() and "." not in lowered and "e" not in lowered:
            return int(number)
        return number
    return text.strip()


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a built-in op."""

    name: str
    kind: type
    default: Any = inspect.Parameter.empty
    help: str = ""
    #: ``"positive"`` (> 0) or ``"odd"`` (a positive odd integer), checked on binding.
    rule: str = ""

    @property
    def required(self) -> bool:
        """Whether the parameter has no default."""
        return self.default is inspect.Parameter.empty

    def convert(self, op_name: str, value: Any) -> Any:
        """Convert and check ``value``; raise :class:`OpError` naming the op if it is wrong."""
        try:
            if self.kind is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.kind is float:
                value = float(value)
            elif self.kind is str:
                value = str(value)
            elif self.kind is bool:
                value = bool(value)
        except (TypeError, ValueError):
            pass
        else:
            return self._check(op_name, value)
        raise OpError(
            f"{op_name}: parameter {self.name} must be {self.kind.__name__}, got {value!r}"
        )

    def _check(self, op_name: str, value: Any) -> Any:
        if self.rule == "positive" and not value > 0:
            raise OpError(f"{op_name}: {self.name} must be positive, got {value}")
        if self.rule == "odd" and (value < 1 or value % 2 == 0):
            raise OpError(f"{op_name}: {self.name} must be a positive odd number, got {value}")
        return value


@dataclass(frozen=True, slots=True)
class PixelGrid:
    """Where an op's output pixel grid lies on its input's.

    The output's pixel corner ``(r, c)`` is the input's grid point
    ``(row + r * row_step, col + c * col_step)``; ``shape`` is the output's
    ``(height, width)``. A crop of rows 10: is ``PixelGrid(10, 0, 1, 1, ...)``, a
    10-px pad ``PixelGrid(-10, -10, 1, 1, ...)``, halving ``PixelGrid(0, 0, 2, 2, ...)``.
    """

    row: float
    col: float
    row_step: float
    col_step: float
    shape: tuple[int, int]


@dataclass(frozen=True)
class OpDefinition:
    """A registered op: the function and everything tiling needs to know about it."""

    name: str
    func: Callable[..., Array]
    halo: HaloRule = 0
    dtype: DtypeRule = None
    bands: BandsRule = None
    params: tuple[Param, ...] | None = None
    equals: str = ""
    summary: str = ""
    exact: bool = True
    source: str = ""
    halo_rule: str = ""
    #: The op changes the image's height/width (resize, crop, pad). Such ops run
    #: on whole images (``tilewise batch``); in tiled runs only if ``scale`` says how.
    changes_shape: bool = False
    #: For ops that scale the image by an integer factor: a function of the op's
    #: parameters returning ``(up, down)`` (e.g. ``(1, 2)`` halves each side), or
    #: ``None`` when the parameters make the scale unsuitable for tiling.
    scale: Callable[..., tuple[int, int] | None] | None = None
    #: For ops that change the shape: a function of the input ``(height, width)``
    #: and the op's parameters returning :class:`PixelGrid`, where the output's
    #: pixel grid lies on the input's; it carries georeferencing through the op
    #: (:mod:`tilewise.pipeline_georef`). ``None``: only ``scale`` says it.
    pixel_grid: Callable[..., PixelGrid] | None = None
    #: The op needs the whole image at once (e.g. statistics over every pixel), so
    #: tiles cannot run it; ``tilewise batch`` can.
    whole_image: bool = False
    #: The dtype and bands rules take the op's parameters as keywords too (``bands:1,3``
    #: selects two bands; ``expr:...,dtype=uint8`` makes uint8), and may raise
    #: :class:`~tilewise.errors.OpError` for an input they cannot take.
    rules_take_params: bool = False
    #: The op travels to workers pickled with its function (a ``functools.partial``
    #: or a callable object), not by its import path.
    by_value: bool = False
    #: Input dtypes (names) the op takes; ``None``: not checked.
    dtypes: tuple[str, ...] | None = None
    #: Input band counts the op takes; ``None``: any.
    in_bands: tuple[int, ...] | None = None
    #: The op with nodata pixels left out (see :mod:`tilewise.ops.nodata`); ``None``:
    #: the op cannot treat nodata as missing, and images with nodata are refused.
    masked: MaskedFunc | None = None
    #: Where the op sends the nodata value (``None``: keep it when the output
    #: dtype holds it exactly, else NaN for float outputs, else no value).
    nodata_rule: NodataRule | None = None
    #: Why the op, with these parameters, cannot leave nodata out (None: it can).
    nodata_refuses: Callable[..., str | None] | None = None

    @property
    def locator(self) -> str:
        """How a worker finds this op again: a built-in name or a dotted import path."""
        return self.source or self.name

    def bind(self, **params: Any) -> BoundOp:
        """Check ``params`` against the definition and return a ready-to-run op."""
        checked = dict(params)
        if self.params is not None:
            known = {p.name: p for p in self.params}
            unknown = sorted(set(params) - set(known))
            if unknown:
                raise OpError(
                    f"{self.name}: unknown parameter {', '.join(unknown)}; "
                    f"it takes {', '.join(known) or 'no parameters'} "
                    f"(see 'tilewise ops')"
                )
            for p in self.params:
                if p.name in params:
                    checked[p.name] = p.convert(self.name, params[p.name])
                elif p.required:
                    raise OpError(
                        f"{self.name}: missing parameter {p.name} "
                        f"(write it as {self.name}:{p.name}=VALUE)"
                    )
                else:
                    checked[p.name] = p.default
        halo = self.halo(**checked) if callable(self.halo) else int(self.halo)
        if halo < 0:
            raise OpError(f"{self.name}: halo must not be negative, got {halo}")
        return BoundOp(self, checked, halo)


@dataclass(frozen=True)
class BoundOp:
    """An op with its parameters: what a pipeline is made of, and what travels to workers."""

    definition: OpDefinition
    params: Mapping[str, Any] = field(default_factory=dict)
    halo: int = 0

    @property
    def name(self) -> str:
        """The op's name."""
        return self.definition.name

    def __call__(self, image: Array) -> Array:
        return self.definition.func(image, **self.params)

    def masked(self, image: Array, valid: Array) -> tuple[Array, Array]:
        """Run the op with the pixels where ``valid`` is false left out.

        Returns the result and where it is valid (see :mod:`tilewise.ops.nodata`).
        """
        func = self.definition.masked
        if func is None:
            raise OpError(f"op {self.name} cannot leave nodata pixels out")
        return func(image, valid, **self.params)

    def nodata_refusal(self) -> str | None:
        """Why this op cannot leave nodata pixels out, or None if it can."""
        if self.definition.masked is None:
            return "does not know how to leave nodata pixels out"
        rule = self.definition.nodata_refuses
        return None if rule is None else rule(**self.params)

    def out_nodata(self, value: float | None, dtype: np.dtype[Any]) -> float | None:
        """The nodata value after this op, for ``value`` in an input of ``dtype`` (or None)."""
        from tilewise.ops.nodata import keep_rule

        out_dtype = self.out_dtype(dtype)
        rule = self.definition.nodata_rule
        if rule is None:
            return keep_rule(value, np.dtype(dtype), out_dtype)
        return rule(value, np.dtype(dtype), out_dtype, **self.params)

    def out_dtype(self, dtype: np.dtype[Any]) -> np.dtype[Any]:
        """Output dtype for an input of ``dtype`` (unchanged unless the op says otherwise)."""
        rule = self.definition.dtype
        if rule is None:
            return np.dtype(dtype)
        params = self.params if self.definition.rules_take_params else {}
        return np.dtype(rule(np.dtype(dtype), **params))

    @property
    def scale(self) -> tuple[int, int] | None:
        """``(up, down)`` integer scale of a resizing op; ``(1, 1)`` for ops that keep the size."""
        if self.definition.whole_image:
            return None
        if not self.definition.changes_shape:
            return (1, 1)
        rule = self.definition.scale
        return None if rule is None else rule(**self.params)

    def pixel_grid(self, shape: tuple[int, int]) -> PixelGrid | None:
        """Where this op's output grid lies on an input of ``shape``; ``None``: unknown.

        Ops that keep the shape keep the grid; resizing ops by an integer
        ``scale`` stretch it; other shape-changing ops say it with their
        ``pixel_grid`` rule.
        """
        height, width = shape
        if not self.definition.changes_shape:
            return PixelGrid(0, 0, 1, 1, (height, width))
        rule = self.definition.pixel_grid
        if rule is not None:
            return rule((height, width), **self.params)
        scale = self.scale
        if scale is None:
            return None
        up, down = scale
        step = down / up
        return PixelGrid(0, 0, step, step, (height * up // down, width * up // down))

    def out_bands(self, bands: int) -> int:
        """Output band count for an input of ``bands`` bands."""
        rule = self.definition.bands
        if rule is None:
            return bands
        params = self.params if self.definition.rules_take_params else {}
        return int(rule(bands, **params))

    def refuses(self, dtype: np.dtype[Any], bands: int) -> str | None:
        """Why this op cannot take ``bands`` bands of ``dtype``, or ``None`` if it can."""
        accepted, counts = self.definition.dtypes, self.definition.in_bands
        if accepted is not None and np.dtype(dtype).name not in accepted:
            return f"takes {', '.join(accepted)} images, not {np.dtype(dtype).name}"
        if counts is not None and bands not in counts:
            wanted = "1 band" if counts == (1,) else f"{either(counts)} bands"
            return f"takes {wanted}, not {bands} band{'s' if bands != 1 else ''}"
        return None

    def spec(self) -> str:
        """The op written back as a command-line string, e.g. ``gaussian:sigma=4``."""
        args = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}:{args}" if args else self.name

    def __str__(self) -> str:
        return self.spec()

    def __reduce__(self) -> tuple[Any, ...]:
        if self.definition.by_value:
            return (BoundOp, (self.definition, dict(self.params), self.halo))
        # Travel by name, not by value: halo/dtype rules may be lambdas, and the
        # worker must run the very function the main process resolved.
        return (_rebind, (self.definition.locator, dict(self.params), self.halo))


def either(values: tuple[object, ...]) -> str:
    """``"1, 3 or 4"``: values joined for a message.

    >>> either((3, 4)), either((1, 3, 4))
    ('3 or 4', '1, 3 or 4')
    """
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _rebind(locator: str, params: dict[str, Any], halo: int) -> BoundOp:
    return BoundOp(_resolve_cached(locator), params, halo)


@functools.lru_cache(maxsize=256)
def _resolve_cached(locator: str) -> OpDefinition:
    """Resolve once per process: workers unpickle the same ops for every tile."""
    return resolve(locator)[0]


REGISTRY: dict[str, OpDefinition] = {}


def register(definition: OpDefinition) -> OpDefinition:
    """Add a built-in op to the registry."""
    REGISTRY[definition.name] = definition
    return definition


#: The attribute :func:`op` sets on a function it declares (as click marks its commands).
DECLARATION = "__tilewise_op__"


def declaration(func: object) -> OpDefinition | None:
    """The op definition :func:`op` attached to ``func``, or None if it has none."""
    declared = getattr(func, DECLARATION, None)
    return declared if isinstance(declared, OpDefinition) else None


def op(
    halo: HaloRule = 0,
    *,
    dtype: DtypeRule | str | None = None,
    bands: BandsRule | int | None = None,
    name: str | None = None,
    scale: tuple[int, int] | Callable[..., tuple[int, int] | None] | None = None,
    dtypes: tuple[str, ...] | None = None,
    in_bands: tuple[int, ...] | None = None,
) -> Callable[[F], F]:
    """Declare a user function as a tilewise op.

    Parameters
    ----------
    halo : int or callable
        Pixels the op reads beyond each output pixel, or a function of the op's
        keyword parameters returning it. Too small a halo makes tiles differ
        from the whole image: compare ``tilewise.process`` with a small tile
        against one tile the size of the image to check it.
    dtype : str, numpy dtype or callable, optional
        Output dtype (fixed, or a function of the input dtype). Default: unchanged.
    bands : int or callable, optional
        Output band count (fixed, or a function of the input's). Default: unchanged.
    name : str, optional
        Name shown in reports. Default: the function's dotted path.
    scale : (up, down) or callable, optional
        For ops that resize by an integer factor: ``(1, 2)`` halves each side,
        ``(2, 1)`` doubles it (or a function of the parameters returning that).
        The halo is then counted in the op's input pixels.
    dtypes : tuple of str, optional
        Input dtypes the op takes, e.g. ``("uint8", "float32")``. A run whose
        image reaches the op in another dtype is refused before any tile runs.
        Default: not checked.
    in_bands : tuple of int, optional
        Input band counts the op takes, e.g. ``(3, 4)``. Default: any.

    Examples
    --------
    >>> import numpy as np, tilewise
    >>> @tilewise.op(halo=lambda size=3: size // 2)
    ... def local_max(image, size=3):
    ...     from scipy import ndimage
    ...     return ndimage.maximum_filter(image, size=size, mode="nearest")
    """
    dtype_rule: DtypeRule
    if dtype is None or callable(dtype):
        dtype_rule = dtype
    else:
        fixed = np.dtype(dtype)
        dtype_rule = _Constant(fixed)
    bands_rule: BandsRule = _Constant(bands) if isinstance(bands, int) else bands
    scale_rule = _Constant(tuple(scale)) if isinstance(scale, tuple) else scale

    def decorate(func: F) -> F:
        definition = OpDefinition(
            name=name or f"{func.__module__}.{func.__qualname__}",
            func=func,
            halo=halo,
            dtype=dtype_rule,
            bands=bands_rule,
            equals=f"{func.__module__}.{func.__qualname__} on the whole image",
            summary=(inspect.getdoc(func) or "").split("\n")[0],
            source=f"{func.__module__}.{func.__qualname__}",
            changes_shape=scale is not None,
            scale=scale_rule,
            dtypes=None if dtypes is None else tuple(np.dtype(d).name for d in dtypes),
            in_bands=None if in_bands is None else tuple(in_bands),
        )
        setattr(func, DECLARATION, definition)  # read back by declaration()
        return func

    return decorate


@dataclass(frozen=True, slots=True)
class _Constant:
    """A picklable constant function (lambdas cannot travel to worker processes)."""

    value: Any

    def __call__(self, *_: Any, **__: Any) -> Any:
        return self.value


def _import_dotted(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise OpError(f"cannot import op {path!r}: {err}") from err
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise OpError(f"cannot import op {path!r}: module {module_name} has no {attr!r}") from None
    if not callable(obj):
        raise OpError(f"op {path!r} is not callable")
    return obj  # type: ignore[no-any-return]


def resolve(name: str) -> tuple[OpDefinition, bool]:
    """Find an op by built-in name or dotted import path.

    Returns the definition and whether it takes its halo from a ``halo=``
    parameter (an undecorated user function).
    """
    if name in REGISTRY:
        return REGISTRY[name], False
    if "." not in name:
        _load_builtins()
        if name in REGISTRY:
            return REGISTRY[name], False
    if "." not in name:
        known = ", ".join(sorted(REGISTRY))
        raise OpError(f"unknown op {name!r}; built-in ops are: {known} (or give a dotted path)")
    func = _import_dotted(name)
    declared = declaration(func)
    if declared is not None:
        return declared, False
    definition = OpDefinition(
        name=name,
        func=func,
        equals=f"{name} on the whole image",
        summary=(inspect.getdoc(func) or "").split("\n")[0],
        source=name,
    )
    return definition, True


def _load_builtins() -> None:
    importlib.import_module("tilewise.ops")
