"""MMWHS-style cardiac image/label pairs (NIfTI), mapped to the shape-from-image labels.

The Multi-Modality Whole Heart Segmentation challenge data (Zhuang, IEEE TPAMI 2019; the
ImplicitMeshNet paper's Table 1) ships as one folder per modality and split, e.g.::

    ct_train/ct_train_1001_image.nii.gz
    ct_train/ct_train_1001_label.nii.gz
    ...
    ct_train/ct_train_1020_image.nii.gz
    ct_train/ct_train_1020_label.nii.gz

(``mr_train_…`` alike; the test splits have images only). A case is an ``<id>_image.<ext>``
with an ``<id>_label.<ext>`` beside it (``.nii.gz``, ``.nii``, ``.nrrd`` or ``.mha``). Label
values (:data:`MMWHS_LABELS`): 205 LV myocardium, 420 left atrium blood cavity, 500 left
ventricle blood cavity, 550 right atrium, 600 right ventricle, 820 ascending aorta,
850 pulmonary artery. :func:`read_mmwhs_pair` maps 420 → 1 (left atrium) and 500 → 2 (left
ventricle), the phantom's and the model's labels; everything else becomes 0.

The geometry is the file's (RAS inside the library, as every reader here): no resampling.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, geometry_difference
from AnatomyINRLib.io.images import read_image

#: MMWHS label value → structure.
MMWHS_LABELS: dict[int, str] = {205: "left_ventricle_myocardium", 420: "left_atrium", 500: "left_ventricle",
                                550: "right_atrium", 600: "right_ventricle", 820: "ascending_aorta",
                                850: "pulmonary_artery"}
#: MMWHS value → shape-from-image label (1 = left atrium, 2 = left ventricle).
MMWHS_TO_LABEL: dict[int, int] = {420: 1, 500: 2}
_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")
_CASE = re.compile(r"^(?P<id>.+)_image(?P<ext>\.nii\.gz|\.nii|\.nrrd|\.mha)$")


def find_mmwhs_cases(folder: "str | os.PathLike") -> list[tuple[str, Path, Path]]:
    """Every (case id, image path, label path) in a folder, sorted by id.

    Raises:
        InputError: the folder is missing, holds no ``*_image`` file, or an image has no label beside it.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"folder {str(root)!r}: not an existing folder")
    cases = []
    for path in sorted(root.iterdir()):
        match = _CASE.match(path.name)
        if not match:
            continue
        label = root / f"{match['id']}_label{match['ext']}"
        if not label.is_file():
            raise InputError(f"folder {str(root)!r}: image {path.name!r} has no label file {label.name!r} beside it")
        cases.append((match["id"], path, label))
    if not cases:
        raise InputError(f"folder {str(root)!r}: no MMWHS-style cases (<id>_image{{{', '.join(_EXTENSIONS)}}} "
                         "with <id>_label of the same type)")
    return cases


def read_mmwhs_pair(image_path: "str | os.PathLike", label_path: "str | os.PathLike") -> tuple[ImageGrid, ImageGrid]:
    """Read one case and map its labels (420 → 1 left atrium, 500 → 2 left ventricle, others → 0).

    Returns:
        (image as float32 on its own geometry, uint8 labels on the same geometry).

    Raises:
        InputError: unreadable, 2-D or 4-D files; an image whose voxels are all equal ("empty");
            labels that are not MMWHS values, hold neither 420 nor 500, or lie on another grid.
    """
    image = read_image(image_path)
    labels = read_image(label_path)
    arr = image.array
    if arr.size == 0 or not np.isfinite(arr).all() or float(arr.min()) == float(arr.max()):
        what = "has no voxels" if arr.size == 0 else ("holds NaN or infinity" if not np.isfinite(arr).all()
                                                       else f"is empty (every voxel is {float(arr.flat[0]):g})")
        raise InputError(f"image {str(image_path)!r}: {what}")
    diff = geometry_difference(labels, image)
    if diff:
        raise InputError(f"label {str(label_path)!r} and image {str(image_path)!r} are on different grids: {diff}")
    values = np.unique(labels.array)
    unknown = sorted(int(v) for v in values if v != 0 and int(v) not in MMWHS_LABELS)
    if unknown or not np.all(values == np.round(values)):
        raise InputError(f"label {str(label_path)!r}: values {unknown[:8] or values[:8].tolist()} are not MMWHS labels "
                         f"(expected 0 and some of {sorted(MMWHS_LABELS)})")
    if not any(int(v) in MMWHS_TO_LABEL for v in values):
        raise InputError(f"label {str(label_path)!r}: neither the left atrium (420) nor the left ventricle (500) is labelled")
    mapped = np.zeros(labels.shape, np.uint8)
    for value, target in MMWHS_TO_LABEL.items():
        mapped[labels.array == value] = target
    return image.with_array(arr.astype(np.float32)), labels.with_array(mapped)
