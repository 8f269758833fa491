"""Centreline trees as branch tokens, for a diffusion model over trees' centrelines (stage 2, centreline model).

Why: the weight-space model (TrIND) samples networks whose surfaces come out in pieces at a CPU budget
(docs/tree-synthesis-stage2-record.md). Here a tree is its branches, each a token; every token starts
where its parent branch ends, so every decoded sample is one connected tree by construction, and the
surface is the exact union of capsules around the centreline (``phantoms.tree_synth.tree_mesh``),
meshable at any spacing.

A tree (:class:`~AnatomyINRLib.core.types.CenterlineGraph`, RAS mm) must be rooted at an inlet node
with one child and branch at most in two. Its **branches** run from the inlet or a bifurcation to the
next bifurcation or terminal. They are listed in depth-first preorder, the wider child first (ties: the
order of the graph). A branch is resampled at P points of equal arc length (its start excluded, its end
included) and becomes one token of F = 3·P + 6 values:

* its start point (mm; only the first branch's is used when decoding: every other branch starts
  where its parent ends);
* its chord c from start to end: the unit direction c / |c| and log |c| (mm), so that the denoiser
  predicts a branch's length as one number (offsets in mm came out shrunk: an x̂₀ uncertain of a
  direction averages offset vectors, which shortens them);
* the P − 1 inner points' deviations from the chord (point − (start + (k/P)·c), over |c|);
* the log of its radius (mm; the radius of its first segment);
* a flag: 1 when the branch ends in a bifurcation, 0 at a terminal.

Up to K branches per tree (K = 2·bifurcations + 1); unused slots are padding (flag −1). The flag makes
the preorder list decodable: reading the tokens in order with a stack of open bifurcations rebuilds
the tree (:func:`decode_tokens`), after a sample's flags are replaced by the nearest flags of a
tree (:func:`valid_flags`). Every value except the flag is normalised by its feature's mean and
spread over the training set's branches, so padding is 0.
"""

from __future__ import annotations

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import CenterlineGraph

REPRESENTATION = "centerline"
LAYER = "branches"  # one layer of (K, F) values, cut into one token per branch (token_size F)
CLIP = 10.0  # decoded values are clipped to the training mean ± CLIP spreads
POINTS_PER_BRANCH = 8  # P of the `centerline` preset (its token_size is token_size(8) = 30)


def token_size(points_per_branch: int) -> int:
    """F: values per branch token (start 3, direction 3, log length 1, deviations 3·(P − 1), log radius, flag)."""
    return 3 * int(points_per_branch) + 6


def _branches(graph: CenterlineGraph, where: str) -> list:
    """[(path (n, 3) mm from the branch's start node, radius mm, ends in a bifurcation)] in preorder."""
    kids = graph.children()
    if len(kids[0]) != 1:
        raise InputError(f"{where}: expected the root (node 0) to be an inlet with one child, it has {len(kids[0])}")
    wide = [k for k in range(len(kids)) if len(kids[k]) > 2]
    if wide:
        raise InputError(f"{where}: expected a binary tree, node {wide[0]} has {len(kids[wide[0]])} children")
    out, stack = [], [(0, kids[0][0])]  # (start node, first node after it) of branches still to list
    while stack:
        k, c = stack.pop()
        path, j = [graph.points[k], graph.points[c]], c
        while len(kids[j]) == 1:
            j = kids[j][0]
            path.append(graph.points[j])
        out.append((np.asarray(path), float(graph.radius[c]), len(kids[j]) == 2))
        if len(kids[j]) == 2:  # the wider child is popped (listed) first; stable sort keeps graph order on ties
            for child in sorted(kids[j], key=lambda n: -graph.radius[n])[::-1]:
                stack.append((j, child))
    return out


def _resample(path: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) points at equal arc length along a polyline, its start excluded and its end included."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    q = np.linspace(0.0, s[-1], n + 1)[1:]
    return np.stack([np.interp(q, s, path[:, d]) for d in range(3)], axis=1)


def encode_graph(graph: CenterlineGraph, max_branches: int, points_per_branch: int, where: str = "graph") -> np.ndarray:
    """(K, F) raw (not normalised) branch tokens of one tree; padding rows have flag −1 and zeros."""
    branches = _branches(graph, where)
    if len(branches) > max_branches:
        raise InputError(f"{where}: has {len(branches)} branches ({(len(branches) - 1) // 2} bifurcations), "
                         f"the model holds at most {max_branches}")
    tok = np.zeros((max_branches, token_size(points_per_branch)), dtype=np.float64)
    tok[:, -1] = -1.0
    inner = np.arange(1, points_per_branch)[:, None] / points_per_branch
    for i, (path, radius, bifurcates) in enumerate(branches):
        points = _resample(path, points_per_branch)
        chord = points[-1] - path[0]
        length = float(np.linalg.norm(chord))
        if length < 1e-3:  # its direction is undefined and its deviations would divide by ~0
            raise InputError(f"{where}: branch {i} (preorder) ends where it starts (chord {length:.1e} mm); "
                             f"expected every branch to reach away from its start")
        tok[i, :3] = path[0]
        tok[i, 3:6] = chord / length
        tok[i, 6] = np.log(length)
        tok[i, 7:-2] = ((points[:-1] - (path[0] + inner * chord)) / length).ravel()
        tok[i, -2] = np.log(radius)
        tok[i, -1] = 1.0 if bifurcates else 0.0
    return tok


