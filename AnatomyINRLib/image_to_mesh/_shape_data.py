"""Training and prediction inputs of f_θ: image crops, soft labels, and the training data's range.

Every image (any geometry, RAS mm) is seen by the networks through a :class:`_raster.CropFrame`:
the cube [-1, 1]³ of half edge ``crop_half_mm`` around the image centre, axis-aligned with the
image's voxel axes. On it (``_grid`` convention, voxel i of n at −1 + 2i/(n − 1)):

* the image, trilinear, clamped to the nearest voxel outside, HU window → [-1, 1]
  (x ← clip((HU − level) / (width / 2), −1, 1)), on the (image_size)³ grid; with
  ``image_supersample`` s > 1 each voxel is the mean of s³ samples at offsets (i + ½)/s − ½ voxel;
* the labels, nearest voxel (0 outside), on the same grid: the target of the auxiliary CE;
* per structure, the label's inside fraction on g_φ's (grid_size)³ grid from 2×2×2 sub-samples
  per voxel (offsets ±¼ voxel): the soft target S_GT of the BCE.

Data folders: phantom case folders (``image.nrrd`` + ``labels.nrrd`` as the phantom command writes
them, in sub-folders of DATA_DIR or DATA_DIR itself) or MMWHS-style pairs (``io.mmwhs``: ``<id>_image``
+ ``<id>_label`` in DATA_DIR, labels mapped 420 → 1, 500 → 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.image_to_mesh._raster import CropFrame
from AnatomyINRLib.image_to_mesh.config import STRUCTURES, ShapeTrainConfig


@dataclass
class ShapeCase:
    """One preprocessed case: image (N, N, N) float32 in [-1, 1], labels (N, N, N) int64,
    soft targets (K, G, G, G) float32 (structure k = label value k + 1), spacing (3,) mm, and
    the 1st / 99th intensity percentiles of the raw image."""

    image: np.ndarray
    labels: np.ndarray
    soft: np.ndarray
    spacing: np.ndarray
    intensity: tuple


def cube_points(n: int, offset: float = 0.0) -> np.ndarray:
    """(n³, 3) voxel centres of the n³ grid over [-1, 1]³ (i slowest), shifted by offset voxels."""
    axis = -1.0 + 2.0 * (np.arange(n) + offset) / (n - 1)
    g = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return g.reshape(-1, 3)


def voxel_offsets(s: int) -> np.ndarray:
    """(s³, 3) sample offsets in voxel units spreading s samples per axis evenly over a voxel:
    (i + ½)/s − ½ for i = 0 … s − 1 (s = 2: ±¼), the first axis slowest."""
    axis = (np.arange(s) + 0.5) / s - 0.5
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def resample(image: ImageGrid, frame: CropFrame, points: np.ndarray, order: int, cval=None) -> np.ndarray:
    """Values of ``image`` at cube points (order 1 trilinear, 0 nearest; outside: nearest voxel or cval)."""
    ijk = frame.centre_ijk + points * frame.half_size_ijk
    mode = "nearest" if cval is None else "constant"
    return ndimage.map_coordinates(image.array, ijk.T, order=order, mode=mode, cval=0 if cval is None else cval,
                                   prefilter=False)


def check_image(image, argument: str = "image") -> None:
    """InputError unless ``image`` is a 3-D ImageGrid with finite, not all equal voxels."""
    if not isinstance(image, ImageGrid):
        raise InputError(f"{argument}: expected a 3-D ImageGrid (volume + geometry in RAS mm), got {type(image).__name__}")
    arr = image.array
    if min(arr.shape) < 2:
        raise InputError(f"{argument}: expected a 3-D volume with at least 2 voxels per axis, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{argument}: expected real voxel values, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InputError(f"{argument}: holds NaN or infinite voxels")
    if float(arr.min()) == float(arr.max()):
        raise InputError(f"{argument}: is empty (every voxel is {float(arr.flat[0]):g})")


def image_tensor(image: ImageGrid, cfg: ShapeTrainConfig) -> tuple[np.ndarray, CropFrame]:
    """Windowed (N, N, N) float32 crop of ``image`` and its frame (module docstring)."""
    frame = CropFrame.centred(image, cfg.crop_half_mm)
    n, sub = cfg.network.image_size, cfg.image_supersample
    centres = cube_points(n)
    hu = np.zeros(n ** 3)
    for off in voxel_offsets(sub):
        hu += resample(image, frame, centres + off * 2.0 / (n - 1), 1) / sub ** 3
    hu = hu.reshape(n, n, n)
    x = np.clip((hu - cfg.window_level) / (cfg.window_width / 2.0), -1.0, 1.0)
    return x.astype(np.float32), frame


def intensity_range(image: ImageGrid) -> tuple[float, float]:
    """1st and 99th percentile of the voxel values (a strided subset for speed)."""
    flat = np.asarray(image.array).reshape(-1)
    sub = flat[:: max(1, flat.size // 200_000)].astype(np.float64)
    return float(np.percentile(sub, 1)), float(np.percentile(sub, 99))


def prepare_case(image: ImageGrid, labels: ImageGrid, cfg: ShapeTrainConfig, grid_size: int) -> ShapeCase:
    """Crop, window and label targets of one (image, labels) pair on one geometry."""
    from AnatomyINRLib.core.types import geometry_difference

    check_image(image)
    diff = geometry_difference(labels, image)
    if diff:
        raise InputError(f"labels: not on the image's grid ({diff})")
    x, frame = image_tensor(image, cfg)
    n = cfg.network.image_size
    src = labels.with_array(np.asarray(labels.array, np.int16))
    lab = resample(src, frame, cube_points(n), 0, cval=0)
    lab = lab.reshape(n, n, n).astype(np.int64)
    lab[(lab < 0) | (lab > cfg.network.n_structures)] = 0
    soft = np.zeros((cfg.network.n_structures,) + (grid_size,) * 3, np.float32)
    offsets = voxel_offsets(2)
    base = cube_points(grid_size)
    for off in offsets:
        pts = base + off * 2.0 / (grid_size - 1)
        sub = resample(src, frame, pts, 0, cval=0).reshape((grid_size,) * 3)
        for k in range(cfg.network.n_structures):
            soft[k] += (sub == k + 1) / len(offsets)
    return ShapeCase(x, lab, soft, image.spacing.copy(), intensity_range(image))


def find_cases(data_dir) -> list[tuple[str, Path, Path, str]]:
    """(name, image path, label path, kind "phantom" | "mmwhs") of every case in a data folder."""
    from AnatomyINRLib.io.mmwhs import find_mmwhs_cases

    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"data_dir {str(root)!r}: not an existing folder")
    if (root / "image.nrrd").is_file() and (root / "labels.nrrd").is_file():
        return [(root.name, root / "image.nrrd", root / "labels.nrrd", "phantom")]
    folders = [p for p in sorted(root.iterdir()) if (p / "image.nrrd").is_file() and (p / "labels.nrrd").is_file()]
    if folders:
        return [(p.name, p / "image.nrrd", p / "labels.nrrd", "phantom") for p in folders]
    try:
        return [(cid, img, lab, "mmwhs") for cid, img, lab in find_mmwhs_cases(root)]
    except InputError as exc:
        raise InputError(f"data_dir {str(root)!r}: no cases: expected folders with image.nrrd + labels.nrrd "
                         f"(the phantom command's output) or MMWHS-style pairs ({exc})") from None


def read_case(image_path: Path, label_path: Path, kind: str) -> tuple[ImageGrid, ImageGrid]:
    """Read one case; labels as 0 / 1 (left atrium) / 2 (left ventricle)."""
    from AnatomyINRLib.io.images import read_image
    from AnatomyINRLib.io.mmwhs import read_mmwhs_pair

    if kind == "mmwhs":
        return read_mmwhs_pair(image_path, label_path)
    image, labels = read_image(image_path), read_image(label_path)
    values = set(np.unique(labels.array).tolist())
    if not values <= {0, *STRUCTURES}:
        raise InputError(f"labels {str(label_path)!r}: values {sorted(values)[:8]} are not in "
                         f"{{0, {', '.join(str(k) for k in STRUCTURES)}}}")
    return image, labels


def data_range(cases: list[ShapeCase]) -> dict:
    """The training data's spacing and intensity range, stored in the checkpoint for predict's warnings."""
    sp = np.stack([c.spacing for c in cases])
    lo = [c.intensity[0] for c in cases]
    hi = [c.intensity[1] for c in cases]
    return {"spacing_mm_min": float(sp.min()), "spacing_mm_max": float(sp.max()),
            "intensity_p1_min": float(min(lo)), "intensity_p1_max": float(max(lo)),
            "intensity_p99_min": float(min(hi)), "intensity_p99_max": float(max(hi)), "n_cases": len(cases)}
