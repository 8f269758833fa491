"""Airway voxels → the labelled tube they are deepest in (point mode of Method A, step 4).

An airway is a union of tubes. Where tubes meet, a voxel belongs to the tube it
is deepest inside: the one minimising ``distance to the tube's axis − tube
radius`` (a power-like distance). On the skeleton, each voxel ``n`` is the
centre of the maximal inscribed ball of radius ``r_n`` (the distance
transform), so a voxel ``v`` takes the label of the skeleton voxel minimising
``|v − x_n| − r_n`` instead of the nearest one: at a contact between a thick
and a thin bronchus the thin one keeps its own wall.

Near a branching the skeleton is no tube axis: where two bronchi leave a parent
together they overlap, their skeletons merge into one line between them, and
the inscribed balls there are inflated. Each segmental bronchus is therefore
also modelled as a straight *tube*: its axis is fitted to the skeleton of its
own clean stretch (below the merged part, above its first branching), re-fitted
to the airway voxels there (axis and radius), and extended back to the
branching it leaves from. The tubes compete with the skeleton balls in the same
``distance − radius`` sense, so the first millimetres of every segmental
bronchus take its label, as the tube they are deepest in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy.spatial import cKDTree


@dataclass
class Tube:
    """A straight labelled tube (capsule): axis ``start`` → ``end`` (RAS mm), ``radius`` mm."""

    label: int
    start: np.ndarray
    end: np.ndarray
    radius: float
    clean: tuple = (0.0, 0.0)
    """Axis coordinates (mm from ``start``) of the stretch the tube was fitted to (below the merged branching)."""


def _axis_foot(points: np.ndarray, tube: Tube) -> np.ndarray:
    """(N, 3) nearest points of ``tube``'s axis segment to (N, 3) RAS ``points``."""
    seg = tube.end - tube.start
    t = np.clip((points - tube.start) @ seg / max(float(seg @ seg), 1e-12), 0.0, 1.0)
    return tube.start + t[:, None] * seg


def tube_depth(points: np.ndarray, tube: Tube) -> np.ndarray:
    """(N,) ``distance to the tube's axis segment − radius`` (mm; negative inside) of (N, 3) RAS points."""
    return np.linalg.norm(points - _axis_foot(points, tube), axis=1) - tube.radius


def _children(parent: np.ndarray, order: np.ndarray) -> dict:
    kids: dict = {}
    for n in order:
        if parent[n] >= 0:
            kids.setdefault(int(parent[n]), []).append(int(n))
    return kids


def _subtree_sizes(parent: np.ndarray, order: np.ndarray) -> np.ndarray:
    size = np.ones(len(parent), dtype=np.int64)
    for n in order[::-1]:
        if parent[n] >= 0:
            size[parent[n]] += size[n]
    return size


def _ancestors(n: int, parent: np.ndarray) -> list:
    """Skeleton voxel ``n`` and its ancestors up to the root, ``n`` first."""
    out = [int(n)]
    while parent[out[-1]] >= 0:
        out.append(int(parent[out[-1]]))
    return out


def _common_ancestor(nodes: list, parent: np.ndarray) -> int:
    """The deepest skeleton voxel above (or at) every one of ``nodes``."""
    chains = [_ancestors(n, parent) for n in nodes]
    shared = set(chains[0]).intersection(*map(set, chains[1:]))
    return next(n for n in chains[0] if n in shared)


def bronchus_path(snap: int, hub: int, origin: int, parent: np.ndarray, kids: dict, size: np.ndarray,
                  min_nodes: int) -> list:
    """Skeleton voxels of one segmental bronchus, from the branching it leaves down to its first branching.

    The path runs from ``hub`` through ``origin`` (where its path meets another point's) down to
    the snapped voxel ``snap``, then on down the largest child. Below the origin it stops at the
    first voxel with two children of at least ``min_nodes`` voxels each (smaller side branches
    are spurs of a bumpy wall): a point clicked past that branching still names the bronchus above.
    """
    path = _ancestors(snap, parent)
    path = path[:path.index(hub) + 1][::-1] if hub in path else path[::-1]
    below = path.index(origin) + 1 if origin in path else 1
    for k in range(below, len(path)):
        if sum(size[c] >= min_nodes for c in kids.get(path[k], [])) >= 2:
            return path[:k + 1]
    n = snap
    while True:
        big = [c for c in kids.get(n, []) if size[c] >= min_nodes]
        if len(big) != 1:
            return path
        n = big[0]
        path.append(n)


