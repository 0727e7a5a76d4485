"""The public API is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import tilewise


def test_public_names_are_pinned():
    assert sorted(tilewise.__all__) == sorted(
        [
            "BatchReport",
            "Grid",
            "Layout",
            "Piece",
            "Pipeline",
            "RunReport",
            "Tile",
            "TilewiseError",
            "Window",
            "__version__",
            "batch",
            "info",
            "merge",
            "op",
            "plan",
            "process",
            "run",
            "split",
        ]
    )
    for name in tilewise.__all__:
        assert hasattr(tilewise, name)


def test_every_error_derives_from_the_root_and_a_builtin():
    from tilewise import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if name in ("TilewiseError", "TilewiseWarning"):
            continue
        assert issubclass(cls, errors.TilewiseError), name
        assert any(issubclass(cls, b) for b in (ValueError, OSError, RuntimeError)), (
            f"{name} should refine a builtin"
        )
