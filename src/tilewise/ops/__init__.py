"""The op library and the contract for user ops.

Importing this package registers every built-in op in :data:`REGISTRY`.
"""

from tilewise.ops import filters, morphology, point, stamp
from tilewise.ops.base import REGISTRY, BoundOp, OpDefinition, Param, op, resolve

__all__ = [
    "REGISTRY",
    "BoundOp",
    "OpDefinition",
    "Param",
    "filters",
    "morphology",
    "op",
    "point",
    "resolve",
    "stamp",
]
