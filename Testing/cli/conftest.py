"""Fixtures shared by the CLI tests."""

import numpy as np
import pytest

from AnatomyINRLib.phantoms import get_phantom


@pytest.fixture()
def points_csv(tmp_path):
    """120 points on the AAA phantom's surface as a CSV (RAS mm)."""
    pts = get_phantom("aaa").sample_surface(120, seed=0).points
    path = tmp_path / "p.csv"
    np.savetxt(path, pts, delimiter=",")
    return path
