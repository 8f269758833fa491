"""The mesh's own signed distance on the target grid (``_mesh_distance``), the alternative to g_φ."""

import numpy as np
import pytest
import torch

from AnatomyINRLib.image_to_mesh._grid import grid_coordinates
from AnatomyINRLib.image_to_mesh._mesh_distance import MeshGridDistance, nearest_vertex, vertex_normals
from AnatomyINRLib.image_to_mesh._template import icosphere


def _sphere(radius, centre, subdivisions=4, dtype=torch.float64):
    v, f = icosphere(subdivisions, radius)
    return torch.tensor(v, dtype=dtype)[None] + torch.tensor(centre, dtype=dtype), torch.as_tensor(np.asarray(f))


def test_sphere_distance_is_exact_near_the_surface_and_signed_everywhere():
    centre, r = (0.1, -0.2, 0.05), 0.3
    v, f = _sphere(r, centre)
    d = MeshGridDistance(f, 33).double()(v)[0][0, 0]
    exact = (grid_coordinates(33, torch.float64) - torch.tensor(centre, dtype=torch.float64)).norm(dim=-1) - r
    band = exact.abs() < 0.1
    # A 2562-vertex sphere of radius 0.3 sags ≤ edge²/(8r) ≈ 2e-4 between vertices.
    assert (d - exact)[band].abs().max().item() < 5e-4
    away = exact.abs() > 5e-4  # voxels on the surface itself can take either sign
    assert torch.equal((d < 0)[away], (exact < 0)[away])


def test_gradient_moves_vertices_along_their_normals():
    v, f = _sphere(0.4, (0.0, 0.0, 0.0), subdivisions=3)
    v.requires_grad_(True)
    dist = MeshGridDistance(f, 17).double()
    # Pushing every voxel's distance down (more inside) must grow the sphere: the gradient of
    # Σ D w.r.t. each vertex that is some voxel's nearest points inward (−normal), so descent moves it out.
    dist(v)[0].sum().backward()
    normals = vertex_normals(v.detach(), f)[0]
    g = v.grad[0]
    used = g.norm(dim=-1) > 0
    assert used.sum() > 100
    cos = (g[used] * normals[used]).sum(-1) / g[used].norm(dim=-1)
    assert cos.max().item() < -0.9


def test_vertex_normals_are_unit_and_outward_on_the_template():
    v, f = _sphere(0.5, (0.2, 0.0, -0.1), subdivisions=2)
    n = vertex_normals(v, f)[0]
    radial = (v[0] - torch.tensor([0.2, 0.0, -0.1], dtype=torch.float64))
    radial = radial / radial.norm(dim=-1, keepdim=True)
    assert torch.allclose(n.norm(dim=-1), torch.ones(len(n), dtype=torch.float64))
    assert (n * radial).sum(-1).min().item() > 0.99


def test_nearest_vertex_matches_brute_force_per_batch_item():
    gen = torch.Generator().manual_seed(3)
    vertices = torch.rand(2, 50, 3, generator=gen, dtype=torch.float64) * 2 - 1
    points = torch.rand(300, 3, generator=gen, dtype=torch.float64) * 2 - 1
    brute = torch.cdist(points[None].expand(2, -1, -1), vertices).argmin(dim=-1)
    assert torch.equal(nearest_vertex(points, vertices), brute)


@pytest.mark.parametrize("n", [17, 33])
def test_output_is_a_one_level_list_on_the_grid_convention(n):
    v, f = _sphere(0.3, (0.5, 0.0, 0.0), subdivisions=2, dtype=torch.float32)
    out = MeshGridDistance(f, n)(v)
    assert isinstance(out, list) and len(out) == 1 and out[0].shape == (1, 1, n, n, n)
    d = out[0][0, 0]
    # Voxel (i, j, k) sits at −1 + 2(i, j, k)/(n − 1): the sphere centre (0.5, 0, 0) is at i = 3(n − 1)/4.
    i, mid = 3 * (n - 1) // 4, (n - 1) // 2
    assert d[i, mid, mid].item() == pytest.approx(-0.3, abs=0.01)
    assert d[mid // 2, mid, mid].item() > 0.5
