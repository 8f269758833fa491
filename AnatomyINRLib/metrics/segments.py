"""Multi-label segment metrics of ImPulSe+ (Xie et al., MedIA 2025, §3.2): Dice, NSD, intrusions.

All volumes are label arrays on one grid (same shape, one ijk→RAS with
orthogonal axes, as every image file has); distances are Euclidean in mm
between voxel centres (exact Euclidean distance transforms scaled by the
spacing), so anisotropic and oblique grids are measured correctly.

* Dice (eq. 1): ``2|Y ∩ Ŷ| / (|Y| + |Ŷ|)`` per label.
* NSD (eq. 2): ``(|S ∩ N(Ŝ)| + |Ŝ ∩ N(S)|) / (|S| + |Ŝ|)`` where S, Ŝ are the
  surface voxels of the reference and predicted label (voxels of the label with
  a face neighbour outside it; the image border counts as outside) and
  ``N(X)`` is the set of voxels within ``tolerance_mm`` (inclusive) of a voxel of
  X. The paper leaves the tolerance open; it is a parameter here.
* Intrusion branches (eq. 3): ``IB_i = g(T_i ∪ PS_i − PS_i)`` = connected
  components (``connectivity`` 6, 18 or 26) of the reference tree voxels of class
  i that lie outside the predicted segment i. ``NI = Σ_i |IB_i|``.
* Intrusion distance (eq. 4): ``ID(I) = max_{b ∈ I} min_{s ∈ S_i} ‖b − s‖`` with
  S_i the surface voxels of the predicted segment i (for a voxel outside PS_i the
  nearest voxel of PS_i is always a surface voxel). The subject's ID is the mean
  over all its intrusion branches; 0.0 when there are none. When PS_i is empty
  the distance is undefined: the branches count in NI, not in the ID mean (None
  when no branch has a defined distance).

Overall Dice and NSD are the mean over the labels present in the reference or
the prediction (a label absent from both is left out and reported as None).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from AnatomyINRLib.core.errors import InputError

_CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}


def _check_same(name: str, a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.shape != ref.shape:
        raise InputError(f"{name}: expected the shape of reference {ref.shape}, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.mod(a, 1) == 0):
            raise InputError(f"{name}: expected integer label values")
        a = a.astype(np.int32)
    return a


def _world(idx: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    return idx.astype(np.float64) @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]


def _surface_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    inner = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)
    return mask & ~inner


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """(N, 3) int indices of the voxels of ``mask`` with a face neighbour outside it (border = outside)."""
    return np.argwhere(_surface_mask(mask))


def _spacing(ijk_to_ras: np.ndarray) -> np.ndarray:
    """Voxel spacing of an orthogonal grid (distances are then EDTs scaled per axis)."""
    m = np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    d = m / spacing
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-6):
        raise InputError("ijk_to_ras: voxel axes are not orthogonal; resample onto an orthogonal grid first")
    return spacing


def _distance_to(target: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Euclidean distance (mm) from every voxel centre to the nearest voxel centre of ``target`` (non-empty)."""
    return ndimage.distance_transform_edt(~target, sampling=spacing)


def dice_score(pred_mask: np.ndarray, ref_mask: np.ndarray) -> Optional[float]:
    """Eq. 1 on two boolean masks; None when both are empty."""
    total = int(np.count_nonzero(pred_mask)) + int(np.count_nonzero(ref_mask))
    if total == 0:
        return None
    return 2.0 * int(np.count_nonzero(pred_mask & ref_mask)) / total


def normalized_surface_dice(pred_mask: np.ndarray, ref_mask: np.ndarray, ijk_to_ras: np.ndarray,
                            tolerance_mm: float) -> Optional[float]:
    """Eq. 2 on two boolean masks; None when both are empty, 0.0 when exactly one is."""
    spacing = _spacing(ijk_to_ras)
    s_ref, s_pred = _surface_mask(ref_mask), _surface_mask(pred_mask)
    n_ref, n_pred = int(np.count_nonzero(s_ref)), int(np.count_nonzero(s_pred))
    if n_ref + n_pred == 0:
        return None
    if n_ref == 0 or n_pred == 0:
        return 0.0
    bound = tolerance_mm * (1.0 + 1e-9) + 1e-9  # inclusive tolerance
    hits = int(np.count_nonzero(_distance_to(s_pred, spacing)[s_ref] <= bound))
    hits += int(np.count_nonzero(_distance_to(s_ref, spacing)[s_pred] <= bound))
    return hits / (n_ref + n_pred)


