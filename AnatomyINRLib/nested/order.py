"""Which point set is innermost: order nested point sets by the volume their convex hulls enclose.

Nested walls (lumen ⊂ inner ⊂ outer) enclose strictly increasing volumes, and
the volume of a point set's convex hull follows them: the hull of clicked
points on a closed wall is close to the wall's own hull, and a few mm of noise
changes it by far less than the gap between walls. Given in the wrong order,
the joint fit would squeeze every wall onto one surface (the nesting
construction forces output k inside output k+1), so the order is fixed before
fitting.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

# Volumes closer than this ratio do not tell the order apart: keep the caller's.
_MIN_RATIO = 1.02


def hull_volumes(point_sets: Sequence) -> Optional[list]:
    """Convex hull volume (mm³) of every point set, or None if one is flat (the fit refuses those)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        return [float(ConvexHull(np.asarray(getattr(p, "points", p), dtype=np.float64)).volume) for p in point_sets]
    except (QhullError, ValueError):
        return None


def innermost_first(point_sets: Sequence) -> tuple[list, Optional[str]]:
    """Order (list of input indices, innermost first) and a note if it differs from the given one.

    The order sorts the hull volumes; it is used only when every consecutive
    pair differs by more than 2 % (otherwise the given order stands).
    """
    k = len(point_sets)
    volumes = hull_volumes(point_sets)
    if volumes is None:
        return list(range(k)), None
    order = [int(i) for i in np.argsort(volumes, kind="stable")]
    ordered = [volumes[i] for i in order]
    if order == list(range(k)) or any(b < _MIN_RATIO * a for a, b in zip(ordered, ordered[1:])):
        return list(range(k)), None
    listed = ", ".join(f"#{i} {v:,.0f} mm³" for i, v in enumerate(volumes))
    return order, (f"point sets were not innermost first (convex hull volumes {listed}); fitted in the order "
                   f"{order} (innermost first)")
