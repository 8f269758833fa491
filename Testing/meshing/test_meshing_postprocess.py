"""Mesh quality, clean-up, components and orientation on hand-built meshes."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing import (
    MeshingConfig,
    clean_mesh,
    component_areas,
    extract_surface,
    largest_component,
    mesh_quality,
    orient_outward,
    vertex_normals,
    winding_number,
)
from meshing_fields import box_faces, sphere


def _cube(offset=(0.0, 0.0, 0.0), size=1.0):
    v, f = box_faces()
    return TriangleMesh(v * size + np.asarray(offset), f)


def _merge(*meshes):
    verts, faces, base = [], [], 0
    for m in meshes:
        verts.append(m.vertices)
        faces.append(m.faces + base)
        base += m.n_vertices
    return TriangleMesh(np.concatenate(verts), np.concatenate(faces))


def test_quality_of_a_closed_cube():
    q = mesh_quality(_cube())
    assert q["watertight"] and q["manifold"] and q["oriented"]
    assert (q["n_vertices"], q["n_faces"], q["n_edges"]) == (8, 12, 18)
    assert q["euler"] == 2 and q["genus"] == 0 and q["n_components"] == 1
    assert q["area_mm2"] == pytest.approx(6.0) and q["volume_mm3"] == pytest.approx(1.0)
    assert q["manifold3d_status"] in (None, "NoError")


def test_quality_of_an_open_cube():
    cube = _cube()
    q = mesh_quality(TriangleMesh(cube.vertices, cube.faces[2:]))
    assert not q["watertight"]
    assert q["n_boundary_edges"] == 4 and q["n_boundary_loops"] == 1
    assert q["manifold"] and q["genus"] == 0                   # a disc: χ = 1 = 2 − 0 − 1
    assert q["manifold3d_status"] in (None, "NotManifold")


def test_pinched_vertex_and_flipped_face_are_reported():
    a = _cube()
    b = _cube(offset=(1.0, 1.0, 1.0))
    # Share vertex (1,1,1) of a with vertex (0,0,0)-corner of b: a pinch.
    merged = clean_mesh(_merge(a, b))
    q = mesh_quality(merged)
    assert q["n_nonmanifold_vertices"] == 1 and not q["manifold"] and q["watertight"]
    flipped = a.faces.copy()
    flipped[0] = flipped[0, ::-1]
    q = mesh_quality(TriangleMesh(a.vertices, flipped))
    assert not q["oriented"] and q["n_inconsistent_edges"] > 0


def test_clean_mesh_welds_a_triangle_soup():
    cube = _cube()
    soup = TriangleMesh(cube.vertices[cube.faces.reshape(-1)], np.arange(36).reshape(12, 3))
    assert not mesh_quality(soup)["watertight"]
    welded = clean_mesh(soup)
    q = mesh_quality(welded)
    assert welded.n_vertices == 8 and q["watertight"] and q["volume_mm3"] == pytest.approx(1.0)
    # Degenerate and doubled faces go away.
    extra = np.concatenate([cube.faces, [[0, 0, 1]], cube.faces[:1]])
    assert clean_mesh(TriangleMesh(cube.vertices, extra)).n_faces == 12


def test_orient_outward_fixes_inverted_and_mixed_windings_and_keeps_cavities():
    cube = _cube()
    inverted = TriangleMesh(cube.vertices, cube.faces[:, ::-1])
    assert orient_outward(inverted).signed_volume() == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    faces = cube.faces.copy()
    flip = rng.random(12) < 0.4
    faces[flip] = faces[flip][:, ::-1]
    fixed = orient_outward(TriangleMesh(cube.vertices, faces))
    assert mesh_quality(fixed)["oriented"] and fixed.signed_volume() == pytest.approx(1.0)
    # A hollow cube: the inner shell bounds a cavity, so it faces inward.
    shell = _merge(_cube(size=3.0), TriangleMesh(_cube((1, 1, 1)).vertices, _cube().faces[:, ::-1]))
    oriented = orient_outward(TriangleMesh(shell.vertices, shell.faces[:, ::-1]))
    assert oriented.signed_volume() == pytest.approx(27.0 - 1.0)


def test_largest_component_and_winding_number():
    both = _merge(_cube(size=2.0), _cube(offset=(5, 0, 0)))
    big = largest_component(both)
    assert big.n_faces == 12 and big.signed_volume() == pytest.approx(8.0)
    labels, areas = component_areas(both)
    assert areas == pytest.approx([24.0, 6.0]) and np.bincount(labels).tolist() == [12, 12]
    assert component_areas(TriangleMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64)))[1].size == 0
    w = winding_number(_cube(), np.array([[0.5, 0.5, 0.5], [2.0, 0.5, 0.5]]))
    assert w == pytest.approx([1.0, 0.0], abs=1e-9)


def test_vertex_normals_point_outward_on_a_sphere_mesh():
    center = np.array([1.0, 2.0, 3.0])
    mesh = extract_surface(sphere(center, 5.0), np.stack([center - 5, center + 5]), MeshingConfig(spacing_mm=0.5)).mesh
    radial = (mesh.vertices - center) / 5.0
    assert np.einsum("ij,ij->i", vertex_normals(mesh), radial).min() > 0.97
