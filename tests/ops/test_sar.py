"""db, linear and lee against straightforward whole-image NumPy/SciPy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tests.conftest import make_image
from tilewise.errors import OpError
from tilewise.pipeline import parse_op


def run(spec, image):
    return parse_op(spec)(image)


def speckle(shape, looks, seed=0):
    """A SAR-like intensity image: a smooth scene times gamma speckle of ``looks`` looks."""
    rng = np.random.default_rng(seed)
    scene = make_image(shape, "float32").astype(np.float64) + 0.05
    return (scene * rng.gamma(looks, 1.0 / looks, shape)).astype(np.float32)


def test_db_equals_numpy_and_nonpositive_is_nan():
    image = speckle((40, 50), 4)
    image[0, :3] = [0.0, -1.0, np.nan]
    got = run("db", image)
    with np.errstate(all="ignore"):
        expected = (10 * np.log10(image.astype(np.float64))).astype(np.float32)
    assert got.dtype == np.float32
    assert np.isnan(got[0, :3]).all()
    np.testing.assert_array_equal(got[1:], expected[1:])
    np.testing.assert_allclose(got[1:], 10 * np.log10(image[1:]), rtol=2e-7)  # float32 NumPy


def test_linear_inverts_db():
    image = speckle((40, 50), 4)
    back = run("linear", run("db", image))
    np.testing.assert_allclose(back, image, rtol=1e-6)
    assert np.isnan(run("linear", np.array([[400.0, np.nan]], np.float32))).all()


def lee_reference(x, size, looks):
    """Lee (1980) as written, with SciPy's running-sum box mean on the whole image."""
    x = x.astype(np.float64)
    m = ndimage.uniform_filter(x, size, mode="mirror")
    v = np.maximum(ndimage.uniform_filter(x * x, size, mode="mirror") - m * m, 0)
    cu2 = 1 / looks
    with np.errstate(all="ignore"):
        w = np.maximum(0, (1 - cu2 / (v / m**2)) / (1 + cu2))
    return np.where(m == 0, 0, m + w * (x - m))


@pytest.mark.parametrize(("size", "looks"), [(7, 4.0), (5, 1.0), (3, 16.0)])
def test_lee_equals_the_formula_with_scipy_box_means(size, looks):
    image = speckle((83, 71), looks)
    image[10:24, 10:24] = 0.0  # m = 0 -> 0
    image[40:54, 40:54] = 0.3  # flat: v = 0 -> w = 0 -> the mean
    got = run(f"lee:size={size},looks={looks}", image)
    expected = lee_reference(image, size, looks)
    assert got.dtype == np.float32
    # see lee's docstring for why 1e-5: box sums in another order, v = E[x²] - m² cancels
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert (got[14:20, 14:20] == 0).all()
    np.testing.assert_allclose(got[44:50, 44:50], 0.3, rtol=1e-6)


def test_lee_smooths_speckle_and_keeps_the_mean():
    image = speckle((120, 120), 4)
    got = run("lee:size=7,looks=4", image)
    assert got.std() < image.std()
    assert abs(got.mean() - image.mean()) < 0.01 * image.mean()


def test_lee_works_band_by_band_on_integers():
    image = make_image((40, 30), "uint16", 2)
    got = run("lee:size=5,looks=2", image)
    for b in range(2):
        np.testing.assert_array_equal(got[..., b], run("lee:size=5,looks=2", image[..., b]))


@pytest.mark.parametrize(("spec", "message"), [("lee:size=4", "odd"), ("lee:looks=0", "positive")])
def test_lee_parameters_are_checked(spec, message):
    with pytest.raises(OpError, match=message):
        run(spec, make_image((20, 20)))
