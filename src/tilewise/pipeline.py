"""A pipeline: ops applied in order, with the halo, dtype and bands they add up to."""

from __future__ import annotations

import functools
import math
import pickle
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError, PipelineError, UsageError
from tilewise.geometry import Stage, StageMap, Tile
from tilewise.io.georef import Georef
from tilewise.ops import base as opbase

__all__ = ["Nodata", "OpLike", "Pipeline", "parse_op"]

Array = npt.NDArray[Any]
OpLike = str | opbase.BoundOp | Callable[..., Any]


_KEY_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*=(?!=)(.*)", re.DOTALL)


def _split_args(text: str) -> list[str]:
    """Split at commas outside parentheses and quotes."""
    items: list[str] = []
    depth, quote, start = 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "()":
            depth = depth + 1 if char == "(" else max(0, depth - 1)
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def parse_op(spec: str) -> opbase.BoundOp:
    """Parse ``"name:key=value,key=value"`` into a bound op.

    ``name`` is a built-in op or a dotted import path to a user function. An
    undecorated user function takes its halo from a ``halo=N`` parameter.
    A value may be quoted; a first value without ``key=`` is the op's first
    parameter, and items without ``key=`` continue the value before them, so
    lists and expressions need no quotes (``bands:1,3,4``, ``expr:where(b1>0,b1,0)``).

    >>> parse_op("gaussian:sigma=4").halo
    16
    >>> parse_op("median:size=9").spec()
    'median:size=9'
    >>> parse_op("bands:1,3,4").params["bands"], parse_op("gaussian:2").params["sigma"]
    ('1,3,4', 2.0)
    """
    name, _, arg_text = spec.strip().partition(":")
    if not name:
        raise OpError(f"empty op name in {spec!r}; write ops as NAME or NAME:key=value,...")
    raw: dict[str, str] = {}
    key = None
    for item in filter(None, (a.strip() for a in _split_args(arg_text))):
        match = _KEY_RE.fullmatch(item)
        if match:
            key = match.group(1)
            raw[key] = match.group(2)
        elif key is None:
            key = ""  # the op's first parameter, named by bind()
            raw[key] = item
        else:
            raw[key] += "," + item
    params = {k: opbase.parse_value(_unquote(v)) for k, v in raw.items()}
    return bind(name, params)


def bind(name: str, params: dict[str, Any]) -> opbase.BoundOp:
    """Resolve ``name`` and bind ``params`` (handles ``halo=`` for undecorated user ops)."""
    definition, halo_from_params = opbase.resolve(name)
    if "" in params:
        first = definition.params[0].name if definition.params else None
        if first is None or first in params:
            raise OpError(
                f"{name}: a value without a name ({params['']!r}); write parameters as "
                "key=value, separated by commas (see 'tilewise ops')"
            )
        params = {first: params.pop(""), **params}
    if halo_from_params:
        halo = params.pop("halo", 0)
        if not isinstance(halo, int) or halo < 0:
            raise OpError(f"{name}: halo must be a non-negative integer, got {halo!r}")
        bound = definition.bind(**params)
        return opbase.BoundOp(bound.definition, bound.params, halo)
    return definition.bind(**params)


def _as_op(item: OpLike) -> opbase.BoundOp:
    if isinstance(item, opbase.BoundOp):
        return item
    if isinstance(item, str):
        return parse_op(item)
    if callable(item):
        declared = opbase.declaration(item)
        if declared is not None:
            return declared.bind()
        if isinstance(item, functools.partial) and not item.args and _importable(item.func):
            # partial(f, size=5) is f with size=5: it travels by name, as --op f:size=5 does
            return _as_op(item.func) if not item.keywords else _with_params(item)
        if isinstance(item, functools.partial) or not hasattr(item, "__qualname__"):
            return _by_value(item)
        qualname = getattr(item, "__qualname__", "?")
        if "<lambda>" in qualname or "<locals>" in qualname:
            raise PipelineError(
                f"op {qualname} is a lambda or a local function, which worker processes cannot "
                "import; define it with 'def' at module level"
            )
        path = f"{getattr(item, '__module__', '?')}.{qualname}"
        return bind(path, {})
    raise OpError(f"not an op: {item!r}; give a string like 'gaussian:sigma=4' or a function")


def _importable(item: Any) -> bool:
    """Whether ``item`` is a function a worker can import by its dotted path."""
    qualname = getattr(item, "__qualname__", None)
    module = getattr(item, "__module__", None)
    return isinstance(qualname, str) and "<" not in qualname and isinstance(module, str)


