"""Nested AAA phantom: lumen ⊂ inner wall (thrombus surface) ⊂ outer wall.

* inner wall: the :class:`~AnatomyINRLib.phantoms.aaa.AAAPhantom` surface;
* lumen: the same centreline tubes with radii reduced by ``min_gap`` plus a
  small ellipsoidal bulge inside the sac, off the sac centre, so the lumen is
  eccentric and the thrombus thickest on the sac's bulging side;
* outer wall: the inner wall grown by ``wall_thickness``; its SDF is exactly
  ``sdf_inner − wall_thickness`` (each primitive is grown by that amount).

Nesting is guaranteed primitive by primitive: every lumen primitive grown by
``min_gap`` lies inside one inner primitive (concentric tubes; the bulge is
checked against the sac at construction), hence for every point x

    sdf_lumen(x) ≥ sdf_inner(x) + min_gap  and  sdf_outer(x) = sdf_inner(x) − wall_thickness,

which is the paper's prior SDF_outer ≤ SDF_inner ≤ SDF_lumen (Alblas et al.
§3.2) with margins. Exactness of each surface is as in ``base.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from AnatomyINRLib.core.config import ConfigBase, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.core.types import PointSet
from AnatomyINRLib.phantoms.aaa import AAAParams, aaa_primitives
from AnatomyINRLib.phantoms.base import UnionPhantom, check_points
from AnatomyINRLib.phantoms.primitives import Ellipsoid, cube_sphere_directions
from AnatomyINRLib.phantoms.tubes import ArcTube, Capsule


@dataclass
class NestedAAAParams(ConfigBase):
    """Geometry of :class:`NestedAAAPhantom` (mm).

    Attributes:
        inner: The inner wall (thrombus surface) = the AAA phantom geometry.
        min_gap: Minimum lumen-to-inner-wall distance everywhere.
        wall_thickness: Outer wall offset from the inner wall.
        lumen_bulge_semi_axes: Lumen widening in the sac, along the sac's
            tangent, offset and third axes.
        lumen_bulge_offset: Bulge centre's offset from the centreline along the
            sac offset direction (negative: away from the sac's bulging side).
    """

    inner: AAAParams = field(default_factory=AAAParams)
    min_gap: float = 1.5
    wall_thickness: float = 2.0
    lumen_bulge_semi_axes: tuple = (24.0, 13.0, 12.0)
    lumen_bulge_offset: float = -1.0

    def validate(self) -> None:
        self.inner.validate()
        check_positive("min_gap", self.min_gap)
        check_positive("wall_thickness", self.wall_thickness)
        if len(self.lumen_bulge_semi_axes) != 3 or min(self.lumen_bulge_semi_axes) <= 0:
            raise InputError(
                f"lumen_bulge_semi_axes: expected three positive lengths, got {self.lumen_bulge_semi_axes!r}"
            )
        for name in ("aorta_radius", "iliac_radius"):
            if getattr(self.inner, name) <= self.min_gap:
                raise InputError(f"min_gap: must be smaller than inner.{name} so the lumen is not empty")


def _check_bulge_inside(bulge: Ellipsoid, sac: Ellipsoid, gap: float) -> None:
    """Raise unless bulge ⊕ B_gap ⊂ sac, i.e. sdf_sac ≤ −gap on the whole bulge surface.

    Proof by covering: bulge surface points are e⊙u mapped rigidly, u a unit
    vector; u ↦ e⊙u is e_max-Lipschitz and the cube-sphere directions cover
    the sphere within chord √2/m, so every surface point is within
    h = e_max·√2/m of a node. sdf_sac is 1-Lipschitz, so sdf_sac ≤ −gap − h at
    the nodes proves the bound everywhere.
    """
    dirs, cover = cube_sphere_directions(96)
    h = float(bulge.e.max()) * cover
    pts = bulge._world(dirs * bulge.e)
    worst = float(sac.sdf(pts).max())
    if worst > -gap - h:
        raise InputError(
            f"lumen_bulge_semi_axes/lumen_bulge_offset: the lumen bulge must stay {gap} mm inside the sac "
            f"(closest approach {-worst:.2f} mm, need ≥ {gap + h:.2f} mm including the check's {h:.2f} mm margin)"
        )


class NestedAAAPhantom:
    """Three nested AAA surfaces (lumen, inner wall, outer wall); see the module docstring.

    Not a single-SDF phantom: use :meth:`surfaces` for the three phantoms or
    :meth:`sdf_all` for all three SDFs at once.

    Args:
        params: Geometry (defaults: 1.5 mm minimum lumen gap, 2 mm wall).
    """

    name = "nested-aaa"

    def __init__(self, params: NestedAAAParams | None = None) -> None:
        self.params = params if params is not None else NestedAAAParams()
        self.params.validate()
        p = self.params
        parts = aaa_primitives(p.inner)
        aorta, sac = parts["aorta"], parts["sac"]
        mid, tangent, off, third = parts["sac_frame"]
        inner = UnionPhantom([aorta, sac, *parts["iliacs"]], "inner")
        lumen_aorta = ArcTube(aorta.point_at(0.0)[0], aorta.v, -aorta.u, aorta.R, aorta.phi, aorta.r - p.min_gap)
        lumen_iliacs = [Capsule(c.a, c.b, c.r - p.min_gap) for c in parts["iliacs"]]
        frame = np.stack([tangent, off, third], axis=1)
        bulge = Ellipsoid(mid + p.lumen_bulge_offset * off, p.lumen_bulge_semi_axes, frame)
        _check_bulge_inside(bulge, sac, p.min_gap)
        lumen = UnionPhantom([lumen_aorta, bulge, *lumen_iliacs], "lumen")
        outer = inner.offset(p.wall_thickness, "outer")
        self._surfaces = [lumen, inner, outer]

    def surfaces(self) -> list:
        """[lumen, inner, outer] phantoms, innermost first."""
        return list(self._surfaces)

    def sdf_all(self, points) -> np.ndarray:
        """(N, 3) SDFs in mm, columns lumen, inner, outer (so col 0 ≥ col 1 ≥ col 2)."""
        pts = check_points(points)
        return np.stack([s.sdf(pts) for s in self._surfaces], axis=1)

    def bounds(self) -> np.ndarray:
        """(2, 3) box of the outer wall, RAS mm."""
        return self._surfaces[2].bounds()

    def sample_surfaces(self, n: int, seed=0) -> list[PointSet]:
        """n uniform surface samples on each surface (innermost first), one generator for all."""
        rng = numpy_rng(seed)
        return [s.sample_surface(n, rng) for s in self._surfaces]
