"""Point mode: the tubes of a lobe, fitted together to the mask around their branching, come back to the
capsules the mask was painted from, so the wall voxels between siblings go to the bronchus they are
deepest in."""

import numpy as np
import pytest

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.phantoms.lung_tree import rasterize_capsules
from AnatomyINRLib.pulmonary._airway_tubes import Tube, tube_depth
from AnatomyINRLib.pulmonary._hub_fit import fit_lobe_tubes

HUB = np.array([0.3, -0.2, 0.4])  # off the voxel centres
SEGMENTAL = ((1, (0.45, 0.12, -1.0), 3.2), (2, (-0.35, 0.25, -1.0), 2.9), (3, (0.05, -0.45, -1.0), 3.5))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _trifurcation(spacing=(1.0, 1.0, 1.0)):
    """A feeding bronchus (r 4.4 mm) ending at HUB, where three segmental bronchi of 22 mm leave.

    Returns the grid (64 mm wide, ``spacing`` mm voxels), the mask (cropped to itself: offset 0), the
    true segmental tubes and the feed's top.
    """
    spacing = np.asarray(spacing, float)
    shape, affine = tuple(np.round(64.0 / spacing).astype(int)), np.diag([*spacing, 1.0])
    affine[:3, 3] = (-32.0, -32.0, -36.0)
    truth = [Tube(lab, HUB.copy(), HUB + 22.0 * _unit(d), r) for lab, d, r in SEGMENTAL]
    top = HUB + np.array([0.0, 0.0, 20.0])
    caps = [(top, HUB, 4.4, 255)] + [(t.start, t.end, t.radius, t.label) for t in truth]
    painted, _ = rasterize_capsules(shape, affine, *(np.array([c[i] for c in caps]) for i in range(4)))
    return ImageGrid(painted, affine), painted > 0, painted, truth, top


def _perturbed(truth, rng):
    """The tubes as the one-by-one fit leaves them: start 0.8 mm off, ends 1 mm off, radii 0.3 mm off."""
    start = HUB + 0.8 * _unit(rng.normal(size=3))
    return [Tube(t.label, start, t.end + _unit(rng.normal(size=3)), t.radius + rng.choice([-0.3, 0.3]))
            for t in truth]


def _axis_offset(fitted: Tube, true: Tube, along_mm: float) -> float:
    """Distance (mm) from the point ``along_mm`` down the true axis to the fitted axis line."""
    p = true.start + along_mm * _unit(true.end - true.start)
    d = _unit(fitted.end - fitted.start)
    return float(np.linalg.norm(np.cross(p - fitted.start, d)))


def _wall_mismatches(grid, painted, tubes) -> int:
    """Segmental voxels within 10 mm of the hub that the tubes give to another segment (deepest-tube rule)."""
    ijk = np.argwhere((painted >= 1) & (painted <= 3))
    world = grid.index_to_world(ijk)
    near = np.linalg.norm(world - HUB, axis=1) <= 10.0
    depth = np.stack([tube_depth(world[near], t) for t in tubes], axis=1)
    labels = np.array([t.label for t in tubes])[np.argmin(depth, axis=1)]
    return int(np.count_nonzero(labels != painted[tuple(ijk[near].T)]))


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_recovers_the_painted_capsules(seed):
    """From tubes 0.8 mm / 1 mm / 0.3 mm off, radii come back within 0.08 mm and axes within 0.25 mm
    (7 mm from the hub, where sibling walls meet), and the wall voxels near the hub go to their own
    bronchus but for at most two (centres within a few hundredths of a mm of two walls)."""
    grid, mask, painted, truth, top = _trifurcation()
    start = _perturbed(truth, np.random.default_rng(seed))
    fitted = fit_lobe_tubes(start, start[0].start, top, 4.0, mask, grid, np.zeros(3, dtype=int))
    assert [t.label for t in fitted] == [1, 2, 3]
    assert all(np.array_equal(f.start, fitted[0].start) for f in fitted)  # one branching point
    for f, t in zip(fitted, truth):
        assert abs(f.radius - t.radius) < 0.08, (f.label, f.radius, t.radius)
        assert _axis_offset(f, t, 7.0) < 0.25, (f.label, _axis_offset(f, t, 7.0))
    before, after = _wall_mismatches(grid, painted, start), _wall_mismatches(grid, painted, fitted)
    assert before >= 10 and after <= 2, (before, after)