def _with_params(item: functools.partial[Any]) -> opbase.BoundOp:
    declared = opbase.declaration(item.func)
    if declared is not None:
        return declared.bind(**item.keywords)
    return bind(f"{item.func.__module__}.{item.func.__qualname__}", dict(item.keywords))


def _by_value(item: Callable[..., Any]) -> opbase.BoundOp:
    """An op that travels pickled with its callable (a partial with arguments, an object)."""
    inner = item.func if isinstance(item, functools.partial) else type(item)
    where = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', '?')}"
    try:
        pickle.dumps(item)
    except Exception as err:
        raise PipelineError(
            f"op {item!r} cannot be sent to worker processes ({err}); give a picklable "
            "callable: a module-level function, a functools.partial of one, or an object "
            "of a module-level class"
        ) from err
    definition = opbase.OpDefinition(
        name=where if isinstance(item, functools.partial) else f"{where}()",
        func=item,
        equals=f"{item!r} on the whole image",
        source=where,
        by_value=True,
    )
    return opbase.BoundOp(definition, {}, 0)


@dataclass(frozen=True, slots=True)
class Nodata:
    """The nodata values a pipeline reads and writes: ``value`` in, ``out`` out (NaN allowed)."""

    value: float
    out: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for reports and fingerprints (NaN as ``"nan"``)."""
        return {"input": _json_number(self.value), "output": _json_number(self.out)}


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class Pipeline:
    """An ordered, non-empty list of bound ops, and the nodata value it leaves out, if any.

    Examples
    --------
    >>> p = Pipeline.from_specs(["gaussian:sigma=4", "threshold:value=127"])
    >>> p.halo, p.out_dtype(np.dtype("uint8")).name
    (16, 'uint8')
    >>> p.with_nodata(0, np.dtype("uint8"), dst_nodata=1).nodata
    Nodata(value=0.0, out=1.0)
    """

    ops: tuple[opbase.BoundOp, ...]
    #: With a nodata value, the ops leave its pixels out (:mod:`tilewise.ops.nodata`).
    nodata: Nodata | None = None

    def __post_init__(self) -> None:
        if not self.ops:
            raise PipelineError(
                "the pipeline is empty; give at least one --op (see 'tilewise ops')"
            )

    @classmethod
    def from_specs(cls, specs: Iterable[OpLike] | OpLike) -> Pipeline:
        """Build from op strings, bound ops or decorated functions (a single one is fine)."""
        if isinstance(specs, str | opbase.BoundOp) or callable(specs):
            specs = [specs]
        return cls(tuple(_as_op(s) for s in specs))

    @property
    def halo(self) -> int:
        """Total halo: the sum of the ops' halos."""
        return sum(op.halo for op in self.ops)

    @property
    def changes_shape(self) -> bool:
        """Whether some op changes the image's height or width."""
        return any(op.definition.changes_shape for op in self.ops)

    def check_tileable(self) -> None:
        """Refuse ops that change the image size other than by an integer factor."""
        whole = [op.spec() for op in self.ops if op.definition.whole_image]
        if whole:
            raise PipelineError(
                f"op {', '.join(whole)} needs the whole image at once, which tiled runs cannot "
                "give it; use it with 'tilewise batch', which processes whole images"
            )
        resizing = [op.spec() for op in self.ops if op.scale is None]
        if resizing:
            raise PipelineError(
                f"op {', '.join(resizing)} changes the image size in a way tiles cannot follow "
                "(tiled runs take integer scale factors, e.g. resize:scale=0.5 or "
                "resize:scale=2); use it with 'tilewise batch', which processes whole images"
            )

    @property
    def rescales(self) -> bool:
        """Whether some op scales the image (the output shape differs from the input's)."""
        return any(op.scale not in ((1, 1), None) for op in self.ops)

    def stage_map(self, input_shape: tuple[int, int]) -> StageMap:
        """The geometry of every op, for an input of ``input_shape``."""
        self.check_tileable()
        stages = []
        for op in self.ops:
            up, down = op.scale or (1, 1)
            stages.append(Stage(op.halo, up, down))
        return StageMap(tuple(input_shape), tuple(stages))  # type: ignore[arg-type]

    @property
    def exact(self) -> bool:
        """Whether every op promises tiled output equal to whole-image output."""
        return all(op.definition.exact for op in self.ops)

    def out_dtype(self, dtype: np.dtype[Any]) -> np.dtype[Any]:
        """The dtype that comes out for an input of ``dtype``."""
        for op in self.ops:
            dtype = op.out_dtype(dtype)
        return np.dtype(dtype)

    def out_bands(self, bands: int) -> int:
        """The band count that comes out for an input of ``bands`` bands."""
        for op in self.ops:
            bands = op.out_bands(bands)
        return bands

    def out_georef(self, georef: Georef, dtype: np.dtype[Any], shape: tuple[int, int]) -> Georef:
        """The output's georeferencing for an input with ``georef``, ``dtype`` and ``shape``.

        See :mod:`tilewise.pipeline_georef` for how each op maps it. Its nodata
        value is this pipeline's output nodata value (:meth:`with_nodata`), or
        none when the pipeline leaves no nodata out.
        """
        from tilewise.pipeline_georef import map_georef

        out = None if self.nodata is None else self.nodata.out
        return map_georef(self.ops, georef, np.dtype(dtype), nodata=out, shape=shape)

    def with_nodata(
        self,
        nodata: float | None,
        dtype: np.dtype[Any],
        *,
        dst_nodata: float | None = None,
        source: str = "the input",
    ) -> Pipeline:
        """This pipeline leaving pixels of ``nodata`` out; unchanged when ``nodata`` is None.

        The output's nodata value is ``dst_nodata``, or the input's as the ops map
        it (see :mod:`tilewise.ops.nodata`). ``dtype`` is the input's.

        Raises
        ------
        PipelineError
            An op cannot leave nodata out (naming it and the way round), or no
            op says which value marks nodata in the output and ``dst_nodata`` is
            not given, or it does not fit the output's dtype.
        """
        if nodata is None:
            return Pipeline(self.ops) if self.nodata is not None else self
        from tilewise.ops.nodata import fits

        where = f"{source} has nodata ({_number(nodata)})"
        value: float | None = float(nodata)
        dtype = np.dtype(dtype)
        for op in self.ops:
            reason = op.nodata_refusal()
            if reason is not None:
                raise PipelineError(
                    f"{where}, and op {op.spec()} {reason}; leave the op out, or pass "
                    "--nodata none to process nodata pixels as ordinary values"
                )
            value = op.out_nodata(value, dtype)
            dtype = op.out_dtype(dtype)
        out = value if dst_nodata is None else float(dst_nodata)
        if out is None:
            raise PipelineError(
                f"{where}; no value marks nodata in the {dtype.name} output of "
                f"{self.specs()[-1]} without taking the place of a valid one: choose it with "
                "--dst-nodata (e.g. --dst-nodata 1 after threshold), or pass --nodata none"
            )
        if not fits(dtype, out):
            raise UsageError(
                f"--dst-nodata {_number(out)} does not fit the output's {dtype.name} pixels; "
                "give a value the output type holds"
            )
        return Pipeline(self.ops, Nodata(float(nodata), out))

    def check_input(self, dtype: np.dtype[Any], bands: int, *, source: str = "the input") -> None:
        """Refuse an image no op chain can process, from its dtype and bands alone.

        Each op that declares the dtypes or band counts it takes is checked
        against what reaches it (the input's, as changed by the ops before it),
        so a run fails here, before any output exists, instead of on every tile.

        Raises
        ------
        PipelineError
            Naming ``source``, the op, what it takes, and a conversion that works.
        """
        dtype = np.dtype(dtype)
        for position, op in enumerate(self.ops):
            reason = op.refuses(dtype, bands)
            if reason is not None:
                accepted = op.definition.dtypes
                reached = "" if position == 0 else f" as it reaches it ({bands}-band {dtype.name})"
                where = "first" if position == 0 else f"before --op {op.spec()}"
                if accepted is None or dtype.name in accepted:
                    fix = "leave the op out, or give it an image it takes"
                elif (advice := _conversion_advice(dtype, accepted)) is not None:
                    fix = f"add --op {advice} {where}"
                else:
                    fix = "convert the image to one of those first"
                raise PipelineError(f"{source}: op {op.name} {reason}{reached}; {fix}")
            dtype = op.out_dtype(dtype)
            bands = op.out_bands(bands)

    def __call__(self, image: Array) -> Array:
        """Run every op in order on ``image`` (which is not modified).

        With a nodata value, pixels of that value are left out by every op and
        come out as the output's nodata value (:mod:`tilewise.ops.nodata`).
        """
        if self.nodata is not None:
            return self._finish(*self._masked(image, self._valid(image)))
        for op in self.ops:
            result = op(image)
            _check_result(op, image, result)
            image = result
        return image

    def _valid(self, image: Array) -> Array:
        from tilewise.ops.nodata import valid_mask

        assert self.nodata is not None
        return valid_mask(image, self.nodata.value)

    def _masked(self, image: Array, valid: Array) -> tuple[Array, Array]:
        for op in self.ops:
            result, valid = op.masked(image, valid)
            _check_result(op, image, result)
            image = result
        return image, valid

    def _finish(self, image: Array, valid: Array) -> Array:
        """Every pixel that is not valid set to the output's nodata value (a new array)."""
        assert self.nodata is not None
        return np.where(valid, image, image.dtype.type(self.nodata.out))

    def apply_tile(self, image: Array, tile: Tile, stages: StageMap | None = None) -> Array:
        """Run the ops on ``image`` (the pixels of ``tile.read``); return the tile's core.

        Without ``stages`` every op runs on the whole read window and the core is
        cut out at the end. With ``stages`` (ops that change the scale) the
        image is cropped before each op to the window its stage needs, so each
        scaling op sees blocks aligned as in the whole image.
        """
        if stages is None:
            return self(image)[tile.core_in_read.slices]
        windows = stages.windows(tile.core)
        current = windows[0]
        valid = self._valid(image) if self.nodata is not None else None
        for index, op in enumerate(self.ops):
            cut = windows[index].relative_to(current).slices
            if valid is None:
                image = Pipeline((op,))(image[cut])
            else:
                image, valid = Pipeline((op,))._masked(image[cut], valid[cut])
            current = stages.forward(index, windows[index])
        last = windows[-1].relative_to(current).slices
        return image[last] if valid is None else self._finish(image[last], valid[last])

    def specs(self) -> list[str]:
        """The ops as command-line strings (for reports and fingerprints)."""
        return [op.spec() for op in self.ops]

    def check_portable(self) -> None:
        """Fail early if the pipeline cannot be sent to worker processes."""
        for op in self.ops:
            try:
                restored = pickle.loads(pickle.dumps(op))
            except Exception as err:
                raise PipelineError(
                    f"op {op.name} cannot be sent to worker processes ({err}); define it "
                    "at module level in an importable module, not as a lambda or a local "
                    "function"
                ) from err
            if not op.definition.by_value and restored.definition.func is not op.definition.func:
                raise PipelineError(
                    f"op {op.name} cannot be found again by its name "
                    f"{op.definition.locator!r} in a worker; define it at module level"
                )

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Any:
        return iter(self.ops)


