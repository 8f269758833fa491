"""Segmental identity from one point per segmental bronchus: propagate labels down the airway skeleton.

1. The airway mask (cropped to its bounding box) is thinned to a 1-voxel
   skeleton (``skimage.morphology.skeletonize``, Lee et al. 1994 in 3-D).
2. The skeleton voxels form a graph (26-neighbourhood); the root is the skeleton
   voxel deepest inside the airways (largest distance to the wall: the trachea).
3. A shortest-path tree from the root (a step costs length / local radius², so
   thin contacts between touching bronchi are avoided) gives every skeleton voxel a parent;
   each point is snapped to its nearest skeleton voxel and its label is carried
   up to the bronchus' origin (where its path to the root meets another point's
   path); a voxel's label is the label of the nearest labelled ancestor, so a
   label covers the segmental bronchus and the whole subtree below it.
4. Every airway voxel takes the label of the tube it is deepest in (smallest
   ``distance to axis − radius``): the skeleton voxels' inscribed balls, and one
   straight tube per segmental bronchus fitted below the merged branching and
   reaching back to it (:mod:`AnatomyINRLib.pulmonary._airway_tubes`), then
   refitted together with the lobe's other tubes, as one union of capsules, to
   the mask around the branching (:mod:`AnatomyINRLib.pulmonary._hub_fit`); it
   keeps the label only inside that segment's lobe. A segment's balls stay inside
   its fitted bronchus, skeleton voxels inside a fitted bronchus that carry
   another label (or none) give way to the tube, and a voxel outside its best
   ball or tube takes only one it sees through the airways; one that sees none
   takes the label of the airway voxels it touches.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.pulmonary._airway_tubes import deepest_labels, segment_tubes, tube_depth
from AnatomyINRLib.pulmonary._hub_fit import fit_lobe_tubes
from AnatomyINRLib.pulmonary.config import LOBE_NAMES, N_SEGMENTS, SEGMENTS, segment_lobe

_OFFSETS = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
                     if (a, b, c) > (0, 0, 0)])  # 13 forward offsets of the 26-neighbourhood


def _crop_box(mask: np.ndarray) -> tuple:
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    return tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, mask.shape))


def skeleton_graph(skeleton: np.ndarray):
    """(N, 3) skeleton voxel indices and the (N, N) symmetric adjacency (26-neighbourhood)."""
    idx = np.argwhere(skeleton)
    node = np.full(skeleton.shape, -1, dtype=np.int64)
    node[tuple(idx.T)] = np.arange(len(idx))
    rows, cols = [], []
    padded = np.pad(node, 1, constant_values=-1)
    for off in _OFFSETS:
        nb = padded[tuple(idx.T + 1 + off[:, None])]
        ok = nb >= 0
        rows.append(np.nonzero(ok)[0])
        cols.append(nb[ok])
    r, c = np.concatenate(rows), np.concatenate(cols)
    adj = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(len(idx), len(idx))).tocsr()
    return idx, adj + adj.T


def propagate_point_labels(airways: np.ndarray, grid: ImageGrid, lobes: np.ndarray, points: dict,
                           max_distance_mm: float, progress=None) -> tuple[np.ndarray, dict]:
    """Labelled airways (uint8 1-18) from one RAS point per segment label.

    Args:
        airways: Boolean airway mask on ``grid``.
        grid: Geometry of the masks.
        lobes: uint8 lobe labels on ``grid``.
        points: Segment label → (3,) RAS mm point on its segmental bronchus.
        max_distance_mm: A point farther than this from the skeleton is refused.
        progress: Optional ``ProgressReporter`` ("propagate" events, one per lobe fitted; honours cancel).

    Returns:
        (labelled uint8 array, info dict with skeleton size and snap distances).

    Raises:
        InputError: a point too far from the airways, or a segment whose subtree is empty in its lobe.
    """
    labelled, info = label_airways(airways, grid, lobes, points, max_distance_mm, progress)
    present = set(np.unique(labelled).tolist())
    missing = [f"{SEGMENTS[v][0]}" for v in range(1, N_SEGMENTS + 1) if v not in present]
    if missing:
        raise InputError("segment_points: the airway subtree below the point of " + ", ".join(missing)
                         + " is empty inside its lobe; these segments cannot be produced "
                         "(move the point onto the segmental bronchus)")
    return labelled, info


def label_airways(airways: np.ndarray, grid: ImageGrid, lobes: np.ndarray, points: dict,
                  max_distance_mm: float, progress=None) -> tuple[np.ndarray, dict]:
    """Steps 1-4 of the module for any subset of the segments (:func:`propagate_point_labels` without
    the check that every segment got voxels); same arguments and result."""
    from skimage.morphology import skeletonize

    box = _crop_box(airways)
    mask = airways[box]
    skeleton = skeletonize(mask).astype(bool)
    if not skeleton.any():
        raise InputError("airways: the mask has no skeleton (is it a thin or empty mask?)")
    idx, adj = skeleton_graph(skeleton)
    offset = np.array([s.start for s in box])
    world = grid.index_to_world(idx + offset)
    depth = ndimage.distance_transform_edt(mask, sampling=grid.spacing)
    root = int(np.argmax(depth[tuple(idx.T)]))
    order, parent = _root_tree(adj, idx, grid, depth[tuple(idx.T)], root)
    tree = cKDTree(world)
    seeds, snaps = np.zeros(len(idx), dtype=np.uint8), {}
    for lab, p in points.items():
        d, n = tree.query(p)
        if d > max_distance_mm:
            raise InputError(f"segment_points: point {SEGMENTS[lab][0]!r} is {d:.1f} mm from the airway "
                             f"skeleton (at most {max_distance_mm:g} mm allowed); place it on its segmental bronchus")
        seeds[n] = lab
        snaps[SEGMENTS[lab][0]] = round(float(d), 2)
    moved = _resolve_nested(seeds, parent, order)
    snaps = {int(seeds[n]): int(n) for n in np.nonzero(seeds)[0]}
    radius = depth[tuple(idx.T)]
    voxels = grid.index_to_world(np.argwhere(mask) + offset)
    def joint(lobe, lobe_tubes, start, feed_end, feed_radius, fixed):  # the tubes leaving one branching, together
        if progress is not None:
            progress.report("propagate", 0.1 + 0.16 * lobe, "fitting the segmental bronchi at a branching of "
                            f"the {LOBE_NAMES.get(lobe, lobe)}")
        return fit_lobe_tubes(lobe_tubes, start, feed_end, feed_radius, mask, grid, offset, fixed=fixed)

    tubes, junction = segment_tubes(snaps, parent, order, world, radius, {lab: segment_lobe(lab) for lab in snaps},
                                    voxels, float(np.prod(grid.spacing)), joint=joint)
    _extend_to_origin(seeds, parent)
    node_label = np.zeros(len(idx), dtype=np.uint8)
    for n in order:  # parents come before children in breadth-first order
        node_label[n] = seeds[n] if seeds[n] else (node_label[parent[n]] if parent[n] >= 0 else 0)
    skip = junction | _foreign_in_tubes(world, node_label, tubes)
    labelled = _label_voxels(mask, box, grid, world, _ball_radius(radius, world, node_label, tubes), node_label,
                             tubes, lobes, skip, inside=grid.with_array(airways).nearest_values)
    return labelled, {"skeleton_voxels": int(len(idx)), "root_ras": world[root].round(2).tolist(),
                      "snap_distance_mm": snaps, "moved_off_another_path": moved}


def _root_tree(adj, idx: np.ndarray, grid: ImageGrid, radius: np.ndarray, root: int):
    """(order, parent): shortest-path forest where a step costs length / radius².

    Touching bronchi make loops in the skeleton; a plain breadth-first tree may then route a
    bronchus through the thin contact. Thin passages are expensive here, so each skeleton voxel
    hangs from its own bronchus. A piece of the airways cut off from the trachea (a gap in the
    segmentation) is rooted at its own widest voxel. ``order`` lists nodes parents first.
    """
    n_comp, comp = csgraph.connected_components(adj, directed=False)
    roots = [root] + [int(np.flatnonzero(comp == c)[np.argmax(radius[comp == c])])
                      for c in range(n_comp) if c != comp[root]]
    coo = sparse.triu(adj, k=1).tocoo()
    step = grid.index_to_world(idx[coo.row]) - grid.index_to_world(idx[coo.col])
    r = np.maximum(np.minimum(radius[coo.row], radius[coo.col]), 0.5)
    w = np.linalg.norm(step, axis=1) / r**2
    graph = sparse.coo_matrix((w, (coo.row, coo.col)), shape=adj.shape).tocsr()
    dist, parent, _ = csgraph.dijkstra(graph, directed=False, indices=roots, min_only=True,
                                       return_predecessors=True)
    order = np.argsort(dist, kind="stable")
    return order, np.where(parent < 0, -1, parent)


def _resolve_nested(seeds: np.ndarray, parent: np.ndarray, order: np.ndarray, min_nodes: int = 5) -> list:
    """Move a point that snapped onto another segment's path into its own branch, in place.

    Where two segmental bronchi leave together, they can merge into one tube on the skeleton
    and a point on the first bronchus snaps onto the path down to the second one. That point
    (an ancestor of another point) is moved down its path to the first branching and onto
    the largest side branch not leading to another point (branches under ``min_nodes``
    skeleton voxels are spurs and skipped). Returns the labels that were moved.
    """
    children: dict = {}
    for n in order[1:]:
        children.setdefault(int(parent[n]), []).append(int(n))
    size = np.ones(len(seeds), dtype=np.int64)
    for n in order[::-1][:-1]:
        size[parent[n]] += size[n]
    on_path = np.zeros(len(seeds), dtype=bool)  # nodes strictly above some point
    for start in np.nonzero(seeds)[0]:
        n = parent[start]
        while n >= 0 and not on_path[n]:
            on_path[n] = True
            n = parent[n]
    moved = []
    for start in np.nonzero(seeds & on_path)[0] if seeds.dtype == bool else np.nonzero((seeds > 0) & on_path)[0]:
        n = int(start)
        while True:
            kids = children.get(n, [])
            side = [k for k in kids if not on_path[k] and not seeds[k] and size[k] >= min_nodes]
            if side:
                target = max(side, key=lambda k: size[k])
                seeds[target], seeds[start] = seeds[start], 0
                moved.append(SEGMENTS[int(seeds[target])][0])
                break
            nxt = [k for k in kids if on_path[k] or seeds[k]]
            if not nxt or seeds[nxt[0]]:
                break
            n = nxt[0]
    return moved


def _extend_to_origin(seeds: np.ndarray, parent: np.ndarray) -> None:
    """Label each point's segmental bronchus up to its origin, in place.

    The origin is where the point's path to the root meets another point's path (the
    branching from the lobar or a shared bronchus): walk up from each snapped voxel while no
    other point's path passes through the parent. Side spurs of the skeleton do not stop it.
    A point lying below another point in the traversal (bronchi touching on the skeleton) is
    not extended, so it cannot take over the other segment's subtree.
    """
    paths = np.zeros(len(seeds), dtype=np.int32)
    nested = set()
    for start in np.nonzero(seeds)[0]:
        n = start
        while n >= 0:
            paths[n] += 1
            if n != start and seeds[n]:
                nested.add(start)
            n = parent[n]
    for start in np.nonzero(seeds)[0]:
        if start in nested:  # below another point (touching bronchi made a loop): keep its subtree only
            continue
        lab, n = seeds[start], parent[start]
        while n >= 0 and paths[n] == 1 and not seeds[n]:
            seeds[n] = lab
            n = parent[n]


def _foreign_in_tubes(world: np.ndarray, node_label: np.ndarray, tubes: list) -> np.ndarray:
    """(N,) bool: skeleton voxels inside a fitted segmental bronchus, past its start, labelled otherwise.

    Where a neighbour's path to the root runs through the first millimetres of a segmental
    bronchus (their skeletons merged), those voxels are shared and stay unlabelled, or carry
    the neighbour's label; the fitted tube is the bronchus there, so their balls must not
    outbid it. The tube's start (within one radius of it: the branching) keeps its skeleton.
    """
    out = np.zeros(len(world), dtype=bool)
    for tube in tubes:
        other = np.nonzero(node_label != tube.label)[0]
        length = float(np.linalg.norm(tube.end - tube.start))
        axial = (world[other] - tube.start) @ (tube.end - tube.start) / max(length, 1e-9)
        out[other[(tube_depth(world[other], tube) < 0) & (axial > tube.radius)]] = True
    return out


def _ball_radius(radius: np.ndarray, world: np.ndarray, node_label: np.ndarray, tubes: list) -> np.ndarray:
    """Inscribed radii of a segment's skeleton voxels, kept inside its fitted bronchus.

    Near a branching a segment's skeleton runs through the merged lumen, where the inscribed
    ball is wider than the bronchus and would claim the neighbour's wall. A skeleton voxel inside
    its segment's fitted tube gets at most its distance to the tube's wall; any voxel of the
    segment at most the tube's radius (nothing below a segmental bronchus is wider than it).
    """
    out = radius.copy()
    for tube in tubes:
        sel = np.nonzero(node_label == tube.label)[0]
        depth = tube_depth(world[sel], tube)
        cap = np.where(depth < 0, -depth, tube.radius)
        out[sel] = np.minimum(out[sel], cap)
    return out


def _label_voxels(mask, box, grid, node_world, node_radius, node_label, tubes, lobes, skip, inside) -> np.ndarray:
    """Every airway voxel → label of the tube it is deepest in, kept only inside that segment's lobe.

    The tubes are the skeleton's inscribed balls and the fitted segmental bronchi
    (:func:`~AnatomyINRLib.pulmonary._airway_tubes.deepest_labels`, seen through the mask by
    ``inside``, RAS points → bool; the
    skeleton voxels in ``skip``, those of the merged branchings and those inside a fitted
    bronchus that carry another label or none, are left out); a voxel deepest in an unlabelled tube
    (trachea, main, lobar bronchi) stays 0.
    """
    full = np.argwhere(mask) + np.array([s.start for s in box])
    labs = deepest_labels(grid.index_to_world(full), node_world, node_radius, node_label, tubes, skip=skip,
                          inside=inside, step_mm=0.5 * float(min(grid.spacing)),
                          voxel_index=full)
    lobe_of = np.array([0] + [segment_lobe(v) for v in range(1, N_SEGMENTS + 1)], dtype=np.uint8)
    keep = (lobe_of[labs] == lobes[tuple(full.T)]) & (labs > 0)
    out = np.zeros(lobes.shape, dtype=np.uint8)
    out[tuple(full[keep].T)] = labs[keep]
    return out
