"""Lung phantom: branches never cross, and a lumen two segments share is no segment's."""

import numpy as np

import AnatomyINRLib.phantoms.lung as L
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.phantoms.lung_contacts import _segment_distances, separate_crossings, shared_lumen
from AnatomyINRLib.phantoms.lung_tree import Branch, rasterize_capsules


def _branch(start, end, radius, label, generation, parent):
    s, e = np.asarray(start, float), np.asarray(end, float)
    return Branch(s, e, radius, label, generation, s.copy(), e.copy(), parent)


def _trees():
    """Segment 1 leaves a hub at the origin along +x; its generation-1 child heads along +y and
    would cross the trunk tube lying along z at x = 10, y = 20; the child's own child (generation 2)
    starts past the crossing. Segment 2's thin branch starts within reach of segment 1's bronchus (its origin) and leaves it."""
    one = [_branch((0, 0, 0), (10, 0, 0), 3.0, 1, 0, -1),
           _branch((10, 0, 0), (10, 30, 0), 1.0, 1, 1, 0),
           _branch((10, 30, 0), (10, 40, 0), 0.9, 1, 2, 1)]
    two = [_branch((0, 0, 0), (2, -4, 0), 2.0, 2, 0, -1),
           _branch((2, -4, 0), (6, -12, 0), 1.0, 2, 1, 0)]
    trunk = [((10, 20, -20), (10, 20, 20), 4.0)]
    return trunk, {1: one, 2: two}


def test_a_crossing_branch_stops_short_and_loses_its_subtree():
    trunk, trees = _trees()
    report = separate_crossings(trunk, trees, visible=0.5, clearance_mm=1.0)
    one = trees[1]
    assert len(one) == 2 and report == {"shortened": 1, "removed": 1}
    # The axis may come no nearer than 4 + 1 + 1 mm to the trunk's (y = 20), found on a 0.5 mm
    # step, and is cut a further 1 + 0.5 mm short.
    assert 20 - 6.0 - 1.5 <= one[1].end[1] <= 20 - 6.0 - 1.5 + 0.5
    assert np.allclose(one[1].end[[0, 2]], (10, 0)) and one[1].parent == 0
    assert np.allclose(one[1].art_end, one[1].end)


def test_a_branch_touching_what_it_leaves_is_kept():
    trunk, trees = _trees()
    before = [b.end.copy() for b in trees[2]]
    separate_crossings(trunk, trees, visible=0.5)
    assert [b.end.tolist() for b in trees[2]] == [e.tolist() for e in before]


def test_a_branch_blocked_at_once_is_removed_and_parents_renumbered():
    trunk = [((0, -6, -20), (0, -6, 20), 2.0)]
    trees = {1: [_branch((0, -20, 0), (0, -10, 0), 3.0, 1, 0, -1),
                 _branch((0, -10, 0), (4, -4, 0), 1.0, 1, 1, 0),   # 1.5 mm on, within 4 mm of the trunk's axis
                 _branch((0, -10, 0), (-8, -12, 0), 1.0, 1, 1, 0),
                 _branch((-8, -12, 0), (-12, -20, 0), 0.9, 1, 2, 2)]}
    report = separate_crossings(trunk, trees, visible=0.5)
    assert report == {"shortened": 0, "removed": 1}
    assert [b.parent for b in trees[1]] == [-1, 0, 1]
    assert np.allclose(trees[1][2].start, (-8, -12, 0))


def test_too_short_a_remainder_is_removed_and_a_thin_trunk_still_blocks():
    # The cut would leave 2.5 mm of a 1 mm branch (< 2 r + 1 = 3 mm): removed. The trunk tube in the
    # way (r 0.5) is thinner than the branch, yet it blocks: the trunk always does.
    trunk = [((0, 6, -20), (0, 6, 20), 0.5)]
    trees = {1: [_branch((0, -20, 0), (0, 0, 0), 3.0, 1, 0, -1),
                 _branch((0, 0, 0), (0, 20, 0), 1.0, 1, 1, 0)]}
    report = separate_crossings(trunk, trees, visible=0.5)
    assert report == {"shortened": 0, "removed": 1} and len(trees[1]) == 1


