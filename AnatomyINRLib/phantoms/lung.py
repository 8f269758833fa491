"""Seeded lung phantom with the 18 pulmonary segments as ground truth.

Built here (no external data): two lungs and five lobes separated by fissures
(:mod:`lung_shape`); trachea → main → (intermediate) → lobar bronchi; in each
lobe the segments' target territories (a weighted Voronoi partition around
anatomical anchors) and, inside each, a segmental bronchial tree grown to 7
generations below the segmental bronchus (:mod:`lung_tree`), each bronchus with
an artery beside it. As in a real lung, no bronchus runs through or touches
a bronchus of another segment or the trunk: a branch that would come within two
voxels of an airway tube it is not already near where it starts is stopped
short of it or removed (:mod:`lung_contacts`). Near a branching a branch can
still graze a close relative in its own segment (a few loops per airway mask).

Ground truth follows the anatomical definition: segment *i* is the territory of
segmental subtree *i* inside its lobe — every lobe voxel takes the label of the
nearest centreline of the **complete** tree (all generations, most of them too
thin to see on CT) — and it contains its own labelled bronchi and arteries
(those voxels keep their label; a lumen shared by two segments' tubes, before the
carina between them, belongs to the branching and is unlabelled). Only branches
with radius ≥ ``visible_radius`` appear in the airway and artery masks, as on CT,
so a method that sees the masks must extrapolate the territories of the
invisible small branches.
Intersegmental veins run along the boundaries between neighbouring segments.
The CT volume has lung parenchyma, denser fissures, airway lumen and wall,
vessels, soft tissue and Gaussian noise (HU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from AnatomyINRLib.core.config import check_choice, check_positive
from AnatomyINRLib.core.device import restore_ieee_denormals
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.core.types import ImageGrid, PointSet
from AnatomyINRLib.phantoms.lung_contacts import separate_crossings, shared_lumen
from AnatomyINRLib.phantoms.lung_shape import SEGMENT_ANCHORS, SEGMENT_WEIGHTS, LungShape, lobe_box_point
from AnatomyINRLib.phantoms.lung_tree import Branch, centreline_samples, grow_segment, rasterize_capsules
from AnatomyINRLib.phantoms.lung_veins import intersegmental_veins
from AnatomyINRLib.pulmonary.config import SEGMENTS, lobe_segments, segment_lobe

#: size → isotropic voxel spacing (mm); the field of view is always 300 × 250 × 250 mm.
LUNG_SIZES: dict[str, float] = {"small": 2.0, "full": 1.0}
EXTENT_MM = (300.0, 250.0, 250.0)
TREE_GENERATIONS = 7
HUB_RADIUS_MM = 6.0
"""Airway/artery voxels this close to a lobar branching point belong to the lobar tube (label 0):
there all segmental tubes of a lobe meet and no segment owns them."""
CLEARANCE_VOXELS = 2.0
"""Least gap between the lumens of two bronchi that do not branch from each other, in voxels: more
than a voxel's diagonal (√3), so their voxels do not touch even diagonally; a touch would join a
deep branch to the bronchus it passes, a false branching (at 1 mm, 2 mm: about two bronchial walls).
The check samples each axis every 0.5 mm, so a gap can be 0.25 mm below it: 1.75 mm > √3 mm at 1 mm."""
_TRUNK = 19  # rasterisation label of trachea/main/lobar airways (written as 1 / 0 in the outputs)
_HILUM_OF_LOBE = {1: "right", 2: "intermediate", 3: "intermediate", 4: "left", 5: "left"}


@dataclass
class LungPhantom:
    """All volumes share one geometry (``ct.ijk_to_ras``); label values as in :mod:`pulmonary.config`."""

    ct: ImageGrid
    lobes: ImageGrid
    airways: ImageGrid
    arteries: ImageGrid
    veins: ImageGrid
    airways_labeled: ImageGrid
    arteries_labeled: ImageGrid
    segments: ImageGrid
    segment_points: PointSet
    info: dict = field(default_factory=dict)


def lung_grid(size: str) -> tuple[tuple[int, int, int], np.ndarray]:
    """(shape, ijk_to_ras) of a phantom size; axes are LPS-ordered like most CT (i → left, j → posterior)."""
    check_choice("size", size, tuple(LUNG_SIZES))
    s = LUNG_SIZES[size]
    shape = tuple(int(round(e / s)) for e in EXTENT_MM)
    origin = np.array([EXTENT_MM[0] / 2 - s / 2, EXTENT_MM[1] / 2 - s / 2, -EXTENT_MM[2] / 2 + s / 2])
    return shape, ImageGrid.make_affine(origin, (s, s, s), np.diag([-1.0, -1.0, 1.0]))


def make_lung_phantom(seed: int = 0, size: str = "small", clearance_voxels: float = CLEARANCE_VOXELS) -> LungPhantom:
    """Build a lung phantom.

    Args:
        seed: Seed of every random choice (geometry jitter, tree splits, noise).
        size: "small" (2 mm, 150×125×125, for tests) or "full" (1 mm, 300×250×250).
        clearance_voxels: Least gap between bronchi that do not branch from each other (see
            :data:`CLEARANCE_VOXELS`); below √3 thin branches can touch what they pass (a robustness test).

    Returns:
        LungPhantom; ``info`` holds the spacing, visible radius, per-segment volumes and
        ``crossing_branches`` (branches cut short or removed, sub-branches included, see
        :func:`~AnatomyINRLib.phantoms.lung_contacts.separate_crossings`).
    """
    check_positive("clearance_voxels", clearance_voxels)
    restore_ieee_denormals()  # scipy's KD-tree crashes under flush-to-zero
    rng = numpy_rng(seed)
    shape, affine = lung_grid(size)
    s = LUNG_SIZES[size]
    lung = LungShape.draw(rng)
    x, y, z = _axes(shape, affine)
    lobes = lung.lobes(x, y, z, gap=0.6 * s)
    visible = max(0.9, 0.6 * s)
    trunk, lobar_end, art_lobar_end = _proximal_airways(lobes, affine, rng)
    trees = _segment_trees(lobes, affine, lobar_end, art_lobar_end, rng)
    contacts = separate_crossings(trunk["airway"], trees, visible, clearance_mm=clearance_voxels * s)
    airways_lab, airways = _paint_tree(shape, affine, trunk, trees, visible, lobes, artery=False)
    arteries_lab, arteries = _paint_tree(shape, affine, trunk, trees, visible, lobes, artery=True)
    for art in (arteries, arteries_lab):  # a vessel never runs through an airway
        art[airways > 0] = 0
    for painted, hubs in ((airways_lab, lobar_end), (arteries_lab, art_lobar_end)):
        _clear_hubs(painted, affine, hubs.values(), HUB_RADIUS_MM)
    segments = _ground_truth(lobes, affine, trees, s)
    for painted in (arteries_lab, airways_lab):  # segments contain their own bronchi and arteries
        segments[painted > 0] = painted[painted > 0]
    veins = intersegmental_veins(segments, affine, radius=max(1.3, 0.7 * s))
    ct = _ct(lung, x, y, z, lobes, airways, arteries, veins, s, rng)
    points = _segment_points(trees)
    grid = lambda a: ImageGrid(a, affine.copy())  # noqa: E731
    volumes = {SEGMENTS[lab][0]: float(np.count_nonzero(segments == lab) * s**3 / 1000.0) for lab in SEGMENTS}
    info = {"seed": int(seed), "size": size, "spacing_mm": s, "visible_radius_mm": visible,
            "tree_generations": TREE_GENERATIONS, "segment_volumes_ml": volumes,
            "crossing_branches": contacts}
    return LungPhantom(grid(ct), grid(lobes), grid(airways), grid(arteries), grid(veins),
                       grid(airways_lab), grid(arteries_lab), grid(segments), points, info)


def _axes(shape, affine):
    """Broadcastable RAS coordinate vectors (float32) of a diagonal-direction grid."""
    coords = []
    for axis in range(3):
        c = (affine[axis, axis] * np.arange(shape[axis]) + affine[axis, 3]).astype(np.float32)
        coords.append(c.reshape([-1 if a == axis else 1 for a in range(3)]))
    return coords


def _world(idx: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return idx @ affine[:3, :3].T + affine[:3, 3]


def _lobe_at(lobes: np.ndarray, affine: np.ndarray, p: np.ndarray) -> int:
    ijk = np.rint(np.linalg.solve(affine[:3, :3], p - affine[:3, 3])).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= lobes.shape):
        return 0
    return int(lobes[tuple(ijk)])


def _lobe_samples(lobes: np.ndarray, affine: np.ndarray, lobe: int, step_mm: float = 4.0) -> np.ndarray:
    """(N, 3) RAS points on a ~4 mm lattice inside a lobe."""
    k = max(1, int(round(step_mm / np.linalg.norm(affine[:3, 0]))))
    idx = np.argwhere(lobes[::k, ::k, ::k] == lobe) * k
    return _world(idx.astype(np.float64), affine)


def _proximal_airways(lobes, affine, rng):
    """Trachea, main, intermediate and lobar bronchi; returns (branches, lobar ends, artery ends)."""
    j = lambda: rng.uniform(-2.0, 2.0, size=3)  # noqa: E731
    top = np.array([0.0, 10.0, 124.0])
    carina = np.array([0.0, 5.0, 38.0]) + j()
    hilum = {"right": np.array([30.0, 4.0, 22.0]) + j(), "left": np.array([-32.0, 4.0, 18.0]) + j()}
    hilum["intermediate"] = hilum["right"] + np.array([6.0, -2.0, -22.0]) + j()
    pa = np.array([-4.0, 30.0, 42.0])
    art_hilum = {k: v + np.array([0.0, 3.0, 9.0]) for k, v in hilum.items()}
    trunk = [(top, carina, 8.5), (carina, hilum["right"], 6.0), (carina, hilum["left"], 5.8),
             (hilum["right"], hilum["intermediate"], 5.0)]
    art_trunk = [(pa, art_hilum["right"], 7.0), (pa, art_hilum["left"], 7.0),
                 (art_hilum["right"], art_hilum["intermediate"], 5.0)]
    lobar_end, art_end = {}, {}
    for lobe in range(1, 6):
        h = hilum[_HILUM_OF_LOBE[lobe]]
        c = _lobe_samples(lobes, affine, lobe).mean(axis=0)
        for t in np.arange(0.25, 0.9, 0.05):
            p = h + t * (c - h)
            probes = p + 5.0 * np.vstack([np.zeros(3), np.eye(3), -np.eye(3)])
            if all(_lobe_at(lobes, affine, q) == lobe for q in probes):
                break
        lobar_end[lobe] = p
        art_end[lobe] = p + np.array([0.0, 2.0, 8.0])
        trunk.append((h, p, 4.5 if lobe != 2 else 3.8))
        art_trunk.append((art_hilum[_HILUM_OF_LOBE[lobe]], art_end[lobe], 4.0 if lobe != 2 else 3.4))
    return {"airway": trunk, "artery": art_trunk}, lobar_end, art_end


def _segment_trees(lobes, affine, lobar_end, art_end, rng) -> dict[int, list[Branch]]:
    """Segment label → its bronchial tree (with arteries), grown in its Voronoi territory."""
    trees = {}
    for lobe in range(1, 6):
        pts = _lobe_samples(lobes, affine, lobe)
        labs = lobe_segments(lobe)
        right = lobe <= 3
        seeds = np.array([lobe_box_point(pts, SEGMENT_ANCHORS[lab], right) for lab in labs])
        seeds += rng.normal(0.0, 4.0, size=seeds.shape)
        weights = np.array([SEGMENT_WEIGHTS.get(lab, 1.0) * rng.uniform(0.92, 1.08) for lab in labs])
        owner = np.argmin(np.linalg.norm(pts[:, None, :] - seeds[None], axis=-1) * weights, axis=1)
        mean_n = len(pts) / len(labs)
        for k, lab in enumerate(labs):
            region = pts[owner == k]
            radius = 3.2 * (len(region) / mean_n) ** (1.0 / 3.0)
            trees[lab] = grow_segment(lab, lobar_end[lobe], art_end[lobe], region, radius, TREE_GENERATIONS, rng)
    return trees


def _paint_tree(shape, affine, trunk, trees, visible, lobes, artery: bool):
    """(labelled uint8, binary uint8): visible segmental subtrees (clipped to their lobe) and all tubes."""
    key, scale = ("artery", 0.9) if artery else ("airway", 1.0)
    items = [(a, b, r, _TRUNK) for a, b, r in trunk[key]]
    for lab, branches in trees.items():
        for br in branches:
            if br.radius < visible:
                continue
            s, e = (br.art_start, br.art_end) if artery else (br.start, br.end)
            r = max(scale * br.radius, visible)
            if artery and br.generation == 0:
                # The first 30 % of a segmental artery belongs to the lobar artery's branching hub,
                # where all of a lobe's segmental arteries meet: it is artery, but of no segment.
                hub = s + 0.3 * (e - s)
                items.append((s, hub, r, _TRUNK))
                s = hub
            items.append((s, e, r, lab))
    starts, ends, radii, labs = (np.array([it[i] for it in items]) for i in range(4))
    painted, _ = rasterize_capsules(shape, affine, starts, ends, radii, labs)
    binary = (painted > 0).astype(np.uint8)
    lobe_of = np.array([0] + [segment_lobe(lab) for lab in range(1, 19)] + [255], dtype=np.uint8)
    own = (painted <= 18) & (lobe_of[painted] == lobes)
    own &= ~shared_lumen(shape, affine, starts, ends, radii, labs, painted)  # the branching's, no segment's
    labelled = np.where(own, painted, 0).astype(np.uint8)
    return labelled, binary


def _clear_hubs(labelled: np.ndarray, affine: np.ndarray, centres, radius: float) -> None:
    """Set labels to 0 within ``radius`` mm of each centre (in place)."""
    idx = np.argwhere(labelled > 0)
    world = _world(idx.astype(np.float64), affine)
    near = np.zeros(len(idx), dtype=bool)
    for c in centres:
        near |= np.linalg.norm(world - c, axis=1) < radius
    labelled[tuple(idx[near].T)] = 0


def _ground_truth(lobes, affine, trees, spacing, chunk: int = 1_000_000) -> np.ndarray:
    """Each lobe voxel → label of the nearest centreline of its lobe's complete segmental trees."""
    out = np.zeros(lobes.shape, dtype=np.uint8)
    for lobe in range(1, 6):
        branches = [b for lab in lobe_segments(lobe) for b in trees[lab]]
        pts, labs = centreline_samples(branches, step=min(1.0, spacing))
        tree = cKDTree(pts)
        idx = np.argwhere(lobes == lobe)
        for a in range(0, len(idx), chunk):
            part = idx[a:a + chunk]
            _, nearest = tree.query(_world(part.astype(np.float64), affine), workers=2)
            out[part[:, 0], part[:, 1], part[:, 2]] = labs[nearest]
    return out


