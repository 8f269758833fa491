"""Blending end to end: closed capsules, clipping, point-set inputs, report honesty."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from AnatomyINRLib.blend.config import BlendConfig
from AnatomyINRLib.blend.openmesh import ClipPlane
from AnatomyINRLib.blend.api import blend_surfaces
from AnatomyINRLib.blend.sources import BlendInput
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import PointSet, TriangleMesh

ORIGIN = np.array([-40.0, 15.0, 60.0])


def _capsule(axis, length=20.0, radius=3.0):
    cap = trimesh.creation.capsule(height=length, radius=radius, count=[24, 24])
    z = np.array([0.0, 0.0, 1.0])
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    rot = trimesh.geometry.align_vectors(z, axis)[:3, :3]
    return TriangleMesh(cap.vertices @ rot.T + ORIGIN, cap.faces)


def _capsule_sdf(p, axis, length=20.0, radius=3.0):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.clip((p - ORIGIN) @ axis, -length / 2, length / 2)
    return np.linalg.norm(p - ORIGIN - t[:, None] * axis, axis=1) - radius


def test_two_overlapping_capsules_give_one_clean_surface():
    # A cross: the arm ends are > 3k from the other capsule, where smin = min.
    a, b = _capsule([0, 0, 1], length=30.0), _capsule([1, 0, 0], length=30.0)
    res = blend_surfaces([a, b], config=BlendConfig(radius_mm=1.5, spacing_mm=0.5))
    q = res.report["surface"]
    assert q["ok"] and q["watertight"] and q["manifold"] and q["n_components"] == 1
    assert q["self_intersections"] == 0 and q["n_components_before_selection"] == 1
    assert [i["method"] for i in res.report["inputs"]] == ["exact_mesh_sdf"] * 2
    # Away from the junction the surface lies on the inputs within the grid resolution.
    for entry in res.report["fidelity_away_from_junctions"]:
        assert entry["n_points_used"] > 100 and entry["max_mm"] < 0.5 * 0.5 * np.sqrt(3) + 0.05
    # The fillet adds material only near the crossing: inside the hard union everywhere.
    v = res.mesh.vertices
    hard = np.minimum(_capsule_sdf(v, [0, 0, 1], 30.0), _capsule_sdf(v, [1, 0, 0], 30.0))
    assert hard.min() > -0.5 and hard.max() < 0.4 + 0.1


def test_clip_plane_cuts_flat_end_and_disjoint_inputs_are_reported():
    a = _capsule([0, 0, 1])
    plane = ClipPlane(ORIGIN + [0, 0, 5.0], [0, 0, 1])
    res = blend_surfaces([a], config=BlendConfig(spacing_mm=0.5), global_planes=[plane])
    top = res.mesh.vertices[:, 2].max()
    assert top == pytest.approx(ORIGIN[2] + 5.0, abs=0.3)
    assert res.report["surface"]["ok"]
    far = TriangleMesh(a.vertices + [40.0, 0, 0], a.faces)
    # Two separate vessels cannot make one surface: refused by default (never drop one silently)...
    with pytest.raises(InputError, match=r"form 2 separate pieces \((input0 \| input1|input1 \| input0)\)"):
        blend_surfaces([a, far], config=BlendConfig(spacing_mm=0.75))
    # ... or both kept on request, and the report says the promise of one surface fails.
    with pytest.warns(UserWarning, match="2 separate pieces"):
        split = blend_surfaces([a, far], config=BlendConfig(spacing_mm=0.75, allow_disjoint=True))
    assert split.report["surface"]["n_components_before_selection"] == 2
    assert split.report["surface"]["n_components"] == 2 and not split.report["surface"]["ok"]
    assert split.report["inputs_apart"] in (["input0"], ["input1"])


def test_point_set_input_is_fitted_and_blended():
    rng = np.random.default_rng(3)
    u = rng.normal(size=(300, 3))
    pts = ORIGIN + [7.0, 0, 6.0] + 4.0 * u / np.linalg.norm(u, axis=1, keepdims=True)   # sphere r=4
    cfg = BlendConfig(radius_mm=1.0, spacing_mm=0.6, fit_preset="fast", fit_iterations=150)
    res = blend_surfaces([_capsule([0, 0, 1]), BlendInput(PointSet(pts), name="ball")], config=cfg, seed=1, device="cpu")
    assert res.report["inputs"][1]["method"] == "inr" and res.report["inputs"][1]["name"] == "ball"
    assert res.report["surface"]["ok"]
    ball = res.report["fidelity_away_from_junctions"][1]
    assert ball["n_points_used"] > 100 and ball["mean_mm"] < 0.4


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="at least one"):
        blend_surfaces([])
    with pytest.raises(InputError, match="kind"):
        BlendInput(np.zeros((20, 3)), kind="closed_mesh")
    with pytest.raises(InputError, match="radius_mm"):
        BlendConfig(radius_mm=-1.0).validate()


def test_prepared_inputs_reblend_with_other_radii():
    from AnatomyINRLib.blend import blend_prepared, prepare_inputs

    a, b = _capsule([0, 0, 1], length=30.0), _capsule([1, 0, 0], length=30.0)
    prepared = prepare_inputs([a, b], config=BlendConfig(radius_mm=0.5, spacing_mm=0.5))
    volumes = []
    for k in (0.0, 0.5, 3.0):
        res = blend_prepared(prepared, config=BlendConfig(radius_mm=k, spacing_mm=0.5))
        assert res.report["surface"]["ok"]
        volumes.append(res.report["surface"]["volume_mm3"])
    # A larger fillet only adds material at the junction (smin ≤ min).
    assert volumes[0] < volumes[1] < volumes[2]
    assert prepared.sources[0].field.truncate_mm >= 4 * 3.0


def test_remeshing_reaches_the_target_edge_length():
    a = _capsule([0, 0, 1], length=30.0)
    res = blend_surfaces([a], config=BlendConfig(spacing_mm=0.5, remesh_edge_mm=1.2))
    assert res.report["mean_edge_mm"] == pytest.approx(1.2, rel=0.15)
    assert res.report["surface"]["ok"]
