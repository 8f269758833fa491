"""``nested.reconstruct_nested``: iteration budget (None = the preset's, 0 rejected) and cancellation."""

from __future__ import annotations

import time

import pytest

from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.nested import NestedFitConfig, reconstruct_nested
from AnatomyINRLib.nested.config import nested_preset
from AnatomyINRLib.phantoms.nested import NestedAAAPhantom


@pytest.fixture(scope="module")
def points():
    return NestedAAAPhantom().sample_surfaces(120, seed=1)


def _first_fit_event(points, **kwargs):
    """Run until the first "fit" event, cancel there; return that event and the seconds taken."""
    seen = []
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        reconstruct_nested(points, device="cpu", progress=seen.append,
                           should_cancel=lambda: any(e.stage == "fit" for e in seen), **kwargs)
    fit_events = [e for e in seen if e.stage == "fit"]
    return fit_events, time.perf_counter() - start


@pytest.mark.parametrize("iterations", [0, -3, 2.5, True])
def test_iterations_zero_or_not_a_positive_integer_is_rejected(points, iterations):
    with pytest.raises(InputError, match="iterations"):
        reconstruct_nested(points, preset="fast", iterations=iterations, device="cpu")


def test_cancel_stops_at_the_first_fit_event_and_none_means_the_preset_budget(points):
    events, seconds = _first_fit_event(points, preset="fast")
    budget = nested_preset("fast").optim.iterations
    assert len(events) == 1 and events[0].metrics["iteration"] == 50          # check_every of the preset
    assert events[0].message == f"iteration 50/{budget}"                    # None → the preset's budget
    assert seconds < 60


def test_explicit_iterations_and_config_budget(points):
    events, _ = _first_fit_event(points, preset="fast", iterations=70)
    assert events[0].message == "iteration 50/70"
    cfg = nested_preset("fast")
    cfg.optim = cfg.optim.replace(iterations=60, min_iterations=0)
    events, _ = _first_fit_event(points, config=cfg)
    assert events[0].message == "iteration 50/60"


def test_bad_config_and_spacing_are_rejected(points):
    with pytest.raises(InputError, match="config"):
        reconstruct_nested(points, config={"preset": "fast"})
    with pytest.raises(InputError, match="spacing_mm"):
        reconstruct_nested(points, preset="fast", spacing_mm=0.0)
    assert isinstance(nested_preset("fast"), NestedFitConfig)
