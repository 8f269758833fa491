"""Save and load fitted neural fields without pickling code.

A field file holds the network weights as plain tensors plus JSON metadata
that says how to rebuild the network (``nn.registry`` kind + config dict) and
how to map world RAS mm to the network's frame (``Normalization``):

* ``.safetensors``: weights; the metadata JSON is embedded in the header
  metadata under the key ``"anatomy_inr"``.
* ``.pt`` / ``.pth``: ``torch.save`` of ``{"tensors": {name: tensor}, "metadata_json": str}``,
  loaded only with ``torch.load(weights_only=True)``, so a file carrying a
  pickled object is refused instead of executing code.

Both are accompanied by a human-readable sidecar ``<name>.json`` with the same
metadata; loading reads the embedded copy, so the sidecar may be missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.io.atomic import atomic_path
from AnatomyINRLib.io.formats import check_readable, format_of, strip_extension

FORMAT_NAME = "anatomy-inr-field"
FORMAT_VERSION = 1
SAFETENSORS_KEY = "anatomy_inr"
# Keys the library owns; caller metadata cannot override them.
_RESERVED = ("format", "format_version", "library_version", "network", "normalization", "units", "frame", "sdf_sign")


def sidecar_path(path: "str | os.PathLike") -> Path:
    """The JSON sidecar of a field file: ``<path without extension>.json``."""
    # Not with_suffix: "fit.v2.safetensors" must give "fit.v2.json", not "fit.json".
    return Path(str(strip_extension(path)) + ".json")


def save_inr(field, path: "str | os.PathLike", metadata: Optional[dict] = None) -> dict:
    """Save a :class:`~AnatomyINRLib.nn.field.NeuralField` and its JSON sidecar, atomically.

    Args:
        field: The fitted field (network with a ``config.to_dict()`` + Normalization).
        path: ``.safetensors``, ``.pt`` or ``.pth`` output file.
        metadata: Extra JSON-serialisable entries (fit config, fit report...);
            numpy arrays and scalars are converted to lists/numbers.

    Returns:
        The full metadata dict that was written.

    Raises:
        InputError: ``field`` is not a NeuralField, or metadata is not JSON-serialisable.
        OutputError: unsupported extension or unwritable location.
    """
    from AnatomyINRLib.nn.field import NeuralField

    if not isinstance(field, NeuralField):
        raise InputError(f"field: expected a NeuralField, got {type(field).__name__}")
    ext = format_of(path, "inr", writing=True)
    meta = build_metadata(field, metadata)
    text = json.dumps(meta, indent=2, allow_nan=False)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in field.network.state_dict().items()}
    with atomic_path(path) as tmp:
        try:
            if ext == ".safetensors":
                from safetensors.torch import save_file

                save_file(tensors, str(tmp), metadata={SAFETENSORS_KEY: text})
            else:
                import torch

                torch.save({"tensors": tensors, "metadata_json": text}, str(tmp))
        except (OSError, RuntimeError) as exc:  # safetensors reports a full disk as a plain error
            raise OutputError(f"output {str(path)!r}: could not be written ({exc})") from exc
    with atomic_path(sidecar_path(path)) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return meta


def load_inr(path: "str | os.PathLike", device: str = "cpu"):
    """Load a field saved by :func:`save_inr`.

    Args:
        path: ``.safetensors``, ``.pt`` or ``.pth`` file.
        device: "cpu", "cuda", "mps" or "auto" (see ``core.device.resolve_device``).

    Returns:
        (NeuralField on ``device``, metadata dict).

    Raises:
        InputError: missing, corrupt or foreign file; unsafe pickle content;
            unknown network kind; weights that do not match the architecture.
    """
    from AnatomyINRLib.core.device import resolve_device
    from AnatomyINRLib.nn.field import NeuralField, Normalization
    from AnatomyINRLib.nn.registry import build_network

    ext = format_of(path, "inr")
    path = check_readable(path)
    tensors, text = _read_safetensors(path) if ext == ".safetensors" else _read_torch(path)
    meta = _parse_metadata(path, text)
    network_info = meta["network"]
    try:
        network = build_network(network_info["kind"], network_info["config"])
        network.load_state_dict(tensors, strict=True)
    except InputError as exc:
        raise InputError(f"path {str(path)!r}: {exc}") from exc
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"path {str(path)!r}: weights do not match the stored network ({reason})") from exc
    try:
        normalization = Normalization.from_dict(meta["normalization"])
    except InputError as exc:
        raise InputError(f"path {str(path)!r}: {exc}") from exc
    return NeuralField(network, normalization, device=resolve_device(device)), meta


def build_metadata(field, metadata: Optional[dict] = None) -> dict:
    """The metadata dict :func:`save_inr` writes (caller entries + the library's own)."""
    from AnatomyINRLib import __version__
    from AnatomyINRLib.nn.registry import network_kind

    meta = {key: _plain(value, key) for key, value in dict(metadata or {}).items() if key not in _RESERVED}
    config = getattr(field.network, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise InputError("field: its network has no config.to_dict(), so it could not be rebuilt on load")
    meta.update({
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "network": {"kind": network_kind(field.network), "config": _plain(config.to_dict(), "network.config")},
        "normalization": field.normalization.to_dict(),
        "units": "mm",
        "frame": "RAS",
        "sdf_sign": "negative-inside",
    })
    return meta


# ----------------------------------------------------------------------------- helpers


def _plain(value: Any, where: str) -> Any:
    """JSON-ready copy of ``value`` (numpy → lists/numbers); InputError if impossible."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        raise InputError(f"metadata[{where}]: {value} cannot be stored in JSON")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InputError(f"metadata[{where}]: {type(value).__name__} is not JSON-serialisable")


def _read_safetensors(path: Path):
    try:
        from safetensors import safe_open

        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            for key in handle.keys():
                tensors[key] = handle.get_tensor(key)
    except Exception as exc:  # safetensors raises SafetensorError/OSError/... on corrupt files
        raise InputError(f"path {str(path)!r}: not a readable safetensors file ({exc})") from exc
    if SAFETENSORS_KEY not in header:
        raise InputError(f"path {str(path)!r}: safetensors file without '{SAFETENSORS_KEY}' metadata (not an AnatomyINR field)")
    return tensors, header[SAFETENSORS_KEY]


def _read_torch(path: Path):
    import pickle
    import zipfile

    import torch

    # torch.save writes a zip archive; checking first separates "not a torch file"
    # from "a torch file with unsafe pickled content" (both raise UnpicklingError).
    if not zipfile.is_zipfile(path):
        raise InputError(f"path {str(path)!r}: not a readable PyTorch file (expected the zip archive torch.save writes)")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            f"path {str(path)!r}: refused to load; it contains pickled objects other than tensors "
            "(only weights_only files are accepted)"
        ) from exc
    except Exception as exc:  # truncated zip, not a torch file, ...
        raise InputError(f"path {str(path)!r}: not a readable PyTorch file ({str(exc).splitlines()[0] if str(exc) else exc!r})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tensors"), dict) or not isinstance(data.get("metadata_json"), str):
        raise InputError(f"path {str(path)!r}: expected a dict with 'tensors' and 'metadata_json' (not an AnatomyINR field)")
    if not all(isinstance(v, torch.Tensor) for v in data["tensors"].values()):
        raise InputError(f"path {str(path)!r}: 'tensors' must map names to tensors")
    return data["tensors"], data["metadata_json"]


def _parse_metadata(path: Path, text: str) -> dict:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"path {str(path)!r}: corrupt metadata JSON ({exc.msg})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputError(f"path {str(path)!r}: not an AnatomyINR field (format is {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"path {str(path)!r}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise InputError(f"path {str(path)!r}: written by a newer AnatomyINR (format_version {version} > {FORMAT_VERSION}); update the library")
    for key, expected in (("units", "mm"), ("frame", "RAS"), ("sdf_sign", "negative-inside")):
        if meta.get(key) != expected:
            raise InputError(f"path {str(path)!r}: metadata {key} must be {expected!r}, got {meta.get(key)!r}")
    network = meta.get("network")
    if not isinstance(network, dict) or not isinstance(network.get("kind"), str) or not isinstance(network.get("config"), dict):
        raise InputError(f"path {str(path)!r}: metadata 'network' must have a 'kind' string and a 'config' object")
    if not isinstance(meta.get("normalization"), dict):
        raise InputError(f"path {str(path)!r}: metadata 'normalization' is missing")
    return meta
