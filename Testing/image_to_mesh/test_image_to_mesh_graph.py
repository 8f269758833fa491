"""Template icosphere, graph Laplacians, Chebyshev and Kipf-Welling convolutions, splatting and sampling."""

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.image_to_mesh._graph import (
    ChebConv,
    GCNConv,
    apply_sparse,
    chebyshev_operator,
    gcn_operator,
    graph_laplacian,
    laplacian_loss,
)
from AnatomyINRLib.image_to_mesh._grid import grid_coordinates, sample, splat
from AnatomyINRLib.image_to_mesh._template import icosphere, mesh_edges
from AnatomyINRLib.meshing.topology import mesh_quality


@pytest.fixture(scope="module")
def sphere():
    return icosphere()


def test_icosphere_is_the_papers_template(sphere):
    v, f = sphere
    assert v.shape == (2562, 3) and f.shape == (5120, 3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 0.5, atol=1e-12)
    q = mesh_quality(TriangleMesh(v, f), check_manifold3d=False)
    assert q["watertight"] and q["manifold"] and q["oriented"] and q["n_components"] == 1 and q["genus"] == 0
    assert len(mesh_edges(f)) == 7680 == 3 * 5120 // 2
    # Outward faces: positive volume, a bit below the sphere's (the polyhedron is inscribed).
    vol = TriangleMesh(v, f).signed_volume()
    assert 0.995 * (4 / 3) * np.pi * 0.125 < vol < (4 / 3) * np.pi * 0.125
    degrees = np.bincount(mesh_edges(f).ravel())
    assert sorted(np.unique(degrees).tolist()) == [5, 6] and np.count_nonzero(degrees == 5) == 12


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_icosphere_counts(n):
    v, f = icosphere(n, radius=2.0)
    assert len(v) == 10 * 4**n + 2 and len(f) == 20 * 4**n
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 2.0)


def test_icosphere_rejects_bad_arguments():
    with pytest.raises(InputError, match="subdivisions"):
        icosphere(-1)
    with pytest.raises(InputError, match="radius"):
        icosphere(2, radius=0.0)


def test_laplacians_on_constants_and_null_vectors(sphere):
    v, f = sphere
    ones = torch.ones(len(v), 1)
    assert apply_sparse(graph_laplacian(f, len(v), "none"), ones).abs().max() == 0
    assert apply_sparse(graph_laplacian(f, len(v), "uniform"), ones).abs().max() < 1e-6
    deg = torch.as_tensor(np.bincount(mesh_edges(f).ravel()), dtype=torch.float32)[:, None]
    sym = graph_laplacian(f, len(v), "sym")
    # The symmetric normalised Laplacian kills D^(1/2)·1, not the constant (degrees 5 and 6 differ).
    assert apply_sparse(sym, deg.sqrt()).abs().max() < 1e-5
    assert apply_sparse(sym, ones).abs().max() > 0.05
    with pytest.raises(InputError, match="kind"):
        graph_laplacian(f, len(v), "cotangent")


def test_uniform_laplacian_is_the_deviation_from_the_neighbour_mean(sphere):
    v, f = sphere
    x = torch.as_tensor(v, dtype=torch.float32)
    lv = apply_sparse(graph_laplacian(f, len(v), "uniform"), x)
    e = mesh_edges(f)
    i = 17
    neighbours = np.unique(np.concatenate([e[e[:, 0] == i, 1], e[e[:, 1] == i, 0]]))
    np.testing.assert_allclose(lv[i].numpy(), v[i] - v[neighbours].mean(axis=0), atol=1e-6)


def test_laplacian_loss_is_translation_invariant_and_penalises_roughness(sphere):
    v, f = sphere
    lap = graph_laplacian(f, len(v), "uniform")
    x = torch.as_tensor(v, dtype=torch.float32)
    base = laplacian_loss(x, lap)
    assert torch.isclose(laplacian_loss(x + torch.tensor([0.3, -0.2, 0.1]), lap), base, rtol=1e-4)
    rough = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert laplacian_loss(rough, lap) > 5 * base
    batched = laplacian_loss(torch.stack([x, rough]), lap)
    assert torch.isclose(batched, 0.5 * (base + laplacian_loss(rough, lap)), rtol=1e-5)


def test_chebyshev_order_one_is_a_linear_layer(sphere):
    v, f = sphere
    conv = ChebConv(5, 7, k=1)
    x = torch.randn(2, len(v), 5, generator=torch.Generator().manual_seed(1))
    y = conv(x, chebyshev_operator(f, len(v)))
    torch.testing.assert_close(y, x @ conv.weight[0] + conv.bias)


