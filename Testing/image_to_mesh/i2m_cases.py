"""Small CT-like cases of the f_θ tests (a module of its own: ``conftest`` names several files of the suite)."""

import numpy as np

from AnatomyINRLib.core.types import ImageGrid


def blob_case(seed: int, shape=(32, 32, 28), spacing=5.0):
    """A CT-like volume (HU) with an LA-like (1) and an LV-like (2) ellipsoid and their labels (RAS = ijk · 5 mm)."""
    rng = np.random.default_rng(seed)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    centre = (np.array(shape) - 1) / 2.0
    labels = np.zeros(shape, np.uint8)
    for label, offset, radii in ((1, (-3, 4, 6), (4, 3.5, 3.5)), (2, (4, -3, -1), (5, 4.5, 6.5))):
        c = centre + np.asarray(offset) + rng.uniform(-1, 1, 3)
        r = np.asarray(radii) * rng.uniform(0.9, 1.1, 3)
        labels[(((idx - c) / r) ** 2).sum(-1) <= 1.0] = label
    image = np.where(labels > 0, 350.0, -100.0) + rng.normal(0, 15, shape)
    affine = ImageGrid.make_affine(-centre * spacing, (spacing,) * 3)
    return ImageGrid(image.astype(np.float32), affine), ImageGrid(labels, affine)