def _ct(lung, x, y, z, lobes, airways, arteries, veins, spacing, rng) -> np.ndarray:
    """int16 HU volume: air, soft tissue, parenchyma, fissures, airway lumen/wall, vessels, noise."""
    ct = np.full(lobes.shape, -1000.0, dtype=np.float32)
    ct[np.broadcast_to((x / 165.0) ** 2 + (y / 125.0) ** 2 < 1.0, ct.shape)] = 40.0
    ct[lobes > 0] = -860.0
    ct[lung.fissure_band(x, y, z, 0.6 * spacing)] = -720.0
    ct[airways > 0] = 20.0  # wall; the lumen is carved below
    ct[(airways > 0) & (_eroded(airways))] = -1000.0
    ct[(arteries > 0) | (veins > 0)] = 40.0
    ct += rng.normal(0.0, 20.0, size=ct.shape).astype(np.float32)
    return np.clip(np.rint(ct), -1024, 3071).astype(np.int16)


def _eroded(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_erosion(mask > 0)


def _segment_points(trees) -> PointSet:
    """One point per segmental bronchus, halfway along it, labelled with the segment's name."""
    pts, names = [], []
    for lab in sorted(trees):
        seg = trees[lab][0]
        pts.append(seg.start + 0.5 * (seg.end - seg.start))
        names.append(SEGMENTS[lab][0])
    return PointSet(np.array(pts), None, names)
