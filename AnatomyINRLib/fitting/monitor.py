"""The one stopping rule of every fit (``OptimConfig.rel_tol``/``patience``/``min_iterations``)."""

from __future__ import annotations

import math

from AnatomyINRLib.fitting.config import OptimConfig


class ConvergenceMonitor:
    """Decides after each window of iterations whether the fit has converged.

    Rule: a window is *stale* when its mean loss does not beat the best window
    mean so far by the fraction ``rel_tol`` (mean ≥ best · (1 − rel_tol); the
    IGR losses are non-negative, so this is a relative tolerance). Stop once
    ``patience`` consecutive windows were stale and at least ``min_iterations``
    iterations have run. ``rel_tol = 0`` never stops early. Stale windows keep
    counting before ``min_iterations``, so a fit that plateaued early stops at
    the first window end after ``min_iterations``.

    Args:
        cfg: Optimiser settings (``rel_tol``, ``patience``, ``min_iterations``).
    """

    def __init__(self, cfg: OptimConfig) -> None:
        self.rel_tol = float(cfg.rel_tol)
        self.patience = int(cfg.patience)
        self.min_iterations = int(cfg.min_iterations)
        self.best = math.inf
        self.stale = 0

    def update(self, window_mean: float, iterations_done: int) -> bool:
        """Record one window's mean loss after ``iterations_done`` iterations; True = stop now."""
        improved = window_mean < self.best * (1.0 - self.rel_tol)
        self.stale = 0 if improved else self.stale + 1
        self.best = min(self.best, window_mean)
        return self.rel_tol > 0 and self.stale >= self.patience and iterations_done >= self.min_iterations
