"""Grid geometry: cores cover the image exactly once; read windows hold the core plus halo."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilewise.errors import GeometryError
from tilewise.geometry import Grid, Layout, Window, parse_tile_shape

shapes = st.tuples(st.integers(1, 400), st.integers(1, 400))
tile_shapes = st.tuples(st.integers(1, 500), st.integers(1, 500))
layouts = st.sampled_from(list(Layout))
halos = st.integers(0, 40)


@given(shapes, tile_shapes, layouts, halos)
def test_cores_cover_the_image_exactly_once(shape, tile, layout, halo):
    grid = Grid(shape, tile, layout, halo)
    count = np.zeros(shape, dtype=np.int32)
    for t in grid:
        count[t.core.slices] += 1
    assert (count == 1).all()


@given(shapes, tile_shapes, layouts, halos)
def test_read_windows_are_cores_grown_by_the_halo_and_clipped(shape, tile, layout, halo):
    grid = Grid(shape, tile, layout, halo)
    for t in grid:
        assert t.read.contains(t.core)
        assert t.read.row == max(0, t.core.row - halo)
        assert t.read.col == max(0, t.core.col - halo)
        assert t.read.stop_row == min(shape[0], t.core.stop_row + halo)
        assert t.read.stop_col == min(shape[1], t.core.stop_col + halo)


@given(shapes, tile_shapes, layouts, halos)
def test_plans_are_deterministic_and_indexable(shape, tile, layout, halo):
    a = list(Grid(shape, tile, layout, halo))
    b = list(Grid(shape, tile, layout, halo))
    assert a == b
    assert [t.index for t in a] == list(range(len(a)))
    grid = Grid(shape, tile, layout, halo)
    assert all(grid.tile(t.index) == t for t in a)


@given(shapes, tile_shapes, halos)
def test_layouts_cut_strips_the_full_width_or_height(shape, tile, halo):
    for t in Grid(shape, tile, Layout.ROWS, halo):
        assert t.core.col == 0
        assert t.core.width == shape[1]
    for t in Grid(shape, tile, Layout.COLUMNS, halo):
        assert t.core.row == 0
        assert t.core.height == shape[0]


def test_uneven_edge_tiles():
    grid = Grid((3001, 2203), (1000, 333), Layout.GRID)
    assert grid.counts == (4, 7)
    last = grid.tile(len(grid) - 1)
    assert last.core == Window(3000, 1998, 1, 205)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024", (1024, 1024)),
        ("1024x512", (1024, 512)),
        (" 7 X 9 ", (7, 9)),
        (64, (64, 64)),
        ((3, 4), (3, 4)),
    ],
)
def test_parse_tile_shape(text, expected):
    assert parse_tile_shape(text) == expected


@pytest.mark.parametrize("bad", ["0", "abc", "12x", "-4", "1x0", (1, 2, 3), True])
def test_parse_tile_shape_rejects_nonsense_with_a_clear_error(bad):
    with pytest.raises(GeometryError, match="tile"):
        parse_tile_shape(bad)


def test_grid_rejects_bad_values():
    with pytest.raises(GeometryError, match="halo"):
        Grid((10, 10), (4, 4), halo=-1)
    with pytest.raises(GeometryError, match="image shape"):
        Grid((0, 10), (4, 4))
    with pytest.raises(GeometryError, match="outside"):
        Grid((10, 10), (4, 4)).tile(9)


def test_tiles_pickle_to_equal_tiles_and_out_of_range_indexes_are_refused():
    grid = Grid((10, 7), (4, 4), halo=1, planes=2)
    for tile in grid:
        assert pickle.loads(pickle.dumps(tile)) == tile
    with pytest.raises(GeometryError, match=r"outside 0\.\.11"):
        grid.tile(12)
    with pytest.raises(GeometryError, match="outside"):
        grid.tile(-1)