def test_a_tube_cut_short_no_longer_blocks():
    # Branch 1 (r 2) is cut short by the trunk at y = 20; branch 2 (r 1) heads for where branch 1
    # used to run (x = 10, y = 30) but stays clear of what is left of it: kept whole.
    trunk = [((10, 20, -20), (10, 20, 20), 3.0)]
    trees = {1: [_branch((0, 0, 0), (10, 0, 0), 3.0, 1, 0, -1),
                 _branch((10, 0, 0), (10, 40, 0), 2.0, 1, 1, 0)],
             2: [_branch((0, 0, 0), (-10, 0, 0), 3.0, 2, 0, -1),
                 _branch((-10, 0, 0), (4, 30, 0), 1.0, 2, 1, 0)]}
    n_before = sum(len(b) for b in trees.values())
    report = separate_crossings(trunk, trees, visible=0.5)
    assert report == {"shortened": 1, "removed": 0}
    assert trees[1][1].end[1] < 20 - 6 - 2.5 + 0.5 and np.allclose(trees[2][1].end, (4, 30, 0))
    assert sum(len(b) for b in trees.values()) == n_before - report["removed"]


def test_a_thin_segmental_bronchus_blocks_a_thicker_branch_of_another_segment():
    # Segment 2's bronchus (generation 0, r 1.5) lies across the path of segment 1's generation-1
    # branch (r 2.5, thicker): the segmental bronchus is the one that must stay whole, so the thick
    # branch stops short of it: 2.5 + 1.5 + 1 mm from its axis (x = 20), a further 2.5 + 0.5 mm back.
    trees = {1: [_branch((0, 0, 0), (0, 10, 0), 3.0, 1, 0, -1),
                 _branch((0, 10, 0), (30, 10, 0), 2.5, 1, 1, 0)],
             2: [_branch((20, -10, 0), (20, 30, 0), 1.5, 2, 0, -1)]}
    report = separate_crossings([], trees, visible=0.5, clearance_mm=1.0)
    assert report == {"shortened": 1, "removed": 0}
    assert 20 - 5.0 - 3.0 <= trees[1][1].end[0] <= 20 - 5.0 - 3.0 + 0.5 + 1e-9  # found on a 0.5 mm step
    assert np.allclose(trees[2][0].end, (20, 30, 0))


def test_invisible_branches_are_left_alone():
    trunk, trees = _trees()
    assert separate_crossings(trunk, trees, visible=1.5) == {"shortened": 0, "removed": 0}


def test_shared_lumen_is_the_overlap_and_the_half_voxel_around_it():
    affine = np.eye(4)
    affine[:3, 3] = (-20.0, -20.0, -5.0)
    shape = (40, 40, 10)
    starts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ends = np.array([[15.0, 0.0, 0.0], [0.0, 15.0, 0.0]])
    radii, labels = np.array([3.0, 3.0]), np.array([1, 2])
    painted, _ = rasterize_capsules(shape, affine, starts, ends, radii, labels)
    shared = shared_lumen(shape, affine, starts, ends, radii, labels, painted)
    world = np.indices(shape).reshape(3, -1).T + affine[:3, 3]
    d1 = np.linalg.norm(world - np.c_[np.clip(world[:, 0], 0, 15), 0 * world[:, :2]], axis=1) - 3.0
    d2 = np.linalg.norm(world - np.c_[0 * world[:, 0], np.clip(world[:, 1], 0, 15), 0 * world[:, 0]], axis=1) - 3.0
    expect = ((d1 < 0) & (d2 < 0.5)) | ((d2 < 0) & (d1 < 0.5))
    assert np.array_equal(shared.reshape(-1), expect)
    assert 0 < expect.sum() < (painted > 0).sum() / 4


def _grown_trees(seed: int, size: str):
    """A phantom's trunk and trees as :func:`make_lung_phantom` grows them, before separation."""
    rng = numpy_rng(seed)
    shape, affine = L.lung_grid(size)
    lung = L.LungShape.draw(rng)
    lobes = lung.lobes(*L._axes(shape, affine), gap=0.6 * L.LUNG_SIZES[size])
    trunk, lobar_end, art_end = L._proximal_airways(lobes, affine, rng)
    return trunk["airway"], L._segment_trees(lobes, affine, lobar_end, art_end, rng)


