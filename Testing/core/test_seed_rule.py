"""One seed rule for every entry function: an integer in [0, 2**63 - 1], else InputError naming it."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.config import SEED_MAX, check_seed
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms import get_phantom


@pytest.mark.parametrize("bad", [-1, 2**63, 10**20, 1.0, "3", None, True])
def test_check_seed_refuses_what_numpy_or_torch_cannot_take(bad):
    with pytest.raises(InputError, match=r"seed: expected an integer in \[0, 9223372036854775807\]"):
        check_seed(bad)


def test_check_seed_accepts_the_whole_range_and_numpy_integers():
    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX
    assert check_seed(np.int64(7)) == 7 and type(check_seed(np.int64(7))) is int


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_every_entry_function_checks_the_seed_first(bad):
    from AnatomyINRLib.blend import blend_surfaces
    from AnatomyINRLib.nested import reconstruct_nested
    from AnatomyINRLib.surface import fit_points

    pts = get_phantom("aaa").sample_surface(50, seed=0).points
    with pytest.raises(InputError, match="^seed: "):
        fit_points(pts, seed=bad, iterations=1)
    with pytest.raises(InputError, match="^seed: "):
        reconstruct_nested([pts * 0.5, pts], seed=bad, iterations=1)
    with pytest.raises(InputError, match="^seed: "):
        blend_surfaces([pts], seed=bad)
