"""Seeded random generators: every random thing in the library takes one.

There is deliberately no global seeding helper: torch's and numpy's global
RNGs are never used, so a fit cannot change (or depend on) a caller's state.
"""

from __future__ import annotations

import numpy as np


def make_generator(seed: int | None, device=None):
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (random if None)."""
    import torch

    gen = torch.Generator(device=device if device is not None else "cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def numpy_rng(seed: "int | np.random.Generator | None") -> np.random.Generator:
    """A numpy Generator from a seed, or the generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)

