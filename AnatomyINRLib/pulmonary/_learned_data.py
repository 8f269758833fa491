"""Method B data: case folders, the encoder's input cube, and training point sampling.

Training data layout (``DATA_DIR``): one folder per case. A folder holds volumes on one grid,
each as ``<name>.nrrd``, ``.nii.gz``, ``.nii`` or ``.mha``; the first name found is used:

* segments (reference labels 1-18 in :data:`SEGMENTS` order): ``segments`` (phantom) or
  ``lungsegment`` (Lung3D);
* lobes (1-5): ``lobes`` or ``lobe``; when missing they are derived from the segments
  (1-3 → 1, 4-5 → 2, 6-10 → 3, 11-14 → 4, 15-18 → 5), as the public ImPulSe+ code does;
* trees (non-zero = inside): ``airways``/``airway``, ``arteries``/``artery``, ``veins``/``vein``;
* CT (HU): ``ct``. Lung3D releases no CT, so a Lung3D model must be trained without the
  ``ct`` channel (``channels`` without "ct"); Lung3D's ``interseg`` volume is not used.

Lung3D's 18 segment labels (RSL_S1 … LIL_S10) are in the same order as ours, so its
``lungsegment.nii.gz`` is read as is. The lung box is the bounding box of the lobes; the
encoder sees it resampled to ``input_size``³ (nearest for masks, trilinear for CT) and query
points live in that box normalised to [-1, 1]³ (align-corners: -1 and 1 are the box's first
and last voxel centres).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.pulmonary.config import LearnedNetworkConfig, LearnedTrainConfig, segment_lobe

FILE_NAMES: dict[str, tuple[str, ...]] = {
    "segments": ("segments", "lungsegment"), "lobes": ("lobes", "lobe"), "airways": ("airways", "airway"),
    "arteries": ("arteries", "artery"), "veins": ("veins", "vein"), "ct": ("ct",),
}
EXTENSIONS = (".nrrd", ".nii.gz", ".nii", ".mha")
CT_WINDOW_HU = (-1000.0, 400.0)
_LOBE_OF = np.array([0] + [segment_lobe(v) for v in range(1, 19)], dtype=np.uint8)
TREES = ("airways", "arteries", "veins")


def find_volume(folder: Path, key: str) -> Optional[Path]:
    """The file of volume ``key`` in a case folder (first of FILE_NAMES × EXTENSIONS), or None."""
    for stem in FILE_NAMES[key]:
        for ext in EXTENSIONS:
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    return None


def read_case_images(folder: Path, channels: tuple, need_segments: bool) -> dict:
    """Read one case folder's volumes (through ``io``); lobes derived from the segments if absent.

    Raises:
        InputError: a needed volume is missing (names the folder and the accepted file names).
    """
    from AnatomyINRLib import io

    wanted = {c for c in channels if c != "lobes"} | {"lobes"} | ({"segments"} if need_segments else set())
    images = {}
    for key in sorted(wanted):
        path = find_volume(folder, key)
        if path is None:
            if key == "lobes" and "segments" in images:
                continue
            if key == "lobes" and find_volume(folder, "segments") is not None:
                images["segments"] = io.read_image(find_volume(folder, "segments"))
                continue
            names = ", ".join(f"{s}{EXTENSIONS[0]}|{EXTENSIONS[1]}" for s in FILE_NAMES[key])
            raise InputError(f"data_dir: case {folder.name!r} has no {key} volume (expected one of {names})")
        images[key] = io.read_image(path)
    if "lobes" not in images:
        seg = images["segments"]
        images["lobes"] = seg.with_array(_LOBE_OF[np.clip(seg.array.astype(np.int64), 0, 18)])
    return images


def lung_box(lobes: np.ndarray, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) inclusive voxel-index corners of the lobes' bounding box grown by ``margin`` voxels."""
    idx = np.argwhere(lobes > 0)
    if not len(idx):
        raise InputError("lobes: the lobe mask is empty")
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin, np.array(lobes.shape) - 1)
    return lo.astype(np.int64), np.maximum(hi, lo + 1).astype(np.int64)


def to_normalised(ijk: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 3) voxel indices → (N, 3) coordinates in the lung box's [-1, 1]³."""
    return 2.0 * (np.asarray(ijk, dtype=np.float64) - lo) / (hi - lo) - 1.0


