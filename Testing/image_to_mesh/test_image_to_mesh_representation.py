"""Mesh → SDF network g_φ: shapes, gradients w.r.t. vertices, checkpoints, pre-training, deformations, rasterising."""

import numpy as np
import pytest
import torch

from AnatomyINRLib import io
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.image_to_mesh import (
    DeformationConfig,
    PretrainConfig,
    RepresentationConfig,
    pretrain_preset,
    pretrain_representation,
)
from AnatomyINRLib.image_to_mesh._deform import random_shape
from AnatomyINRLib.image_to_mesh._grid import grid_coordinates
from AnatomyINRLib.image_to_mesh._pretrain import banded_sdf
from AnatomyINRLib.image_to_mesh._raster import CropFrame, rasterize_meshes
from AnatomyINRLib.image_to_mesh._representation import (
    MeshToSDF,
    level_sizes,
    representation_from_state,
    representation_state,
)
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.meshing.mesh_sdf import MeshSDF
from AnatomyINRLib.meshing.self_intersection import count_self_intersections

SMALL = RepresentationConfig(grid_size=17, levels=2, encoder_channels=8, decoder_channels=(8, 4), dropout=0.1, groups=4)


def test_output_levels_and_sizes():
    v, f = icosphere(2)
    net = MeshToSDF(SMALL, f).eval()
    out = net(torch.as_tensor(v, dtype=torch.float32).expand(3, -1, -1))
    assert [tuple(o.shape) for o in out] == [(3, 1, 9, 9, 9), (3, 1, 17, 17, 17)]
    assert level_sizes(RepresentationConfig()) == [9, 17, 33]
    assert level_sizes(RepresentationConfig(grid_size=129, levels=4)) == [17, 33, 65, 129]
    with pytest.raises(InputError, match="grid_size"):
        RepresentationConfig(grid_size=32).validate()
    with pytest.raises(InputError, match="decoder_channels"):
        RepresentationConfig(levels=2).validate()


