"""The op library and the contract for user ops.

Importing this package registers every built-in op in :data:`REGISTRY`.
"""

from tilewise.ops import bandmath, convert, filters, geometry_ops, morphology, point, sar, stamp
from tilewise.ops.base import REGISTRY, BoundOp, OpDefinition, Param, op, resolve

__all__ = [
    "REGISTRY",
    "BoundOp",
    "OpDefinition",
    "Param",
    "bandmath",
    "convert",
    "filters",
    "geometry_ops",
    "morphology",
    "op",
    "point",
    "resolve",
    "sar",
    "stamp",
]
