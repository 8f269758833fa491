"""Seeded cardiac CT-like phantom with left-atrium-like and left-ventricle-like label maps.

Built here (no external data). A heart of LA-, LV-, RA-, RV-like chambers, a myocardial wall
around the LV cavity, an aorta (root at the LV base, arch, descending along the spine) and four
pulmonary vein stubs on the LA is drawn in a heart frame and placed by a random similarity
(rotation up to 15°, scale 0.85-1.15, shift up to 8 mm per axis) inside a thorax with body
outline, lungs, pericardial fat, vertebral body and sternum. Every chamber's radii carry random
low-order bumps (``cardiac_shapes.Bumps``), so shapes vary as well as poses and sizes.

Intensities are HU-like and drawn per seed (contrast-filled left heart and aorta 280-450 HU, the
right heart darker, myocardium 70-130, fat about -85, lung about -800, bone 400-800).
Structures are painted back to front with their inside fraction per voxel (2×2×2 supersampling:
partial volume), blurred by a Gaussian point spread (σ 0.5-0.8 voxel) and given Gaussian noise
(σ 12-30 HU); the image is stored as int16 HU.

Labels: 1 = LA-like, 2 = LV-like cavity (:data:`CARDIAC_LABELS`), a voxel taking the label whose
visible fraction (after the structures painted over it) is at least one half. The pulmonary vein
stubs and the aorta are contrast-filled like the labelled chambers but not labelled, as in
MMWHS-style annotations, so a method must tell them apart by shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from AnatomyINRLib.core.config import check_choice, check_seed
from AnatomyINRLib.core.seeding import numpy_rng
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.phantoms.cardiac_shapes import Blob, Bullet, Bumps, Tube, ZCylinder, frame_from_axis

#: size → isotropic voxel spacing (mm); the field of view is always 160 × 160 × 144 mm.
CARDIAC_SIZES: dict[str, float] = {"small": 2.0, "full": 1.25}
EXTENT_MM = (160.0, 160.0, 144.0)
#: Label value → structure name.
CARDIAC_LABELS: dict[int, str] = {1: "left_atrium", 2: "left_ventricle"}
_SUPERSAMPLE = 2


@dataclass
class CardiacPhantom:
    """image (int16 HU) and labels (uint8, :data:`CARDIAC_LABELS`) on one geometry; ``info`` as JSON."""

    image: ImageGrid
    labels: ImageGrid
    info: dict = field(default_factory=dict)


def cardiac_grid(size: str) -> tuple[tuple[int, int, int], np.ndarray]:
    """(shape, ijk_to_ras) of a phantom size; axes LPS-ordered like most CT (i → left, j → posterior)."""
    check_choice("size", size, tuple(CARDIAC_SIZES))
    s = CARDIAC_SIZES[size]
    shape = tuple(int(round(e / s)) for e in EXTENT_MM)
    half = (np.array(shape) - 1) * s / 2.0
    origin = np.array([half[0], half[1], -half[2]])
    return shape, ImageGrid.make_affine(origin, (s, s, s), np.diag([-1.0, -1.0, 1.0]))


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _heart(rng: np.random.Generator) -> dict:
    """Chambers, wall, aorta and veins in the heart frame (RAS mm around the heart centre)."""
    apex = np.array([-0.55, 0.45, -0.7]) + rng.normal(0.0, 0.08, 3)
    base = np.array([-5.0, -5.0, 10.0]) + rng.normal(0.0, 2.0, 3)
    lv = Bullet(base, frame_from_axis(apex, rng.uniform(0, np.pi)), rng.uniform(20, 27), rng.uniform(19, 26),
                rng.uniform(58, 78), rng.uniform(5, 9), Bumps.draw(rng, strength=0.12))
    wall = rng.uniform(8, 12)
    la_centre = base + np.array([8.0, -30.0, 22.0]) + rng.normal(0.0, 3.0, 3)
    la = Blob(la_centre, frame_from_axis(np.array([0.3, -0.4, 1.0]) + rng.normal(0, 0.2, 3), rng.uniform(0, np.pi)),
              np.array([rng.uniform(23, 30), rng.uniform(17, 23), rng.uniform(18, 25)]), Bumps.draw(rng, strength=0.15))
    veins = []
    for sx in (-1.0, 1.0):
        for sz in (-1.0, 1.0):
            d = la.frame @ np.array([sx * 0.85, -0.45, sz * 0.35])
            d /= np.linalg.norm(d)
            start = la_centre + d * 0.7 * la.semi.mean()
            veins.append(Tube(np.stack([start, start + d * rng.uniform(20, 30)]), np.full(2, rng.uniform(4.5, 7.0))))
    root = base + np.array([12.0, 10.0, 12.0])
    aorta = Tube(np.array([root, root + [2, 2, 40], [0, -8, 70], [-15, -32, 62], [-18, -46, 30], [-18, -48, -90]]),
                 np.array([13, 14, 12.5, 11.5, 10.5, 10.0]) * rng.uniform(0.85, 1.1))
    rv = Blob(base + np.array([24.0, 26.0, -20.0]) + rng.normal(0, 3, 3), frame_from_axis(apex, rng.uniform(0, np.pi)),
              np.array([rng.uniform(26, 32), rng.uniform(15, 20), rng.uniform(35, 45)]), Bumps.draw(rng, strength=0.12))
    ra = Blob(base + np.array([40.0, -10.0, 14.0]) + rng.normal(0, 3, 3), frame_from_axis(rng.normal(0, 1, 3), 0.0),
              np.array([rng.uniform(20, 26), rng.uniform(18, 24), rng.uniform(22, 28)]), Bumps.draw(rng, strength=0.12))
    fat = Blob(base + np.array([6.0, 2.0, -8.0]), frame_from_axis(apex, 0.0), np.array([66.0, 60.0, 72.0]),
               Bumps.draw(rng, strength=0.05))
    return {"lv": lv, "wall": wall, "la": la, "veins": veins, "aorta": aorta, "rv": rv, "ra": ra, "fat": fat}


def _intensities(rng: np.random.Generator) -> dict:
    blood = rng.uniform(280, 450)
    return {"air": -1000.0, "body": rng.uniform(30, 60), "lung": rng.uniform(-850, -750), "fat": rng.uniform(-110, -60),
            "bone": rng.uniform(500, 800), "sternum": rng.uniform(400, 700), "ra": blood * rng.uniform(0.4, 0.8),
            "rv": blood * rng.uniform(0.5, 0.9), "aorta": blood + rng.uniform(-20, 20), "veins": blood + rng.uniform(-40, 20),
            "la": blood + rng.uniform(-40, 20), "myocardium": rng.uniform(70, 130), "lv": blood}


def _layers(heart: dict) -> list:
    """(name, level function, in the heart frame?) back to front; later layers cover earlier ones."""
    lv, wall = heart["lv"], heart["wall"]
    tube_union = lambda tubes: lambda p: np.min([t.level(p) for t in tubes], axis=0)  # noqa: E731
    thorax = [("body", ZCylinder(np.array([0.0, -5.0]), np.array([140.0, 105.0])).level),
              ("lung", lambda p: np.minimum(*(Blob(np.array([sx, -10.0, 10.0]), np.eye(3), np.array([48.0, 62.0, 85.0]),
                                                     Bumps(np.zeros(1), np.zeros(1), np.zeros(1))).level(p) for sx in (-58.0, 58.0)))),
              ("bone", ZCylinder(np.array([0.0, -76.0]), np.array([18.0, 16.0])).level),
              ("sternum", ZCylinder(np.array([0.0, 66.0]), np.array([14.0, 5.0])).level)]
    cardiac = [("fat", heart["fat"].level), ("ra", heart["ra"].level), ("rv", heart["rv"].level),
               ("aorta", heart["aorta"].level), ("veins", tube_union(heart["veins"])), ("la", heart["la"].level),
               ("myocardium", lambda q: lv.level(q, grow=wall)), ("lv", lv.level)]
    return [(name, fn, False) for name, fn in thorax] + [(name, fn, True) for name, fn in cardiac]


def _owner(layers: list, pts: np.ndarray, to_local) -> np.ndarray:
    """Index of the front-most layer containing each world point (−1: none, i.e. air)."""
    owner = np.full(len(pts), -1, np.int16)
    local = to_local(pts)
    for i, (_, fn, in_heart) in enumerate(layers):  # later layers are painted over earlier ones
        owner[fn(local if in_heart else pts) < 0] = i
    return owner


def _fractions(layers: list, grid: ImageGrid, to_local) -> dict:
    """Visible fraction per layer (after the layers painted over it), by 2×2×2 supersampling.

    Only voxels whose centre owner differs from one of its 26 neighbours' are supersampled; the
    others are wholly their owner's (every structure is thicker than two voxels).
    """
    shape = grid.shape
    owner = _owner(layers, grid.voxel_centers(), to_local).reshape(shape)
    edge = (ndimage.maximum_filter(owner, size=3) != owner) | (ndimage.minimum_filter(owner, size=3) != owner)
    idx = np.argwhere(edge).astype(np.float64)
    offsets = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - 0.5
    counts = np.zeros((len(idx), len(layers) + 1), np.float32)
    rows = np.arange(len(idx))
    for ox in offsets:
        for oy in offsets:
            for oz in offsets:
                counts[rows, _owner(layers, grid.index_to_world(idx + [ox, oy, oz]), to_local) + 1] += 1
    counts /= _SUPERSAMPLE**3
    out = {}
    for i, (name, _, _) in enumerate(layers):
        f = (owner == i).astype(np.float32)
        f[edge] = counts[:, i + 1]
        out[name] = f
    return out


def make_cardiac_phantom(seed: int = 0, size: str = "small") -> CardiacPhantom:
    """Build a cardiac phantom.

    Args:
        seed: Seed of every random choice (shapes, pose, intensities, noise).
        size: "small" (2 mm, 80×80×72, for tests and training) or "full" (1.25 mm, 128×128×115).

    Returns:
        CardiacPhantom; ``info`` holds the seed, size, spacing, pose, intensities, noise and the label
        volumes (ml) both as counted voxels and as summed partial-volume fractions.
    """
    seed = check_seed(seed)
    rng = numpy_rng(seed)
    shape, affine = cardiac_grid(size)
    grid = ImageGrid(np.zeros(shape, np.uint8), affine)
    heart = _heart(rng)
    angle, axis = rng.uniform(-0.26, 0.26), rng.normal(size=3)
    rot, scale = _rotation(axis, angle), rng.uniform(0.85, 1.15)
    centre = np.array([-8.0, 5.0, 0.0]) + rng.uniform(-8, 8, 3)
    to_local = lambda p: ((p - centre) @ rot) / scale  # noqa: E731  (inverse of p = centre + scale·rot·q)
    hu = _intensities(rng)
    frac = _fractions(_layers(heart), grid, to_local)
    image = hu["air"] * (1.0 - sum(frac.values())) + sum(hu[name] * f for name, f in frac.items())
    spacing = CARDIAC_SIZES[size]
    psf = rng.uniform(0.5, 0.8)
    noise = rng.uniform(12, 30)
    image = ndimage.gaussian_filter(image, psf) + rng.normal(0.0, noise, shape)
    labels = np.zeros(shape, np.uint8)
    labels[frac["la"] >= 0.5] = 1
    labels[frac["lv"] >= 0.5] = 2
    voxel_ml = spacing**3 / 1000.0
    info = {"seed": seed, "size": size, "spacing_mm": spacing, "labels": {str(k): v for k, v in CARDIAC_LABELS.items()},
            "pose": {"rotation_rad": round(float(angle), 4), "scale": round(float(scale), 4),
                     "centre_mm": [round(float(c), 2) for c in centre]},
            "intensities_hu": {k: round(float(v), 1) for k, v in hu.items()}, "noise_sigma_hu": round(float(noise), 2),
            "psf_sigma_voxels": round(float(psf), 3),
            "volumes_ml": {name: round(float(np.count_nonzero(labels == lab) * voxel_ml), 2) for lab, name in CARDIAC_LABELS.items()},
            "partial_volumes_ml": {CARDIAC_LABELS[1]: round(float(frac["la"].sum() * voxel_ml), 2),
                                   CARDIAC_LABELS[2]: round(float(frac["lv"].sum() * voxel_ml), 2)}}
    ct = np.clip(np.rint(image), -1024, 3071).astype(np.int16)
    return CardiacPhantom(ImageGrid(ct, affine.copy()), ImageGrid(labels, affine.copy()), info)