def centerline_training_set(graphs: list, names: list, config_token_size: int, max_bifurcations: int = 12,
                            points_per_branch: int = POINTS_PER_BRANCH) -> tuple:
    """(weights (N, K·F) float32, layout, info) of N trees for :func:`~AnatomyINRLib.trees.api.train_model`.

    ``info`` holds the representation, K, P and the per-feature normalisation; the checkpoint keeps it
    so that samples decode back to trees. ``config_token_size``: the DiffusionConfig's, which must be
    one branch token's F. Raises InputError naming the first tree that does not fit.
    """
    if config_token_size != token_size(points_per_branch):
        raise InputError(f"token_size: the centreline model needs {token_size(points_per_branch)} (one token per "
                         f"branch), got {config_token_size}; use the preset 'centerline'")
    if not graphs:
        raise InputError("graphs: expected at least one centreline tree")
    if int(max_bifurcations) != max_bifurcations or not 1 <= max_bifurcations <= 100:
        raise InputError(f"max_bifurcations: expected an integer in [1, 100], got {max_bifurcations!r}")
    if int(points_per_branch) != points_per_branch or not 2 <= points_per_branch <= 64:
        raise InputError(f"points_per_branch: expected an integer in [2, 64], got {points_per_branch!r}")
    k = 2 * int(max_bifurcations) + 1
    raw = np.stack([encode_graph(g, k, int(points_per_branch), f"tree {n!r}") for g, n in zip(graphs, names)])
    real = raw[:, :, -1] >= 0
    feats = raw[real][:, :-1]
    mean, scale = feats.mean(axis=0), feats.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    info = {"representation": REPRESENTATION, "max_branches": k, "points_per_branch": int(points_per_branch),
            "feature_mean": [float(v) for v in mean], "feature_scale": [float(v) for v in scale],
            "trees": len(graphs)}
    return normalise(raw, info).reshape(len(graphs), -1).astype(np.float32), [(LAYER, (k, raw.shape[2]))], info


def normalise(raw: np.ndarray, info: dict) -> np.ndarray:
    """(..., K, F) raw tokens → normalised (padding → 0, flags kept)."""
    out = raw.copy()
    real = raw[..., -1] >= 0
    z = (raw[..., :-1] - np.asarray(info["feature_mean"])) / np.asarray(info["feature_scale"])
    out[..., :-1] = np.where(real[..., None], z, 0.0)
    return out


def check_centerline_info(info: dict, layout, where: str) -> None:
    """InputError unless ``info`` describes branch tokens that match ``layout``."""
    try:
        k, p = int(info["max_branches"]), int(info["points_per_branch"])
        f = token_size(p)
        ok = (len(info["feature_mean"]) == f - 1 and len(info["feature_scale"]) == f - 1
              and [tuple(s) for _, s in layout] == [(k, f)])
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{where}: its centreline description does not match its token layout {layout}")


def valid_flags(flags: np.ndarray) -> np.ndarray:
    """(K,) sampled flags → the nearest (least squares) flags of a tree: (K,) in {1, 0, −1}.

    Valid flags are a full binary tree's branches in preorder (1 bifurcation, 0 terminal) followed by
    padding (−1) only, the tree closing within the K slots. Why not read the flags one by one (above
    0.5 opens a bifurcation): the denoiser is unsure of single flags, and one bifurcation read as a
    terminal closes the tree early although the tokens after it are branches, not padding (a sample's
    size is in all its flags). On 300 samples of the benchmark model, reading one by one gave 5.7
    bifurcations per tree (42 trees of 10–12), these flags 6.6 (73), the training trees 6.7 (86)
    (docs/tree-synthesis-stage2-record.md, *Reading the flags as a whole*).

    Dynamic programming over (token i, open branches o): a branch token with o open leaves o − 1
    (terminal) or o + 1 (bifurcation) open, a padding token needs o = 0, and o must be 0 after the
    last token. O(K²); ties go to the terminal.
    """
    f = np.asarray(flags, dtype=np.float64)
    k = len(f)
    cost = np.full(k + 2, np.inf)  # cost-to-go with o open branches before token i (here i = K)
    cost[0] = 0.0
    bifurcate = np.zeros((k, k + 1), dtype=bool)
    o = np.arange(1, k + 1)
    for i in range(k - 1, -1, -1):
        terminal, split = f[i] ** 2 + cost[o - 1], (f[i] - 1.0) ** 2 + cost[o + 1]
        bifurcate[i, 1:] = split < terminal
        cost = np.concatenate([[(f[i] + 1.0) ** 2 + cost[0]], np.minimum(terminal, split), [np.inf]])
    out, is_open = np.full(k, -1, dtype=np.int64), 1
    for i in range(k):
        if is_open:
            out[i] = int(bifurcate[i, is_open])
            is_open += 2 * out[i] - 1
    return out