def fit_tube(label: int, path: list, hub_world: np.ndarray, hub_radius: float, world: np.ndarray,
             radius: np.ndarray, min_span_mm: float = 4.0) -> Tube:
    """A straight tube along a segmental bronchus' skeleton path, reaching back to its hub.

    Args:
        label: Segment label of the tube.
        path: Skeleton voxel ids from the hub down to the bronchus' first branching.
        hub_world: (3,) RAS mm of the branching the bronchus leaves; hub_radius: its inscribed radius.
        world: (N, 3) RAS mm of all skeleton voxels; radius: (N,) inscribed radius (mm).
        min_span_mm: Shortest clean stretch an axis is fitted to.

    The skeleton within ``hub_radius`` of the hub bends into the merged branching and is left
    out. When the rest spans at least ``min_span_mm``, the axis is its principal direction (the
    tube starts at the hub's projection on it); otherwise the tube is the chord from the hub to
    the bronchus' end. The radius is the median inscribed radius of the clean stretch.
    """
    pts, rad = world[path], radius[path]
    clean = np.linalg.norm(pts - hub_world, axis=1) > hub_radius
    if clean.sum() < 2:
        clean[-1] = True
    pts, r_tube = pts[clean], float(np.median(rad[clean]))
    centre = pts.mean(axis=0)
    axis = np.linalg.svd(pts - centre, full_matrices=False)[2][0]
    if (pts[-1] - pts[0]) @ axis < 0:
        axis = -axis
    t = (pts - centre) @ axis
    if t.max() - t.min() < min_span_mm:
        start, end = np.asarray(hub_world, float), world[path[-1]].copy()
        return Tube(label, start, end, r_tube, (0.0, float(np.linalg.norm(end - start))))
    t_hub = min(float((hub_world - centre) @ axis), float(t.min()))
    return Tube(label, centre + t_hub * axis, centre + float(t.max()) * axis, r_tube,
                (float(t.min()) - t_hub, float(t.max()) - t_hub))


def refine_tube(tube: Tube, voxels: np.ndarray, tree: cKDTree, voxel_volume: float, rounds: int = 2) -> Tube:
    """Axis and radius of a tube re-fitted to the airway voxels of its clean stretch.

    The skeleton is quantised and its inscribed radii are biased by the voxel grid; the voxels
    themselves are not: the airway voxels within the stretch's slab and near the axis are a
    filled cylinder, whose principal axis is the tube's axis and whose voxel count is
    ``π r² L / voxel volume``. Stretches shorter than the tube's diameter are kept as they are.

    Args:
        voxels: (M, 3) RAS mm airway voxel centres; tree: a KD-tree of them.
        voxel_volume: mm³ per voxel.
    """
    t0, t1 = tube.clean
    length = t1 - t0
    if length < 2.0 * tube.radius:
        return tube
    axis = (tube.end - tube.start) / max(float(np.linalg.norm(tube.end - tube.start)), 1e-9)
    centre, r = tube.start + 0.5 * (t0 + t1) * axis, tube.radius
    for _ in range(rounds):
        near = voxels[tree.query_ball_point(centre, 0.5 * length + r + 2.0)]
        t = (near - centre) @ axis
        off = np.linalg.norm(near - centre - t[:, None] * axis, axis=1)
        sel = near[(np.abs(t) <= 0.5 * length) & (off <= r + 1.5)]
        if len(sel) < 10:
            return tube
        centre = sel.mean(axis=0)
        new_axis = np.linalg.svd(sel - centre, full_matrices=False)[2][0]
        axis = new_axis if new_axis @ axis >= 0 else -new_axis
        r = float(np.sqrt(len(sel) * voxel_volume / (np.pi * length)))
    t_start = float((tube.start - centre) @ axis)
    t_end = float((tube.end - centre) @ axis)
    return Tube(tube.label, centre + t_start * axis, centre + t_end * axis, r,
                (-0.5 * length - t_start, 0.5 * length - t_start))


