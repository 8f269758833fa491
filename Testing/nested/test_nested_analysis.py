"""Clinical measures with known answers: thickness, volumes, violations, Dmax."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.nested.analysis import (
    THICKNESS,
    add_thickness_maps,
    mesh_violations,
    neighbour_distances,
    shell_names,
    thickness_stats,
    volumes,
)
from AnatomyINRLib.nested.diameter import max_diameter
from AnatomyINRLib.phantoms.aaa import AAAPhantom
from AnatomyINRLib.phantoms.tubes import ArcTube

CENTER = np.array([-20.0, 35.0, 110.0])


def _sphere(radius, center=CENTER, subdivisions=4):
    ico = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return TriangleMesh(ico.vertices + center, ico.faces)


def test_thickness_volumes_and_zero_violations_on_concentric_spheres():
    meshes = [_sphere(10.0), _sphere(12.0), _sphere(15.0)]
    names = ["lumen", "inner", "outer"]
    signed = neighbour_distances(meshes)
    thick = add_thickness_maps(meshes, signed)
    stats = thickness_stats(thick, names)
    # Icosphere facets sit slightly inside the true sphere: allow the sagitta (< 0.1 mm here).
    assert stats["lumen"]["median"] == pytest.approx(2.0, abs=0.1)
    assert stats["inner"]["median"] == pytest.approx(3.0, abs=0.1)
    assert stats["outer"]["median"] == pytest.approx(3.0, abs=0.1)
    assert thick[0].point_data[THICKNESS].shape == (meshes[0].n_vertices,)
    vol = volumes(meshes, names)
    exact = {r: 4 / 3 * np.pi * r ** 3 for r in (10.0, 12.0, 15.0)}
    assert vol["thrombus_mm3"] == pytest.approx(exact[12.0] - exact[10.0], rel=0.02)
    assert vol["wall_ml"] == pytest.approx((exact[15.0] - exact[12.0]) / 1000, rel=0.02)
    for v in mesh_violations(meshes, names, 0.5, signed):
        assert v["vertices_outside"] == 0 and v["volume_mm3"] == 0.0


def test_violations_are_measured_when_present():
    inner = _sphere(5.0, CENTER + [9.0, 0, 0])        # pokes 4 mm out of the r = 10 sphere
    outer = _sphere(10.0)
    (v,) = mesh_violations([inner, outer], ["a", "b"], 0.25)
    assert v["vertex_share"] > 0.1 and v["max_outside_mm"] == pytest.approx(4.0, abs=0.1)
    # Lens of two spheres (R = 10, r = 5, d = 9) outside the big one.
    d, r_big, r_small = 9.0, 10.0, 5.0
    lens = np.pi * (r_big + r_small - d) ** 2 * (d ** 2 + 2 * d * r_small - 3 * r_small ** 2 + 2 * d * r_big
                                                 + 6 * r_small * r_big - 3 * r_big ** 2) / (12 * d)
    outside = 4 / 3 * np.pi * r_small ** 3 - lens
    assert v["volume_mm3"] == pytest.approx(outside, rel=0.1)


def test_shell_names():
    assert shell_names(["lumen", "inner", "outer"]) == ["thrombus", "wall"]
    assert shell_names(["lumen", "outer"]) == ["thrombus_and_wall"]
    assert shell_names(["a", "b"]) == ["a_to_b"]


def test_dmax_of_a_bent_tube_is_its_diameter():
    tube = ArcTube(start=CENTER, tangent=[0, 0, -1.0], bend_direction=[0, 1.0, 0], bend_radius=80.0,
                   angle=1.2, radius=9.0)
    bounds = tube.bounds()
    res = max_diameter(tube.sdf, bounds, spacing_mm=0.5, step_mm=2.0)
    assert res.dmax_mm == pytest.approx(18.0, abs=0.3)
    # Sections are orthogonal to the arc: the normal is the arc tangent at the measured point.
    assert abs(float(np.dot(res.normal, res.endpoints[1] - res.endpoints[0]))) < 0.5


def test_dmax_of_the_aaa_phantom_is_the_sac_width():
    # Sac ellipsoid semi-axes 35 (along the centreline) × 25 × 22: orthogonal sections peak at 2 × 25.
    phantom = AAAPhantom()
    res = max_diameter(phantom.sdf, phantom.bounds(), spacing_mm=0.75, step_mm=2.0)
    assert res.dmax_mm == pytest.approx(50.0, abs=1.0)
    sac = phantom.primitives[1]                       # [aorta, sac, iliac, iliac]
    assert np.linalg.norm(res.center - sac.center) < 10.0
    assert np.linalg.norm(res.endpoints[1] - res.endpoints[0]) == pytest.approx(res.dmax_mm, abs=1e-6)
