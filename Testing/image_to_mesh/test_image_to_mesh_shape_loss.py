"""The f_θ loss (eq. 1) on cases with known values, and the Laplacian weight anneal."""

import math

import numpy as np
import pytest
import torch

from AnatomyINRLib.image_to_mesh._graph import graph_laplacian
from AnatomyINRLib.image_to_mesh._grid import grid_coordinates
from AnatomyINRLib.image_to_mesh._shape_loss import laplacian_weight, shape_loss
from AnatomyINRLib.image_to_mesh._template import icosphere, mesh_edges


class SphereSDF(torch.nn.Module):
    """Stand-in for g_φ with a known answer: the SDF of the sphere through the mean vertex radius
    around the vertex mean, on a G³ grid over [-1, 1]³ (differentiable in the vertices)."""

    def __init__(self, g: int) -> None:
        super().__init__()
        self.coords = grid_coordinates(g, torch.float64)

    def forward(self, v):
        c = v.mean(dim=1)
        r = (v - c[:, None]).norm(dim=-1).mean(dim=1)
        d = (self.coords[None] - c[:, None, None, None]).norm(dim=-1) - r[:, None, None, None]
        return [d[:, None]]


def test_laplacian_weight_cosine_anneal_values():
    assert laplacian_weight(0, 100, 1000.0, 0.01) == pytest.approx(1000.0, abs=1e-12)
    assert laplacian_weight(50, 100, 1000.0, 0.01) == pytest.approx(500.005, abs=1e-9)
    assert laplacian_weight(25, 100, 1000.0, 0.01) == pytest.approx(0.01 + 499.995 * (1 + math.cos(math.pi / 4)), abs=1e-9)
    assert laplacian_weight(100, 100, 1000.0, 0.01) == pytest.approx(0.01, abs=1e-12)
    assert laplacian_weight(250, 100, 1000.0, 0.01) == pytest.approx(0.01, abs=1e-12)  # stays at the end value
    values = [laplacian_weight(t, 100, 1000.0, 0.01) for t in range(101)]
    assert all(a > b for a, b in zip(values, values[1:]))  # strictly decreasing


def _numpy_uniform_laplacian_term(v: np.ndarray, faces: np.ndarray) -> float:
    nb = [[] for _ in range(len(v))]
    for a, b in mesh_edges(faces):
        nb[a].append(b)
        nb[b].append(a)
    lv = np.stack([v[i] - v[n].mean(axis=0) for i, n in enumerate(nb)])
    return float((lv ** 2).sum(axis=1).mean())


def test_loss_terms_on_a_known_case():
    g, tau = 9, 0.05
    verts, faces = icosphere(2, 0.5)
    rng = np.random.default_rng(0)
    v1 = verts * 0.8 + rng.normal(0, 0.01, verts.shape)          # stage 1, a bumpy smaller sphere
    v2 = verts * 0.6 + np.array([0.1, 0.0, -0.1])                 # final stage: radius 0.3 sphere, shifted
    meshes = [[torch.tensor(verts[None]), torch.tensor(v1[None]), torch.tensor(v2[None])]]
    coords = grid_coordinates(g, torch.float64).numpy()
    soft = (np.linalg.norm(coords - np.array([0.0, 0.1, 0.0]), axis=-1) < 0.35).astype(np.float64)
    logits = torch.zeros(1, 2, 5, 5, 5, dtype=torch.float64)
    labels = torch.zeros(1, 5, 5, 5, dtype=torch.int64)
    lap = graph_laplacian(faces, len(verts), "uniform")
    loss, terms = shape_loss(meshes, logits, SphereSDF(g), torch.tensor(soft[None, None]), labels,
                             lap.to(torch.float64), alpha=2.0, beta=10.0, gamma=0.5, tau=tau)
    # Independent numbers: the exact sphere SDF of the final mesh, BCE of σ(−D/τ) by its definition.
    c = v2.mean(axis=0)
    r = np.linalg.norm(v2 - c, axis=1).mean()
    d = np.linalg.norm(coords - c, axis=-1) - r
    p = 1.0 / (1.0 + np.exp(d / tau))
    bce = float(np.mean(-(soft * np.log(p) + (1 - soft) * np.log(1 - p))))
    smooth = _numpy_uniform_laplacian_term(v1, faces) + _numpy_uniform_laplacian_term(v2, faces)
    ce = math.log(2.0)  # uniform logits over 2 classes
    assert terms["bce"] == pytest.approx(bce, rel=1e-9)
    assert terms["laplacian"] == pytest.approx(smooth, rel=1e-6)
    assert terms["ce"] == pytest.approx(ce, rel=1e-9)
    assert float(loss) == pytest.approx(2.0 * bce + 10.0 * smooth + 0.5 * ce, rel=1e-6)


def test_bce_gradient_pulls_the_mesh_onto_the_label():
    g = 17
    verts, faces = icosphere(2, 0.5)
    v = torch.tensor(verts[None], requires_grad=True)
    coords = grid_coordinates(g, torch.float64).numpy()
    soft = torch.tensor((np.linalg.norm(coords, axis=-1) < 0.3).astype(np.float64)[None, None])
    lap = graph_laplacian(faces, len(verts), "uniform").to(torch.float64)
    loss, _ = shape_loss([[v, v]], torch.zeros(1, 2, 3, 3, 3, dtype=torch.float64), SphereSDF(g), soft,
                         torch.zeros(1, 3, 3, 3, dtype=torch.int64), lap, alpha=1.0, beta=0.0, gamma=0.0, tau=0.02)
    loss.backward()
    radial = (v.grad[0] * v.detach()[0]).sum(dim=1)
    assert torch.all(radial > 0)  # descent (−grad) moves every vertex inwards, towards the radius-0.3 label