def segment_tubes(snaps: dict, parent: np.ndarray, order: np.ndarray, world: np.ndarray, radius: np.ndarray,
                  lobe_of: dict, voxels: np.ndarray, voxel_volume: float, min_nodes: int = 5,
                  joint: Optional[Callable] = None) -> list:
    """One fitted :class:`Tube` per segmental bronchus.

    Args:
        snaps: Segment label → skeleton voxel id of its (snapped, possibly moved) point.
        parent, order: The rooted skeleton tree (parents first in ``order``).
        world: (N, 3) RAS mm of the skeleton voxels; radius: (N,) inscribed radius (mm).
        lobe_of: Segment label → lobe value; a lobe's hub is the deepest skeleton voxel above all
            of its points (the branching its segmental bronchi leave from).
        voxels: (M, 3) RAS mm airway voxel centres; voxel_volume: mm³ per voxel (see :func:`refine_tube`).
        min_nodes: Side branches with fewer skeleton voxels are spurs, not branchings.
        joint: Optional ``joint(lobe, tubes, start, feed_end, feed_radius, fixed) -> tubes or None`` refitting
            the tubes that leave one branching together (:func:`~AnatomyINRLib.pulmonary._hub_fit.fit_lobe_tubes`
            with the mask bound; None keeps them). A lobe's tubes are grouped by the branching they
            leave (:func:`branching_groups`): a lobe whose bronchi leave in two steps (S6, then the
            basal trunk) gives one fit per branching, each with the bronchus feeding it.

    A point lying below another point (touching bronchi made a loop) gets no tube.

    Returns:
        (tubes, junction): the tubes, and a boolean (N,) mask of the skeleton voxels within each
        hub's (and, with ``joint``, each lower branching's) inscribed radius of it: the merged
        branching, whose inflated balls are no tube's and are left out of :func:`deepest_labels`
        (the tubes decide there).
    """
    kids, size = _children(parent, order), _subtree_sizes(parent, order)
    chains = {lab: _ancestors(n, parent) for lab, n in snaps.items()}
    count: dict = {}
    for chain in chains.values():
        for n in chain:
            count[n] = count.get(n, 0) + 1
    tubes, tree, origins = [], cKDTree(voxels), {}
    junction = np.zeros(len(world), dtype=bool)
    for lobe in sorted(set(lobe_of.values())):
        labs = [lab for lab in snaps if lobe_of[lab] == lobe]
        hub = _common_ancestor([snaps[lab] for lab in labs], parent) if len(labs) > 1 else None
        if hub is not None:
            junction |= np.linalg.norm(world - world[hub], axis=1) <= radius[hub]
        for lab in labs:
            chain = chains[lab]
            if any(n in snaps.values() for n in chain[1:]):
                continue  # below another point
            origin = next((n for n in chain if count[n] > 1), chain[-1])
            origins[lab] = int(origin)
            top = hub if hub is not None else origin
            path = bronchus_path(snaps[lab], top, origin, parent, kids, size, min_nodes)
            tube = fit_tube(lab, path, world[top], float(radius[top]), world, radius)
            tubes.append(refine_tube(tube, voxels, tree, voxel_volume))
        if joint is not None and hub is not None:
            fitted = [lab for lab in labs if lab in origins]  # an origin is recorded with each tube
            for group, node in branching_groups(fitted, origins, hub, snaps, parent, world, radius):
                if node != hub:  # a lower branching is merged like the hub: its tubes decide there too
                    junction |= np.linalg.norm(world - world[node], axis=1) <= radius[node]
                _refit_group(tubes, group, labs, node, node == hub, parent, world, radius,
                             lambda *args: joint(lobe, *args))
    return tubes, junction


def branching_groups(labs: list, origins: dict, hub: int, snaps: dict, parent: np.ndarray, world: np.ndarray,
                     radius: np.ndarray) -> list:
    """[(labels, branching skeleton voxel)]: a lobe's segmental bronchi grouped by the branching they leave.

    A bronchus whose origin (where its path meets another point's) lies within the hub's inscribed
    radius + 1 mm of the hub leaves the hub; the others are grouped by origin in the same sense
    around each other's (e.g. S7-S10 at the end of the basal trunk), their branching being the
    deepest skeleton voxel above all of them. Groups of one are left out.
    """
    def near(a: int, b: int) -> bool:
        return float(np.linalg.norm(world[a] - world[b])) <= float(radius[b]) + 1.0

    groups = [([lab for lab in labs if near(origins[lab], hub)], hub)]
    rest = [lab for lab in labs if lab not in groups[0][0]]
    while rest:
        first = rest[0]
        group = [lab for lab in rest if near(origins[lab], origins[first]) or near(origins[first], origins[lab])]
        rest = [lab for lab in rest if lab not in group]
        groups.append((group, _common_ancestor([snaps[lab] for lab in group], parent)))
    return [(g, node) for g, node in groups if len(g) >= 2]


