"""Window arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilewise.errors import GeometryError
from tilewise.geometry import Window

windows = st.builds(
    Window, st.integers(0, 100), st.integers(0, 100), st.integers(1, 100), st.integers(1, 100)
)


@given(windows, st.integers(0, 50))
def test_grow_then_relative_keeps_the_core(window, halo):
    bounds = (window.stop_row + 30, window.stop_col + 30)
    grown = window.grow(halo, bounds=bounds)
    inner = window.relative_to(grown)
    assert inner.shape == window.shape
    assert grown.contains(window)
    assert grown.stop_row <= bounds[0]
    assert grown.stop_col <= bounds[1]


def test_invalid_windows_are_refused():
    with pytest.raises(GeometryError, match="positive"):
        Window(0, 0, 0, 5)
    with pytest.raises(GeometryError, match="negative"):
        Window(-1, 0, 5, 5)
    with pytest.raises(GeometryError, match="not inside"):
        Window(0, 0, 5, 5).relative_to(Window(1, 1, 5, 5))


def test_scaled():
    assert Window(2, 4, 6, 8).scaled(2) == Window(4, 8, 12, 16)
    assert Window(4, 8, 12, 16).scaled(2, divide=True) == Window(2, 4, 6, 8)
    with pytest.raises(GeometryError):
        Window(1, 0, 2, 2).scaled(2, divide=True)
