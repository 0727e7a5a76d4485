"""Planes of a stack: every (plane, core) is covered once; selections map to the stored planes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilewise.errors import GeometryError
from tilewise.geometry import Grid, Layout
from tilewise.geometry.planes import Planes, parse_plane_range

leading = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@given(
    st.tuples(st.integers(1, 60), st.integers(1, 60)),
    st.tuples(st.integers(1, 70), st.integers(1, 70)),
    st.sampled_from(list(Layout)),
    st.integers(2, 5),
)
def test_every_plane_is_tiled_alike_and_covered_once(shape, tile, layout, planes):
    grid = Grid(shape, tile, layout, halo=2, planes=planes)
    flat = Grid(shape, tile, layout, halo=2)
    count = np.zeros((planes, *shape), dtype=np.int32)
    for t in grid:
        assert t.plane is not None and t.plane == t.index // flat.per_plane
        same = flat.tile(t.index % flat.per_plane)
        assert (t.core, t.read) == (same.core, same.read)
        count[(t.plane, *t.core.slices)] += 1
    assert (count == 1).all() and len(grid) == planes * len(flat)
    assert all(t.plane is None for t in flat)
    assert "planes" not in flat.to_dict() and grid.to_dict().get("planes", 1) == planes


@given(leading, st.data())
def test_a_selection_reads_the_planes_numpy_slicing_would(stored, data):
    first = stored[0]
    start = data.draw(st.integers(-first, first - 1))
    step = data.draw(st.integers(1, 3))
    planes = Planes.selected(stored, "TZC"[: len(stored)], (start, None, step))
    index = np.arange(math.prod(stored)).reshape(stored)
    expected = index[start::step].reshape(-1)
    assert planes.shape == index[start::step].shape
    assert [planes.stored_flat(p) for p in range(planes.count)] == list(expected)


def test_one_page_is_a_2d_image_and_out_of_range_is_refused():
    planes = Planes.selected((2, 3), "TZ", page=4)
    assert planes.shape == () and planes.count == 1 and planes.stored_index(0) == (1, 1)
    with pytest.raises(GeometryError, match="--page 6: the stack has 6 planes"):
        Planes.selected((2, 3), "TZ", page=6)
    with pytest.raises(GeometryError, match="selects no plane"):
        Planes.selected((5,), "Z", parse_plane_range("3:1"))
    with pytest.raises(GeometryError, match="has 5 planes"):
        Planes.selected((5,), "Z", parse_plane_range("2:9"))
    with pytest.raises(GeometryError, match="must look like"):
        parse_plane_range("a:b")
