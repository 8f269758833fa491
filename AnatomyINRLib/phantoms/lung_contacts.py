"""Where the lung phantom's tubes meet: no bronchus crossings, and shared lumen left unlabelled.

Two rules make the phantom's airway tree behave like a real one:

* **Bronchi do not cross or touch.** Each segment's tree is grown on its own, so a
  thin deep branch of one segment can run straight through, or graze, a neighbour's
  segmental bronchus or the lobar bronchus. Real bronchi never do (their walls keep
  the lumens apart), and a mask with such a contact is no tree: its skeleton has a
  loop, and a skeleton walk takes the contact for a branching. A tube a branch is
  already near where it starts is its origin and never blocks it, so near a branching
  a branch can still graze its grandparent or a cousin. :func:`separate_crossings`
  therefore stops such a branch short of the tube in its way (it becomes a leaf)
  or, when too little would be left, removes it; its sub-branches go with it.
  The arteries are not separated: each runs beside its bronchus and can still
  cross another artery.
* **A shared lumen belongs to no segment.** Where two tubes of different labels
  overlap (sibling segmental bronchi before the carina that separates them, a
  segmental bronchus leaving the lobar one; for arteries also where two cross),
  the lumen is the branching's, not either child's: a segmental bronchus begins
  where it separates from its neighbours. :func:`shared_lumen` marks the voxels
  inside one label's tube and within half a voxel of another label's (a voxel
  straddling both walls).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from AnatomyINRLib.phantoms.lung_tree import Branch, capsule_depths


def _segment_distances(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(P, M) distance (mm) from each of ``points`` (P, 3) to each axis segment ``starts→ends`` (M, 3)."""
    seg = ends - starts
    rel = points[:, None, :] - starts[None]
    t = np.clip(np.einsum("pmk,mk->pm", rel, seg) / np.maximum(np.einsum("mk,mk->m", seg, seg), 1e-12), 0, 1)
    return np.linalg.norm(rel - t[..., None] * seg[None], axis=-1)


def _subtree(branches: list[Branch], k: int) -> set:
    """Indices of branch ``k`` and everything below it in its segment's list."""
    kids: dict = {}
    for j, b in enumerate(branches):
        kids.setdefault(b.parent, []).append(j)
    out, todo = set(), [k]
    while todo:
        j = todo.pop()
        out.add(j)
        todo.extend(kids.get(j, []))
    return out


def separate_crossings(trunk: list, trees: dict, visible: float, clearance_mm: float = 1.0,
                       step_mm: float = 0.5) -> dict:
    """Stop visible bronchi that would cross another visible airway tube, in place.

    Branches are visited thickest first, so every tube a branch may yield to is final; a
    branch yields to every tube at least as thick (other segments' and its own segment's
    branches), to the trunk and to every segmental bronchus, however thin (a segment has
    only the one), unless it already touches that tube where it starts (its parent, its
    siblings, the branching it leaves): that contact is its origin. A branch
    passing within ``r + R + clearance_mm`` of such a tube's axis is cut ``r + 0.5`` mm before
    the first such place and its sub-branches removed; if less than ``2 r + 1`` mm would
    remain it is removed with them. Segmental bronchi (generation 0) never yield. Only the
    bronchi are separated; each artery follows its bronchus (and is cut with it).

    Args:
        trunk: (start, end, radius) tuples of trachea, main and lobar bronchi (RAS mm).
        trees: Segment label → list of :class:`Branch` (parent indices into the list).
        visible: Branches thinner than this (mm) are not in the masks and are left alone.
        clearance_mm: Least gap between the lumens of non-adjacent tubes (two walls; the phantom uses
            two voxels, more than a voxel's diagonal, so their voxels do not touch even diagonally).
        step_mm: Sampling step along a branch's axis.

    Returns:
        {"shortened": n, "removed": n}: branches cut short, and branches removed (sub-branches,
        most of them too thin to be visible, included).
    """
    caps = [(0, -1, np.asarray(a, float), np.asarray(b, float), float(r)) for a, b, r in trunk]
    caps += [(lab, k, b.start, b.end, b.radius) for lab, brs in trees.items() for k, b in enumerate(brs)
             if b.radius >= visible]
    tubes = {"owner": np.array([(c[0], c[1]) for c in caps]), "starts": np.array([c[2] for c in caps]),
             "first": np.array([c[0] == 0 or trees[c[0]][c[1]].generation == 0 for c in caps]),
             "ends": np.array([c[3] for c in caps]), "radii": np.array([c[4] for c in caps]),
             "alive": np.ones(len(caps), dtype=bool)}
    index = {(c[0], c[1]): i for i, c in enumerate(caps)}
    removed = {lab: set() for lab in trees}
    shortened = 0
    for i in np.argsort(-tubes["radii"], kind="stable"):
        if tubes["first"][i] or not tubes["alive"][i]:  # the trunk and segmental bronchi never yield
            continue
        lab, k = (int(v) for v in tubes["owner"][i])
        keep = _free_length(trees[lab][k], i, tubes, clearance_mm, step_mm)
        if keep is None:
            continue
        gone = _subtree(trees[lab], k)
        if keep >= 2 * trees[lab][k].radius + 1.0:
            gone.discard(k)
            trees[lab][k] = _cut(trees[lab][k], keep)
            tubes["ends"][i] = trees[lab][k].end
            shortened += 1
        removed[lab] |= gone
        for j in gone:
            if (lab, j) in index:
                tubes["alive"][index[(lab, j)]] = False
    for lab, gone in removed.items():
        _drop(trees, lab, gone)
    return {"shortened": shortened, "removed": sum(len(g) for g in removed.values())}


