"""Stage 1 under ``torchrun``: rank r fits trees r, r + W, r + 2W, … of one shared list.

On CPU one process per core is the fast layout (batching many MLPs in one process gains
nothing there, see ``TreeFitConfig.stack``), so a folder of trees is sharded across processes:

1. every rank computes a SHA-256 of the whole input (names, vertices, faces) and the ranks compare
   them; ranks that disagree all fail with an InputError naming each rank's digest;
2. rank r fits the trees at indices r::W with the seeds of those indices (seed + index); with a warm
   start, rank 0's first tree is the one template of every rank (:class:`TemplateShare`): the data set
   keeps one basin (what the weight-space diffusion of stage 2 needs) and each tree's weights are those
   a single process gives;
3. every rank sends its status and fitted trees to all the others; if any rank failed, every rank
   fails (the failed rank with its own error, the others naming it), so nothing is written;
   otherwise all ranks hold the same merged result, in input order.

Only the merge is collective; the fits themselves never wait on each other.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Optional, Sequence

import numpy as np

from AnatomyINRLib.core import errors


def input_digest(meshes: Sequence, names: Sequence[str]) -> str:
    """SHA-256 of the names and mesh arrays in order (non-mesh entries hash their type name)."""
    h = hashlib.sha256()
    for mesh, name in zip(meshes, names):
        h.update(str(name).encode() + b"\0")
        for arr in (getattr(mesh, "vertices", None), getattr(mesh, "faces", None)):
            if arr is None:
                h.update(type(mesh).__name__.encode())
            else:
                a = np.ascontiguousarray(arr)
                h.update(str((a.dtype.str, a.shape)).encode() + a.tobytes())
    return h.hexdigest()


def _all_gather(obj) -> list:
    import torch.distributed as dist

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def check_inputs_agree(meshes: Sequence, names: Sequence[str]) -> None:
    """Refuse (InputError on every rank) when the ranks were given different trees."""
    digests = _all_gather((len(meshes), input_digest(meshes, names)))
    if len({d for d in digests}) > 1:
        listing = ", ".join(f"rank {r}: {n} meshes, SHA-256 {d[:12]}" for r, (n, d) in enumerate(digests))
        raise errors.InputError(f"torchrun ranks disagree on the trees to fit ({listing}); "
                                "give every process the same mesh folder")


class TemplateShare:
    """Rank 0 broadcasts its warm-start template (its first fitted tree) to every other rank, once.

    Every rank takes part in exactly one broadcast, whatever happens: rank 0 sends the template's
    state dict (CPU tensors), None when it had no tree to fit (the others then start cold), or its
    error, which the other ranks raise as the same error class, so no rank waits forever.
    """

    def __init__(self, rank: int) -> None:
        self.rank, self.done = int(rank), False

    def _broadcast(self, payload):
        import torch.distributed as dist

        box = [payload]
        dist.broadcast_object_list(box, src=0)
        self.done = True
        return box[0]

    def send(self, template: Optional[dict]) -> None:
        """Rank 0: share the template (None: nothing fitted); later calls do nothing."""
        if not self.done:
            cpu = None if template is None else {k: v.detach().cpu() for k, v in template.items()}
            self._broadcast(("ok", cpu))

    def fail(self, exc: BaseException) -> None:
        """Rank 0: tell the others the template will not come (their fits fail with this error)."""
        if not self.done:
            self._broadcast(("error", (type(exc).__name__, str(exc))))

    def receive(self) -> Optional[dict]:
        """Ranks > 0: the template (None: start cold); raises rank 0's error class if it failed."""
        kind, payload = self._broadcast(None)
        if kind == "error":
            raise _error_class(payload[0])(f"torchrun rank 0 failed before sharing the warm-start template, "
                                           f"so no rank writes anything: {payload[1]}")
        return payload


def _error_class(name: str) -> type:
    cls = getattr(errors, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, errors.AnatomyINRError) else errors.FitError


def run_sharded(fit_shard: Callable[[list], object], count: int, rank: int, size: int) -> list:
    """Run ``fit_shard(indices)`` for this rank's indices ``rank::size``; return every rank's output.

    Returns:
        The outputs of ranks 0 … size−1 (identical on every rank).

    Raises:
        The rank's own error if it failed; on the other ranks the same error class (from
        ``core.errors``, else FitError) naming the rank that failed.
    """
    mine = list(range(rank, count, size))
    try:
        status = ("ok", fit_shard(mine))
        failure = None
    except BaseException as exc:  # every rank must reach the exchange, or the others would wait forever
        status, failure = ("error", (type(exc).__name__, str(exc))), exc
    gathered = _all_gather(status)
    if failure is not None:
        raise failure
    for r, (kind, payload) in enumerate(gathered):
        if kind == "error":
            raise _error_class(payload[0])(f"torchrun rank {r} failed, so no rank writes anything: {payload[1]}")
    return [payload for _, payload in gathered]
