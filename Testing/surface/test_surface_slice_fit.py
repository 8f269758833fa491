"""Slice clicks on the real vmtk aorta (vendored): the slice-aware fit beats the plain fit.

Points on parallel slices every 5 mm, ~12 per slice, 0.3 mm in-plane noise
(what a user clicks). The plain IGR fit closes the vessel ends with round caps
far past the last clicked slice and cannot reach the thresholds below
(benchmarks/results/points_to_surface_slices.md); the slice-aware fit can.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from AnatomyINRLib.io import read_mesh
from AnatomyINRLib.metrics.evaluate import score_surface
from AnatomyINRLib.phantoms.slice_clicks import slice_click_points
from AnatomyINRLib.surface import api

AORTA = Path(__file__).resolve().parents[1] / "Data" / "vmtk" / "aorta-surface.stl"
# Measured (seed 0, fast preset): slice-aware Dice 0.950, HD95 0.90 mm; the plain fit (slice
# support off) 0.899 / 4.5 mm, and with the default preset over 5 seeds 0.848-0.921 / 2.8-9.3 mm.
DICE_MIN = 0.935
HD95_MAX = 2.0


@pytest.fixture(scope="module")
def aorta():
    return read_mesh(AORTA, coordinate_system="RAS")


def test_slice_clicks_on_the_aorta_are_detected_and_fit_well(aorta):
    torch.set_num_threads(1)
    points = slice_click_points(aorta, spacing_mm=5.0, per_slice=12, noise_mm=0.3, seed=0)
    fit = api.fit_points(points, preset="fast", seed=0, device="cpu")
    report = fit.report["slices"]
    assert report["detected"] and report["n_slices"] == 17
    assert abs(report["median_spacing_mm"] - 5.0) < 0.05
    # Slice gaps would leak a flood fill into the vessel: no outside certification on slices.
    assert fit.report["outside"] == {"enabled": False, "reason": "slice clicks are supervised by their slices"}
    mesh = api.extract_mesh(fit.field, 0.5, points=points)
    scores = score_surface(mesh, aorta, spacing_mm=0.5, n_samples=10000)
    assert scores["dice"] >= DICE_MIN
    assert scores["hd95"] <= HD95_MAX
