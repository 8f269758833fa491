"""``blend`` entry functions: a chosen fit preset means what it says, and cancellation works."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from AnatomyINRLib.blend import BlendConfig, BlendInput, blend_prepared, blend_surfaces, prepare_inputs
from AnatomyINRLib.blend.config import BLEND_FIT_DEFAULTS
from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.core.types import PointSet, TriangleMesh
from AnatomyINRLib.fitting import scaled_for_points
from AnatomyINRLib.surface.config import PRESETS, preset_config


def _sphere_mesh(center, radius=5.0):
    ico = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return TriangleMesh(ico.vertices + center, ico.faces)


def _ball_points(center, radius=5.0, n=150):
    v = np.random.default_rng(0).normal(size=(n, 3))
    return PointSet(np.asarray(center) + radius * v / np.linalg.norm(v, axis=1, keepdims=True))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_chosen_preset_is_used_exactly_but_without_outside_certification(name):
    expected = preset_config(name)
    expected.outside.enabled = False  # open-mesh sources would leak the flood fill into the lumen
    assert BlendConfig(fit_preset=name).fit_config() == expected


def test_without_a_preset_blend_uses_its_own_fit_settings():
    cfg = BlendConfig().fit_config()
    assert cfg.preset == BLEND_FIT_DEFAULTS["preset"]
    assert cfg.optim.iterations == BLEND_FIT_DEFAULTS["iterations"] == 400
    assert cfg.optim.min_iterations <= cfg.optim.iterations
    assert (cfg.sampling.max_surface_batch, cfg.sampling.local_per_point) == (512, 4)
    assert cfg.outside.enabled is False
    base = preset_config(BLEND_FIT_DEFAULTS["preset"])
    assert cfg.network == base.network and cfg.loss == base.loss
    # blend's 400 stays 400 on a source mesh of thousands of vertices (the default preset's own
    # budget grows with the points: 4x at 1000 points)
    assert base.optim.iterations_per_point > 0
    assert scaled_for_points(cfg.optim, 5000).iterations == 400
    assert scaled_for_points(BlendConfig(fit_preset="default", fit_iterations=300).fit_config().optim,
                             5000).iterations == 300


def test_explicit_fit_fields_override_the_preset_and_are_validated():
    cfg = BlendConfig(fit_preset="paper", fit_iterations=30, fit_local_per_point=2).fit_config()
    paper = preset_config("paper")
    assert (cfg.optim.iterations, cfg.optim.min_iterations, cfg.sampling.local_per_point) == (30, 30, 2)
    assert cfg.sampling.max_surface_batch == paper.sampling.max_surface_batch and cfg.network == paper.network
    for bad in ({"fit_iterations": 0}, {"fit_surface_batch": 8}, {"fit_preset": "turbo"}):
        with pytest.raises(InputError, match=next(iter(bad))):
            BlendConfig(**bad).validate()


def test_paper_preset_runs_the_paper_budget_on_a_point_set():
    """The fit of a point-set input reports its budget: the paper's 25k, not blend's 400."""
    seen = []
    inputs = [_sphere_mesh([0.0, 0.0, 0.0]), BlendInput(_ball_points([6.0, 0.0, 0.0]), name="ball")]
    with pytest.raises(Cancelled):
        blend_surfaces(inputs, config=BlendConfig(fit_preset="paper", spacing_mm=1.0), device="cpu",
                       progress=seen.append, should_cancel=lambda: any(e.stage == "fit" for e in seen))
    fit = [e for e in seen if e.stage == "fit"]
    assert len(fit) == 1 and fit[0].message == "ball: iteration 50/25000"


def test_cancel_during_extraction_of_closed_meshes():
    seen = []
    inputs = [_sphere_mesh([0.0, 0.0, 0.0]), _sphere_mesh([7.0, 0.0, 0.0])]
    prepared = prepare_inputs(inputs, config=BlendConfig(spacing_mm=0.5))
    assert [s.method for s in prepared.sources] == ["exact_mesh_sdf"] * 2
    with pytest.raises(Cancelled):
        blend_prepared(prepared, config=BlendConfig(spacing_mm=0.5), progress=seen.append,
                       should_cancel=lambda: any(e.stage == "extract" for e in seen))
    assert [e.stage for e in seen].count("extract") == 1 and "check" not in {e.stage for e in seen}
    with pytest.raises(Cancelled):
        prepare_inputs(inputs, should_cancel=lambda: True)


def test_result_is_typed_and_holds_the_config():
    inputs = [_sphere_mesh([0.0, 0.0, 0.0]), _sphere_mesh([7.0, 0.0, 0.0])]
    config = BlendConfig(radius_mm=1.0, spacing_mm=0.75)
    result = blend_surfaces(inputs, config=config)
    assert isinstance(result.mesh, TriangleMesh) and result.config is config
    assert result.report["config"] == config.to_dict() and result.report["surface"]["ok"]
    with pytest.raises(InputError, match="config"):
        blend_surfaces(inputs, config={"radius_mm": 1.0})
