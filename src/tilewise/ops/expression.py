"""Band-math expressions, evaluated by walking a checked syntax tree — never Python ``eval``.

An expression is parsed with :func:`ast.parse` and every node is checked
against a short list before anything runs: numbers, band names ``b1``,
``b2``... (1-based, as GDAL), ``+ - * / **``, unary ``-``/``+``, comparisons
(``< <= > >= == !=``, chained too) and the functions ``where(cond, a, b)``,
``log(x)``, ``sqrt(x)``, ``abs(x)`` and ``clip(x, lo, hi)``. Anything else —
attribute access, subscripts, other names or calls, keywords, strings — is
refused with the expression in the message. Arithmetic is float64 NumPy, so
``10 ** 10 ** 10`` is ``inf``, not a hang.

>>> import numpy as np
>>> e = Expression.parse("(b2 - b1) / (b2 + b1)")
>>> e.bands
(1, 2)
>>> e.evaluate({1: np.array([1.0, 0.0]), 2: np.array([3.0, 0.0])})
array([0.5, nan])
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from tilewise.errors import OpError

__all__ = ["FUNCTIONS", "Expression"]

Array = npt.NDArray[Any]

#: Longest expression accepted, and most syntax-tree nodes (bounds the recursive walk).
MAX_LENGTH = 2000
MAX_NODES = 500

_BAND = re.compile(r"b([1-9][0-9]*)")
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: np.negative,
    ast.UAdd: np.positive,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


def _where(cond: Any, a: Any, b: Any) -> Any:
    return np.where(np.not_equal(cond, 0), a, b)


#: Function name -> (number of arguments, implementation).
FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "where": (3, _where),
    "log": (1, np.log),
    "sqrt": (1, np.sqrt),
    "abs": (1, np.abs),
    "clip": (3, np.clip),
}


@dataclass(frozen=True)
class Expression:
    """A checked band-math expression: its text, syntax tree and the bands it reads."""

    text: str
    tree: ast.expr
    bands: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Expression:
        """Parse and check ``text``; raise :class:`OpError` saying what is not allowed."""
        return _parse_cached(str(text))

    def evaluate(self, bands: Mapping[int, Array]) -> Array:
        """The expression's float64 value, given float64 arrays for the bands it reads.

        Undefined results (division by zero, log of 0, sqrt of a negative) are
        ``inf`` or NaN, as NumPy computes them, without warnings.
        """
        with np.errstate(all="ignore"):
            return np.asarray(self._eval(self.tree, bands), dtype=np.float64)

    def _eval(self, node: ast.expr, bands: Mapping[int, Array]) -> Any:
        if isinstance(node, ast.Constant):
            return np.float64(cast(float, node.value))
        if isinstance(node, ast.Name):
            return bands[int(node.id[1:])]
        if isinstance(node, ast.BinOp):
            op = _BINARY[type(node.op)]
            return op(self._eval(node.left, bands), self._eval(node.right, bands))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, bands))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, bands)
            result: Any = True
            for cmp, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._eval(right_node, bands)
                result = np.logical_and(result, _COMPARE[type(cmp)](left, right))
                left = right
            return result.astype(np.float64)
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            raise OpError(f"expr: cannot evaluate {ast.unparse(node)!r}")  # parse() refuses it
        _, func = FUNCTIONS[node.func.id]
        return func(*(self._eval(arg, bands) for arg in node.args))


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str) -> Expression:
    if not text.strip():
        raise OpError("expr: the expression is empty; e.g. expr:(b4-b3)/(b4+b3)")
    if len(text) > MAX_LENGTH:
        raise OpError(f"expr: the expression is {len(text)} characters long; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError, ValueError) as err:
        raise OpError(f"expr: cannot parse {text!r}: {err}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise OpError(f"expr: {text!r} has {len(nodes)} terms; at most {MAX_NODES}")
    bands: set[int] = set()
    callees = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
    for node in nodes:
        if id(node) not in callees:  # a called name is checked with its call
            _check(node, text, bands)
    return Expression(text, tree, tuple(sorted(bands)))


def _check(node: ast.AST, text: str, bands: set[int]) -> None:
    allowed = f"numbers, bands b1, b2, ..., + - * / **, comparisons, and {', '.join(FUNCTIONS)}"

    def refuse(what: str) -> OpError:
        return OpError(f"expr: {what} is not allowed in {text!r}; use only {allowed}")

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise refuse(f"the constant {node.value!r}")
    elif isinstance(node, ast.Name):
        match = _BAND.fullmatch(node.id)
        if match is None:
            raise refuse(f"the name {node.id!r}")
        bands.add(int(match.group(1)))
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise refuse(f"the operator {type(node.op).__name__}")
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise refuse(f"the operator {type(node.op).__name__}")
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _COMPARE for op in node.ops):
            raise refuse("that comparison")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise refuse(f"the call {ast.unparse(node.func)}(...)")
        arity, _ = FUNCTIONS[node.func.id]
        if node.keywords or len(node.args) != arity:
            raise OpError(
                f"expr: {node.func.id} takes {arity} argument(s) by position, in {text!r}"
            )
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise refuse("a starred argument")
    elif not isinstance(node, ast.operator | ast.unaryop | ast.cmpop | ast.Load):
        raise refuse(f"{type(node).__name__} ({ast.unparse(node)!r})")
