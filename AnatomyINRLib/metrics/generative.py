"""Metrics of a generated shape set against a reference set: Chamfer, MMD, COV, 1-NNA, memorisation.

Definitions (Achlioptas et al. 2018 for MMD/COV; Yang et al. 2019, PointFlow §5, for 1-NNA), on a
distance D between shapes, here the Chamfer distance of surface point clouds (2048 points each in the
TrIND / PointFlow protocol):

* Chamfer, ``squared=False``: CD(A, B) = ½ (mean_a min_b ‖a − b‖ + mean_b min_a ‖a − b‖)   [mm];
  ``squared=True``: CD(A, B) = mean_a min_b ‖a − b‖² + mean_b min_a ‖a − b‖²   [mm²], summed not halved
  (the PointFlow code that TrIND's numbers come from).
* MMD = mean over references r of min over samples s of D(s, r)   (lower is better: fidelity);
* COV = |{argmin_r D(s, r) : s ∈ S}| / |R|   (higher is better: diversity);
* 1-NNA: leave-one-out 1-nearest-neighbour classification of S ∪ R into "sample"/"reference";
  the accuracy, **unfolded** (not max(acc, 1 − acc)): 50 % when the sets are indistinguishable,
  100 % when they are far apart, and below 50 % when every sample sits on a copy of a reference
  (an exact copy of the reference set scores 0 %), which is why the memorisation check goes with it.
* memorisation: each sample's distance to its nearest *training* shape against the training set's own
  nearest-neighbour spacing (HyperDiffusion issue #3: weight-space diffusion may return its training
  shapes).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from AnatomyINRLib.core.errors import InputError


def _cloud(points, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0 or not np.all(np.isfinite(p)):
        raise InputError(f"{name}: expected a non-empty finite (n, 3) point cloud, got shape {p.shape}")
    return p


def chamfer(a, b, squared: bool = False) -> float:
    """Chamfer distance between two point clouds (n, 3), (m, 3) (definition in the module doc)."""
    from scipy.spatial import cKDTree

    a, b = _cloud(a, "a"), _cloud(b, "b")
    d_ab = cKDTree(b).query(a)[0]
    d_ba = cKDTree(a).query(b)[0]
    if squared:
        return float(np.mean(d_ab ** 2) + np.mean(d_ba ** 2))
    return float(0.5 * (np.mean(d_ab) + np.mean(d_ba)))


def chamfer_matrix(xs: Sequence, ys: Sequence | None = None, squared: bool = False) -> np.ndarray:
    """(len(xs), len(ys)) Chamfer distances; ``ys=None`` gives the symmetric matrix of ``xs`` with itself."""
    return chamfer_matrices(xs, ys)["squared" if squared else "unsquared"]


def chamfer_matrices(xs: Sequence, ys: Sequence | None = None) -> dict:
    """Both Chamfer variants of :func:`chamfer_matrix` from one pass of nearest-neighbour queries.

    Returns:
        dict: "unsquared" and "squared", each a (len(xs), len(ys)) float64 matrix (module doc). The
        queries are the cost (a 500 × 500 matrix of 2048-point clouds takes minutes), so a report
        that gives both variants computes them once.
    """
    from scipy.spatial import cKDTree

    xs = [_cloud(x, f"clouds[{i}]") for i, x in enumerate(xs)]
    same = ys is None
    ys = xs if same else [_cloud(y, f"clouds[{i}]") for i, y in enumerate(ys)]
    tx = [cKDTree(x) for x in xs]
    ty = tx if same else [cKDTree(y) for y in ys]
    plain, squared = np.zeros((len(xs), len(ys))), np.zeros((len(xs), len(ys)))
    for i, x in enumerate(xs):
        for j in range(i + 1 if same else 0, len(ys)):
            d_ab, d_ba = ty[j].query(x)[0], tx[i].query(ys[j])[0]
            plain[i, j] = 0.5 * (d_ab.mean() + d_ba.mean())
            squared[i, j] = np.mean(d_ab ** 2) + np.mean(d_ba ** 2)
    if same:  # the upper triangle was computed; mirror it
        plain, squared = plain + plain.T, squared + squared.T
    return {"unsquared": plain, "squared": squared}


def mmd_cov(d_sr: np.ndarray) -> tuple[float, float]:
    """(MMD, COV) from the (n_samples, n_references) distance matrix."""
    d_sr = _matrix(d_sr, "d_sr")
    mmd = float(d_sr.min(axis=0).mean())
    cov = float(len(np.unique(d_sr.argmin(axis=1))) / d_sr.shape[1])
    return mmd, cov


def one_nna(d_ss: np.ndarray, d_rr: np.ndarray, d_sr: np.ndarray) -> dict:
    """Leave-one-out 1-NN accuracy (unfolded) on S ∪ R; also the accuracy within each set.

    Args:
        d_ss: (n_s, n_s), d_rr: (n_r, n_r), d_sr: (n_s, n_r) distances; diagonals are ignored.
    """
    d_ss, d_rr, d_sr = _matrix(d_ss, "d_ss"), _matrix(d_rr, "d_rr"), _matrix(d_sr, "d_sr")
    n_s, n_r = d_sr.shape
    if d_ss.shape != (n_s, n_s) or d_rr.shape != (n_r, n_r):
        raise InputError(f"one_nna: shapes {d_ss.shape}, {d_rr.shape}, {d_sr.shape} do not agree")
    if n_s + n_r < 3:
        raise InputError("one_nna: needs at least 3 shapes in total")
    full = np.block([[d_ss, d_sr], [d_sr.T, d_rr]]).astype(np.float64)
    np.fill_diagonal(full, np.inf)
    labels = np.r_[np.zeros(n_s, bool), np.ones(n_r, bool)]
    correct = labels[full.argmin(axis=1)] == labels
    return {"accuracy": float(correct.mean()), "accuracy_samples": float(correct[:n_s].mean()),
            "accuracy_references": float(correct[n_s:].mean())}


def memorisation(d_st: np.ndarray, d_tt: np.ndarray) -> dict:
    """Nearest-training-shape distances of samples against the training set's own spacing.

    Args:
        d_st: (n_samples, n_train) distances; d_tt: (n_train, n_train) (diagonal ignored).

    Returns:
        dict: ``sample_to_train`` (per-sample nearest training distance), ``train_spacing`` (per
        training shape, its nearest other training shape), ``nearest_train_index`` (per sample, the
        index of its nearest training shape), their medians, ``ratio`` = median sample
        distance / median training spacing (≈ 1 for new shapes as far apart as training shapes,
        → 0 for copies), ``copies``: fraction of samples nearer to a training shape than the closest
        pair of training shapes are to each other.
    """
    d_st, d_tt = _matrix(d_st, "d_st"), _matrix(d_tt, "d_tt").copy()
    if d_tt.shape[0] < 2:
        raise InputError("memorisation: needs at least 2 training shapes")
    np.fill_diagonal(d_tt, np.inf)
    nearest, spacing = d_st.min(axis=1), d_tt.min(axis=1)
    return {"sample_to_train": nearest.tolist(), "nearest_train_index": d_st.argmin(axis=1).tolist(),
            "train_spacing": spacing.tolist(),
            "median_sample_to_train": float(np.median(nearest)), "median_train_spacing": float(np.median(spacing)),
            "ratio": float(np.median(nearest) / max(np.median(spacing), 1e-300)),
            "copies": float(np.mean(nearest < spacing.min()))}


def generation_metrics(samples: Sequence, references: Sequence, squared: bool = False,
                       training: Sequence | None = None) -> dict:
    """MMD, COV, 1-NNA of sample clouds against reference clouds (+ memorisation against ``training``).

    Args:
        samples, references, training: lists of (n, 3) surface point clouds.
        squared: Chamfer variant (module doc); the report says which.
    """
    return generation_metrics_both(samples, references, training)["squared" if squared else "unsquared"]


def generation_metrics_both(samples: Sequence, references: Sequence, training: Sequence | None = None) -> dict:
    """:func:`generation_metrics` for both Chamfer variants, each distance matrix computed once.

    Returns:
        dict: "unsquared" and "squared" reports.
    """
    if len(samples) < 1 or len(references) < 1:
        raise InputError("samples, references: expected at least one point cloud each")
    if training is not None and len(training) < 2:  # before the quadratic work, not after it
        raise InputError(f"training: the memorisation check needs at least 2 training shapes, got {len(training)}")
    d_ss, d_rr = chamfer_matrices(samples), chamfer_matrices(references)
    d_sr = chamfer_matrices(samples, references)
    d_st = d_tt = None
    if training is not None:
        d_st, d_tt = chamfer_matrices(samples, training), chamfer_matrices(training)
    out = {}
    for key in ("unsquared", "squared"):
        mmd, cov = mmd_cov(d_sr[key])
        nna = one_nna(d_ss[key], d_rr[key], d_sr[key])
        out[key] = {"distance": "chamfer-squared (sum of both means, mm^2)" if key == "squared"
                    else "chamfer (half the sum of both means, mm)",
                    "samples": len(samples), "references": len(references), "mmd": mmd, "cov": cov,
                    "one_nna": nna["accuracy"], "one_nna_samples": nna["accuracy_samples"],
                    "one_nna_references": nna["accuracy_references"]}
        if training is not None:
            out[key]["memorisation"] = memorisation(d_st[key], d_tt[key])
    return out


def _matrix(d, name: str) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or d.size == 0 or np.any(np.isnan(d)):
        raise InputError(f"{name}: expected a non-empty 2-D distance matrix without NaN, got shape {d.shape}")
    return d


TREE_STATISTICS = ("total_length", "tortuosity", "mean_radius", "bifurcations")
#: Axis labels (with units) of the tree statistics' histograms.
TREE_STATISTIC_LABELS = {"total_length": "total length (mm)", "tortuosity": "tortuosity (length / chord)",
                         "mean_radius": "mean radius (mm)", "bifurcations": "bifurcations"}


def evaluate_mesh_sets(generated: Sequence, reference: Sequence, training: Sequence | None = None,
                       points: int = 2048, squared: bool = False, seed: int = 0,
                       voxel_mm: float | None = None) -> dict:
    """Generation metrics and tree statistics of generated vs reference meshes (TrIND §3 'Tree Synthesis').

    Args:
        generated, reference, training: lists of closed TriangleMeshes (RAS mm); ``training`` adds the
            memorisation check.
        points: surface points per mesh (area-uniform; 2048 in the PointFlow/TrIND protocol).
        squared: Chamfer variant (module doc).
        seed: the surface samples.
        voxel_mm: voxel size of the tree statistics' skeletons (default: the largest mesh extent / 96).

    Returns:
        dict: the :func:`generation_metrics` report plus ``tree_statistics`` {set: {statistic: [per mesh]}}
        (None for a mesh that is not closed), ``tree_statistics_unmeasured`` {set: count} and
        ``tree_summary`` {set: {statistic: {mean, std}}}.
    """
    from AnatomyINRLib.core.seeding import numpy_rng
    from AnatomyINRLib.metrics.surface import sample_surface

    rng = numpy_rng(seed)
    sets = {"generated": list(generated), "reference": list(reference)}
    if training is not None:
        sets["training"] = list(training)
    clouds = {k: [sample_surface(m, points, rng)[0] for m in v] for k, v in sets.items()}
    report = generation_metrics(clouds["generated"], clouds["reference"], squared, clouds.get("training"))
    report["points_per_shape"] = int(points)
    if voxel_mm is None:
        extent = max(float(np.max(np.ptp(m.vertices, axis=0))) for v in sets.values() for m in v)
        voxel_mm = extent / 96.0
    report["voxel_mm"] = float(voxel_mm)
    report["tree_statistics"] = {k: tree_statistics_of(v, voxel_mm) for k, v in sets.items()}
    report["tree_statistics_unmeasured"] = {k: sum(x is None for x in per["total_length"])
                                            for k, per in report["tree_statistics"].items()}
    report["tree_summary"] = {k: summarise_tree_statistics(per) for k, per in report["tree_statistics"].items()}
    return report


def tree_statistics_of(meshes: Sequence, voxel_mm: float) -> dict:
    """{statistic: [value per mesh]} of :data:`TREE_STATISTICS` from skeletons at ``voxel_mm`` (mm);
    None for a mesh that is not closed."""
    rows = [_tree_row(m, voxel_mm) for m in meshes]
    return {s: [row[s] for row in rows] for s in TREE_STATISTICS}


def summarise_tree_statistics(values: dict) -> dict:
    """{statistic: {mean, std}} of :func:`tree_statistics_of`'s values, over the meshes measured."""
    return {s: _mean_std(v) for s, v in values.items()}


def _tree_row(mesh, voxel_mm: float) -> dict:
    """Tree statistics of one mesh; None entries when it cannot be voxelised (an open mesh)."""
    from AnatomyINRLib.metrics.tree_stats import tree_statistics

    try:
        return tree_statistics(mesh, voxel_mm)
    except InputError:
        return {s: None for s in TREE_STATISTICS}


def _mean_std(values: list) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    return {"mean": float(v.mean()) if v.size else None, "std": float(v.std()) if v.size else None}
