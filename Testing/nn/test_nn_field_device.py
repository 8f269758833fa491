"""NeuralField results leave the device before they are widened to float64.

Apple MPS has no float64 and cannot hand its memory to numpy. No such device
exists on a CPU test machine, so ``_MPSLike`` reproduces exactly those two
restrictions on a CPU tensor: widening to float64 or calling ``.numpy()``
raises as on MPS; ``.cpu()`` returns an ordinary tensor.
"""

import numpy as np
import pytest
import torch

from AnatomyINRLib.nn import NeuralField, Normalization
from AnatomyINRLib.nn.field import to_numpy64

_MPS_FLOAT64 = "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64"


def _asks_float64(name, args, kwargs):
    if name == "double":
        return True
    if name in ("to", "type"):
        return any(a is torch.float64 for a in (*args[1:], *kwargs.values()))
    return False


class _MPSLike(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "cpu":
            return args[0].as_subclass(torch.Tensor).clone()
        if _asks_float64(name, args, kwargs):
            raise TypeError(_MPS_FLOAT64)
        if name == "numpy":
            raise TypeError("can't convert mps:0 device type tensor to numpy. Use Tensor.cpu() first")
        return super().__torch_function__(func, types, args, kwargs)


class _OnMPS(torch.nn.Module):
    """f(x) = 2·x₀ − 0.25, returned as a tensor that behaves like an MPS one."""

    out_dim = 1

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return (self.w * x[:, :1] - 0.25).as_subclass(_MPSLike)


def test_the_fake_device_rejects_what_mps_rejects():
    t = torch.ones(3).as_subclass(_MPSLike)
    with pytest.raises(TypeError, match="float64"):
        t.double()
    with pytest.raises(TypeError, match="float64"):
        t.to(torch.float64)
    with pytest.raises(TypeError, match="numpy"):
        t.numpy()


def test_to_numpy64_moves_to_cpu_before_widening():
    t = torch.tensor([[0.5, -1.25], [3.0, 7.0]]).as_subclass(_MPSLike)
    out = to_numpy64(t)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0.5, -1.25], [3.0, 7.0]])


def test_field_evaluation_works_for_a_device_without_float64():
    norm = Normalization(center=np.array([10.0, 0.0, 0.0]), scale=4.0)
    field = NeuralField(_OnMPS(), norm, device="cpu", chunk_size=3)
    pts = np.array([[10.0, 0, 0], [14.0, 0, 0], [6.0, 0, 0], [12.0, 1, 1], [10.0, 5, 5]])
    expected = (2.0 * (pts[:, 0] - 10.0) / 4.0 - 0.25) * 4.0
    out = field(pts)
    assert out.dtype == np.float64 and out.shape == (5,)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
