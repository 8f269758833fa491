"""Refusing work that cannot fit in memory, before allocating."""

from __future__ import annotations

import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.resources import available_memory_mb, check_fits_in_memory


def test_available_memory_is_a_plausible_number():
    mb = available_memory_mb()
    assert mb is not None and 64 < mb < 2**24


def test_check_fits_in_memory_gives_the_estimate_and_the_limit():
    check_fits_in_memory("--points", 999.0, "sampling", available_mb=1000.0)
    with pytest.raises(InputError, match=r"^--points: sampling needs about 1,001 MB but this machine has 1,000 MB"):
        check_fits_in_memory("--points", 1001.0, "sampling", available_mb=1000.0)
