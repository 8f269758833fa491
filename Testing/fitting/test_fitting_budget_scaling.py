"""The iteration budget that grows with the number of points (``OptimConfig.iterations_per_point``)."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.fitting import OptimConfig, scaled_for_points
from AnatomyINRLib.surface.config import preset_config


def test_fixed_budget_when_not_asked():
    cfg = OptimConfig(iterations=800, min_iterations=600)
    assert scaled_for_points(cfg, 5000) is cfg


# 4 iterations per point beyond the first 200: 800 up to 400 points, then growing, capped at 4×;
# below 100 points N/100 of that, at least half.
@pytest.mark.parametrize("n, iterations, minimum", [(10, 400, 300), (50, 400, 300), (75, 600, 450), (99, 792, 594),
                                                     (100, 800, 600), (400, 800, 600), (401, 804, 603),
                                                     (500, 1200, 900), (800, 2400, 1800), (1000, 3200, 2400),
                                                     (4000, 3200, 2400)])
def test_default_preset_grows_with_points_and_is_capped(n, iterations, minimum):
    optim = preset_config("default").optim
    scaled = scaled_for_points(optim, n)
    assert (scaled.iterations, scaled.min_iterations) == (iterations, minimum)
    assert scaled.lr == optim.lr and scaled.check_every == optim.check_every


def test_other_presets_keep_a_fixed_budget():
    for name in ("fast", "accurate", "paper"):
        optim = preset_config(name).optim
        assert scaled_for_points(optim, 2000) is optim


def test_bad_scale_is_refused():
    with pytest.raises(InputError, match="max_budget_scale"):
        OptimConfig(max_budget_scale=0.5).validate()
    with pytest.raises(InputError, match="iterations_per_point"):
        OptimConfig(iterations_per_point=-1.0).validate()
    with pytest.raises(InputError, match="base_points"):
        OptimConfig(base_points=-5).validate()
    with pytest.raises(InputError, match="sparse_points"):
        OptimConfig(sparse_points=-1).validate()
    for bad in (0.0, 1.5):
        with pytest.raises(InputError, match="min_budget_scale"):
            OptimConfig(min_budget_scale=bad).validate()


def test_sparse_shrink_is_off_by_default_and_ignores_the_growth_rule():
    assert scaled_for_points(OptimConfig(iterations=800, min_iterations=600), 10).iterations == 800
    cfg = OptimConfig(iterations=100, min_iterations=50, iterations_per_point=10.0, sparse_points=40,
                      min_budget_scale=0.25)
    assert (scaled_for_points(cfg, 5).iterations, scaled_for_points(cfg, 5).min_iterations) == (25, 12)
    assert scaled_for_points(cfg, 20).iterations == 50
    assert scaled_for_points(cfg, 40).iterations == 400  # from 40 points on, 10 per point


def test_base_points_are_not_counted():
    cfg = OptimConfig(iterations=100, min_iterations=50, iterations_per_point=1.0, base_points=300)
    assert scaled_for_points(cfg, 350) is cfg  # 50 counted points: 50 < 100
    scaled = scaled_for_points(cfg, 500)  # 200 counted points: twice the budget
    assert (scaled.iterations, scaled.min_iterations) == (200, 100)


def test_fit_runs_the_scaled_budget_and_an_explicit_count_wins():
    from AnatomyINRLib.surface import fit_points
    from AnatomyINRLib.surface.config import SurfaceFitConfig

    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 3))
    points = 10.0 * points / np.linalg.norm(points, axis=1, keepdims=True)
    base = preset_config("default")
    # a tiny budget so the test is quick: 20 iterations per 100 points, windows of 10, no early stop
    optim = base.optim.replace(iterations=20, min_iterations=20, check_every=10, iterations_per_point=0.2, base_points=0,
                               warmup=0)
    cfg = SurfaceFitConfig.from_dict({**base.to_dict(), "optim": optim.to_dict()})
    assert fit_points(points, config=cfg, seed=0).report["iterations"] == 60
    assert fit_points(points, config=cfg, seed=0, iterations=30).report["iterations"] == 30
