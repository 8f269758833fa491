"""Training checkpoints: named tensors in a safetensors file plus JSON metadata, never pickled.

The metadata JSON (what was trained, its configuration, the epoch reached, the
optimiser's hyper-parameters) sits in the safetensors header under the key
``"anatomy_inr_checkpoint"`` and in a readable sidecar ``<name>.json``; loading
reads the embedded copy. Tensors are loaded with ``safetensors`` only, so a
checkpoint cannot carry code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.io.atomic import atomic_path
from AnatomyINRLib.io.formats import check_readable, file_extension, strip_extension

CHECKPOINT_FORMAT = "anatomy-inr-checkpoint"
CHECKPOINT_VERSION = 1
HEADER_KEY = "anatomy_inr_checkpoint"


def checkpoint_sidecar(path: "str | os.PathLike") -> Path:
    """The JSON sidecar of a checkpoint: ``<path without extension>.json``."""
    return Path(str(strip_extension(path)) + ".json")


def _check_extension(path, argument: str) -> None:
    if file_extension(path) != ".safetensors":
        raise (OutputError if argument == "output" else InputError)(
            f"{argument} {str(path)!r}: expected a .safetensors checkpoint, got {file_extension(path) or '(none)'}")


def save_checkpoint(path: "str | os.PathLike", tensors: dict, metadata: dict) -> None:
    """Write ``tensors`` (name → torch tensor) and ``metadata`` (JSON-ready dict) atomically.

    Raises:
        InputError: metadata not JSON-serialisable.
        OutputError: not a ``.safetensors`` path, or the file could not be written.
    """
    from safetensors.torch import save_file

    _check_extension(path, "output")
    try:
        text = json.dumps({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **metadata},
                          indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata: not JSON-serialisable ({exc})") from exc
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        try:
            save_file(plain, str(tmp), metadata={HEADER_KEY: text})
        except (OSError, RuntimeError) as exc:
            raise OutputError(f"output {str(path)!r}: could not be written ({exc})") from exc
    with atomic_path(checkpoint_sidecar(path)) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def load_checkpoint(path: "str | os.PathLike") -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        (tensors name → CPU torch tensor, metadata dict).

    Raises:
        InputError: missing or unreadable file, not a safetensors file, or a safetensors file that is not an
            AnatomyINR checkpoint (e.g. a fitted field), or one written by a newer format version.
    """
    from safetensors import safe_open

    _check_extension(path, "checkpoint")
    path = check_readable(path, argument="checkpoint")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises several error types on corrupt files
        raise InputError(f"checkpoint {str(path)!r}: not a readable safetensors file ({exc})") from exc
    if HEADER_KEY not in header:
        raise InputError(f"checkpoint {str(path)!r}: not an AnatomyINR training checkpoint "
                         f"(no '{HEADER_KEY}' metadata; a fitted field file is not a checkpoint)")
    try:
        meta = json.loads(header[HEADER_KEY])
    except json.JSONDecodeError as exc:
        raise InputError(f"checkpoint {str(path)!r}: corrupt metadata JSON ({exc.msg})") from exc
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"checkpoint {str(path)!r}: not an AnatomyINR training checkpoint")
    version = meta.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_VERSION:
        raise InputError(f"checkpoint {str(path)!r}: unsupported format_version {version!r} "
                         f"(this library reads 1-{CHECKPOINT_VERSION})")
    return tensors, meta
