"""``ddp_model``: no wrapper in one process; under a process group, buffers are re-broadcast before every
forward pass unless the net declares them constant."""

import pytest
import torch
import torch.distributed as dist

from AnatomyINRLib.nn.distributed import ddp_model


class _WithBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("table", torch.arange(4.0))

    def forward(self, x):
        return self.lin(x) + self.table[:2]


@pytest.fixture
def one_process_group():
    """A gloo group of this process alone, rendezvous in memory (no port)."""
    assert dist.is_available() and not dist.is_initialized()
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_one_process_is_not_wrapped():
    net = _WithBuffer()
    assert ddp_model(net, 1, torch.device("cpu")) is net


def test_constant_buffers_are_not_broadcast_every_step(one_process_group):
    from torch.nn.parallel import DistributedDataParallel

    default = ddp_model(_WithBuffer(), 2, torch.device("cpu"))
    constant = ddp_model(_WithBuffer(), 2, torch.device("cpu"), constant_buffers=True)
    assert isinstance(default, DistributedDataParallel) and isinstance(constant, DistributedDataParallel)
    assert default.broadcast_buffers is True  # e.g. batch norm's running statistics (pulmonary Method B)
    assert constant.broadcast_buffers is False
    x = torch.ones(5, 3)
    assert torch.equal(constant(x), constant.module(x))
