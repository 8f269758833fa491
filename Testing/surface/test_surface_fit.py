"""The IGR fit on shapes with known answers: accuracy, frame, seeding, warm start, outliers."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.core.progress import Progress
from AnatomyINRLib.surface import api
from AnatomyINRLib.surface.config import SurfaceFitConfig, preset_config

CENTER = np.array([112.0, -47.0, 305.0])  # far from the origin: frame bugs show up
RADIUS = 18.0


def _sphere_points(n, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    return CENTER + RADIUS * v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sphere_fit():
    return api.fit_points(_sphere_points(150), preset="fast", seed=0, device="cpu", iterations=250)


def test_fit_recovers_the_sphere_in_world_mm(sphere_fit):
    f = sphere_fit.field
    # The eikonal term is a soft constraint: distances are approximate far from
    # the points (|grad f| ~ 0.85-1 after a short fit), signs and the zero set are not.
    assert f(CENTER[None])[0] < -0.5 * RADIUS
    probe = CENTER + np.array([[RADIUS, 0, 0], [0, -RADIUS, 0], [0, 0, RADIUS + 2.0], [0, 0, RADIUS - 2.0]])
    values = f(probe)
    np.testing.assert_allclose(values[:2], 0.0, atol=0.6)
    assert 0.8 < values[2] < 2.6 and -2.6 < values[3] < -0.8
    assert sphere_fit.residuals_mm.max() < 0.6


def test_mesh_is_closed_and_has_the_sphere_volume(sphere_fit):
    from AnatomyINRLib.meshing import mesh_quality

    mesh = api.extract_mesh(sphere_fit.field, 1.0, points=sphere_fit.points.points)
    quality = mesh_quality(mesh)
    assert quality["watertight"] and quality["manifold"] and quality["n_components"] == 1
    exact = 4.0 / 3.0 * np.pi * RADIUS**3
    assert mesh.signed_volume() == pytest.approx(exact, rel=0.05)
    assert np.linalg.norm(mesh.vertices.mean(axis=0) - CENTER) < 1.0


def test_report_holds_what_the_cli_promises(sphere_fit):
    r = sphere_fit.report
    for key in ("iterations", "fit_seconds", "device", "final_loss", "n_points_used", "config", "residual_mm"):
        assert key in r
    assert r["iterations"] == 250
    assert r["device"] == "cpu"
    assert SurfaceFitConfig.from_dict(r["config"]).to_dict() == r["config"]


def test_same_seed_same_field_different_seed_different_field():
    pts = _sphere_points(60, seed=4)
    a = api.fit_points(pts, preset="fast", seed=7, device="cpu", iterations=40)
    b = api.fit_points(pts, preset="fast", seed=7, device="cpu", iterations=40)
    c = api.fit_points(pts, preset="fast", seed=8, device="cpu", iterations=40)
    probe = _sphere_points(30, seed=9) * 1.1 - CENTER * 0.1
    np.testing.assert_array_equal(a.field(probe), b.field(probe))
    assert np.abs(a.field(probe) - c.field(probe)).max() > 1e-6


def test_outlier_point_is_flagged():
    pts = np.vstack([_sphere_points(150, seed=1), CENTER + [0, 0, RADIUS + 9.0]])
    fit = api.fit_points(pts, preset="fast", seed=0, device="cpu", iterations=250)
    assert fit.outliers[-1]
    assert fit.residuals_mm[-1] > 3.0
    assert fit.outliers[:-1].mean() < 0.05


def test_warm_start_after_moving_points_is_shorter_and_accurate(sphere_fit):
    moved = _sphere_points(150) + [1.0, 0.0, 0.0]
    fit = api.fit_points(moved, preset="fast", init_field=sphere_fit.field, seed=0, device="cpu")
    assert fit.report["warm_started"]
    # warm_start_fraction of the budget, and no early stop (min_iterations exceeds it): 0.35 · 400.
    opt = preset_config("fast").optim
    assert fit.report["iterations"] == round(opt.iterations * opt.warm_start_fraction) == 140
    probe = CENTER + [1.0, 0, 0] + np.array([[RADIUS, 0, 0], [-RADIUS, 0, 0], [0, RADIUS, 0]])
    np.testing.assert_allclose(fit.field(probe), 0.0, atol=0.6)
    assert np.median(fit.residuals_mm) < 0.3


def test_progress_events_and_cancellation():
    events = []
    api.fit_points(_sphere_points(40), preset="fast", device="cpu", iterations=100, progress=events.append)
    fit_events = [e for e in events if e.stage == "fit"]
    assert fit_events and isinstance(fit_events[0], Progress)
    assert fit_events[-1].fraction == 1.0
    assert all(0.0 <= e.fraction <= 1.0 for e in events)
    with pytest.raises(Cancelled):
        api.fit_points(_sphere_points(40), preset="fast", device="cpu", iterations=100, should_cancel=lambda: True)


def test_bad_arguments_are_named():
    pts = _sphere_points(40)
    with pytest.raises(InputError, match="preset"):
        api.fit_points(pts, preset="turbo")
    with pytest.raises(InputError, match="iterations"):
        api.fit_points(pts, preset="fast", iterations=0)
    with pytest.raises(InputError, match="device"):
        api.fit_points(pts, preset="fast", device="tpu")
    with pytest.raises(InputError, match="init_field"):
        api.fit_points(pts, preset="fast", init_field="previous.pt")


def test_paper_preset_is_the_papers_setup():
    cfg = preset_config("paper")
    assert (cfg.network.width, cfg.network.depth, cfg.network.activation) == (256, 6, "relu")
    assert cfg.network.skip_layers == (2,)  # input re-enters the 3rd hidden layer
    assert cfg.optim.lr == 1e-4 and cfg.optim.iterations == 25_000 and cfg.optim.schedule == "constant"
    assert cfg.loss.eikonal_weight == 0.1


@pytest.mark.parametrize("name", ["fast", "default", "accurate", "paper"])
def test_presets_round_trip_through_json(name):
    cfg = preset_config(name)
    assert SurfaceFitConfig.from_json(cfg.to_json()) == cfg


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(InputError, match="unknown key"):
        SurfaceFitConfig.from_dict({"network": {"widht": 64}})
    with pytest.raises(InputError, match="optim.lr"):
        SurfaceFitConfig.from_dict({"optim": {"lr": -1.0}})


def test_convergence_test_stops_early_and_is_reported():
    cfg = preset_config("fast")
    cfg.optim = cfg.optim.replace(iterations=2000, min_iterations=100, rel_tol=0.5, patience=2, check_every=25)
    fit = api.fit_points(_sphere_points(60), config=cfg, device="cpu")
    assert fit.report["converged"]
    assert 100 <= fit.report["iterations"] < 2000 and fit.report["iterations"] % 25 == 0  # stops at a check
    cfg.optim = cfg.optim.replace(iterations=120, rel_tol=0.0)
    fit = api.fit_points(_sphere_points(60), config=cfg, device="cpu")
    assert not fit.report["converged"] and fit.report["iterations"] == 120


def test_paper_preset_runs():
    fit = api.fit_points(_sphere_points(40), preset="paper", device="cpu", iterations=3)
    assert fit.report["iterations"] == 3 and fit.report["preset"] == "paper"
    assert np.all(np.isfinite(fit.residuals_mm))


def test_surface_leaving_the_box_is_capped_so_the_mesh_is_closed():
    from AnatomyINRLib.meshing import mesh_quality

    def half_space(x):  # a "ghost sheet": the plane z = 5 extends forever
        return x[:, 2] - 5.0

    bounds = np.array([[0.0, 0.0, 0.0], [10.0, 8.0, 12.0]])
    mesh = api.extract_mesh(half_space, 0.5, bounds)
    q = mesh_quality(mesh)
    assert q["watertight"] and q["manifold"]
    assert mesh.signed_volume() == pytest.approx(10 * 8 * 5, rel=0.05)  # marching cubes bevels box edges


def test_labelmap_keeps_the_largest_region_like_the_mesh():
    from AnatomyINRLib.core.types import ImageGrid

    def two_balls(x):
        a = np.linalg.norm(x - [10.0, 10, 10], axis=1) - 6.0
        b = np.linalg.norm(x - [30.0, 10, 10], axis=1) - 2.0
        return np.minimum(a, b)

    ref = ImageGrid(np.zeros((40, 20, 20)), ImageGrid.make_affine([0, 0, 0], [1.0, 1.0, 1.0]))
    both = api.labelmap(two_balls, ref, largest_component=False).array > 0
    big = api.labelmap(two_balls, ref).array > 0
    assert both[30, 10, 10] and not big[30, 10, 10] and big[10, 10, 10]
    assert big.sum() == pytest.approx(4 / 3 * np.pi * 6.0**3, rel=0.1)


def test_extract_mesh_counts_every_piece_before_keeping_the_largest():
    centres = np.array([[0.0, 0.0, 0.0], [-12.0, 0.0, 0.0]])  # the small ball first along x

    def two_balls(x):  # radii 4 and 2 mm: surface areas 4:1
        d = np.linalg.norm(np.asarray(x)[:, None, :] - centres[None], axis=2)
        return np.minimum(d[:, 0] - 4.0, d[:, 1] - 2.0)

    bounds = np.array([[-16.0, -6.0, -6.0], [6.0, 6.0, 6.0]])
    from AnatomyINRLib.meshing.postprocess import component_areas

    areas: list = []
    kept = api.extract_mesh(two_balls, 0.5, bounds, pieces=areas)
    assert len(areas) == 2 and areas[0] / areas[1] == pytest.approx(4.0, rel=0.02)
    assert areas[0] == pytest.approx(4 * np.pi * 16, rel=0.02)
    assert component_areas(kept)[1] == pytest.approx([areas[0]])  # the big ball only
    assert np.linalg.norm(kept.vertices, axis=1) == pytest.approx(4.0, abs=0.1)
    plain = api.extract_mesh(two_balls, 0.5, bounds)  # the same mesh as without counting
    assert np.array_equal(plain.vertices, kept.vertices) and np.array_equal(plain.faces, kept.faces)
    both: list = []
    whole = api.extract_mesh(two_balls, 0.5, bounds, largest_component=False, pieces=both)
    assert both == areas and component_areas(whole)[1].size == 2