def intrusion_branches(tree_mask: np.ndarray, segment_mask: np.ndarray, ijk_to_ras: np.ndarray,
                       connectivity: int = 26) -> list:
    """Eq. 3-4 for one class: the intrusion distance (mm) of every branch of the tree outside its segment.

    Args:
        tree_mask: Boolean reference tree voxels of class i (T_i).
        segment_mask: Boolean predicted segment i (PS_i), on the same (orthogonal) grid.
        ijk_to_ras: (4, 4) voxel → RAS mm.
        connectivity: 6, 18 or 26 (the grouping g).

    Returns:
        One float per intrusion branch (``len`` = |IB_i|); NaN when PS_i is empty.
    """
    if connectivity not in _CONNECTIVITY_RANK:
        raise InputError(f"connectivity: expected 6, 18 or 26, got {connectivity!r}")
    spacing = _spacing(ijk_to_ras)
    outside = np.asarray(tree_mask, dtype=bool) & ~np.asarray(segment_mask, dtype=bool)
    structure = ndimage.generate_binary_structure(3, _CONNECTIVITY_RANK[connectivity])
    comp, n = ndimage.label(outside, structure=structure)
    if n == 0:
        return []
    surf = _surface_mask(segment_mask)
    if not surf.any():
        return [float("nan")] * n
    per = ndimage.maximum(_distance_to(surf, spacing), comp, index=np.arange(1, n + 1))
    return [float(v) for v in np.atleast_1d(per)]