def _free_length(b: Branch, i: int, tubes: dict, clearance_mm: float, step_mm: float):
    """Length (mm) branch ``b`` (tube ``i``) may keep before it comes within reach of a tube it
    yields to, ``r + 0.5`` mm short of that place; None when nothing is in its way."""
    length = float(np.linalg.norm(b.end - b.start))
    t = np.linspace(0.0, 1.0, max(2, int(np.ceil(length / step_mm)) + 1))
    axis = b.start + t[:, None] * (b.end - b.start)
    starts, ends, radii = tubes["starts"], tubes["ends"], tubes["radii"]
    limit = radii + b.radius + clearance_mm
    at_start = _segment_distances(b.start[None], starts, ends)[0] < limit
    blocks = tubes["alive"] & ~at_start & ((radii >= b.radius) | tubes["first"])
    blocks[i] = False
    hit = (_segment_distances(axis, starts[blocks], ends[blocks]) < limit[blocks]).any(axis=1)
    if not hit.any():
        return None
    return float(t[np.argmax(hit)]) * length - (b.radius + 0.5)


def _cut(b: Branch, keep: float) -> Branch:
    """Branch ``b`` (and its artery) shortened to its first ``keep`` mm."""
    f = keep / float(np.linalg.norm(b.end - b.start))
    return replace(b, end=b.start + f * (b.end - b.start), art_end=b.art_start + f * (b.art_end - b.art_start))


def _drop(trees: dict, lab: int, gone: set) -> None:
    """Remove branches ``gone`` from segment ``lab``'s list, renumbering parent indices."""
    if not gone:
        return
    keep = [j for j in range(len(trees[lab])) if j not in gone]
    new = {old: n for n, old in enumerate(keep)}
    trees[lab] = [replace(trees[lab][j], parent=new.get(trees[lab][j].parent, -1)) for j in keep]


def shared_lumen(shape, ijk_to_ras: np.ndarray, starts, ends, radii, labels, painted: np.ndarray) -> np.ndarray:
    """Boolean volume: painted voxels also inside, or within half a voxel of, a tube of another label.

    Args:
        shape, ijk_to_ras: The volume's geometry.
        starts, ends, radii, labels: The capsules that were painted (RAS mm).
        painted: Their rasterisation (the label of the tube each voxel is deepest in; 0 outside).
    """
    half = 0.5 * float(np.linalg.norm(ijk_to_ras[:3, :3], axis=0).min())
    shared = np.zeros(shape, dtype=bool)
    for box, depth, lab in capsule_depths(shape, ijk_to_ras, starts, ends, radii, labels, pad_mm=half):
        view = painted[box]
        shared[box] |= (depth < half) & (view > 0) & (view != lab)
    return shared