def test_the_true_capsules_are_kept_where_they_are():
    """Started from the painted capsules themselves, the fit moves nothing by more than the grid allows."""
    grid, mask, painted, truth, top = _trifurcation()
    fitted = fit_lobe_tubes(truth, HUB, top, 4.4, mask, grid, np.zeros(3, dtype=int)) or truth  # None: kept
    for f, t in zip(fitted, truth):
        assert abs(f.radius - t.radius) < 0.08 and _axis_offset(f, t, 7.0) < 0.25
    assert _wall_mismatches(grid, painted, fitted) <= 2


def test_fine_and_anisotropic_grids_give_the_same_capsules():
    """0.5 mm voxels (a ball of 33k, fitted on an even subsample of 12k) and 0.7 × 0.7 × 1.25 mm CT-like
    voxels recover the capsules as well as the 1 mm grid."""
    rng = np.random.default_rng(0)
    for spacing in ((0.5, 0.5, 0.5), (0.7, 0.7, 1.25)):
        grid, mask, painted, truth, top = _trifurcation(spacing)
        start = _perturbed(truth, rng)
        fitted = fit_lobe_tubes(start, start[0].start, top, 4.0, mask, grid, np.zeros(3, dtype=int))
        for f, t in zip(fitted, truth):
            assert abs(f.radius - t.radius) < 0.08, (spacing, f.label, f.radius, t.radius)
            assert _axis_offset(f, t, 7.0) < 0.25, (spacing, f.label, _axis_offset(f, t, 7.0))


def _two_step(trunk_mm: float):
    """A lower lobe that branches in two steps, as real ones do (the phantom's never do): a lobar bronchus
    (r 4.5 mm) to the hub, where S6 (r 3.0) leaves backwards and a basal trunk (r 4.2) runs ``trunk_mm``
    down to the basal branching, where S7-S10 (r 2.7-3.0) spread; each segmental bronchus splits 22 mm on.

    Returns the 1 mm grid, the mask, the reference labels (deepest capsule; the trunks 0) and one point
    halfway along each segmental bronchus."""
    shape, affine = (80, 80, 96), np.eye(4)
    affine[:3, 3] = (-40.0, -40.0, -80.0)
    basal = HUB + trunk_mm * _unit([0.1, 0.05, -1.0])
    caps, points = [(HUB + [0.0, 0.0, 14.0], HUB, 4.5, 255), (HUB, basal, 4.2, 255)], {}
    for lab, start, d, r in ((6, HUB, [0.0, -1.0, -0.3], 3.0), (7, basal, [0.8, 0.3, -1.0], 2.8),
                             (8, basal, [0.2, -0.9, -1.0], 2.7), (9, basal, [-0.5, 0.6, -1.0], 2.9),
                             (10, basal, [-0.7, -0.4, -1.0], 3.0)):
        end = start + 22.0 * _unit(d)
        caps.append((start, end, r, lab))
        points[lab] = start + 11.0 * _unit(d)
        side = _unit(np.cross(d, [0.3, 1.0, 0.0]))
        for s in (-1.0, 1.0):
            caps.append((end, end + 10.0 * _unit(_unit(d) + 0.6 * s * side), 0.75 * r, lab))
    painted, _ = rasterize_capsules(shape, affine, *(np.array([c[i] for c in caps]) for i in range(4)))
    return ImageGrid(painted, affine), painted > 0, np.where(painted <= 18, painted, 0), points


@pytest.mark.parametrize("trunk_mm", [6.0, 10.0, 15.0])
def test_a_lobe_branching_in_two_steps_is_fitted_branching_by_branching(trunk_mm, monkeypatch):
    """S6 leaves the hub alone (no joint fit); S7-S10 are fitted together around the basal branching,
    not forced to start at the hub. Measured: 0, 7 and 3 wrong segmental voxels (of about 4000); with
    every joint fit refused 20, 28 and 32 (and 28, 47, 64 before this fit and the basal branching's
    skeleton being left to the tubes)."""
    import AnatomyINRLib.pulmonary._skeleton as skeleton

    grid, mask, ref, points = _two_step(trunk_mm)
    lobes = np.full(mask.shape, 3, dtype=np.uint8)  # RLL
    joint, _ = skeleton.label_airways(mask, grid, lobes, points, max_distance_mm=6.0)
    monkeypatch.setattr(skeleton, "fit_lobe_tubes", lambda *args, **kwargs: None)  # every joint fit refused
    alone, _ = skeleton.label_airways(mask, grid, lobes, points, max_distance_mm=6.0)
    m = ref > 0
    wrong_joint, wrong_alone = (int(np.count_nonzero(a[m] != ref[m])) for a in (joint, alone))
    assert np.count_nonzero(m) > 3000
    assert wrong_joint <= 8 and wrong_alone > 2 * wrong_joint, (wrong_joint, wrong_alone)