def _crop(boxes: Sequence, shape) -> tuple:
    """Union of find_objects boxes, padded by one voxel."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return tuple(slice(0, 0) for _ in shape)
    lo = [max(0, min(b[a].start for b in boxes) - 1) for a in range(3)]
    hi = [min(shape[a], max(b[a].stop for b in boxes) + 1) for a in range(3)]
    return tuple(slice(l, h) for l, h in zip(lo, hi))


def _shift(ijk_to_ras: np.ndarray, box: tuple) -> np.ndarray:
    """ijk→RAS of a crop starting at ``box``."""
    out = ijk_to_ras.copy()
    out[:3, 3] = _world(np.array([[s.start for s in box]]), ijk_to_ras)[0]
    return out


def _box(objects, label: int):
    return objects[label - 1] if label - 1 < len(objects) else None


def _mean(values) -> Optional[float]:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def segment_metrics(prediction: np.ndarray, reference: np.ndarray, ijk_to_ras: np.ndarray, *,
                    bronchi: Optional[np.ndarray] = None, arteries: Optional[np.ndarray] = None,
                    labels: Sequence[int] = tuple(range(1, 19)), names: Optional[dict] = None,
                    nsd_tolerance_mm: float = 1.0, connectivity: int = 26) -> dict:
    """Dice, NSD, NIB, IDB, NIA, IDA overall and per segment (ImPulSe+ §3.2).

    Args:
        prediction, reference: (I, J, K) integer label volumes on one grid.
        ijk_to_ras: (4, 4) voxel → RAS mm of that grid.
        bronchi, arteries: Optional reference trees labelled with the segment classes (0 elsewhere).
        labels: Segment label values to evaluate.
        names: Optional label → name for the per-segment keys (default: the label as text).
        nsd_tolerance_mm: NSD neighbourhood radius (mm, inclusive).
        connectivity: 6, 18 or 26, the grouping of intrusion voxels into branches.

    Returns:
        JSON-ready dict: ``dice``, ``nsd``, ``NIB``, ``IDB``, ``NIA``, ``IDA`` (overall; None for
        trees not given), ``per_segment`` {name: {label, dice, nsd, NIB, IDB, NIA, IDA}} and the parameters.
    """
    ref = np.asarray(reference)
    pred = _check_same("prediction", prediction, ref)
    ref = _check_same("reference", ref, ref)
    if not (isinstance(nsd_tolerance_mm, (int, float)) and nsd_tolerance_mm >= 0):
        raise InputError(f"nsd_tolerance_mm: expected a number >= 0, got {nsd_tolerance_mm!r}")
    if connectivity not in _CONNECTIVITY_RANK:
        raise InputError(f"connectivity: expected 6, 18 or 26, got {connectivity!r}")
    trees = {k: (None if t is None else _check_same(k, t, ref)) for k, t in (("bronchi", bronchi), ("arteries", arteries))}
    top = max([int(max(labels, default=0))] + [int(a.max()) for a in (pred, ref) if a.size])
    obj_ref, obj_pred = ndimage.find_objects(ref, max_label=top), ndimage.find_objects(pred, max_label=top)
    obj_tree = {k: (None if t is None else ndimage.find_objects(t, max_label=top)) for k, t in trees.items()}
    per, branches = {}, {"bronchi": [], "arteries": []}
    for lab in labels:
        box = _crop([_box(obj_ref, lab), _box(obj_pred, lab)], ref.shape)
        p, r = pred[box] == lab, ref[box] == lab
        entry = {"label": int(lab), "dice": dice_score(p, r),
                 "nsd": normalized_surface_dice(p, r, _shift(ijk_to_ras, box), nsd_tolerance_mm)}
        for key, tag in (("bronchi", "B"), ("arteries", "A")):
            if trees[key] is None:
                continue
            tbox = _crop([_box(obj_tree[key], lab), _box(obj_pred, lab)], ref.shape)
            ids = intrusion_branches(trees[key][tbox] == lab, pred[tbox] == lab, _shift(ijk_to_ras, tbox),
                                     connectivity)
            branches[key] += ids
            entry[f"NI{tag}"] = len(ids)
            entry[f"ID{tag}"] = _mean(ids) if ids else 0.0
        per[names.get(lab, str(lab)) if names else str(lab)] = entry
    out = {"dice": _mean([e["dice"] for e in per.values()]), "nsd": _mean([e["nsd"] for e in per.values()])}
    for key, tag in (("bronchi", "B"), ("arteries", "A")):
        ids = branches[key]
        out[f"NI{tag}"] = None if trees[key] is None else len(ids)
        out[f"ID{tag}"] = None if trees[key] is None else (_mean(ids) if ids else 0.0)
    out.update({"per_segment": per, "nsd_tolerance_mm": float(nsd_tolerance_mm), "connectivity": int(connectivity)})
    return out


def evaluate_labelmaps(prediction, reference, *, bronchi=None, arteries=None, names: Optional[dict] = None,
                       nsd_tolerance_mm: float = 1.0, connectivity: int = 26) -> dict:
    """:func:`segment_metrics` of two labelmaps given as ImageGrids on one geometry.

    Args:
        prediction, reference: ImageGrid labelmaps (0 background, labels 1..K).
        bronchi, arteries: Optional ImageGrid masks of the trees for the intrusion metrics.
        names: Label → name for ``per_segment`` (e.g. the 18 pulmonary segment names).
        nsd_tolerance_mm, connectivity: As in :func:`segment_metrics`.

    Raises:
        InputError: the grids differ (naming both and what differs), or a bad tolerance/connectivity.
    """
    from AnatomyINRLib.core.device import restore_ieee_denormals
    from AnatomyINRLib.core.types import check_same_geometry

    restore_ieee_denormals()  # torch's flush-to-zero breaks scipy's spatial code (see core.device)
    check_same_geometry({"reference": reference, "prediction": prediction, "bronchi": bronchi, "arteries": arteries})
    return segment_metrics(prediction.array, reference.array, reference.ijk_to_ras,
                           bronchi=None if bronchi is None else bronchi.array,
                           arteries=None if arteries is None else arteries.array,
                           names=names, nsd_tolerance_mm=nsd_tolerance_mm, connectivity=connectivity)
