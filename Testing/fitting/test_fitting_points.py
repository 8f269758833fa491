"""Validation of clicked points before a fit: every bad input has a specific message."""

import warnings

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.fitting.points import prepare_points


def _sphere(n, r=20.0, center=(10.0, -5.0, 40.0), seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    return np.asarray(center) + r * v / np.linalg.norm(v, axis=1, keepdims=True)


def test_fewer_than_ten_points_is_refused():
    with pytest.raises(InputError, match="at least 10"):
        prepare_points(_sphere(9))


def test_nan_and_inf_are_refused_with_the_count():
    pts = _sphere(50)
    pts[3, 1] = np.nan
    pts[7, 0] = np.inf
    with pytest.raises(InputError, match="2 coordinate row"):
        prepare_points(pts)


def test_wrong_shape_is_refused():
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        prepare_points(np.zeros((20, 2)))


def test_duplicates_are_removed_with_a_warning():
    pts = _sphere(30)
    doubled = np.vstack([pts, pts[:5]])
    with pytest.warns(UserWarning, match="removed 5 duplicate"):
        prepared = prepare_points(doubled)
    assert len(prepared.points) == 30
    assert prepared.n_duplicates == 5
    np.testing.assert_array_equal(prepared.points.points, pts)


def test_duplicates_leaving_too_few_points_are_refused():
    pts = np.repeat(_sphere(5), 4, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="distinct"):
            prepare_points(pts)


def test_coplanar_points_are_refused():
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(-10, 10, 100), rng.uniform(-10, 10, 100), np.full(100, 3.0)])
    with pytest.raises(InputError, match="plane"):
        prepare_points(pts)


def test_oblique_coplanar_points_are_refused():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-10, 10, (2, 100))
    u, v = np.array([1.0, 2.0, 0.5]), np.array([-0.3, 0.1, 1.0])
    pts = np.outer(a, u) + np.outer(b, v) + [5, 6, 7]
    with pytest.raises(InputError, match="plane"):
        prepare_points(pts)


def test_collinear_points_are_refused():
    t = np.linspace(0, 1, 40)
    pts = np.outer(t, [3.0, -1.0, 2.0]) + [1, 2, 3]
    with pytest.raises(InputError, match="line"):
        prepare_points(pts)


def test_too_many_points_are_subsampled_with_a_warning():
    pts = _sphere(500)
    with pytest.warns(UserWarning, match="random subset"):
        prepared = prepare_points(pts, max_points=100, seed=3)
    assert len(prepared.points) == 100
    assert prepared.n_subsampled_away == 400
    # The kept points are a subset of the input, reported by index.
    np.testing.assert_array_equal(prepared.points.points, pts[prepared.source_index])
