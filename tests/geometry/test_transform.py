"""Geotransform arithmetic: windows and rescales move the map coordinates exactly."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilewise.errors import GeometryError
from tilewise.geometry import GeoTransform, Window

# Dyadic coefficients (multiples of 1/8) keep every product and sum exact in floating point,
# so these properties hold with ==, not within a tolerance.
dyadic = st.integers(-(2**20), 2**20).map(lambda n: n / 8)
nonzero = st.integers(1, 2**12).map(lambda n: n / 8)
north_up = st.builds(
    lambda a, e, c, f: GeoTransform(a, 0.0, c, 0.0, -e, f), nonzero, nonzero, dyadic, dyadic
)
rotated = (
    st.tuples(nonzero, dyadic.filter(lambda v: abs(v) < 8), dyadic, dyadic, nonzero, dyadic)
    .filter(lambda v: v[0] * v[4] - v[1] * v[3] != 0)
    .map(lambda v: GeoTransform(*v))
)
transforms = st.one_of(north_up, rotated)
windows = st.builds(
    Window, st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 5000), st.integers(1, 5000)
)


@given(transforms, windows, st.integers(0, 50), st.integers(0, 50))
def test_a_window_maps_its_pixels_where_the_image_does(t, window, r, c):
    assert t.window(window).xy(r, c) == t.xy(window.row + r, window.col + c)


@given(transforms, windows, windows)
def test_window_of_a_window_adds_the_offsets(t, outer, inner):
    nested = t.window(outer).window(inner)
    assert nested == t.window(Window(outer.row + inner.row, outer.col + inner.col, 1, 1))


@given(transforms, st.sampled_from([(1, 2), (1, 4), (2, 1), (4, 1), (1, 1)]))
def test_rescale_keeps_the_origin_and_scales_the_pixel_size(t, factor):
    up, down = factor
    scaled = t.scaled(up, down)
    assert scaled.xy(0, 0) == t.xy(0, 0)
    assert scaled.resolution[0] == pytest.approx(t.resolution[0] * down / up, rel=1e-15)
    assert scaled.resolution[1] == pytest.approx(t.resolution[1] * down / up, rel=1e-15)


@given(north_up, st.integers(1, 3000), st.integers(1, 3000))
def test_halving_keeps_the_bounds_of_an_even_image(t, half_rows, half_cols):
    shape = (2 * half_rows, 2 * half_cols)
    assert t.scaled(1, 2).bounds((half_rows, half_cols)) == t.bounds(shape)
    assert t.scaled(1, 2).resolution == (2 * t.resolution[0], 2 * t.resolution[1])


@given(transforms)
def test_gdal_order_round_trips(t):
    assert GeoTransform.from_gdal(t.to_gdal()) == t


def test_bounds_of_a_north_up_image():
    t = GeoTransform(0.25, 0.0, -180.0, 0.0, -0.25, 90.0)
    assert t.bounds((720, 1440)) == (-180.0, -90.0, 180.0, 90.0)
    assert t.north_up and t.resolution == (0.25, 0.25)


def test_invalid_transforms_are_refused():
    with pytest.raises(GeometryError, match="degenerate"):
        GeoTransform(1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(GeometryError, match="finite"):
        GeoTransform(math.nan, 0.0, 0.0, 0.0, -1.0, 0.0)
    with pytest.raises(GeometryError, match="positive integers"):
        GeoTransform(1.0, 0.0, 0.0, 0.0, -1.0, 0.0).scaled(0, 2)
