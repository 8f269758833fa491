"""A set of fitted INRs of one architecture as a weight data set, and weight vectors back as fields.

Generic over the architecture: any network the ``nn`` registry rebuilds. The data set is the (N, P)
float32 matrix of the networks' flattened ``state_dict``s in one layout plus ``inr_info``, the JSON
the checkpoint keeps to turn sampled vectors back into fields: the network kind and config, and one
normalisation (world mm ↔ network frame) for the samples, the per-axis median of the training fields'
centres and the median of their scales. These agree only for INRs fitted in one frame (``trees fit``
with frame "set", one call for the whole folder); otherwise a sample comes back at the median size
whatever its shape, and :func:`stack_fields` warns.
From the INR files' metadata it also keeps ``field_kind`` (when every file agrees) and
``points_bounds_mm``: the union of the training boxes in the networks' normalised frames, mapped to mm by
that normalisation, which is the box ``extract`` and :func:`~AnatomyINRLib.trees.api.sample_trees` mesh.
"""

from __future__ import annotations

import numpy as np

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.trees._diffusion_tokens import flatten_state_dict, layout_from_json, layout_of, unflatten_vector


def stack_fields(fields: list, names: list | None = None, metas: list | None = None) -> tuple[np.ndarray, list, dict]:
    """(weights (N, P), layout, inr_info) of NeuralFields that share one architecture.

    ``metas``: the INR files' metadata (``io.load_inr``), for ``field_kind`` and ``points_bounds_mm``.

    Raises:
        InputError: fewer than 2 fields, or a field of another network kind, config or layout (named).
    """
    from AnatomyINRLib.nn.registry import network_kind

    names = names or [f"fields[{i}]" for i in range(len(fields))]
    if len(fields) < 2:
        raise InputError(f"fields: a weight data set needs at least 2 INRs, got {len(fields)}")
    first = fields[0]
    kind, config = network_kind(first.network), first.network.config.to_dict()
    layout = layout_of(first.network.state_dict())
    rows = []
    for name, field in zip(names, fields):
        if network_kind(field.network) != kind or field.network.config.to_dict() != config:
            raise InputError(f"{name}: another network architecture ({network_kind(field.network)}) than "
                             f"{names[0]} ({kind}); every INR of a data set must have the same one")
        if layout_of(field.network.state_dict()) != layout:
            raise InputError(f"{name}: its weights have another layout than {names[0]}'s")
        rows.append(flatten_state_dict(field.network.state_dict(), layout))
    centers = np.array([f.normalization.center for f in fields])
    scales = np.array([f.normalization.scale for f in fields])
    _warn_if_frames_differ(centers, scales)
    info = {"network": {"kind": kind, "config": config},
            "normalization": {"center_mm": np.median(centers, axis=0).tolist(), "scale_mm": float(np.median(scales))},
            "names": list(names)}
    info.update(_box_and_kind(fields, metas or [], info["normalization"]))
    return np.stack(rows).astype(np.float32), layout, info


def _warn_if_frames_differ(centers: np.ndarray, scales: np.ndarray) -> None:
    """UserWarning when the INRs were fitted in different frames (centres or scales differ by > 0.1 %)."""
    import warnings

    typical = float(np.median(scales))
    if np.ptp(scales) > 1e-3 * typical or np.max(np.ptp(centers, axis=0)) > 1e-3 * typical:
        warnings.warn(f"fields: the INRs were fitted in different frames (scales {scales.min():.3g}-"
                      f"{scales.max():.3g} mm); samples are mapped back to mm with the median frame, so their "
                      "sizes are not those of trees of their shapes; fit the folder in one call with "
                      "'trees fit --frame set'", UserWarning, stacklevel=3)


def check_inr_layout(layout, inr_info: dict, name: str) -> None:
    """Refuse a checkpoint whose weight layout is not its stored INR architecture's, before any sampling.

    Raises:
        InputError: naming the first tensor whose name or shape differs (or the count of tensors).
    """
    from AnatomyINRLib.nn.registry import build_network

    net = build_network(inr_info["network"]["kind"], inr_info["network"]["config"])
    expected, layout = layout_from_json(layout_of(net.state_dict())), layout_from_json(layout)
    if expected == layout:
        return
    diff = next(((a, b) for a, b in zip(expected, layout) if a != b), None)
    what = (f"{diff[1][0]} {list(diff[1][1])} where the network has {diff[0][0]} {list(diff[0][1])}" if diff
            else f"{len(layout)} tensors where the network has {len(expected)}")
    raise InputError(f"{name}: its weight layout does not match its INR architecture "
                     f"({inr_info['network']['kind']}): {what}; the checkpoint was altered or built for other INRs")


def field_from_vector(vector: np.ndarray, layout, inr_info: dict, device="cpu"):
    """A NeuralField with the weights of one (P,) vector, built as ``inr_info`` says.

    Raises:
        InputError: ``inr_info`` lacks the network or normalisation (a checkpoint trained on bare arrays).
    """
    from AnatomyINRLib.nn.field import NeuralField, Normalization
    from AnatomyINRLib.nn.registry import build_network

    if not isinstance(inr_info, dict) or "network" not in inr_info or "normalization" not in inr_info:
        raise InputError("checkpoint: holds no INR architecture (trained on bare weight arrays), so its samples "
                         "cannot be turned into fields; train it from a folder of INR files")
    network = build_network(inr_info["network"]["kind"], inr_info["network"]["config"])
    try:
        network.load_state_dict(unflatten_vector(vector, layout), strict=True)
    except RuntimeError as exc:
        raise InputError(f"checkpoint: its layout does not fit the stored network ({str(exc).splitlines()[0]})") from exc
    return NeuralField(network, Normalization.from_dict(inr_info["normalization"]), device=device)


def _box_and_kind(fields: list, metas: list, norm: dict) -> dict:
    """``field_kind`` if all metas agree; ``points_bounds_mm`` of the normalised-frame union (module doc)."""
    out: dict = {}
    kinds = {m.get("field_kind") for m in metas}
    if metas and len(kinds) == 1 and None not in kinds:
        out["field_kind"] = kinds.pop()
    boxes = [(np.asarray(m["points_bounds_mm"], float) - f.normalization.center) / f.normalization.scale
             for f, m in zip(fields, metas) if np.shape(m.get("points_bounds_mm")) == (2, 3)]
    if metas and len(boxes) == len(fields):
        lo, hi = np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)
        center, scale = np.asarray(norm["center_mm"]), float(norm["scale_mm"])
        out["points_bounds_mm"] = [(lo * scale + center).tolist(), (hi * scale + center).tolist()]
    return out