def _check_result(op: opbase.BoundOp, image: Array, result: Any) -> None:
    if not isinstance(result, np.ndarray):
        raise PipelineError(f"op {op.name} returned {type(result).__name__}, not a numpy array")
    if result.shape[:2] != image.shape[:2] and not op.definition.changes_shape:
        raise PipelineError(
            f"op {op.name} changed the image size from {image.shape[:2]} to "
            f"{result.shape[:2]}; ops used for tiling must keep the size"
        )


def _number(value: float) -> str:
    """A nodata value as a user writes it: ``0``, ``-9999``, ``nan``."""
    return "nan" if math.isnan(value) else f"{value:g}"


def _conversion_advice(dtype: np.dtype[Any], accepted: tuple[str, ...] | None) -> str | None:
    """The ``to_dtype`` op that turns ``dtype`` into one ``accepted`` takes, if there is one.

    Prefers a target that holds every value (uint8, uint16, float32 in this
    order); 1-bit images become 0/255 (``scale=auto``).

    >>> _conversion_advice(np.dtype("int8"), ("uint8", "float32"))
    'to_dtype:dtype=float32'
    >>> _conversion_advice(np.dtype("bool"), ("uint8", "float32"))
    'to_dtype:dtype=uint8,scale=auto'
    """
    converter = opbase.resolve("to_dtype")[0]
    if accepted is None or (converter.dtypes and dtype.name not in converter.dtypes):
        return None
    targets = [t for t in ("uint8", "uint16", "float32") if t in accepted]
    if not targets:
        return None
    exact = [t for t in targets if np.can_cast(dtype, t, "safe")]
    target = (exact or ["float32" if "float32" in targets else targets[0]])[0]
    scale = ",scale=auto" if dtype.kind == "b" else ""
    return f"to_dtype:dtype={target}{scale}"


def as_pipeline(ops: Pipeline | Sequence[OpLike] | OpLike) -> Pipeline:
    """Accept a Pipeline, one op, or a sequence of ops."""
    return ops if isinstance(ops, Pipeline) else Pipeline.from_specs(ops)
