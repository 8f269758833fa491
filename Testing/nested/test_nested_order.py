"""Nested point sets are told apart by the volumes of their convex hulls, noise or not."""

from __future__ import annotations

import itertools

import numpy as np

from AnatomyINRLib.nested.order import innermost_first
from AnatomyINRLib.phantoms.nested import NestedAAAPhantom


def test_every_order_of_noisy_walls_is_recovered():
    rng = np.random.default_rng(0)
    sets = [ps.points + rng.normal(0.0, 0.5, ps.points.shape)          # 0.5 mm clicking noise
            for ps in NestedAAAPhantom().sample_surfaces(150, seed=1)]
    for perm in itertools.permutations(range(3)):
        order, note = innermost_first([sets[i] for i in perm])
        assert [perm[i] for i in order] == [0, 1, 2]                     # lumen, inner, outer
        assert (note is None) == (list(perm) == [0, 1, 2])


def test_sets_of_one_size_keep_the_given_order():
    pts = NestedAAAPhantom().sample_surfaces(150, seed=1)[2].points
    assert innermost_first([pts, pts * 0.999 + 0.001 * pts.mean(axis=0)]) == ([0, 1], None)
