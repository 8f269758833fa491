"""Batches of a supervision pool that mix random samples with the worst current violations."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Callable, Optional

import torch

MINE_EVERY = 10  # iterations between searches of the pool for violations
MINE_SUBSET = 20_000  # pool samples examined per search
# Searched in chunks: a 20 000-row forward allocates 5 MB activations per layer, and fresh pages of
# that size made the search ~20 % slower on CPU than 2 500-row pieces (same values, row-wise).
MINE_CHUNK = 2_500


class ViolationMiner:
    """Index batches over a pool of ``pool_size`` samples: random ones plus the hardest found recently.

    Every ``MINE_EVERY`` calls a random share (``MINE_SUBSET``) of the pool is searched and up to
    half a batch of its worst violations (largest positive values) is kept; the rest of each batch
    is drawn at random. A violation region is a small share of the pool (a blob between branches, a
    surface poking through a slice plane) and persists over many iterations, so random draws alone
    miss it while a search every few iterations finds it at a fraction of the cost.
    """

    def __init__(self, pool_size: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.gen, self.device = int(pool_size), generator, device
        self.calls, self.hard = 0, torch.zeros(0, dtype=torch.long, device=device)
        self.searched = False  # this call's search was already run by search()

    @property
    def due(self) -> bool:
        """True when the next :meth:`batch` call searches the pool (and it has not been searched yet)."""
        return self.calls % MINE_EVERY == 0 and not self.searched

    def search(self, k: int, violation: Callable[[torch.Tensor], torch.Tensor], pool: Optional[Executor] = None) -> None:
        """Search a random share of the pool for the next batch's k // 2 worst violations.

        With ``pool``, the second half of the chunks is evaluated there while the caller
        does the first (the values are the same; only who computes them changes).
        """
        m = min(self.n, MINE_SUBSET)
        cand = torch.randperm(self.n, generator=self.gen, device=self.device)[:m]
        chunks = [cand[i:i + MINE_CHUNK] for i in range(0, m, MINE_CHUNK)]

        def values_of(part: list) -> list:
            with torch.no_grad():
                return [violation(c) for c in part]

        if pool is None or len(chunks) < 2:
            values = values_of(chunks)
        else:
            later = pool.submit(values_of, chunks[len(chunks) // 2:])
            values = values_of(chunks[:len(chunks) // 2]) + later.result()
        values = torch.cat(values)
        bad = torch.nonzero(values > 0).squeeze(1)
        top = torch.argsort(values[bad], descending=True)[: k // 2]
        self.hard, self.searched = cand[bad[top]], True

    def batch(self, k: int, violation: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """(k,) long indices; ``violation(indices)`` gives (M,) values, > 0 where violated (run without grad)."""
        if self.due:
            self.search(k, violation)
        self.calls += 1
        self.searched = False
        rand = torch.randint(self.n, (k - len(self.hard),), generator=self.gen, device=self.device)
        return torch.cat([rand, self.hard])
