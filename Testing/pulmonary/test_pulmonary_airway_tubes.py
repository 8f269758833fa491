"""Point mode: airway voxels near a branching go to the bronchus they are deepest in."""

import numpy as np

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.phantoms.lung_tree import rasterize_capsules
from AnatomyINRLib.pulmonary._airway_tubes import Tube, tube_depth
from AnatomyINRLib.pulmonary._skeleton import label_airways


def _unit(deg_x: float, deg_y: float = 0.0) -> np.ndarray:
    v = np.array([np.sin(np.radians(deg_x)), np.sin(np.radians(deg_y)), -1.0])
    return v / np.linalg.norm(v)


def _airway_y():
    """A lobar bronchus (r 4.5 mm) ending at a hub where two segmental bronchi (RML S4 r 3.2, S5 r 2.9)
    leave 32° apart (so they overlap for their first millimetres), each splitting 24 mm on.

    Returns the 1 mm grid, the airway mask, the reference labels (the tube each voxel is deepest in,
    0 for the lobar bronchus and within 6 mm of the hub, as the lung phantom labels its bronchi) and
    the points (halfway along each segmental bronchus)."""
    shape, hub = (64, 56, 80), np.array([0.0, 0.0, 0.0])
    affine = np.eye(4)
    affine[:3, 3] = (-32.0, -28.0, -60.0)
    caps = [(np.array([0.0, 0.0, 20.0]), hub, 4.5, 255)]
    points = {}
    for lab, deg, r in ((4, 14.0, 3.2), (5, -18.0, 2.9)):
        end = hub + 24.0 * _unit(deg)
        caps.append((hub, end, r, lab))
        points[lab] = hub + 12.0 * _unit(deg)
        for side in (-30.0, 30.0):
            caps.append((end, end + 14.0 * _unit(deg + side * 0.3, side), 0.8 * r, lab))
    painted, _ = rasterize_capsules(shape, affine, *(np.array([c[i] for c in caps]) for i in range(4)))
    grid = ImageGrid(painted, affine)
    ref = np.where(painted <= 18, painted, 0)
    world = grid.index_to_world(np.argwhere(painted > 0))
    near_hub = np.argwhere(painted > 0)[np.linalg.norm(world - hub, axis=1) < 6.0]
    ref[tuple(near_hub.T)] = 0
    return grid, painted > 0, ref, points


def _check_against_reference(labelled, ref):
    """Every labelled reference voxel keeps its label; no airway voxel takes a label the reference lacks."""
    m = ref > 0
    assert np.array_equal(labelled[m], ref[m]), f"{int(np.count_nonzero(labelled[m] != ref[m]))} voxels differ"
    assert set(np.unique(labelled).tolist()) == {0, 4, 5}


def test_tube_depth():
    tube = Tube(1, np.array([0.0, 0.0, 0.0]), np.array([10.0, 0.0, 0.0]), 2.0)
    pts = np.array([[5.0, 0.0, 0.0], [5.0, 3.0, 0.0], [-1.0, 0.0, 0.0], [13.0, 4.0, 0.0]])
    assert np.allclose(tube_depth(pts, tube), [-2.0, 1.0, -1.0, 3.0])


def test_branching_voxels_take_the_bronchus_they_are_deepest_in():
    """Near the hub the two segmental bronchi overlap and their skeletons merge; the old nearest-skeleton
    labelling (plus a 4 mm fill) gave the first millimetres of S4 to S5 (15 voxels)."""
    grid, mask, ref, points = _airway_y()
    lobes = np.full(mask.shape, 2, dtype=np.uint8)
    labelled, _ = label_airways(mask, grid, lobes, points, max_distance_mm=6.0)
    assert np.count_nonzero(ref) > 1500
    _check_against_reference(labelled, ref)  # the old labelling gave 15 voxels of S4 to S5
    # the lobar bronchus above the hub stays unlabelled
    trunk = mask & (grid.index_to_world(np.indices(mask.shape).reshape(3, -1).T)[:, 2] > 8.0).reshape(mask.shape)
    assert not labelled[trunk].any()


def test_a_point_anywhere_along_the_bronchus_and_off_its_centre():
    """The point names the bronchus, not a place on it: near its origin, near its first branching, or
    1 mm off the axis, the labels are the same."""
    grid, mask, ref, points = _airway_y()
    lobes = np.full(mask.shape, 2, dtype=np.uint8)
    base, _ = label_airways(mask, grid, lobes, points, max_distance_mm=6.0)
    for frac, off in ((0.4, 0.0), (0.8, 0.0), (0.6, 1.0)):
        moved = {lab: frac / 0.5 * p + np.array([0.0, off, 0.0]) for lab, p in points.items()}
        labelled, _ = label_airways(mask, grid, lobes, moved, max_distance_mm=6.0)
        _check_against_reference(labelled, ref)
        assert np.count_nonzero(labelled != base) <= 20, (frac, off)


