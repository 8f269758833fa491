"""The shared fitting engine: stopping rule, schedule, loop, and that every fit obeys them."""

from __future__ import annotations

import math

import pytest
import torch

from AnatomyINRLib.core.errors import Cancelled, FitError, InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.fitting import ConvergenceMonitor, OptimConfig, StepLoss, budget, learning_rate_at, optimise


def _stop_window(means, rel_tol, patience, min_iterations, check_every):
    """1-based window at which the rule stops, fed window by window (None = never)."""
    monitor = ConvergenceMonitor(OptimConfig(rel_tol=rel_tol, patience=patience, min_iterations=min_iterations,
                                             check_every=check_every))
    for w, mean in enumerate(means, start=1):
        if monitor.update(mean, w * check_every):
            return w
    return None


# Windows 1-2 improve by > 1 %, 3-5 do not (0.499 ≥ 0.5·0.99), 6 improves, 7-12 do not.
_MEANS = [1.0, 0.5, 0.499, 0.498, 0.4975, 0.3, 0.2999, 0.2998, 0.2997, 0.2996, 0.2995, 0.2994]


@pytest.mark.parametrize("patience, expected", [(1, 3), (2, 4), (3, 5), (4, 10), (6, 12), (7, None)])
def test_patience_counts_consecutive_stale_windows(patience, expected):
    assert _stop_window(_MEANS, 0.01, patience, 0, 10) == expected


def test_stale_windows_are_judged_against_the_best_not_the_previous_window():
    # Windows 4-6 each beat their predecessor by ≥ 0.5 % (the old nested rule's notion of progress)
    # but none beats the best (window 2) by 1 %: stale from window 3 on.
    means = [1.0, 0.9, 1.2, 1.19, 1.184, 1.178]
    assert _stop_window(means, 0.01, 3, 0, 10) == 5


def test_min_iterations_delays_the_stop_to_the_first_window_after_it():
    # Stale from window 3 on; patience 3 is met at window 5 (50 iterations) but min_iterations is 80.
    assert _stop_window(_MEANS[:5] + [0.4974] * 5, 0.01, 3, 80, 10) == 8
    assert _stop_window(_MEANS[:5] + [0.4974] * 5, 0.01, 3, 75, 10) == 8
    assert _stop_window(_MEANS[:5] + [0.4974] * 5, 0.01, 3, 50, 10) == 5


def test_zero_tolerance_never_stops():
    assert _stop_window([1.0] * 50, 0.0, 1, 0, 10) is None


def test_cosine_schedule_with_warmup_values():
    cfg = OptimConfig(lr=1e-2, lr_final_factor=0.02, warmup=10, schedule="cosine")
    lr = [learning_rate_at(i, 110, cfg.lr, cfg) for i in range(111)]
    assert lr[0] == pytest.approx(1e-3) and lr[4] == pytest.approx(5e-3) and lr[9] == pytest.approx(1e-2)
    assert lr[10] == pytest.approx(1e-2)                      # cosine starts at the base rate
    assert lr[60] == pytest.approx((1e-2 + 2e-4) / 2)         # halfway: mean of base and final
    assert lr[35] == pytest.approx(2e-4 + 0.5 * (1e-2 - 2e-4) * (1 + math.cos(math.pi / 4)))
    assert lr[110] == pytest.approx(2e-4)                     # final = base · lr_final_factor
    assert all(a >= b for a, b in zip(lr[10:], lr[11:]))      # monotone decay after warm-up


