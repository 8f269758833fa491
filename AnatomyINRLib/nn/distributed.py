"""What every trainer needs under ``torchrun``: joining the process group, gradient averaging, weight digests.

Training of the learned capabilities (pulmonary Method B, image-to-mesh f_θ, tree diffusion, batched
stage-1 tree fits) runs unchanged in one process or under ``torchrun`` (DistributedDataParallel style:
gloo on CPU, NCCL on CUDA); the world is read from the ``WORLD_SIZE`` torchrun sets.
"""

from __future__ import annotations

import hashlib
import os

import torch


def dist_context(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the process group under torchrun (gloo on CPU, NCCL on CUDA)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def average_grads(params, world: int) -> None:
    """Replace every parameter's gradient by its mean over the ``world`` ranks (all-reduce / world)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def state_digest(module: "torch.nn.Module | dict") -> str:
    """Short SHA-256 of every weight (sorted names) of a module or a state dict: equal digests = identical."""
    h = hashlib.sha256()
    state = module if isinstance(module, dict) else module.state_dict()
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def ddp_model(net: "torch.nn.Module", world: int, device: torch.device, *,
              constant_buffers: bool = False) -> "torch.nn.Module":
    """``net`` itself in one process; wrapped in DistributedDataParallel under torchrun.

    DDP copies rank 0's parameters and buffers to every rank when it wraps the net, and by default
    copies the buffers again before every forward pass (running statistics such as batch norm's
    change during training). ``constant_buffers=True`` skips the per-step copies, for a net whose
    buffers are built identically on every rank and never change (e.g. tables from the data, which
    the ranks have checked they share). torch ≥ 2.13 names that switch ``forward_sync_buffers``;
    older versions' ``broadcast_buffers=False`` may also skip the first copy, which such buffers
    do not need.
    """
    if world <= 1:
        return net
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    if not constant_buffers:
        return DistributedDataParallel(net, device_ids=ids)
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return DistributedDataParallel(net, device_ids=ids, forward_sync_buffers=False)
    return DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def run_epochs(run_epoch, save, *, start: int, epochs: int, history: list, rank: int, world: int,
               reporter) -> None:
    """The resumable epoch loop of every trainer: epochs ``start`` … ``epochs`` − 1.

    Each epoch: ``run_epoch(epoch) -> {term: value}`` (with a "loss"), appended to ``history``;
    rank 0 then ``save(epochs_done, last)`` (a checkpoint after every epoch, so an interrupted run
    resumes without losing a finished one); every rank waits for that checkpoint before the next
    epoch; an "epoch" progress event follows.
    """
    for epoch in range(start, epochs):
        terms = run_epoch(epoch)
        history.append({"epoch": epoch + 1, **{k: round(v, 6) for k, v in terms.items()}})
        if rank == 0:
            save(epoch + 1, epoch + 1 >= epochs)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
        reporter.report("epoch", (epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs} saved",
                        epoch=epoch + 1, loss=terms["loss"])


def leave_group() -> None:
    """Under torchrun: wait for every rank, then leave the process group (before the process exits).

    A rank that exits while another still finishes a collective can make the other abort (SIGABRT in
    gloo) instead of exiting with its own code; the barrier lets all finish first. Does nothing in one
    process or when the group is gone; a barrier that fails (a rank already died) is ignored.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        dist.barrier()
    except Exception:  # a peer is already gone: leave anyway
        pass
    dist.destroy_process_group()