def test_sdf_is_differentiable_in_the_vertex_positions():
    v, f = icosphere(2)
    torch.manual_seed(0)
    net = MeshToSDF(SMALL, f).double().eval()
    weights = torch.randn(17, 17, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = torch.as_tensor(v * 1.3, dtype=torch.float64)[None].requires_grad_(True)
    objective = lambda verts: (net.sdf(verts)[0] * weights).sum()  # noqa: E731
    objective(x).backward()
    grad = x.grad[0]
    assert torch.isfinite(grad).all() and (grad.abs().sum(dim=1) > 0).float().mean() > 0.99
    eps = 1e-6
    for vertex, axis in ((0, 0), (17, 2), (100, 1), (150, 0)):  # central differences agree with autograd
        step = torch.zeros_like(x)
        step[0, vertex, axis] = eps
        with torch.no_grad():
            numeric = (objective(x + step) - objective(x - step)) / (2 * eps)
        assert float(numeric) == pytest.approx(float(grad[vertex, axis]), rel=1e-5, abs=1e-8)


def test_checkpoint_round_trip_and_refusals(tmp_path):
    v, f = icosphere(2)
    net = MeshToSDF(SMALL, f).eval()
    tensors, meta = representation_state(net, {"note": "test"})
    io.save_checkpoint(tmp_path / "g.safetensors", tensors, meta)
    back = representation_from_state(*io.load_checkpoint(tmp_path / "g.safetensors"))
    x = torch.as_tensor(v, dtype=torch.float32)[None]
    with torch.no_grad():
        assert torch.equal(back.sdf(x), net.sdf(x))
    with pytest.raises(InputError, match="expected a mesh→SDF"):
        representation_from_state(tensors, {**meta, "kind": "pulmonary-segments-impulse+"})
    other = {**meta, "config": RepresentationConfig(grid_size=17, levels=2, encoder_channels=16,
                                                     decoder_channels=(8, 4)).to_dict()}
    with pytest.raises(InputError, match="weights do not match"):
        representation_from_state(tensors, other)


def test_pretraining_follows_its_seed_not_torchs_global_rng():
    torch.manual_seed(123)
    a = pretrain_representation(preset="test", seed=3)
    torch.manual_seed(999)  # another global state: weights and dropout come from the run's own generators
    b = pretrain_representation(preset="test", seed=3)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert a.report["epoch_loss"] == b.report["epoch_loss"] and len(a.report["epoch_loss"]) == 2
    floor = a.report["validation"]["exact_grid"]
    assert floor["dice"] == 1.0 and floor["to_exact_mean"] < 0.01  # marching cubes on the exact grid
    assert a.metadata["kind"] == "image-to-mesh-representation" and a.metadata["n_vertices"] == 162
    with pytest.raises(InputError, match="preset"):
        pretrain_representation(preset="huge")
    with pytest.raises(InputError, match="config"):
        pretrain_representation(config=RepresentationConfig())
    assert pretrain_preset("cpu").representation.grid_size == 33


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_stay_in_the_box_and_never_fold(seed):
    v, f = icosphere()
    cfg = DeformationConfig()
    shape = random_shape(v, cfg, seed)
    assert np.array_equal(shape, random_shape(v, cfg, seed))
    assert np.abs(shape).max() <= cfg.max_extent + 1e-12
    mesh = TriangleMesh(shape, f)
    assert mesh.signed_volume() > 0 and count_self_intersections(mesh) == 0


def test_banded_sdf_is_exact_near_the_surface():
    v, f = icosphere()
    shape = random_shape(v, DeformationConfig(), 7)
    pts = grid_coordinates(17, torch.float64).reshape(-1, 3).numpy()
    exact = MeshSDF(TriangleMesh(shape, f), prepared=True)(pts)
    banded = banded_sdf(shape, f, pts, 0.3)
    near = np.abs(exact) < 0.3
    assert np.array_equal(banded[near], exact[near]) and np.array_equal(np.sign(banded), np.sign(exact))
    edge = np.linalg.norm(shape[f[:, 0]] - shape[f[:, 1]], axis=1).max()
    assert np.all(banded[~near] * np.sign(exact[~near]) - np.abs(exact[~near]) <= edge)


def test_rasterised_sphere_has_the_analytic_volume():
    rot = np.array([[0.36, -0.48, 0.8], [0.8, 0.6, 0.0], [-0.48, 0.64, 0.6]])
    ref = ImageGrid(np.zeros((70, 60, 50), np.uint8), ImageGrid.make_affine((-30, -25, -40), (0.9, 1.0, 1.3), rot))
    centre = ref.index_to_world(np.array([[34.3, 29.6, 24.5]]))[0]
    v, f = icosphere(4, radius=20.0)
    labels, overlap = rasterize_meshes({2: TriangleMesh(v + centre, f)}, ref)
    inside = labels.array == 2
    volume = np.count_nonzero(inside) * 0.9 * 1.0 * 1.3
    assert overlap == 0 and set(np.unique(labels.array)) == {0, 2}
    assert volume == pytest.approx(4 / 3 * np.pi * 20.0**3, rel=0.006)
    assert volume == pytest.approx(TriangleMesh(v, f).signed_volume(), rel=0.004)
    r = np.linalg.norm(ref.voxel_centers() - centre, axis=1).reshape(ref.shape)
    assert not np.any(inside & (r > 20.05)) and not np.any(~inside & (r < 19.95))


def test_rasterised_overlap_is_counted_and_frame_round_trips():
    ref = ImageGrid(np.zeros((30, 30, 30), np.uint8), ImageGrid.make_affine((0, 0, 0), (1.0, 1.0, 1.0)))
    v, f = icosphere(3, radius=6.0)
    labels, overlap = rasterize_meshes({1: TriangleMesh(v + 12.0, f), 2: TriangleMesh(v + 17.0, f)}, ref)
    assert overlap > 0 and np.count_nonzero(labels.array == 2) > np.count_nonzero(labels.array == 1)
    with pytest.raises(InputError, match="label keys"):
        rasterize_meshes({0: TriangleMesh(v, f)}, ref)
    with pytest.raises(InputError, match="not closed"):
        rasterize_meshes({1: TriangleMesh(v, f[:-1])}, ref)
    oblique = ImageGrid(np.zeros((40, 30, 20), np.uint8),
                        ImageGrid.make_affine((5, -3, 2), (0.7, 0.9, 2.0), np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])))
    frame = CropFrame.centred(oblique, 12.0)
    x = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    np.testing.assert_allclose(frame.to_normalised(frame.to_world(x)), x, atol=1e-12)
    ends = frame.to_world(np.array([[-1.0, 0, 0], [1.0, 0, 0]]))
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(24.0)