def test_constant_schedule_and_budget():
    cfg = OptimConfig(lr=1e-4, schedule="constant", iterations=1000, check_every=50,
                      warm_start_fraction=0.35, warm_start_lr_factor=0.3)
    assert {learning_rate_at(i, 1000, cfg.lr, cfg) for i in (0, 500, 999)} == {1e-4}
    assert budget(cfg) == (1000, 1e-4)
    assert budget(cfg, iterations=40) == (40, 1e-4)
    total, lr = budget(cfg, warm_start=True)
    assert total == 350 and lr == pytest.approx(3e-5)
    assert budget(cfg.replace(iterations=100), warm_start=True)[0] == 50  # at least one window
    assert budget(cfg, iterations=40, warm_start=True) == (40, pytest.approx(3e-5))  # explicit count, warm lr
    with pytest.raises(InputError, match="iterations"):
        budget(cfg, iterations=0)


class _Plateau(torch.nn.Module):
    """One parameter; the loss (p − 1)² + floor reaches its floor quickly and stays there."""

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor(0.0))
        self.calls = 0


def _plateau_objective(floor=1.0):
    def objective(net):
        net.calls += 1
        loss = (net.p - 1.0) ** 2 + floor
        return StepLoss(loss, [float(loss.detach())], [0.0])
    return objective


@pytest.mark.parametrize("patience", [1, 2, 5])
def test_loop_stops_exactly_where_the_rule_says(patience):
    cfg = OptimConfig(iterations=400, lr=0.05, schedule="constant", check_every=10, rel_tol=0.01,
                      patience=patience, min_iterations=0)
    events = []
    net = _Plateau()
    run = optimise(net, _plateau_objective(), cfg, total=cfg.iterations, lr=cfg.lr, scale=2.0,
                   progress=ProgressReporter(events.append))
    # Replay the recorded window means through the rule by hand.
    stale, best, expected = 0, math.inf, None
    for w, mean in enumerate(run.history.loss, start=1):
        stale = 0 if mean < best * 0.99 else stale + 1
        best = min(best, mean)
        if stale >= patience:
            expected = w
            break
    assert run.converged and expected is not None and run.iterations == 10 * expected == net.calls
    assert run.history.iterations == [10 * w for w in range(1, expected + 1)]
    assert [e.metrics["iteration"] for e in events] == run.history.iterations
    assert run.history.surface_mm[-1] == [pytest.approx(2.0 * run.history.loss[-1], rel=0.05)]
    assert not net.training


def test_loop_runs_the_whole_budget_when_patience_is_never_reached():
    cfg = OptimConfig(iterations=95, lr=0.5, schedule="constant", check_every=10, rel_tol=0.01,
                      patience=50, min_iterations=0)
    run = optimise(_Plateau(), _plateau_objective(), cfg, total=95, lr=0.5, scale=1.0, progress=ProgressReporter())
    assert not run.converged and run.iterations == 95
    assert run.history.iterations == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]  # last partial window recorded


def test_loop_raises_fit_error_on_divergence_and_cancelled_on_request():
    cfg = OptimConfig(iterations=50, check_every=10, min_iterations=0)
    with pytest.raises(FitError, match="diverged at iteration 0"):
        optimise(_Plateau(), _plateau_objective(float("nan")), cfg, total=50, lr=0.1, scale=1.0,
                 progress=ProgressReporter())
    net, polls = _Plateau(), []

    def should_cancel():
        polls.append(1)
        return len(polls) > 7

    with pytest.raises(Cancelled):
        optimise(net, _plateau_objective(), cfg, total=50, lr=0.1, scale=1.0,
                 progress=ProgressReporter(None, should_cancel))
    assert net.calls == 7  # polled before every iteration, not only at window ends


def test_same_config_field_means_the_same_in_surface_and_nested():
    """Both capability configs carry the engine's dataclasses (one meaning per field)."""
    from AnatomyINRLib.nested.config import NestedFitConfig, nested_preset
    from AnatomyINRLib.surface.config import SurfaceFitConfig, preset_config

    for cls in (SurfaceFitConfig, NestedFitConfig):
        fields = cls.__dataclass_fields__
        assert fields["optim"].type in ("OptimConfig", OptimConfig)
    assert type(nested_preset("fast").optim) is type(preset_config("fast").optim) is OptimConfig
