"""Seeded synthetic vessel trees grown toward demand points (after VascuSynth's principles).

Own implementation of the ideas of Hamarneh & Jassi (VascuSynth, CMIG 2010),
a constrained-constructive-optimisation (CCO) growth:

1. A root segment runs from an inlet on the top of an ellipsoidal domain to a
   first demand point.
2. Each further terminal is a *demand point* drawn uniformly in the domain and
   accepted only where the existing tree does not already supply it (farther
   than ``min_distance`` from every segment; the distance shrinks when the
   domain fills up), the role of VascuSynth's supply map.
3. The terminal joins one of the ``candidates`` segments nearest to it. For
   each candidate and a small set of bifurcation positions the tree volume
   Σ lᵢ rᵢ² (VascuSynth's cost with μ = 1, λ = 2) is computed and the cheapest
   connection is kept.
4. Radii follow Murray's law from the flow: every terminal carries the same
   flow, so a segment with n terminals downstream has rᵞ = n · r_termᵞ and at
   every bifurcation r_parentᵞ = r_leftᵞ + r_rightᵞ holds exactly (γ = 3).
5. Tortuosity: every segment becomes a polyline whose nodes leave the straight
   line by a smooth random sideways bump (amplitude ``tortuosity`` × length,
   zero at both ends), keeping its radius.

``n`` terminals give exactly n − 1 bifurcations. The result is a
:class:`~AnatomyINRLib.core.types.CenterlineGraph`; :func:`tree_phantom` turns
it into a union of capsules (exact SDF), :func:`tree_mesh` into a watertight
mesh (marching cubes) and :func:`tree_occupancy` into a binary volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyINRLib.core.config import ConfigBase, check_int, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import CenterlineGraph, ImageGrid, TriangleMesh
from AnatomyINRLib.phantoms.primitives import perpendicular_basis
from AnatomyINRLib.phantoms.tubes import Capsule
from AnatomyINRLib.phantoms.vessel_tree import CapsuleTreePhantom

_DOMAIN_AXES = np.array([1.0, 0.85, 0.7])  # ellipsoid semi-axes / domain_radius (R, A, S)
_MAX_TRIES = 400  # demand-point draws before the supply distance is relaxed
_BIF_WEIGHTS = np.array([[w0, w1, 1.0 - w0 - w1] for w0 in (0.2, 0.4, 0.6) for w1 in (0.2, 0.4, 0.6)
                         if w0 + w1 < 1.0])  # barycentric (proximal, distal, terminal) bifurcation candidates


@dataclass
class SynthTreeParams(ConfigBase):
    """Geometry of one synthetic tree (mm).

    Attributes:
        seed: Seed of every random choice (same seed and params, same tree).
        bifurcations: Exact number of bifurcations (terminals − 1).
        domain_radius: Largest semi-axis of the ellipsoidal domain.
        terminal_radius: Radius of every terminal segment.
        murray_exponent: γ of Murray's law r_pᵞ = Σ r_cᵞ (3 = Murray).
        min_distance: Supply distance: a new demand point lies at least this far from the tree.
        candidates: Nearest segments tried for each new terminal (VascuSynth's CLOSEST_NEIGHBOURS).
        tortuosity: Sideways bump amplitude / segment length (0 = straight segments).
        node_spacing: Centreline node spacing along a segment.
    """

    seed: int = 0
    bifurcations: int = 6
    domain_radius: float = 25.0
    terminal_radius: float = 1.0
    murray_exponent: float = 3.0
    min_distance: float = 8.0
    candidates: int = 5
    tortuosity: float = 0.15
    node_spacing: float = 2.0

    def validate(self) -> None:
        """Check ranges."""
        check_int("bifurcations", self.bifurcations, minimum=0, maximum=200)
        check_int("candidates", self.candidates)
        for name in ("domain_radius", "terminal_radius", "murray_exponent", "min_distance", "node_spacing"):
            check_positive(name, getattr(self, name))
        check_positive("tortuosity", self.tortuosity, allow_zero=True)
        if self.terminal_radius * 4 > self.domain_radius * _DOMAIN_AXES.min():
            raise InputError("terminal_radius: expected well below the domain size")


def _in_domain(p: np.ndarray, radius: float) -> np.ndarray:
    return np.sum((p / (radius * _DOMAIN_AXES)) ** 2, axis=-1) <= 1.0


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(S,) distance from point p to segments a[s]→b[s]."""
    ab = b - a
    t = np.clip(np.einsum("sj,sj->s", p - a, ab) / np.maximum(np.einsum("sj,sj->s", ab, ab), 1e-24), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


class _Growth:
    """The straight-segment tree under construction: node positions and parents (node 0 = inlet)."""

    def __init__(self, p: SynthTreeParams, rng: np.random.Generator) -> None:
        self.p, self.rng = p, rng
        self.pos = [np.array([0.0, 0.0, p.domain_radius * _DOMAIN_AXES[2] * 0.95])]
        self.parent = [-1]

    def _segments(self) -> tuple[np.ndarray, np.ndarray]:
        pos = np.asarray(self.pos)
        kids = np.arange(1, len(pos))
        return pos[np.asarray(self.parent)[kids]], pos[kids]

    def demand_point(self) -> np.ndarray:
        """A uniform point of the domain not yet supplied (relaxing the supply distance if needed)."""
        r = self.p.domain_radius
        dist = self.p.min_distance
        while True:
            for _ in range(_MAX_TRIES):
                q = self.rng.uniform(-1.0, 1.0, 3) * r * _DOMAIN_AXES
                if not _in_domain(q, r):
                    continue
                if len(self.pos) == 1:
                    if np.linalg.norm(q - self.pos[0]) >= 2 * dist:
                        return q
                    continue
                a, b = self._segments()
                if _segment_distance(q, a, b).min() >= dist:
                    return q
            dist *= 0.8

    def volume(self, pos: np.ndarray, parent: np.ndarray) -> float:
        """Σ l r² of a candidate tree, radii from Murray's law (rᵞ ∝ terminals downstream)."""
        counts = _terminal_counts(parent)
        r = self.p.terminal_radius * counts[1:] ** (1.0 / self.p.murray_exponent)
        lengths = np.linalg.norm(pos[1:] - pos[parent[1:]], axis=1)
        return float(np.sum(lengths * r**2))

    def add_terminal(self, q: np.ndarray) -> None:
        """Join q to the cheapest of the nearest candidate segments (see the module docstring)."""
        if len(self.pos) == 1:
            self.pos.append(q)
            self.parent.append(0)
            return
        a, b = self._segments()
        near = np.argsort(_segment_distance(q, a, b))[: self.p.candidates] + 1  # distal node ids
        pos0, par0 = np.asarray(self.pos), np.asarray(self.parent)
        best = (np.inf, None)
        for c in near:
            for w in _BIF_WEIGHTS:
                bif = w[0] * pos0[par0[c]] + w[1] * pos0[c] + w[2] * q
                pos = np.vstack([pos0, bif, q])
                par = np.concatenate([par0, [par0[c], len(pos0)]])
                par[c] = len(pos0)  # the old segment now hangs below the bifurcation
                cost = self.volume(pos, par)
                if cost < best[0]:
                    best = (cost, (pos, par))
        pos, par = best[1]
        self.pos, self.parent = list(pos), list(par)


def _terminal_counts(parent: np.ndarray) -> np.ndarray:
    """(M,) number of terminals at or below each node (a leaf counts itself)."""
    m = len(parent)
    has_child = np.zeros(m, dtype=bool)
    has_child[parent[1:]] = True
    counts = (~has_child).astype(np.float64)
    counts[0] = 0.0 if m > 1 else 1.0
    order = _depth_order(parent)
    for k in order[::-1]:
        if k > 0:
            counts[parent[k]] += counts[k]
    return counts


def _depth_order(parent: np.ndarray) -> np.ndarray:
    """Node indices sorted so that every parent comes before its children."""
    depth = np.zeros(len(parent), dtype=np.int64)
    for k in range(1, len(parent)):
        j, d = k, 0
        while parent[j] >= 0:
            j, d = parent[j], d + 1
        depth[k] = d
    return np.argsort(depth, kind="stable")


def _tortuous(a: np.ndarray, b: np.ndarray, p: SynthTreeParams, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) interior + end nodes of the segment a→b bent sideways (a excluded, b last)."""
    length = float(np.linalg.norm(b - a))
    n = max(1, int(np.ceil(length / p.node_spacing)))
    s = np.arange(1, n + 1) / n
    e1, e2 = perpendicular_basis((b - a) / max(length, 1e-12))
    c1, c2 = rng.normal(size=2) * p.tortuosity * length
    # Both harmonics vanish at s = 0 and 1, so the ends (bifurcations) stay where growth put them.
    bump = np.sin(np.pi * s)[:, None] * (c1 * e1) + np.sin(2 * np.pi * s)[:, None] * (0.5 * c2 * e2)
    return a + s[:, None] * (b - a) + bump


def grow_tree(params: SynthTreeParams | None = None) -> CenterlineGraph:
    """Grow one tree (module docstring) and return its tortuous centreline graph.

    Returns:
        CenterlineGraph in RAS mm: node 0 is the inlet, radii by Murray's law;
        exactly ``params.bifurcations`` nodes have two children.
    """
    p = params or SynthTreeParams()
    p.validate()
    rng = np.random.default_rng(int(p.seed))
    growth = _Growth(p, rng)
    for _ in range(p.bifurcations + 1):
        growth.add_terminal(growth.demand_point())
    pos, parent = np.asarray(growth.pos), np.asarray(growth.parent)
    counts = _terminal_counts(parent)  # the inlet node carries all terminals
    radius = p.terminal_radius * counts ** (1.0 / p.murray_exponent)
    return _densify(pos, parent, radius, p, rng)


def _densify(pos, parent, radius, p: SynthTreeParams, rng) -> CenterlineGraph:
    """Replace every straight segment by its tortuous polyline; parents stay listed before children."""
    new_id = {0: 0}
    pts, par, rad = [pos[0]], [-1], [radius[0]]
    for k in _depth_order(parent)[1:]:
        chain = _tortuous(pos[parent[k]], pos[k], p, rng)
        prev = new_id[int(parent[k])]
        for x in chain:
            pts.append(x)
            par.append(prev)
            rad.append(radius[k])
            prev = len(pts) - 1
        new_id[int(k)] = prev
    return CenterlineGraph(np.asarray(pts), np.asarray(par), np.asarray(rad))


def tree_phantom(graph: CenterlineGraph) -> CapsuleTreePhantom:
    """The tree as a union of capsules (one per edge, radius of its distal node): exact SDF in mm."""
    caps = [Capsule(graph.points[graph.parent[k]], graph.points[k], graph.radius[k]) for k in range(1, len(graph.parent))]
    return CapsuleTreePhantom(caps, "synthetic-tree")


def tree_mesh(graph: CenterlineGraph, spacing_mm: float = 0.3, progress=None) -> TriangleMesh:
    """Watertight surface of the capsule union by marching cubes on its exact SDF (RAS mm)."""
    from AnatomyINRLib.meshing.api import mesh_from_field

    check_positive("spacing_mm", spacing_mm)
    ph = tree_phantom(graph)
    return mesh_from_field(ph, ph.bounds(), spacing_mm, progress=progress, normals="mesh")


def tree_occupancy(graph: CenterlineGraph, spacing_mm: float = 0.5, margin_mm: float = 2.0) -> ImageGrid:
    """Binary volume (uint8, 1 inside) on an axis-aligned grid around the tree.

    Each capsule is rasterised in its own bounding box (exact inside test
    at voxel centres), so the cost grows with the tree's volume, not the grid's.
    """
    check_positive("spacing_mm", spacing_mm)
    ph = tree_phantom(graph)
    lo = ph.bounds()[0] - margin_mm
    shape = np.ceil((ph.bounds()[1] + margin_mm - lo) / spacing_mm).astype(int) + 1
    mask = np.zeros(tuple(shape), dtype=np.uint8)
    for cap in ph.primitives:
        b = cap.bounds()
        i0 = np.maximum(np.floor((b[0] - lo) / spacing_mm).astype(int), 0)
        i1 = np.minimum(np.ceil((b[1] - lo) / spacing_mm).astype(int) + 1, shape)
        axes = [lo[d] + spacing_mm * np.arange(i0[d], i1[d]) for d in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        inside = (cap.sdf(grid) < 0).reshape(tuple(i1 - i0))
        sub = mask[i0[0]:i1[0], i0[1]:i1[1], i0[2]:i1[2]]
        sub |= inside.astype(np.uint8)
    return ImageGrid(mask, ImageGrid.make_affine(lo, [spacing_mm] * 3))


def tree_statistics(graph: CenterlineGraph) -> dict:
    """Total length (mm), mean radius (length-weighted, mm), bifurcations, tortuosity.

    Tortuosity is the mean over branches (root/bifurcation to bifurcation/terminal)
    of path length / chord length (1 = straight).
    """
    seg = np.linalg.norm(graph.points[1:] - graph.points[graph.parent[1:]], axis=1)
    kids = graph.children()
    branch_ratio = []
    for k in range(len(kids)):
        if k != 0 and len(kids[k]) == 1:
            continue
        for c in kids[k]:
            path, j = 0.0, c
            while True:
                path += float(np.linalg.norm(graph.points[j] - graph.points[graph.parent[j]]))
                if len(kids[j]) != 1:
                    break
                j = kids[j][0]
            chord = float(np.linalg.norm(graph.points[j] - graph.points[k]))
            branch_ratio.append(path / max(chord, 1e-12))
    return {"total_length_mm": float(seg.sum()), "mean_radius_mm": float(np.sum(seg * graph.radius[1:]) / seg.sum()),
            "bifurcations": int(len(graph.bifurcations())), "tortuosity": float(np.mean(branch_ratio)),
            "nodes": int(len(graph.parent))}


def dataset_params(count: int, seed: int, min_bifurcations: int = 1, max_bifurcations: int = 12,
                   base: SynthTreeParams | None = None) -> list:
    """Parameters of ``count`` trees: bifurcations uniform in [min, max], one derived seed per tree.

    Tree i depends only on (seed, i), so a data set of 200 trees starts with
    the same trees as one of 50.
    """
    check_int("count", count)
    check_int("min_bifurcations", min_bifurcations, minimum=0)
    check_int("max_bifurcations", max_bifurcations, minimum=min_bifurcations, maximum=200)
    base = base or SynthTreeParams()
    out = []
    for i in range(count):
        rng = np.random.default_rng([int(seed), i])
        out.append(base.replace(seed=int(rng.integers(0, 2**31 - 1)),
                                bifurcations=int(rng.integers(min_bifurcations, max_bifurcations + 1))))
    return out
