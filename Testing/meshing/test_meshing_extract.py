"""Surface extraction: geometry against analytic answers, topology, errors, cancellation."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.meshing import (
    MeshingConfig,
    bounds_of,
    extract_surface,
    extract_surfaces_multi,
    mesh_from_field,
    mesh_quality,
)
from meshing_fields import Counted, ellipsoid, ellipsoid_area, rotation, sphere, torus, union

CENTER = np.array([12.3, -40.7, 25.1])      # off-origin on purpose


def _box(center, half):
    return np.stack([np.asarray(center) - half, np.asarray(center) + half])


@pytest.mark.parametrize("backend", ["vtk", "skimage"])
def test_sphere_area_volume_and_topology(backend):
    r = 10.0
    res = extract_surface(sphere(CENTER, r), _box(CENTER, r), MeshingConfig(spacing_mm=0.5, backend=backend))
    q = mesh_quality(res.mesh)
    assert q["volume_mm3"] == pytest.approx(4 / 3 * np.pi * r**3, rel=0.01)
    assert q["area_mm2"] == pytest.approx(4 * np.pi * r**2, rel=0.01)
    assert q["watertight"] and q["manifold"] and q["oriented"]
    assert q["n_components"] == 1 and q["genus"] == 0 and q["euler"] == 2
    assert q["manifold3d_status"] in (None, "NoError")
    # Vertices lie on the analytic sphere (chordal error ≪ spacing).
    assert np.abs(np.linalg.norm(res.mesh.vertices - CENTER, axis=1) - r).max() < 0.05


def test_oblique_ellipsoid_volume_and_area():
    axes = (14.0, 9.0, 6.0)
    field = ellipsoid(CENTER, axes, rotation())
    res = extract_surface(field, _box(CENTER, 14.0), MeshingConfig(spacing_mm=0.5))
    assert res.mesh.signed_volume() == pytest.approx(4 / 3 * np.pi * np.prod(axes), rel=0.01)
    assert res.mesh.area() == pytest.approx(ellipsoid_area(*axes), rel=0.01)
    assert mesh_quality(res.mesh)["watertight"]


def test_torus_has_genus_one():
    res = extract_surface(torus(CENTER, 12.0, 4.0), _box(CENTER, 16.0), MeshingConfig(spacing_mm=0.5))
    q = mesh_quality(res.mesh)
    assert q["watertight"] and q["manifold"] and q["genus"] == 1
    assert q["volume_mm3"] == pytest.approx(2 * np.pi**2 * 12.0 * 4.0**2, rel=0.01)


@pytest.mark.parametrize("backend", ["vtk", "skimage"])
def test_narrowband_mesh_is_identical_to_dense(backend):
    field = union(sphere(CENTER, 9.0), torus(CENTER + [0, 0, 6.0], 11.0, 2.5))
    box = _box(CENTER, 14.0)
    dense = extract_surface(field, box, MeshingConfig(spacing_mm=0.4, method="dense", backend=backend))
    narrow = extract_surface(field, box, MeshingConfig(spacing_mm=0.4, method="narrowband", backend=backend))
    assert narrow.levels >= 2
    assert narrow.n_evaluations < 0.3 * dense.n_evaluations
    assert dense.n_evaluations == dense.dense_evaluations == int(np.prod(dense.grid_shape))
    assert np.array_equal(narrow.mesh.vertices, dense.mesh.vertices)
    assert np.array_equal(narrow.mesh.faces, dense.mesh.faces)


def test_outward_faces_and_grid_normals_match_gradient():
    r = 8.0
    res = extract_surface(sphere(CENTER, r), _box(CENTER, r), MeshingConfig(spacing_mm=0.5))
    radial = (res.mesh.vertices - CENTER) / np.linalg.norm(res.mesh.vertices - CENTER, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", res.mesh.point_data["Normals"], radial).min() > 0.99
    centroids = res.mesh.vertices[res.mesh.faces].mean(axis=1)
    assert np.all(np.einsum("ij,ij->i", res.mesh.face_normals(), centroids - CENTER) > 0)


@pytest.mark.parametrize("normals", ["field", "mesh"])
def test_other_normal_sources(normals):
    r = 8.0
    field = Counted(sphere(CENTER, r))
    res = extract_surface(field, _box(CENTER, r), MeshingConfig(spacing_mm=0.5, normals=normals))
    radial = (res.mesh.vertices - CENTER) / r
    assert np.einsum("ij,ij->i", res.mesh.point_data["Normals"], radial).min() > 0.95
    assert res.n_evaluations == field.n


def test_level_offsets_the_surface_and_largest_component_drops_the_small_sphere():
    field = union(sphere(CENTER, 6.0), sphere(CENTER + [20.0, 0, 0], 2.0))
    box = np.stack([CENTER - 9.0, CENTER + [23.0, 9.0, 9.0]])
    both = extract_surface(field, box, MeshingConfig(spacing_mm=0.5, largest_component=False, level=1.0))
    assert mesh_quality(both.mesh)["n_components"] == 2
    big = extract_surface(field, box, MeshingConfig(spacing_mm=0.5, level=1.0))
    assert mesh_quality(big.mesh)["n_components"] == 1
    radii = np.linalg.norm(big.mesh.vertices - CENTER, axis=1)
    assert np.abs(radii - 7.0).max() < 0.05


def test_multi_output_surfaces_share_one_grid_and_stay_nested():
    inner, outer = sphere(CENTER, 6.0), sphere(CENTER + [0.7, 0, 0], 8.5)
    field = Counted(lambda p: np.stack([outer(p), inner(p)], axis=1))
    box = _box(CENTER, 9.5)
    res = extract_surfaces_multi(field, box, MeshingConfig(spacing_mm=0.5))
    assert len(res.meshes) == 2 and res.n_evaluations == field.n
    for mesh, r in zip(res.meshes, (8.5, 6.0)):
        assert mesh.signed_volume() == pytest.approx(4 / 3 * np.pi * r**3, rel=0.01)
        assert mesh_quality(mesh)["watertight"]
    assert np.all(outer(res.meshes[1].vertices) < 0)      # inner surface lies inside the outer
    single = extract_surface(inner, box, MeshingConfig(spacing_mm=0.5))
    assert np.array_equal(single.mesh.vertices, res.meshes[1].vertices)


def test_no_crossing_is_a_clear_error():
    field = sphere(CENTER, 5.0)
    far = _box(CENTER + [40.0, 0, 0], 5.0)
    with pytest.raises(InputError, match="no surface found: the field is positive everywhere"):
        extract_surface(field, far, MeshingConfig(spacing_mm=1.0, padding_mm=0.0))
    with pytest.raises(InputError, match="negative everywhere"):
        extract_surface(sphere(CENTER, 50.0), _box(CENTER, 5.0), MeshingConfig(spacing_mm=1.0))


def test_cancellation_and_progress():
    events = []
    res = extract_surface(sphere(CENTER, 8.0), _box(CENTER, 8.0), MeshingConfig(spacing_mm=0.5, chunk_size=4096),
                          progress=events.append)
    fractions = [e.fraction for e in events]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions) and res.mesh.n_faces > 0
    calls = Counted(sphere(CENTER, 8.0))
    with pytest.raises(Cancelled):
        extract_surface(calls, _box(CENTER, 8.0), MeshingConfig(spacing_mm=0.5, chunk_size=1000),
                        should_cancel=lambda: calls.n >= 3000)
    assert calls.n == 3000                                   # stopped after the third chunk


def test_memory_cap_names_a_spacing_that_fits():
    box = _box(CENTER, 50.0)
    with pytest.raises(InputError, match=r"use spacing_mm >= ([0-9.]+)") as info:
        extract_surface(sphere(CENTER, 10.0), box, MeshingConfig(spacing_mm=0.1, max_memory_mb=64))
    fit = float(info.value.args[0].split("use spacing_mm >= ")[1].split()[0])
    res = extract_surface(sphere(CENTER, 10.0), box, MeshingConfig(spacing_mm=fit, max_memory_mb=64))
    assert res.mesh.n_faces > 0


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="bounds"):
        extract_surface(sphere(CENTER, 5.0), np.zeros((3, 3)))
    with pytest.raises(InputError, match="extract_surfaces_multi"):
        extract_surface(lambda p: np.zeros((len(p), 2)), _box(CENTER, 5.0))
    with pytest.raises(InputError, match="NaN"):
        extract_surface(lambda p: np.full(len(p), np.nan), _box(CENTER, 5.0))
    with pytest.raises(InputError, match="method"):
        mesh_from_field(sphere(CENTER, 5.0), _box(CENTER, 5.0), method="octree")
    with pytest.raises(InputError, match="unknown key"):
        mesh_from_field(sphere(CENTER, 5.0), _box(CENTER, 5.0), spacing=1.0)


def test_mesh_from_field_accepts_objects_for_bounds():
    first = mesh_from_field(sphere(CENTER, 5.0), _box(CENTER, 5.0), spacing_mm=1.0)
    again = mesh_from_field(sphere(CENTER, 5.0), first, spacing_mm=0.5, padding_mm=1.0)
    assert again.signed_volume() == pytest.approx(4 / 3 * np.pi * 125.0, rel=0.01)
    assert np.allclose(bounds_of(first, 1.0), np.stack([first.vertices.min(0) - 1, first.vertices.max(0) + 1]))