def _crossings(trunk, trees, visible: float, clearance: float, step: float = 0.5) -> int:
    """Visible non-segmental branches passing within ``r + R + clearance − step`` of a tube at least as
    thick (or the trunk, or a segmental bronchus) that they do not already reach where they start."""
    caps = [(np.asarray(a, float), np.asarray(b, float), r, 0) for a, b, r in trunk]
    caps += [(b.start, b.end, b.radius, min(b.generation, 1)) for brs in trees.values() for b in brs
             if b.radius >= visible]
    starts, ends = np.array([c[0] for c in caps]), np.array([c[1] for c in caps])
    radii, seg = np.array([c[2] for c in caps]), np.array([c[3] for c in caps])
    count = 0
    for brs in trees.values():
        for b in brs:
            if b.radius < visible or b.generation == 0:
                continue
            t = np.linspace(0, 1, 200)[:, None]
            d = _segment_distances(b.start + t * (b.end - b.start), starts, ends)
            limit = radii + b.radius + clearance
            other = (radii >= b.radius) | (seg == 0)
            other &= ~((d[0] < limit) | np.all(np.isclose(starts, b.start), axis=1))
            count += int((d[:, other] < limit[other] - step).any())
    return count


def test_phantom_branches_do_not_cross(phantom):
    trunk, trees = _grown_trees(0, "small")
    visible = 1.2
    clearance = L.CLEARANCE_VOXELS * L.LUNG_SIZES["small"]
    assert clearance > np.sqrt(3) * L.LUNG_SIZES["small"]  # no diagonal voxel contact between the lumens
    assert _crossings(trunk, trees, visible, clearance) > 0  # grown independently, the segments' trees cross
    n_before = sum(len(b) for b in trees.values())
    report = separate_crossings(trunk, trees, visible, clearance_mm=clearance)
    assert report["shortened"] + report["removed"] > 0
    assert sum(len(b) for b in trees.values()) == n_before - report["removed"]
    assert phantom.info["crossing_branches"] == report  # make_lung_phantom separates the same way
    assert _crossings(trunk, trees, visible, clearance) == 0
    for brs in trees.values():  # the parent links still lead from each branch's start to its parent's end
        assert brs[0].parent == -1
        assert all(np.allclose(b.start, brs[b.parent].end) for b in brs[1:])


def test_painted_bronchi_leave_the_shared_lumen_unlabelled():
    """Two RML segmental bronchi (S4, S5) leave one point 30° apart: where they overlap the airway
    mask has lumen but no label; elsewhere each keeps its own."""
    affine = np.eye(4)
    affine[:3, 3] = (-20.0, -20.0, -6.0)
    shape = (40, 40, 12)
    lobes = np.full(shape, 2, dtype=np.uint8)
    hub = np.zeros(3)
    trees = {lab: [_branch(hub, 15.0 * np.array([np.cos(a), np.sin(a), 0.0]), 2.5, lab, 0, -1)]
             for lab, a in ((4, 0.0), (5, np.radians(30)))}
    labelled, binary = L._paint_tree(shape, affine, {"airway": [], "artery": []}, trees, 0.5, lobes, artery=False)
    world = np.indices(shape).reshape(3, -1).T + affine[:3, 3]
    d = [_segment_distances(world, trees[lab][0].start[None], trees[lab][0].end[None])[:, 0] - 2.5 for lab in (4, 5)]
    e = 1e-3  # voxels this close to a threshold are left out (float32 depths in the painter)
    shared = ((d[0] < -e) & (d[1] < 0.5 - e)) | ((d[1] < -e) & (d[0] < 0.5 - e))
    assert shared.sum() > 20
    assert np.all(binary.reshape(-1)[shared] == 1) and np.all(labelled.reshape(-1)[shared] == 0)
    only4 = (d[0] < -e) & (d[1] > 0.5 + e)
    assert only4.sum() > 100 and np.all(labelled.reshape(-1)[only4] == 4)
