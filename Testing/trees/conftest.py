"""Fixtures of the tree-synthesis tests."""

import pytest

from AnatomyINRLib.core.progress import ProgressReporter


@pytest.fixture
def quiet():
    """A reporter without callback (training and sampling report nowhere)."""
    return ProgressReporter()
