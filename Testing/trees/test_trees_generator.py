"""Synthetic vessel trees (phantoms.tree_synth): Murray's law, bifurcation counts, watertight meshes, seeds."""

import numpy as np
import pytest

from AnatomyINRLib import io
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import CenterlineGraph
from AnatomyINRLib.meshing import mesh_quality
from AnatomyINRLib.phantoms.tree_synth import (SynthTreeParams, dataset_params, grow_tree, tree_mesh, tree_occupancy,
                                               tree_phantom, tree_statistics)


@pytest.mark.parametrize("bifurcations", [0, 1, 5, 12])
def test_murray_law_holds_at_every_bifurcation(bifurcations):
    g = grow_tree(SynthTreeParams(seed=7, bifurcations=bifurcations))
    kids = g.children()
    bif = g.bifurcations()
    assert len(bif) == bifurcations
    for k in bif:
        assert len(kids[k]) == 2  # binary growth
        assert g.radius[k] ** 3 == pytest.approx(sum(g.radius[c] ** 3 for c in kids[k]), rel=1e-12)
    for k, c in enumerate(kids):  # inside a branch the radius does not change
        if len(c) == 1:
            assert g.radius[c[0]] == g.radius[k]
    terminals = [k for k, c in enumerate(kids) if not c]
    assert len(terminals) == bifurcations + 1
    assert np.allclose(g.radius[terminals], 1.0)
    assert g.radius[0] == pytest.approx((bifurcations + 1) ** (1 / 3))


def test_generalised_murray_exponent():
    g = grow_tree(SynthTreeParams(seed=2, bifurcations=4, murray_exponent=2.5))
    kids = g.children()
    for k in g.bifurcations():
        assert g.radius[k] ** 2.5 == pytest.approx(sum(g.radius[c] ** 2.5 for c in kids[k]), rel=1e-12)


def test_tree_stays_in_its_domain_and_is_tortuous():
    p = SynthTreeParams(seed=3, bifurcations=8)
    g = grow_tree(p)
    axes = p.domain_radius * np.array([1.0, 0.85, 0.7])
    # growth points lie in the ellipsoid; the sideways bumps may leave it by at most their amplitude
    assert np.max(np.sum((g.points / (axes + 0.5 * p.domain_radius * p.tortuosity)) ** 2, axis=1)) <= 1.0 + 1e-9
    assert tree_statistics(g)["tortuosity"] > 1.005
    straight = tree_statistics(grow_tree(p.replace(tortuosity=0.0)))["tortuosity"]
    assert straight == pytest.approx(1.0, abs=1e-9)


def test_dataset_bifurcations_within_range_and_prefix_stable():
    params = dataset_params(40, seed=11, min_bifurcations=1, max_bifurcations=12)
    counts = [p.bifurcations for p in params]
    assert min(counts) >= 1 and max(counts) <= 12
    assert len(set(counts)) >= 6  # spread over the range, not one value
    assert [p.to_dict() for p in dataset_params(10, seed=11)] == [p.to_dict() for p in params[:10]]
    assert [p.seed for p in dataset_params(5, seed=12)] != [p.seed for p in params[:5]]


def test_seeds_reproducible():
    a = grow_tree(SynthTreeParams(seed=5, bifurcations=6))
    b = grow_tree(SynthTreeParams(seed=5, bifurcations=6))
    c = grow_tree(SynthTreeParams(seed=6, bifurcations=6))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.parent, b.parent)
    assert np.array_equal(a.radius, b.radius)
    assert a.points.shape != c.points.shape or not np.allclose(a.points, c.points)


def test_mesh_is_watertight_and_matches_the_capsule_union():
    g = grow_tree(SynthTreeParams(seed=4, bifurcations=5))
    mesh = tree_mesh(g, 0.3)
    q = mesh_quality(mesh, check_manifold3d=False)
    assert q["watertight"] and q["manifold"] and q["oriented"] and q["n_components"] == 1
    assert mesh.signed_volume() > 0
    # vertices lie on the exact zero set to within marching-cubes error
    assert np.max(np.abs(tree_phantom(g).sdf(mesh.vertices))) < 0.3
    # volume agrees with the exact union volume (marching cubes at 0.3 mm cuts chords off
    # 1 mm tubes: measured 2.3 % low)
    assert mesh.signed_volume() == pytest.approx(tree_phantom(g).volume(), rel=0.035)
    assert mesh.signed_volume() < tree_phantom(g).volume()


def test_occupancy_volume_matches_the_exact_sdf():
    g = grow_tree(SynthTreeParams(seed=4, bifurcations=3))
    occ = tree_occupancy(g, 0.5)
    inside = tree_phantom(g).sdf(occ.voxel_centers()) < 0
    assert np.array_equal(occ.array.reshape(-1) > 0, inside)
    assert occ.array.dtype == np.uint8 and 0 < occ.array.mean() < 0.2


def test_centerline_json_round_trip(tmp_path):
    g = grow_tree(SynthTreeParams(seed=9, bifurcations=4))
    path = tmp_path / "t.centerline.json"
    io.write_centerline(g, path, info={"bifurcations": 4})
    back, info = io.read_centerline(path)
    assert np.array_equal(back.points, g.points) and np.array_equal(back.parent, g.parent)
    assert np.array_equal(back.radius, g.radius) and info == {"bifurcations": 4}
    with pytest.raises(InputError, match="centerline.json"):
        io.write_centerline(g, tmp_path / "t.json")
    (tmp_path / "bad.centerline.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an AnatomyINR centreline"):
        io.read_centerline(tmp_path / "bad.centerline.json")


def test_centerline_graph_validation():
    with pytest.raises(InputError, match="parent"):
        CenterlineGraph(np.zeros((3, 3)), [-1, 2, 0], [1.0, 1.0, 1.0])  # parent after child
    with pytest.raises(InputError, match="radius"):
        CenterlineGraph(np.zeros((2, 3)), [-1, 0], [1.0, 0.0])


def test_bad_params_are_named():
    with pytest.raises(InputError, match="bifurcations"):
        grow_tree(SynthTreeParams(bifurcations=-1))
    with pytest.raises(InputError, match="terminal_radius"):
        grow_tree(SynthTreeParams(terminal_radius=10.0))