def test_a_thin_tip_takes_its_own_bronchus_not_the_neighbour_across_the_gap():
    """Thin bronchus (label 1, r 1 mm) along x ending at x = 0, its skeleton stopping 4 mm short of the
    tip; a thicker bronchus (label 2, r 2 mm) runs beside it 4.5 mm away (1.5 mm of lung between)."""
    from AnatomyINRLib.pulmonary._airway_tubes import deepest_labels

    thin = Tube(1, np.array([-20.0, 0, 0]), np.array([0.0, 0, 0]), 1.0)
    thick = Tube(2, np.array([-20.0, 4.5, 0]), np.array([20.0, 4.5, 0]), 2.0)
    xs = np.arange(-20.0, -3.5)
    nodes = np.vstack([np.c_[xs, 0 * xs, 0 * xs], np.c_[np.arange(-20.0, 21.0), np.full(41, 4.5), np.zeros(41)]])
    radius = np.r_[np.full(len(xs), 1.0), np.full(41, 2.0)]
    label = np.r_[np.ones(len(xs)), np.full(41, 2)].astype(np.uint8)
    tip = np.array([[0.0, 0.0, 0.0], [0.5, 0.3, 0.0]])

    def inside(p):
        return (tube_depth(p, thin) < 0) | (tube_depth(p, thick) < 0)

    wall = np.array([[0.0, 2.6, 0.0]])  # inside the thick bronchus' ball
    both = np.vstack([tip, wall])
    assert deepest_labels(both, nodes, radius, label, []).tolist() == [2, 2, 2]  # nearer in distance − radius
    assert deepest_labels(both, nodes, radius, label, [], inside=inside).tolist() == [1, 1, 2]
    # Skeleton voxels left out (skip) are never taken, even the only ones in sight.
    skip = label == 1
    assert deepest_labels(tip, nodes, radius, label, [], skip=skip, inside=inside).tolist() == [2, 2]
    # The thick bronchus as a fitted tube instead of skeleton balls: outside it, it must be seen too.
    n_thin = len(xs)
    args = (nodes[:n_thin], radius[:n_thin], label[:n_thin], [thick])
    assert deepest_labels(tip, *args).tolist() == [2, 2]
    assert deepest_labels(tip, *args, inside=inside).tolist() == [1, 1]
    assert deepest_labels(wall, *args, inside=inside).tolist() == [2]


def test_segment_balls_stay_in_their_bronchus_and_other_voxels_inside_it_yield_to_the_tube():
    from AnatomyINRLib.pulmonary._skeleton import _ball_radius, _foreign_in_tubes

    tube = Tube(4, np.array([0.0, 0, 0]), np.array([0.0, 0, -20]), 2.0)
    world = np.array([[0.0, 0, -1], [0.0, 0, -8], [0.3, 0, -8], [5.0, 0, -8], [0.0, 0, 5]])
    label = np.array([0, 4, 0, 0, 0], dtype=np.uint8)
    radius = np.array([4.0, 3.1, 2.5, 1.0, 4.5])
    # Label 4's voxel on the axis keeps a ball inside the tube (2 mm); one beyond the tube at most 2 mm.
    assert np.allclose(_ball_radius(radius, world, label, [tube]), [4.0, 2.0, 2.5, 1.0, 4.5])
    off_axis = np.array([[1.5, 0, -8], [0, 0, -30]])
    assert np.allclose(_ball_radius(np.array([3.0, 3.0]), off_axis, np.array([4, 4], np.uint8), [tube]), [0.5, 2.0])
    # Not labelled 4 and inside the tube past its first radius: only the third; the first is at the
    # branching (1 mm along), the second is the tube's own, the fourth outside it, the fifth behind its start.
    assert _foreign_in_tubes(world, label, [tube]).tolist() == [False, False, True, False, False]
    label[2] = 5  # another segment's skeleton voxel inside the tube gives way too
    assert _foreign_in_tubes(world, label, [tube]).tolist() == [False, False, True, False, False]


def test_a_narrow_gap_far_along_the_sight_line_is_not_stepped_over():
    """A wide ball (label 2, r 8.5 mm, centre 10 mm off) is nearer in distance − radius than the thin
    bronchus the point lies in, but 0.5 mm of lung lies between them, 1-1.5 mm along a 10 mm line."""
    from AnatomyINRLib.pulmonary._airway_tubes import deepest_labels

    thin = Tube(1, np.array([-20.0, 0, 0]), np.array([0.0, 0, 0]), 1.0)
    centre = np.array([0.0, 10.0, 0.0])
    xs = np.arange(-20.0, -3.5)
    nodes = np.vstack([np.c_[xs, 0 * xs, 0 * xs], centre])
    radius = np.r_[np.full(len(xs), 1.0), 8.5]
    label = np.r_[np.ones(len(xs)), 2].astype(np.uint8)

    def inside(p):
        return (tube_depth(p, thin) < 0) | (np.linalg.norm(p - centre, axis=1) < 8.5)

    point = np.zeros((1, 3))
    assert deepest_labels(point, nodes, radius, label, []).tolist() == [2]
    assert deepest_labels(point, nodes, radius, label, [], inside=inside).tolist() == [1]
    # Sight lines tested at only 12 points (every 0.77 mm over 10 mm) would see through the gap.
    assert deepest_labels(point, nodes, radius, label, [], inside=inside, step_mm=0.84).tolist() == [2]