def _refit_group(tubes: list, labs: list, lobe_labs: list, node: int, at_hub: bool, parent: np.ndarray,
                 world: np.ndarray, radius: np.ndarray, joint: Callable, feed_mm: float = 8.0) -> None:
    """Replace, in place, the tubes of ``labs`` (leaving skeleton voxel ``node``) by ``joint``'s fit.

    The fit starts all of them at one point: at a lobe's hub the mean of their starts (each was
    extended back to the hub), elsewhere the branching voxel. The feeding bronchus is the skeleton
    from ``node`` up to ``feed_mm`` above it (its end and median inscribed radius start its
    capsule); the lobe's other tubes (labels ``lobe_labs`` outside ``labs``) stay as they are but
    are part of the union the fit explains the mask with. A branching at the root is left as it
    is, as is a group whose fit ``joint`` refuses.
    """
    up, n = [], int(node)
    while parent[n] >= 0 and np.linalg.norm(world[n] - world[node]) < feed_mm:
        n = int(parent[n])
        up.append(n)
    if not up:
        return
    mine = [k for k, t in enumerate(tubes) if t.label in labs]  # two or more (branching_groups)
    start = np.mean([tubes[k].start for k in mine], axis=0) if at_hub else world[node].copy()
    fixed = tuple(t for k, t in enumerate(tubes) if k not in mine and t.label in lobe_labs)
    fitted = joint([tubes[k] for k in mine], start, world[up[-1]], float(np.median(radius[up])), fixed)
    for k, tube in zip(mine, fitted or []):
        tubes[k] = tube


def deepest_labels(points: np.ndarray, node_world: np.ndarray, node_radius: np.ndarray, node_label: np.ndarray,
                   tubes: list, k: int = 24, skip: np.ndarray | None = None,
                   inside: Callable[[np.ndarray], np.ndarray] | None = None, step_mm: float = 0.5,
                   voxel_index: np.ndarray | None = None) -> np.ndarray:
    """(N,) label of the tube each RAS point is deepest in: skeleton balls and fitted tubes.

    Args:
        points: (N, 3) RAS mm airway voxel centres.
        node_world, node_radius, node_label: Skeleton voxels (RAS mm), inscribed radii (mm), labels.
        tubes: Fitted :class:`Tube` s of the segmental bronchi.
        skip: Optional (N_nodes,) boolean mask of skeleton voxels left out (the merged branchings).
        k: Nearest skeleton voxels searched per point (the deepest ball is among them: a ball
            farther than the k-th nearest lies on another stretch of airway).
        inside: Optional test of (M, 3) RAS points → (M,) bool, inside the airway mask. A point
            outside its best ball then takes the best of its ``k`` balls whose centre it sees
            through the airways, and a tube it lies outside of only if it sees the tube's axis:
            near a thin branch's tip, where the skeleton stops short, a thicker neighbour across
            a gap of lung is nearer in ``distance − radius`` but is not the airway the point lies in.
        step_mm: Sampling step of those sight lines (half a voxel or less, so no gap is stepped over).
        voxel_index: With ``inside``, (N, 3) integer voxel indices of the points. A point that sees
            none of its balls and that no tube claims (a voxel at the tip of a thin branch, millimetres
            past the end of its skeleton, behind a corner of the mask) then takes its label from the
            points it touches (26-neighbours), grown from the decided points through chains of
            neighbours; without it, or where no chain reaches, it keeps its best ball.

    Returns:
        (N,) uint8 labels; 0 for points whose balls were all skipped and that no tube claims.
    """
    k = min(k, len(node_world))
    d, n = cKDTree(node_world).query(points, k=k, workers=2)
    d, n = d.reshape(len(points), k), n.reshape(len(points), k)
    score = d - node_radius[n]
    if skip is not None:
        score[skip[n]] = np.inf
    best = np.argmin(score, axis=1)
    rows = np.arange(len(points))
    blind = np.zeros(len(points), dtype=bool)
    if inside is not None:
        best, blind = _best_in_sight(points, node_world, n, score, best, inside, step_mm)
    labels, depth = node_label[n[rows, best]].copy(), score[rows, best]
    for tube in tubes:
        td = tube_depth(points, tube)
        win = td < depth
        if inside is not None:  # outside the tube, it too must be seen through the airways
            far = np.nonzero(win & (td > 0))[0]
            win[far] = _sees(points[far], _axis_foot(points[far], tube), inside, step_mm)
        labels[win], depth[win] = tube.label, td[win]
        blind[win] = False
    labels[~np.isfinite(depth)] = 0  # only skipped balls near: no label rather than a skipped one's
    if voxel_index is not None and blind.any():
        _fill_from_neighbours(voxel_index, labels, blind)
    return labels


