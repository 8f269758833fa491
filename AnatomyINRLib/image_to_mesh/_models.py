"""Where the shipped models live: package data of ``image_to_mesh`` (``models/``), or a source checkout's
``Resources/Models`` (the g_φ pre-training output), so an installed library finds them as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

#: File names of the shipped checkpoints (``.safetensors`` + ``.json`` sidecar each).
SHAPE_MODEL = "image_to_mesh_shape.safetensors"
REPRESENTATION_MODEL = "image_to_mesh_representation.safetensors"


def model_folders() -> list[Path]:
    """Folders searched in order: the package's ``models/``, then ``Resources/Models`` of a source checkout."""
    here = Path(__file__).resolve().parent
    return [here / "models", here.parents[1] / "Resources" / "Models"]


def shipped_model(name: str) -> Optional[Path]:
    """Path of a shipped checkpoint by file name, or None when no searched folder holds it."""
    for folder in model_folders():
        if (folder / name).is_file():
            return folder / name
    return None
