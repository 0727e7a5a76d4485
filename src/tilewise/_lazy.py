"""Names a package imports on first use (scientific Python's SPEC 1, as ``lazy_loader.attach``).

Kept free of imports so that ``import tilewise`` stays light.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["attach"]


def attach(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``: each name loads from its module.

    ``dir(package)`` lists the exports and the names in the package's ``__all__``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> the module that defines it.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        # the public API only: not the module's helpers (attach, TYPE_CHECKING, annotations)
        return sorted({*exports, *getattr(sys.modules[package], "__all__", ())})

    return __getattr__, __dir__