def _fill_from_neighbours(voxel_index: np.ndarray, labels: np.ndarray, blind: np.ndarray) -> None:
    """Labels of the ``blind`` points, in place: each takes the most common label among its decided
    26-neighbours (``voxel_index`` one apart at most along each axis, whatever the spacing), in rounds,
    so labels grow along the mask from the decided points; blind points no chain reaches keep theirs."""
    todo = np.nonzero(blind)[0]
    index = np.asarray(voxel_index, dtype=np.float64)
    near = cKDTree(index).query_ball_point(index[todo], 1.0 + 1e-9, p=np.inf, workers=2)
    known = ~blind
    while len(todo):
        found = {}
        for t, nbrs in zip(todo, near):
            seen = [j for j in nbrs if known[j]]
            if seen:
                found[t] = int(np.bincount(labels[seen]).argmax())
        if not found:
            return
        for t, lab in found.items():
            labels[t], known[t] = lab, True
        keep = [k for k, t in enumerate(todo) if t not in found]
        todo, near = todo[keep], [near[k] for k in keep]


def _sees(points: np.ndarray, targets: np.ndarray, inside, step_mm: float, chunk: int = 2_000_000) -> np.ndarray:
    """(N,) bool: the straight segment from each point to its target stays in the airways, tested
    at interior points at most ``step_mm`` apart (in pieces of about ``chunk`` test points)."""
    if not len(points):
        return np.zeros(0, dtype=bool)
    longest = float(np.linalg.norm(targets - points, axis=1).max())
    samples = max(1, int(np.ceil(longest / step_mm)))
    t = (np.arange(1, samples + 1) / (samples + 1))[None, :, None]
    out = np.empty(len(points), dtype=bool)
    rows = max(1, chunk // samples)
    for a in range(0, len(points), rows):
        p, q = points[a:a + rows], targets[a:a + rows]
        path = p[:, None, :] + t * (q - p)[:, None, :]
        out[a:a + rows] = inside(path.reshape(-1, 3)).reshape(len(p), samples).all(axis=1)
    return out


def _best_in_sight(points, node_world, n, score, best, inside, step_mm: float) -> tuple:
    """Column of the best-scoring ball each point outside its best ball sees through the mask.

    A point inside its best ball sees its centre (the ball lies in the airways). The others
    try their balls best first; the straight segment to a ball's centre is sampled every
    ``step_mm`` at most; skipped balls (infinite score, sorted last) are never tried. A point that
    sees none keeps its best ball and is flagged; one whose balls are all skipped is neither tried
    nor flagged.

    Returns:
        (best columns, (N,) bool: the points that saw none of their balls).
    """
    blind = np.zeros(len(points), dtype=bool)
    top = score[np.arange(len(points)), best]
    rows = np.nonzero((top > 0) & np.isfinite(top))[0]
    if not len(rows):
        return best, blind
    order = np.argsort(score[rows], axis=1)
    out = best.copy()
    open_rows = np.ones(len(rows), dtype=bool)
    for col in range(order.shape[1]):
        r = rows[open_rows]
        c = order[open_rows, col]
        live = np.isfinite(score[r, c])
        if not live.any():
            break
        seen = np.zeros(len(r), dtype=bool)
        seen[live] = _sees(points[r[live]], node_world[n[r[live], c[live]]], inside, step_mm)
        out[r[seen]] = c[seen]
        idx = np.nonzero(open_rows)[0]
        open_rows[idx[seen]] = False
        if not open_rows.any():
            break
    blind[rows[open_rows]] = True
    return out, blind
