"""Shape network f_θ (definition only so far): shapes, start at the template, gradients, grid convention."""

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
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
