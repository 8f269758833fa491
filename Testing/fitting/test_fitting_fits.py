"""Surface and nested fits run the engine's loop: same stopping rule (patience included), same cancellation."""

from __future__ import annotations

import pytest

from AnatomyINRLib.core.errors import Cancelled
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.nested.config import nested_preset
from AnatomyINRLib.nested.fit import fit_nested
from AnatomyINRLib.phantoms.nested import NestedAAAPhantom
from AnatomyINRLib.surface import api
from AnatomyINRLib.surface.config import preset_config


@pytest.fixture(scope="module")
def wall_points():
    return NestedAAAPhantom().sample_surfaces(60, seed=1)


def _small(cfg, patience):
    """Small net, 10-iteration windows, a coarse tolerance: the rule triggers within ~100 iterations."""
    optim = cfg.optim.replace(iterations=600, check_every=10, rel_tol=0.2, patience=patience, min_iterations=0)
    return cfg.replace(network=cfg.network.replace(width=32, depth=3), optim=optim)


def _expected_stop(losses, rel_tol, patience):
    """Window count at which `patience` windows in a row failed to beat the best by rel_tol."""
    stale, best = 0, float("inf")
    for w, mean in enumerate(losses, start=1):
        stale = 0 if mean < best * (1.0 - rel_tol) else stale + 1
        best = min(best, mean)
        if stale >= patience:
            return w
    return None


def _nested(points, patience):
    return fit_nested(points, _small(nested_preset("fast"), patience), seed=0, device="cpu")


def _surface(points, patience):
    fit = api.fit_points(points, config=_small(preset_config("fast"), patience), seed=0, device="cpu")
    return fit.report["iterations"], fit.report["converged"], fit.report["loss_history"]["loss"]


def test_nested_fit_honours_patience(wall_points):
    short, long = _nested(wall_points, 1), _nested(wall_points, 3)
    assert short.converged and long.converged
    assert long.iterations >= short.iterations + 20  # two more stale windows at least
    # Same seed, same trajectory: the longer run extends the shorter one exactly.
    assert long.history.loss[:len(short.history.loss)] == short.history.loss
    assert short.iterations == 10 * _expected_stop(short.history.loss, 0.2, 1)
    assert long.iterations == 10 * _expected_stop(long.history.loss, 0.2, 3)


def test_surface_fit_uses_the_same_rule(wall_points):
    outer = wall_points[2].points
    it1, conv1, loss1 = _surface(outer, 1)
    it3, conv3, loss3 = _surface(outer, 3)
    assert conv1 and conv3 and loss3[:len(loss1)] == loss1
    assert it1 == 10 * _expected_stop(loss1, 0.2, 1)
    assert it3 == 10 * _expected_stop(loss3, 0.2, 3) >= it1 + 20


def _cancel_after(polls: int):
    count = []

    def should_cancel():
        count.append(1)
        return len(count) > polls
    return should_cancel, count


def test_cancel_stops_a_surface_fit_within_an_iteration(wall_points):
    should_cancel, count = _cancel_after(25)
    events = []
    with pytest.raises(Cancelled):
        api.fit_points(wall_points[0].points, preset="fast", device="cpu", progress=events.append,
                       should_cancel=should_cancel)
    fit_events = [e for e in events if e.stage == "fit"]
    assert len(count) == 26 and not fit_events  # cancelled mid first window (check_every = 50)


def test_cancel_stops_a_nested_fit_within_an_iteration(wall_points):
    should_cancel, count = _cancel_after(25)
    with pytest.raises(Cancelled):
        fit_nested(wall_points, nested_preset("fast"), device="cpu",
                   progress=ProgressReporter(None, should_cancel))
    assert len(count) == 26


def test_nested_divergence_is_a_fit_error(wall_points):
    from AnatomyINRLib.core.errors import FitError

    cfg = nested_preset("fast")
    cfg = cfg.replace(optim=cfg.optim.replace(lr=1e12, schedule="constant"))
    with pytest.raises(FitError, match="diverged"):
        fit_nested(wall_points, cfg, device="cpu", iterations=50)
