"""Pass/fail summary of a blended surface (the promises ``blend_surfaces`` makes)."""

from __future__ import annotations

from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.meshing.topology import mesh_quality


def surface_report(mesh: TriangleMesh, n_components_before: int | None = None) -> dict:
    """Topology summary of an output surface, with the pass/fail flags the blend promises.

    Args:
        mesh: The output mesh (RAS mm).
        n_components_before: Components before keeping the largest (None if not known).

    Returns:
        ``meshing.mesh_quality`` keys (with ``self_intersections`` counted),
        ``n_components_before_selection`` and ``ok`` (watertight, manifold,
        oriented, one component, no self-intersections).
    """
    q = mesh_quality(mesh, check_self_intersections=True)
    q["n_components_before_selection"] = n_components_before
    q["ok"] = bool(q["watertight"] and q["manifold"] and q["oriented"] and q["n_components"] == 1
                   and q["self_intersections"] == 0)
    return q