def branch_parents(flags: np.ndarray) -> np.ndarray:
    """(B, K) sampled flags → (B, K) parent branch of each token: −1 the root, −2 padding (preorder)."""
    parents = np.full(flags.shape, -2, dtype=np.int64)
    for b, row in enumerate(np.asarray(flags, dtype=np.float64)):
        stack = [-1]
        for i, flag in enumerate(valid_flags(row)):
            if flag < 0:
                break
            parents[b, i] = stack.pop()
            if flag == 1:
                stack += [i, i]
    return parents


def branch_points(values: torch.Tensor, parents: np.ndarray, points_per_branch: int) -> tuple:
    """Differentiable decoding: (B, K, F − 1) values in mm units (not normalised, no flag) →
    ((B, K, P + 1, 3) points of each branch from its start to its end, (B, K) radii), RAS mm.

    A branch starts at its parent's end (the root at its own start); ``decode_tokens`` builds its graph
    from these points, the keep-apart guidance differentiates through them. Padding tokens get points
    too (from the root's start); masks leave them out.
    """
    b, k = values.shape[:2]
    p = int(points_per_branch)
    inner = torch.arange(1, p, dtype=values.dtype)[:, None] / p
    par = torch.as_tensor(parents)
    rows = torch.arange(b)
    start, ends, points = values[:, 0, :3], [], []
    for i in range(k):  # preorder: a parent is always before its children
        base = start
        if i > 0:
            from_parent = torch.stack(ends, 1)[rows, par[:, i].clamp(0, i - 1)]
            base = torch.where((par[:, i] >= 0)[:, None], from_parent, start)
        length = torch.exp(values[:, i, 6].clamp(-7.0, 7.0))
        direction = values[:, i, 3:6]
        chord = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-9) * length[:, None]
        bends = values[:, i, 7:-1].reshape(b, p - 1, 3) * length[:, None, None]
        inside = base[:, None] + inner[None] * chord[:, None] + bends
        points.append(torch.cat([base[:, None], inside, (base + chord)[:, None]], 1))
        ends.append(base + chord)
    return torch.stack(points, 1), torch.exp(values[:, :, -1].clamp(-7.0, 7.0))


def decode_tokens(vector: np.ndarray, info: dict) -> CenterlineGraph:
    """One sampled (K·F,) normalised vector → a connected CenterlineGraph (RAS mm).

    The flags are first replaced by the nearest valid ones, and the tokens read in preorder with a
    stack of open bifurcations (:func:`branch_parents`: a flag 1 opens two child branches at its end);
    each branch's points (:func:`branch_points`) then join the graph at its parent's end. NaN values
    become the feature's mean and values are clipped to ±``CLIP`` spreads, so every vector decodes.
    """
    k, p = int(info["max_branches"]), int(info["points_per_branch"])
    tok = np.asarray(vector, dtype=np.float64).reshape(k, token_size(p))
    # a diverged sample stays a tree: NaN → the feature's mean, anything beyond 10 spreads clipped
    # (the benchmark's samples stay within 8)
    tok = np.clip(np.nan_to_num(tok, nan=0.0), -CLIP, CLIP)
    parents = branch_parents(tok[None, :, -1])[0]
    values = tok[:, :-1] * np.asarray(info["feature_scale"]) + np.asarray(info["feature_mean"])
    points, radius = (a[0].numpy() for a in branch_points(torch.from_numpy(values[None]), parents[None], p))
    pts, par, rad, ends = [points[0, 0]], [-1], [float(radius[0])], {}
    for i in np.flatnonzero(parents > -2):  # preorder: a branch's parent is decoded before it
        prev = 0 if parents[i] < 0 else ends[parents[i]]
        for point in points[i, 1:]:
            pts.append(point)
            par.append(prev)
            rad.append(float(radius[i]))
            prev = len(pts) - 1
        ends[i] = prev
    return CenterlineGraph(np.asarray(pts), np.asarray(par), np.asarray(rad))


def centerline_meshes(graphs: list, spacing_mm: float, reporter) -> tuple:
    """(meshes, report entries) of sampled trees: the exact capsule union around each centreline,
    meshed by marching cubes at ``spacing_mm`` (``phantoms.tree_synth.tree_mesh``). A decoded tree is
    connected, so a mesh has one piece unless two of its capsules only touch at the spacing used."""
    from AnatomyINRLib.meshing.postprocess import component_areas
    from AnatomyINRLib.phantoms.tree_synth import tree_mesh
    from AnatomyINRLib.trees.api import mesh_entry

    meshes, entries = [], []
    for i, graph in enumerate(graphs):
        mesh = tree_mesh(graph, float(spacing_mm))
        areas = sorted(component_areas(mesh)[1], reverse=True)
        meshes.append(mesh)
        entries.append(mesh_entry(mesh, areas))
        reporter.report("mesh", (i + 1) / len(graphs), f"meshed tree {i + 1}/{len(graphs)}")
    return meshes, entries
