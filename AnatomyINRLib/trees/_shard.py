"""Stage 1 under ``torchrun``: rank r fits trees r, r + W, r + 2W, … of one shared list.

On CPU one process per core is the fast layout (batching many MLPs in one process gains
nothing there, see ``TreeFitConfig.stack``), so a folder of trees is sharded across processes:

1. every rank computes a SHA-256 of the whole input (names, vertices, faces) and the ranks compare
   them; ranks that disagree all fail with an InputError naming each rank's digest;
2. rank r fits the trees at indices r::W with the seeds of those indices (seed + index), its first
   tree being its own warm-start template;
3. every rank sends its status and fitted trees to all the others; if any rank failed, every rank
   fails (the failed rank with its own error, the others naming it), so nothing is written;
   otherwise all ranks hold the same merged result, in input order.

Only the merge is collective; the fits themselves never wait on each other.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

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
            cls = getattr(errors, payload[0], None)
            if not (isinstance(cls, type) and issubclass(cls, errors.AnatomyINRError)):
                cls = errors.FitError
            raise cls(f"torchrun rank {r} failed, so no rank writes anything: {payload[1]}")
    return [payload for _, payload in gathered]
