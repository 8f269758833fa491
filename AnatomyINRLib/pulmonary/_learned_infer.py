"""Method B inference: load a checkpoint (refusing another architecture or label set) and label any grid.

The encoder runs once on the lung box; the implicit heads are then queried at the voxel centres of
the output grid (the input's full resolution) in chunks of ``chunk_points`` points, so memory stays
bounded whatever the volume size (ImPulSe+ §4.5: "uniform sampling of all coordinates on the input
voxel grid").
"""

from __future__ import annotations

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.pulmonary._learned_data import encoder_input, lung_box, to_normalised
from AnatomyINRLib.pulmonary._learned_net import N_CLASSES, ImPulSeNet
from AnatomyINRLib.pulmonary._learned_train import CHECKPOINT_KIND, label_table
from AnatomyINRLib.pulmonary.config import LearnedNetworkConfig, LearnedTrainConfig, segment_lobe


def _refuse(path, why: str) -> InputError:
    return InputError(f"checkpoint {str(path)!r}: {why}; expected a Method B (ImPulSe+) checkpoint of this "
                      "library's network with the 18 segments RUL S1 … LLL S10")


class LearnedModel:
    """A trained Method B network with its training configuration (``from_checkpoint``)."""

    def __init__(self, net: ImPulSeNet, config: LearnedTrainConfig, metadata: dict) -> None:
        self.net, self.config, self.metadata = net.eval(), config, metadata

    @classmethod
    def from_checkpoint(cls, path, device: torch.device) -> "LearnedModel":
        """Load and check a checkpoint.

        Raises:
            InputError: one message when the file is not a Method B checkpoint, was trained for another
                label set, or holds weights of another architecture.
        """
        from AnatomyINRLib.io.checkpoint import load_checkpoint

        tensors, meta = load_checkpoint(path)
        if meta.get("kind") != CHECKPOINT_KIND:
            raise _refuse(path, f"it is a {meta.get('kind')!r} checkpoint")
        if meta.get("labels") != label_table():
            raise _refuse(path, "it was trained for another label set")
        try:
            cfg = LearnedTrainConfig.from_dict(meta["training"])
            net = ImPulSeNet(LearnedNetworkConfig.from_dict(meta["network"]))
            net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        except (InputError, KeyError, RuntimeError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _refuse(path, f"its weights do not match its stated architecture ({reason[:200]})") from exc
        return cls(net.to(device), cfg, meta)


class LearnedField:
    """Method B's implicit segment field of one case: ``labels_at(points)`` and ``sample(grid)`` at any resolution."""

    def __init__(self, model: LearnedModel, images: dict, device: torch.device) -> None:
        self.model, self.device = model, device
        self.lobes: ImageGrid = images["lobes"]
        self.lo, self.hi = lung_box(np.asarray(self.lobes.array))
        vol = encoder_input(images, model.net.config, self.lo, self.hi)
        with torch.no_grad():
            x = torch.from_numpy(vol)[None].to(device)
            self.pyramid = model.net.encode(x)
            self.template = model.net.template()
        allowed = np.zeros((6, N_CLASSES), dtype=bool)
        allowed[0, 0] = True
        for lab in range(1, N_CLASSES):
            allowed[segment_lobe(lab), lab] = True
        self.allowed = torch.from_numpy(allowed).to(device)

    def _lobe_at(self, ijk: np.ndarray) -> np.ndarray:
        idx = np.rint(ijk).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < np.array(self.lobes.shape)), axis=1)
        out = np.zeros(len(idx), dtype=np.int64)
        out[inside] = self.lobes.array[tuple(idx[inside].T)]
        return np.clip(out, 0, 5)

    @torch.no_grad()
    def _classify(self, ijk: np.ndarray) -> np.ndarray:
        """(N,) uint8 labels at (N, 3) continuous voxel indices of the lobes' grid (one chunk)."""
        pts = torch.from_numpy(to_normalised(ijk, self.lo, self.hi).astype(np.float32))[None].to(self.device)
        logits = self.model.net.decode(self.pyramid, pts, self.template)[0][0]
        if self.model.config.restrict_to_lobes:
            lobe = torch.from_numpy(self._lobe_at(ijk)).to(self.device)
            logits = logits.masked_fill(~self.allowed[lobe], float("-inf"))
        return logits.argmax(dim=-1).to(torch.uint8).cpu().numpy()

    def labels_at(self, points) -> np.ndarray:
        """(N,) uint8 segment labels (0 = background) at (N, 3) RAS mm points, in chunks."""
        ijk = self.lobes.world_to_index(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        step = self.model.config.chunk_points
        out = np.zeros(len(ijk), dtype=np.uint8)
        for s in range(0, len(ijk), step):
            out[s:s + step] = self._classify(ijk[s:s + step])
        return out

    def sample(self, reference: ImageGrid, chunk_voxels: int = 0, progress=None) -> ImageGrid:
        """uint8 labelmap on ``reference`` (every voxel centre queried, slab by slab).

        On the lobes' own grid with ``restrict_to_lobes`` only lobe voxels are queried (the rest is 0).
        """
        shape = reference.shape
        out = np.zeros(shape, dtype=np.uint8)
        same = shape == self.lobes.shape and np.allclose(reference.ijk_to_ras, self.lobes.ijk_to_ras)
        to_lobes = np.linalg.inv(self.lobes.ijk_to_ras) @ reference.ijk_to_ras
        chunk = chunk_voxels or self.model.config.chunk_points
        step = max(1, chunk // (shape[1] * shape[2]))
        for i0 in range(0, shape[0], step):
            i1 = min(shape[0], i0 + step)
            idx = np.indices((i1 - i0,) + shape[1:]).reshape(3, -1).T
            idx[:, 0] += i0
            if same and self.model.config.restrict_to_lobes:
                idx = idx[self.lobes.array[tuple(idx.T)] > 0]
            ijk = idx @ to_lobes[:3, :3].T + to_lobes[:3, 3]
            for s in range(0, len(idx), chunk):
                out[tuple(idx[s:s + chunk].T)] = self._classify(ijk[s:s + chunk])
            if progress is not None:
                progress.report("sample", i1 / shape[0], f"sampled {i1}/{shape[0]} slices")
        return reference.with_array(out)
