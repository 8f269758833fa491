"""Shared small inputs of the f_θ tests: blob "CT" cases, a tiny pre-trained g_φ, a tiny trained f_θ."""

import numpy as np
import pytest

from AnatomyINRLib import io
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


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory):
    """Two phantom-layout case folders (image.nrrd + labels.nrrd)."""
    root = tmp_path_factory.mktemp("i2m_data") / "cases"
    for name, seed in (("a", 1), ("b", 2)):
        (root / name).mkdir(parents=True)
        image, labels = blob_case(seed)
        io.write_image(image, root / name / "image.nrrd")
        io.write_image(labels, root / name / "labels.nrrd")
    return root


@pytest.fixture(scope="session")
def g_phi_path(tmp_path_factory):
    """A g_φ of the "test" pre-training preset (17³ grid, 162-vertex template), seeded but untrained
    (the f_θ tests check the training mechanics, not g_φ's accuracy), saved as a checkpoint."""
    import torch

    from AnatomyINRLib.image_to_mesh._representation import MeshToSDF, representation_state
    from AnatomyINRLib.image_to_mesh._template import icosphere
    from AnatomyINRLib.image_to_mesh.config import pretrain_preset
    from AnatomyINRLib.io.checkpoint import save_checkpoint

    cfg = pretrain_preset("test")
    _, faces = icosphere(cfg.template.subdivisions)
    model = MeshToSDF(cfg.representation, faces, generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("i2m_g") / "g.safetensors"
    save_checkpoint(path, *representation_state(model, {"note": "untrained test g_phi"}))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, blob_dir, g_phi_path):
    """An f_θ trained for 2 × 2 steps with the "test" preset on the blob cases (checkpoint path)."""
    from AnatomyINRLib.image_to_mesh import train_shape_model

    path = tmp_path_factory.mktemp("i2m_f") / "f.safetensors"
    train_shape_model(blob_dir, path, representation=g_phi_path, preset="test", seed=0)
    return path