def test_a_tip_that_sees_no_ball_takes_the_label_of_the_voxels_it_touches():
    """Thin bronchus (label 1, r 1 mm) along x to the origin, then hooking 3 mm along +y; its skeleton
    stops at x = -4. A thicker bronchus (label 2, r 2 mm) runs along x at y = 6.5, 0.5 mm of lung past
    the hook's tip. The hook's voxels see no skeleton voxel through the airways (the straight line
    leaves the bent mask); the thick bronchus' ball is nearer in distance − radius."""
    from AnatomyINRLib.pulmonary._airway_tubes import deepest_labels

    thin = Tube(1, np.array([-20.0, 0, 0]), np.array([0.0, 0, 0]), 1.0)
    hook = Tube(1, np.array([0.0, 0, 0]), np.array([0.0, 3.0, 0]), 1.0)
    thick = Tube(2, np.array([-20.0, 6.5, 0]), np.array([20.0, 6.5, 0]), 2.0)
    xs = np.arange(-20.0, -3.5)
    nodes = np.vstack([np.c_[xs, 0 * xs, 0 * xs], np.c_[np.arange(-20.0, 21.0), np.full(41, 6.5), np.zeros(41)]])
    radius = np.r_[np.full(len(xs), 1.0), np.full(41, 2.0)]
    label = np.r_[np.ones(len(xs)), np.full(41, 2)].astype(np.uint8)

    def inside(p):
        return (tube_depth(p, thin) < 0) | (tube_depth(p, hook) < 0) | (tube_depth(p, thick) < 0)

    voxels = np.array([[-3.0, 0, 0], [-2.0, 0, 0], [-1.0, 0, 0], [0.0, 0, 0], [0.0, 1, 0], [0.0, 2, 0],
                       [0.0, 3, 0], [0.0, 5, 0]])
    assert inside(voxels).all()
    args = (voxels, nodes, radius, label, [])
    assert deepest_labels(*args, inside=inside).tolist() == [1, 1, 1, 1, 1, 2, 2, 2]
    # Grown along the mask from the decided voxels, 26-neighbours apart (a unit voxel's diagonal); the
    # thick bronchus' voxel is 2 mm from the tip, no neighbour.
    index = voxels.astype(int)  # unit voxels: the indices are the coordinates
    assert deepest_labels(*args, inside=inside, voxel_index=index).tolist() == [1, 1, 1, 1, 1, 1, 1, 2]
    # Neighbours are one voxel apart in index, whatever the spacing: 2.5 mm slices keep the same chain.
    stretched = voxels * [1.0, 2.5, 1.0]
    nodes_s, inside_s = nodes * [1.0, 2.5, 1.0], lambda p: inside(p / [1.0, 2.5, 1.0])
    assert deepest_labels(stretched, nodes_s, radius, label, [], inside=inside_s,
                          voxel_index=index).tolist()[:7] == [1] * 7
    # A blind voxel no chain of neighbours reaches keeps its best ball.
    lone = [0, 6, 7]
    assert deepest_labels(voxels[lone], nodes, radius, label, [], inside=inside,
                          voxel_index=index[lone]).tolist() == [1, 2, 2]
    # The hook's tip and the thick bronchus' voxel, given as touching voxels: the tip takes label 2 from
    # it, unless a fitted tube claims the tip (the fill is only for voxels nothing claims).
    pair, touching = voxels[[6, 7]], np.array([[0, 3, 0], [0, 4, 0]])
    assert deepest_labels(pair, nodes, radius, label, [], inside=inside, voxel_index=touching).tolist() == [2, 2]
    tip_tube = Tube(3, np.array([0.0, 3.0, 0]), np.array([0.0, 3.2, 0]), 0.4)
    assert deepest_labels(pair, nodes, radius, label, [tip_tube], inside=inside,
                          voxel_index=touching).tolist() == [3, 2]


def test_voxels_whose_near_balls_are_all_skipped_stay_unlabelled_even_beside_labelled_ones():
    from AnatomyINRLib.pulmonary._airway_tubes import deepest_labels

    xs = np.arange(0.0, 61.0)
    nodes = np.c_[xs, 0 * xs, 0 * xs]
    radius, label = np.full(61, 1.0), np.ones(61, dtype=np.uint8)
    skip = xs >= 30
    points = nodes + [0.0, 0.5, 0.0]  # off the axis, so not at a ball's centre
    inside = lambda p: np.abs(p[:, 1]) < 1.0  # noqa: E731
    labs = deepest_labels(points, nodes, radius, label, [], k=5, skip=skip, inside=inside,
                          voxel_index=np.c_[xs, 0 * xs, 0 * xs].astype(int))
    assert labs[:32].tolist() == [1] * 32 and labs[33:].tolist() == [0] * 28
