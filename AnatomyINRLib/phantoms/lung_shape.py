"""Lung phantom geometry: two lungs, five lobes separated by fissures (RAS mm).

Each lung is an ellipsoid cut medially by the mediastinum and from below by a
diaphragm dome; the left lung also loses a cardiac notch (a sphere). Fissures
are planes with a slight lateral curvature:

* oblique fissures ``φ = 0.67·y + 0.74·z + c (+ κ·(x − x_c)²)``: the lower lobe is
  ``φ < 0`` (posterior-inferior), running from high on the back (≈T4) to the
  anterior diaphragm, as in real lungs;
* the right horizontal fissure ``z = z_h`` splits the rest of the right lung into
  the upper lobe (above) and the middle lobe (an anterior-inferior wedge).

Voxels within ``gap`` mm of a fissure belong to no lobe (label 0), so lobe masks
touch nowhere, like a lobe segmentation of a CT. Lobe values: 1 RUL, 2 RML,
3 RLL, 4 LUL, 5 LLL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_OBLIQUE_NORMAL = np.array([0.0, 0.67, 0.74]) / np.hypot(0.67, 0.74)


@dataclass
class LungShape:
    """Random-but-plausible lung geometry drawn from a seed (all lengths in mm, RAS)."""

    right_center: np.ndarray
    right_axes: np.ndarray
    left_center: np.ndarray
    left_axes: np.ndarray
    right_oblique_c: float
    left_oblique_c: float
    horizontal_z: float
    heart_center: np.ndarray
    heart_radius: float
    mediastinum_half_width: float = 22.0
    fissure_curvature: float = 0.0012

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "LungShape":
        """Jitter the reference adult geometry (centres ±3 mm, axes ±4 %, fissures ±4 mm)."""
        j = lambda n, s: rng.uniform(-s, s, size=n)  # noqa: E731 - tiny local helper
        return cls(
            right_center=np.array([76.0, 0.0, 5.0]) + j(3, 3.0),
            right_axes=np.array([60.0, 86.0, 105.0]) * (1 + j(3, 0.04)),
            left_center=np.array([-76.0, 0.0, 0.0]) + j(3, 3.0),
            left_axes=np.array([58.0, 86.0, 100.0]) * (1 + j(3, 0.04)),
            right_oblique_c=-5.0 + float(j(1, 4.0)[0]),
            left_oblique_c=-5.0 + float(j(1, 4.0)[0]),
            horizontal_z=12.0 + float(j(1, 4.0)[0]),
            heart_center=np.array([-18.0, 48.0, -48.0]) + j(3, 3.0),
            heart_radius=55.0 + float(j(1, 3.0)[0]),
        )

    # ------------------------------------------------------------------ fields

    def oblique(self, x, y, z, right: bool):
        """Signed distance-like value of the oblique fissure (mm); < 0 in the lower lobe."""
        c = self.right_oblique_c if right else self.left_oblique_c
        xc = self.right_center[0] if right else self.left_center[0]
        return _OBLIQUE_NORMAL[1] * y + _OBLIQUE_NORMAL[2] * z + c + self.fissure_curvature * (x - xc) ** 2

    def lung(self, x, y, z, right: bool):
        """Boolean: inside the right (or left) lung. x, y, z broadcast against each other."""
        c, a = (self.right_center, self.right_axes) if right else (self.left_center, self.left_axes)
        inside = ((x - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2 + ((z - c[2]) / a[2]) ** 2 < 1.0
        inside &= (x > self.mediastinum_half_width) if right else (x < -self.mediastinum_half_width)
        dome = -62.0 - 0.006 * ((x - c[0]) ** 2 + (y - c[1]) ** 2)
        inside &= z > dome
        if not right:
            h = self.heart_center
            inside &= (x - h[0]) ** 2 + (y - h[1]) ** 2 + (z - h[2]) ** 2 > self.heart_radius**2
        return inside

    def lobes(self, x, y, z, gap: float) -> np.ndarray:
        """uint8 lobe labels (0 outside or within ``gap`` mm of a fissure) on broadcast x, y, z."""
        shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
        out = np.zeros(shape, dtype=np.uint8)
        for right in (True, False):
            lung = self.lung(x, y, z, right)
            phi = self.oblique(x, y, z, right)
            lower = lung & (phi < -gap)
            upper = lung & (phi > gap)
            if right:
                out[lower] = 3
                out[upper & (z > self.horizontal_z + gap)] = 1
                out[upper & (z < self.horizontal_z - gap)] = 2
            else:
                out[lower] = 5
                out[upper] = 4
            del lung, phi, lower, upper
        return out

    def fissure_band(self, x, y, z, gap: float) -> np.ndarray:
        """Boolean: inside a lung and within ``gap`` mm of a fissure (denser on CT)."""
        band = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=bool)
        for right in (True, False):
            lung = self.lung(x, y, z, right)
            phi = self.oblique(x, y, z, right)
            near = np.abs(phi) <= gap
            if right:
                near |= (phi > 0) & (np.abs(z - self.horizontal_z) <= gap)
            band |= lung & near
        return band


#: Where each segment's territory is centred, in lobe-box coordinates
#: (lateral, anterior, superior) ∈ [0, 1]³ (0 = medial / posterior / inferior).
SEGMENT_ANCHORS: dict[int, tuple[float, float, float]] = {
    1: (0.45, 0.50, 0.88), 2: (0.60, 0.18, 0.45), 3: (0.50, 0.82, 0.40),
    4: (0.78, 0.45, 0.50), 5: (0.25, 0.65, 0.45),
    6: (0.50, 0.25, 0.85), 7: (0.12, 0.55, 0.22), 8: (0.60, 0.80, 0.22), 9: (0.88, 0.45, 0.20),
    10: (0.45, 0.12, 0.25),
    11: (0.50, 0.30, 0.85), 12: (0.50, 0.85, 0.62), 13: (0.65, 0.70, 0.35), 14: (0.45, 0.78, 0.10),
    15: (0.50, 0.25, 0.85), 16: (0.30, 0.75, 0.25), 17: (0.85, 0.45, 0.20), 18: (0.40, 0.12, 0.25),
}

#: Relative Voronoi weights (smaller = larger territory); S7 (medial basal) is the small one.
SEGMENT_WEIGHTS: dict[int, float] = {7: 1.25}


def lobe_box_point(points_in_lobe: np.ndarray, anchor, right: bool) -> np.ndarray:
    """RAS point at lobe-box coordinates ``anchor`` (lateral, anterior, superior) of a lobe."""
    lo, hi = points_in_lobe.min(axis=0), points_in_lobe.max(axis=0)
    lat, ant, sup = anchor
    # Lateral is +x (patient right) in the right lung and −x in the left lung.
    fx = lat if right else 1.0 - lat
    return lo + np.array([fx, ant, sup]) * (hi - lo)
