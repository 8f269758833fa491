"""Shared small inputs of the f_θ tests: blob "CT" cases, a tiny pre-trained g_φ, a tiny trained f_θ."""

import pytest

from AnatomyINRLib import io
from i2m_cases import blob_case


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
