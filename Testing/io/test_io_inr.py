"""Neural-field files: identical values after save/load, metadata, refusal of unsafe or foreign files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from AnatomyINRLib import __version__
from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.io import load_inr, save_inr
from AnatomyINRLib.io.inr import sidecar_path
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP, MLPConfig

_MARKER = []


class _Payload:
    """Unpickling this would run code (append to a list) — weights_only must refuse it."""

    def __reduce__(self):
        return (_MARKER.append, ("executed",))


@pytest.fixture(scope="module")
def field() -> NeuralField:
    net = MLP(MLPConfig(width=24, depth=3, skip_layers=(2,), fourier_features=3, fourier_seed=5),
              generator=torch.Generator().manual_seed(0))
    return NeuralField(net, Normalization(center=[10.0, -5.0, 2.0], scale=37.5))


@pytest.fixture(scope="module")
def query() -> np.ndarray:
    return np.random.default_rng(1).uniform(-60, 60, size=(257, 3))


@pytest.mark.parametrize("ext", [".safetensors", ".pt", ".pth"])
def test_save_load_identical_values(tmp_path, field, query, ext):
    path = tmp_path / f"aorta.fit{ext}"
    save_inr(field, path, {"config": {"iterations": 10}, "report": {"loss": np.array([0.5, 0.25]), "n": np.int64(3)}})
    loaded, meta = load_inr(path)
    np.testing.assert_array_equal(loaded(query), field(query))
    np.testing.assert_array_equal(loaded.normalization.center, field.normalization.center)
    assert loaded.normalization.scale == field.normalization.scale
    assert meta["config"] == {"iterations": 10} and meta["report"] == {"loss": [0.5, 0.25], "n": 3}
    assert loaded.device.type == "cpu"


def test_metadata_required_keys_sidecar_and_embedding(tmp_path, field):
    path = tmp_path / "f.safetensors"
    meta = save_inr(field, path, {"format": "hijack", "note": "kept"})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar_path(path).name == "f.json" and sidecar == meta
    assert meta["format"] == "anatomy-inr-field" and meta["format_version"] == 1  # reserved keys win
    assert meta["library_version"] == __version__ and meta["note"] == "kept"
    assert meta["network"] == {"kind": "mlp", "config": field.network.config.to_dict()}
    assert meta["normalization"] == field.normalization.to_dict()
    assert (meta["units"], meta["frame"], meta["sdf_sign"]) == ("mm", "RAS", "negative-inside")
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()["anatomy_inr"]) == meta


def test_sidecar_not_needed_to_load(tmp_path, field, query):
    path = tmp_path / "g.pt"
    save_inr(field, path, {})
    sidecar_path(path).unlink()
    loaded, _ = load_inr(path)
    np.testing.assert_array_equal(loaded(query), field(query))


def test_pickled_object_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"tensors": {}, "metadata_json": "{}", "extra": _Payload()}, str(path))
    with pytest.raises(InputError, match="refused") as info:
        load_inr(path)
    assert "evil.pt" in str(info.value)
    assert _MARKER == []


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"not a torch file at all"])
@pytest.mark.parametrize("ext", [".safetensors", ".pt"])
def test_corrupt_files(tmp_path, content, ext):
    path = tmp_path / f"c{ext}"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a readable"):
        load_inr(path)


def test_truncated_file(tmp_path, field):
    for ext in (".pt", ".safetensors"):
        path = tmp_path / f"t{ext}"
        save_inr(field, path, {})
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError, match="not a readable"):
            load_inr(path)


def test_foreign_files(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(InputError, match="anatomy_inr"):
        load_inr(tmp_path / "plain.safetensors")
    torch.save({"w": torch.zeros(2)}, str(tmp_path / "plain.pt"))
    with pytest.raises(InputError, match="metadata_json"):
        load_inr(tmp_path / "plain.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_inr(tmp_path / "none.safetensors")
    (tmp_path / "x.ckpt").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported inr"):
        load_inr(tmp_path / "x.ckpt")


def _resave(tmp_path, field, edit) -> str:
    """Save, edit the embedded metadata with ``edit(meta)``, and write a new safetensors file."""
    path = tmp_path / "orig.safetensors"
    meta = save_inr(field, path, {})
    edit(meta)
    target = tmp_path / "edited.safetensors"
    save_file(load_file(str(path)), str(target), metadata={"anatomy_inr": json.dumps(meta)})
    return target


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["network"]["config"].update(width=32), "weights do not match"),
        (lambda m: m["network"].update(kind="no-such-net"), "unknown 'no-such-net'"),
        (lambda m: m.update(format_version=2), "newer"),
        (lambda m: m.update(format="something-else"), "not an AnatomyINR field"),
        (lambda m: m.update(frame="LPS"), "frame"),
        (lambda m: m.update(normalization={"center_mm": [0, 0, 0]}), "normalization"),
        (lambda m: m["network"]["config"].update(bogus=1), "unknown key"),
    ],
)
def test_inconsistent_metadata_refused(tmp_path, field, edit, match):
    with pytest.raises(InputError, match=match):
        load_inr(_resave(tmp_path, field, edit))


def test_save_refusals(tmp_path, field):
    with pytest.raises(InputError, match="NeuralField"):
        save_inr(field.network, tmp_path / "f.pt", {})
    with pytest.raises(InputError, match="not JSON-serialisable"):
        save_inr(field, tmp_path / "f.pt", {"bad": object()})
    with pytest.raises(InputError, match="nan"):
        save_inr(field, tmp_path / "f.pt", {"loss": float("nan")})
    with pytest.raises(InputError, match="unsupported inr"):
        save_inr(field, tmp_path / "f.onnx", {})
    assert list(tmp_path.iterdir()) == []
