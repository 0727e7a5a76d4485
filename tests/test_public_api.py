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
            "measure",
            "merge",
            "op",
            "plan",
            "process",
            "run",
            "split",
            "stats",
        ]
    )
    for name in tilewise.__all__:
        assert hasattr(tilewise, name)


def test_dir_shows_only_the_public_api():
    assert dir(tilewise) == sorted(tilewise.__all__)


def test_every_error_derives_from_the_root_and_a_builtin():
    from tilewise import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if name in ("TilewiseError", "TilewiseWarning", "Interrupted", "Phase"):
            continue
        assert issubclass(cls, errors.TilewiseError), name
        assert any(issubclass(cls, b) for b in (ValueError, OSError, RuntimeError)), (
            f"{name} should refine a builtin"
        )


def test_importing_the_package_stays_light():
    """``import tilewise`` and the command's start load no NumPy, OpenCV or tifffile."""
    import subprocess
    import sys

    code = (
        "import sys, tilewise, tilewise.cli.app; "
        "heavy = ('numpy', 'cv2', 'tifffile', 'zarr', 'scipy'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_functions_are_not_shadowed_by_modules():
    import tilewise.collection.work

    assert callable(tilewise.batch)
    assert tilewise.batch.__module__ == "tilewise.collection.run"
    assert "batch" in dir(tilewise)
