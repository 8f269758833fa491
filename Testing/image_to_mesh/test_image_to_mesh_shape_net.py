"""Shape network f_θ (definition only so far): shapes, start at the template, gradients, grid convention."""

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.image_to_mesh._grid import grid_coordinates
from AnatomyINRLib.image_to_mesh._shape_net import ShapeNet, UNet3D
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.image_to_mesh.config import ShapeNetConfig

SMALL = ShapeNetConfig(image_size=17, unet_channels=(4, 8), n_structures=2, graph_channels=8, graph_blocks=1,
                       stage_levels=((1, 2), (0, 1), (0,)))


def test_shapes_and_start_at_the_template():
    v, f = icosphere(2, radius=0.5)
    torch.manual_seed(0)
    net = ShapeNet(SMALL, v, f).eval()
    image = torch.randn(2, 1, 17, 17, 17, generator=torch.Generator().manual_seed(1))
    meshes, logits = net(image)
    assert logits.shape == (2, 3, 17, 17, 17) and len(meshes) == 2
    for stages in meshes:
        assert len(stages) == 4 and all(s.shape == (2, len(v), 3) for s in stages)
        torch.testing.assert_close(stages[0][0], torch.as_tensor(v, dtype=torch.float32))
        # Each stage moves vertices by amplification (0.01) times a bounded Δ: a small step from the sphere.
        assert 0 < (stages[-1] - stages[0]).abs().max() < 0.1


def test_gradients_reach_the_image_encoder_and_the_image():
    v, f = icosphere(2)
    net = ShapeNet(SMALL, v, f).eval()
    image = torch.randn(1, 1, 17, 17, 17, requires_grad=True)
    meshes, _ = net(image)
    meshes[1][-1].pow(2).sum().backward()
    assert image.grad.abs().sum() > 0
    assert net.unet.down[0].body[0].weight.grad.abs().sum() > 0
    assert net.decoders[0][0].out.weight.grad is None  # structure 0's decoder took no part


def test_unet_levels_follow_the_grid_convention():
    unet = UNet3D((2, 2, 2), 2, 0.0).eval()
    feats, logits = unet(torch.zeros(1, 1, 33, 33, 33))
    assert [f.shape[-1] for f in feats] == [33, 17, 9, 5] and logits.shape[-1] == 33
    with pytest.raises(InputError, match="image_size"):
        ShapeNetConfig(image_size=64).validate()
    with pytest.raises(InputError, match="stage_levels"):
        ShapeNetConfig(stage_levels=((7,),)).validate()
    assert np.isclose(ShapeNetConfig().amplification, 0.01)


def _ball_logits(n: int, centres, radii) -> torch.Tensor:
    """(1, K + 1, n, n, n) logits: class k + 1 wins (20 against 10) inside ball k, background elsewhere."""
    grid = grid_coordinates(n)
    logits = torch.zeros(1, len(centres) + 1, n, n, n)
    logits[0, 0] = 10.0
    for k, (c, r) in enumerate(zip(centres, radii)):
        inside = (grid - torch.tensor(c)).norm(dim=-1) <= r
        logits[0, k + 1][inside] = 20.0
    return logits


def test_segmentation_placement_puts_each_template_on_its_predicted_structure():
    v, f = icosphere(2, radius=0.5)
    cfg = ShapeNetConfig(**{**SMALL.to_dict(), "seg_placement": True})
    net = ShapeNet(cfg, v, f).eval()
    n = 33
    centres, radii = [(0.3, -0.2, 0.1), (-0.4, 0.25, -0.3)], [0.25, 0.35]
    place = net.case_placement(_ball_logits(n, centres, radii))
    assert place.shape == (1, 2, 4)
    voxel = 2.0 / (n - 1)
    for k in range(2):
        # the voxelised ball's centroid and equivalent radius: within a quarter voxel of the truth
        assert torch.allclose(place[0, k, :3], torch.tensor(centres[k]), atol=0.25 * voxel)
        assert abs(float(place[0, k, 3]) * 0.5 - radii[k]) < 0.25 * voxel
    # forward draws stage 0 at the placement of its own logits
    image = torch.randn(2, 1, 17, 17, 17, generator=torch.Generator().manual_seed(3))
    meshes, logits = net(image)
    own = net.case_placement(logits)
    for k in range(2):
        expected = torch.as_tensor(v, dtype=torch.float32).unsqueeze(0) * own[:, k, 3:].unsqueeze(1) \
            + own[:, k, :3].unsqueeze(1)
        torch.testing.assert_close(meshes[k][0], expected)


def test_segmentation_placement_falls_back_to_the_fixed_placement():
    v, f = icosphere(2, radius=0.5)
    net = ShapeNet(ShapeNetConfig(**{**SMALL.to_dict(), "seg_placement": True}), v, f).eval()
    net.placement.copy_(torch.tensor([[0.1, 0.0, 0.0, 0.8], [0.0, -0.1, 0.0, 0.6]]))
    # structure 1 found (a ball), structure 2 below MIN_PLACEMENT_VOXELS (a single voxel)
    logits = _ball_logits(17, [(0.0, 0.0, 0.0), (0.5, 0.5, 0.5)], [0.3, 0.01])
    place = net.case_placement(logits)
    torch.testing.assert_close(place[0, 1], net.placement[1])
    assert torch.allclose(place[0, 0, :3], torch.zeros(3), atol=1e-6)
    # off by default: the fixed placement for every case
    plain = ShapeNet(SMALL, v, f).eval()
    torch.testing.assert_close(plain.case_placement(logits)[0], plain.placement)
