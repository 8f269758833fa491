"""Shared small lung phantoms (built once per test session; ~5 s each)."""

import pytest

from AnatomyINRLib.phantoms.lung import make_lung_phantom


@pytest.fixture(scope="session")
def phantom():
    """Seed 0, small (2 mm)."""
    return make_lung_phantom(0, "small")


@pytest.fixture(scope="session")
def unseen_phantom():
    """A seed no parameter of Method A was chosen on (tuning looked at seeds 0, 1, 3 and 21)."""
    return make_lung_phantom(7, "small")