def test_chebyshev_recursion_matches_dense_polynomials():
    v, f = icosphere(1)
    op = chebyshev_operator(f, len(v))
    dense = op.to_dense().double()
    conv = ChebConv(3, 4, k=3).double()
    x = torch.randn(len(v), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t2 = 2 * dense @ dense - torch.eye(len(v), dtype=torch.float64)
    expect = x @ conv.weight[0] + dense @ x @ conv.weight[1] + t2 @ x @ conv.weight[2] + conv.bias
    torch.testing.assert_close(conv(x, op.double()), expect)
    # L̃ = L_sym − I: spectrum in [−1, 1], −1 exactly once (at L_sym's null vector D^(1/2)·1).
    eig = torch.linalg.eigvalsh(dense)
    assert abs(eig[0] + 1) < 1e-6 and eig[1] > -0.9 and eig[-1] <= 1 + 1e-6


def test_gcn_operator_is_kipf_welling():
    v, f = icosphere(1)
    e = mesh_edges(f)
    a = np.zeros((len(v), len(v)))
    a[e[:, 0], e[:, 1]] = a[e[:, 1], e[:, 0]] = 1
    a += np.eye(len(v))
    d = a.sum(axis=1)
    np.testing.assert_allclose(gcn_operator(f, len(v)).to_dense().numpy(), a / np.sqrt(np.outer(d, d)), atol=1e-7)
    conv = GCNConv(3, 2)
    x = torch.randn(len(v), 3)
    a_hat = torch.as_tensor(a / np.sqrt(np.outer(d, d)), dtype=torch.float32)
    expect = a_hat @ (x @ conv.linear.weight.T) + conv.linear.bias
    torch.testing.assert_close(conv(x, gcn_operator(f, len(v))), expect, atol=1e-5, rtol=1e-5)


def test_splatting_conserves_mass_and_is_the_adjoint_of_sampling():
    g = torch.Generator().manual_seed(3)
    points = (torch.rand(2, 700, 3, generator=g) * 2 - 1) * 0.99
    feats = torch.randn(2, 700, 4, generator=g, dtype=torch.float64)
    grid = splat(points.double(), feats, 17)
    assert grid.shape == (2, 4, 17, 17, 17)
    torch.testing.assert_close(grid.sum(dim=(2, 3, 4)), feats.sum(dim=1))
    other = torch.randn(2, 4, 17, 17, 17, generator=g, dtype=torch.float64)
    torch.testing.assert_close((grid * other).sum(), (feats * sample(other, points.double())).sum())


def test_splat_of_a_vertex_on_a_voxel_centre_and_between_two():
    n = 5  # centres at -1, -0.5, 0, 0.5, 1
    one = torch.ones(1, 1, 1, dtype=torch.float64)
    grid = splat(torch.tensor([[[0.0, 0.5, -1.0]]], dtype=torch.float64), one, n)
    assert grid[0, 0, 2, 3, 0] == 1 and grid.sum() == 1
    grid = splat(torch.tensor([[[0.25, 0.5, -1.0]]], dtype=torch.float64), one, n)
    assert grid[0, 0, 2, 3, 0] == 0.5 and grid[0, 0, 3, 3, 0] == 0.5
    # A vertex outside the cube keeps only its in-grid weights (as zero-padded sampling would read it).
    grid = splat(torch.tensor([[[1.2, 0.0, 0.0]]], dtype=torch.float64), one, n)
    assert torch.isclose(grid[0, 0, 4, 2, 2], torch.tensor(0.6, dtype=torch.float64)) and torch.isclose(grid.sum(), grid[0, 0, 4, 2, 2])
    assert splat(torch.tensor([[[1.6, 0.0, 0.0]]], dtype=torch.float64), one, n).sum() == 0


def test_sampling_reproduces_linear_fields_and_axis_order():
    n = 9
    c = grid_coordinates(n, torch.float64)
    assert torch.equal(c[2, 5, 7], torch.tensor([-0.5, 0.25, 0.75], dtype=torch.float64))
    a = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    field = (c @ a)[None, None]
    pts = torch.rand(1, 50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    torch.testing.assert_close(sample(field, pts)[0, :, 0], pts[0] @ a)


def test_splatting_is_differentiable_in_positions():
    pts = torch.tensor([[[0.13, -0.41, 0.27]]], dtype=torch.float64, requires_grad=True)
    feats = torch.ones(1, 1, 1, dtype=torch.float64)
    weights = torch.randn(1, 1, 9, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert torch.autograd.gradcheck(lambda p: (splat(p, feats, 9) * weights).sum(), (pts,))
