"""AAA-like phantom: bent aorta, eccentric aneurysm sac and iliac bifurcation.

Built as the union (min) of primitives with exact SDFs, all in RAS mm:

* aorta: a sphere of radius 10 mm (20 mm diameter) swept along a circular
  arc of length 120 mm and bend radius 220 mm, heading inferior from a point
  off the origin and bending anteriorly/left (rounded cap at the top);
* aneurysm sac: an ellipsoid, 70 mm long along the local centreline tangent
  and 50 × 44 mm across, centred 7 mm off the centreline (eccentric);
* iliac arteries: two 12 mm capsules, 50 mm long, diverging ±25° left/right
  from the end of the aorta (their proximal caps lie inside the aorta's
  rounded end cap).

What is exact (see ``base.py``): the SDF outside the shape, the zero set and
the sign everywhere; inside, ``min`` is only a lower bound on the depth.
Surface samples lie exactly on the zero set with exact normals, uniform by
area. The volume is numeric (divergence theorem, ~2e-5 relative; see
``UnionPhantom.volume``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyINRLib.core.config import ConfigBase, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms.base import UnionPhantom
from AnatomyINRLib.phantoms.primitives import Ellipsoid
from AnatomyINRLib.phantoms.tubes import ArcTube, Capsule


def _unit(name: str, v) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)) or np.linalg.norm(arr) < 1e-9:
        raise InputError(f"{name}: expected a non-zero finite 3-vector (RAS), got {v!r}")
    return arr / np.linalg.norm(arr)


def _perp_unit(name: str, v, axis: np.ndarray) -> np.ndarray:
    """``v`` with its component along ``axis`` removed, normalised."""
    w = _unit(name, v)
    w = w - (w @ axis) * axis
    if np.linalg.norm(w) < 1e-6:
        raise InputError(f"{name}: must not be parallel to the local centreline direction")
    return w / np.linalg.norm(w)


@dataclass
class AAAParams(ConfigBase):
    """Geometry of :class:`AAAPhantom`; lengths in mm, directions in RAS.

    Attributes:
        top: Centre of the aorta's proximal end (RAS mm), deliberately off-origin.
        direction: Initial centreline direction (inferior by default).
        bend_direction: Direction the centreline bends towards.
        aorta_radius: Aorta radius (10 mm → 20 mm diameter).
        aorta_length: Centreline arc length.
        bend_radius: Radius of the centreline arc (larger = straighter).
        sac_position: Sac centre's position along the centreline, 0 (top) – 1 (bottom).
        sac_offset: Distance of the sac centre from the centreline (eccentricity).
        sac_offset_direction: Direction of that offset (made perpendicular to the tangent).
        sac_semi_axes: Along the tangent, along the offset, and the third axis.
        iliac_radius: Iliac radius (6 mm → 12 mm diameter).
        iliac_length: Iliac axis length.
        iliac_angle_deg: Divergence of each iliac from the aorta's end direction.
        iliac_spread_direction: Direction in which the iliacs part (left–right).
    """

    top: tuple = (-12.0, 28.0, -95.0)
    direction: tuple = (0.0, 0.0, -1.0)
    bend_direction: tuple = (-0.3, 1.0, 0.0)
    aorta_radius: float = 10.0
    aorta_length: float = 120.0
    bend_radius: float = 220.0
    sac_position: float = 0.5
    sac_offset: float = 7.0
    sac_offset_direction: tuple = (0.2, 1.0, 0.0)
    sac_semi_axes: tuple = (35.0, 25.0, 22.0)
    iliac_radius: float = 6.0
    iliac_length: float = 50.0
    iliac_angle_deg: float = 25.0
    iliac_spread_direction: tuple = (1.0, 0.0, 0.0)

    def validate(self) -> None:
        for name in ("aorta_radius", "aorta_length", "bend_radius", "iliac_radius", "iliac_length"):
            check_positive(name, getattr(self, name))
        check_positive("sac_offset", self.sac_offset, allow_zero=True)
        if len(self.sac_semi_axes) != 3 or min(self.sac_semi_axes) <= 0:
            raise InputError(f"sac_semi_axes: expected three positive lengths, got {self.sac_semi_axes!r}")
        if not 0.0 <= self.sac_position <= 1.0:
            raise InputError(f"sac_position: expected a fraction in [0, 1], got {self.sac_position!r}")
        if not self.aorta_radius < self.bend_radius:
            raise InputError("bend_radius: must exceed aorta_radius")
        if not self.aorta_length / self.bend_radius <= np.pi:
            raise InputError("aorta_length: the centreline arc may turn at most 180° (length ≤ π·bend_radius)")
        if not 0.0 <= self.iliac_angle_deg < 90.0:
            raise InputError(f"iliac_angle_deg: expected an angle in [0, 90), got {self.iliac_angle_deg!r}")
        for name in ("top", "direction", "bend_direction", "sac_offset_direction", "iliac_spread_direction"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (3,) or not np.all(np.isfinite(value)):
                raise InputError(f"{name}: expected a finite 3-vector, got {getattr(self, name)!r}")


def aaa_primitives(p: AAAParams) -> dict:
    """The primitives of the AAA union, by role.

    Returns:
        dict with ``aorta`` (ArcTube), ``sac`` (Ellipsoid) and ``iliacs``
        (list of two Capsules); also ``centreline`` helpers ``sac_frame``
        (centre on the centreline, tangent, offset direction, third axis).
    """
    p.validate()
    aorta = ArcTube(p.top, _unit("direction", p.direction), _unit("bend_direction", p.bend_direction),
                    p.bend_radius, p.aorta_length / p.bend_radius, p.aorta_radius)
    theta = p.sac_position * aorta.phi
    mid = aorta.point_at(theta)[0]
    tangent = aorta.tangent_at(theta)[0]
    off = _perp_unit("sac_offset_direction", p.sac_offset_direction, tangent)
    third = np.cross(tangent, off)
    rotation = np.stack([tangent, off, third], axis=1)
    sac = Ellipsoid(mid + p.sac_offset * off, p.sac_semi_axes, rotation)
    end = aorta.point_at(aorta.phi)[0]
    end_t = aorta.tangent_at(aorta.phi)[0]
    spread = _perp_unit("iliac_spread_direction", p.iliac_spread_direction, end_t)
    ang = np.deg2rad(p.iliac_angle_deg)
    iliacs = [Capsule(end, end + p.iliac_length * (np.cos(ang) * end_t + s * np.sin(ang) * spread), p.iliac_radius)
              for s in (1.0, -1.0)]
    return {"aorta": aorta, "sac": sac, "iliacs": iliacs, "sac_frame": (mid, tangent, off, third)}


class AAAPhantom(UnionPhantom):
    """AAA-like single surface (see the module docstring).

    Args:
        params: Geometry; defaults give a ~120 mm aorta with a 50 mm sac.
    """

    def __init__(self, params: AAAParams | None = None, name: str = "aaa") -> None:
        self.params = params if params is not None else AAAParams()
        parts = aaa_primitives(self.params)
        super().__init__([parts["aorta"], parts["sac"], *parts["iliacs"]], name)