def to_index(norm: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_normalised`."""
    return lo + (np.asarray(norm, dtype=np.float64) + 1.0) * 0.5 * (hi - lo)


def encoder_input(images: dict, config: LearnedNetworkConfig, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(C, S, S, S) float32 encoder input: the lung box resampled to S = ``input_size`` per axis.

    CT is clipped to [-1000, 400] HU and scaled to [0, 1]; trees are 0/1; lobes are a 6-channel one-hot.
    """
    from scipy.ndimage import map_coordinates

    s = config.input_size
    axes = [np.linspace(lo[a], hi[a], s) for a in range(3)]
    near = np.ix_(*[np.rint(ax).astype(np.int64) for ax in axes])
    out = []
    for key in config.channels:
        if key == "ct":
            grid = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1)
            hu = map_coordinates(np.asarray(images["ct"].array, dtype=np.float32), grid, order=1, mode="nearest")
            hu = np.clip(hu.reshape(s, s, s), *CT_WINDOW_HU)
            out.append((hu - CT_WINDOW_HU[0]) / (CT_WINDOW_HU[1] - CT_WINDOW_HU[0]))
        elif key == "lobes":
            lob = np.clip(np.asarray(images["lobes"].array)[near].astype(np.int64), 0, 5)
            out.extend((lob == v).astype(np.float32) for v in range(6))
        else:
            out.append((np.asarray(images[key].array)[near] != 0).astype(np.float32))
    return np.stack(out).astype(np.float32)


@dataclass
class LearnedCase:
    """One training case: the encoder input, the lung box and what the point sampler needs."""

    name: str
    volume: np.ndarray  # (C, S, S, S) float32
    lo: np.ndarray  # (3,) int64, first voxel of the lung box
    hi: np.ndarray  # (3,) int64, last voxel of the lung box
    segments: np.ndarray  # lung-box crop of the reference labels (uint8)
    trees: dict  # tree name → (M, 3) int64 voxel indices (full-volume) of its voxels
    template_target: Optional[np.ndarray] = None  # (T, T, T) int64 labels for template pre-training


def make_case(name: str, images: dict, config: LearnedTrainConfig) -> LearnedCase:
    """Prepare one case (input cube, crop, tree voxel lists, template target)."""
    lobes = np.asarray(images["lobes"].array)
    lo, hi = lung_box(lobes)
    seg = np.asarray(images["segments"].array)
    crop = np.ascontiguousarray(seg[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1].astype(np.uint8))
    trees = {k: np.argwhere(np.asarray(images[k].array) != 0) for k in TREES if k in images}
    t = config.network.template_size
    near = np.ix_(*[np.rint(np.linspace(0, hi[a] - lo[a], t)).astype(np.int64) for a in range(3)])
    return LearnedCase(name, encoder_input(images, config.network, lo, hi), lo, hi, crop, trees,
                       crop[near].astype(np.int64))


def load_cases(data_dir: "str | Path", config: LearnedTrainConfig, names: Optional[list] = None) -> list:
    """Prepare the cases of ``data_dir`` (all case folders, or only ``names``), sorted by folder name.

    The three trees are read even when not encoder channels: the point sampler draws on them.
    """
    need = set(config.network.channels) | {"airways", "arteries", "veins"}
    cases = []
    for folder in case_folders(data_dir) if names is None else [Path(data_dir) / n for n in names]:
        images = read_case_images(folder, tuple(sorted(need)), need_segments=True)
        cases.append(make_case(folder.name, images, config))
    return cases


def case_folders(data_dir: "str | Path") -> list:
    """Sorted sub-folders of ``data_dir`` that hold a segments volume.

    Raises:
        InputError: ``data_dir`` is not a folder or holds no case.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"data_dir {str(root)!r}: is not a folder")
    found = sorted(p for p in root.iterdir() if p.is_dir() and find_volume(p, "segments") is not None)
    if not found:
        raise InputError(f"data_dir {str(root)!r}: no case folder with a segments volume "
                         "(segments.nrrd|.nii.gz or lungsegment.nii.gz) inside")
    return found


def sample_points(case: LearnedCase, n: int, fractions: dict, rng: np.random.Generator):
    """Training points of one case and their labels.

    ``fractions`` maps a tree name ("airways", "arteries", "veins") to the share of the ``n`` points drawn
    on its voxels (a random voxel, jittered uniformly within ±½ voxel); the rest are uniform in [-1, 1]³.
    A tree the case lacks (or an empty one) gives its share to the uniform points.

    Returns:
        points (n, 3) float32 normalised, labels (n,) int64: the reference label of the nearest voxel.
    """
    parts = []
    for tree in TREES:
        vox = case.trees.get(tree)
        k = int(round(fractions.get(tree, 0.0) * n))
        if k and vox is not None and len(vox):
            pick = vox[rng.integers(0, len(vox), k)] + rng.uniform(-0.5, 0.5, (k, 3))
            parts.append(np.clip(to_normalised(pick, case.lo, case.hi), -1.0, 1.0))
    used = sum(len(p) for p in parts)
    parts.append(rng.uniform(-1.0, 1.0, (n - used, 3)))
    pts = np.concatenate(parts)
    idx = np.rint(to_index(pts, case.lo, case.hi) - case.lo).astype(np.int64)
    idx = np.clip(idx, 0, np.array(case.segments.shape) - 1)
    labels = case.segments[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.int64)
    return pts.astype(np.float32), labels


def inference_images_check(images: dict, channels: tuple) -> None:
    """Method B needs the lobes and every channel its checkpoint was trained with.

    Raises:
        InputError: names the missing input and the checkpoint's channels.
    """
    for key in ("lobes",) + tuple(channels):
        if images.get(key) is None:
            raise InputError(f"{key}: this checkpoint was trained on the channels {list(channels)} and needs "
                             f"{key} (Method B)")

