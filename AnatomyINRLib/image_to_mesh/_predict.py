"""Prediction with a trained f_θ: meshes in RAS mm, the label map rasterised from them, checks, warnings.

* The checkpoint (``_shape_train``) is rebuilt strictly: its kind, network configuration, template
  (the icosphere its config names, vertex for vertex and face for face) and weights must agree.
* The image is cropped and windowed as in training (``_shape_data.image_tensor``); the final-stage
  vertices of each structure are mapped to RAS mm by the crop frame. The faces are the template's
  (reversed when the image's ijk → RAS map is a reflection, so normals point outwards in RAS).
* Each mesh is then refined onto the image's edge (``_refine``, ``RefineConfig``; optional).
* Self-intersections (``meshing.self_intersection``: intersecting non-adjacent triangle pairs) are
  repaired by Taubin smoothing (λ = 0.5, μ = −0.53, shrink-free; at most :data:`REPAIR_ITERATIONS`
  pairs of steps, checked every 5): ``repaired`` says a repair was applied, ``self_intersections``
  is the count of the returned mesh (> 0 only when the repair failed: the mesh is flagged and a
  warning says so).
* Warnings when the input is far from the training data: a spacing outside [½ min, 2 max] of the
  training spacings, or 1st / 99th intensity percentiles more than :data:`INTENSITY_MARGIN` × the
  window width outside the training range.
"""

from __future__ import annotations

import numpy as np
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.image_to_mesh._shape_net import ShapeNet
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.image_to_mesh.config import STRUCTURES, ShapeNetConfig, ShapeTrainConfig, TemplateConfig

REPAIR_ITERATIONS = 30
INTENSITY_MARGIN = 0.25


def load_shape_model(path) -> tuple[ShapeNet, ShapeTrainConfig, dict]:
    """(f_θ in eval mode, its training config, metadata) of a checkpoint written by ``_shape_train``.

    Raises:
        InputError: unreadable file, another kind of checkpoint, another template or architecture.
    """
    from AnatomyINRLib.image_to_mesh._shape_train import CHECKPOINT_KIND
    from AnatomyINRLib.io.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if meta.get("kind") != CHECKPOINT_KIND:
        raise InputError(f"{where}: expected an image-to-mesh shape model (kind {CHECKPOINT_KIND!r}), "
                         f"got kind {meta.get('kind')!r}")
    net_cfg = ShapeNetConfig.from_dict(meta.get("network", {}), _where=f"{where} network")
    tpl_cfg = TemplateConfig.from_dict(meta.get("template", {}), _where=f"{where} template")
    train_cfg = ShapeTrainConfig.from_dict(meta.get("training", {}), _where=f"{where} training")
    template, faces = icosphere(tpl_cfg.subdivisions, tpl_cfg.radius)
    stored_v, stored_f = tensors.get("model.template"), tensors.get("model.faces")
    if (stored_v is None or stored_f is None or tuple(stored_f.shape) != faces.shape
            or not np.array_equal(stored_f.numpy(), faces)
            or not np.allclose(stored_v.numpy(), template, atol=1e-5)):
        got = "none" if stored_f is None else f"{0 if stored_v is None else len(stored_v)} vertices, {len(stored_f)} faces"
        raise InputError(f"{where}: its template ({got}) is not the icosphere of {len(template)} vertices and "
                         f"{len(faces)} faces (radius {tpl_cfg.radius}) this library deforms")
    names = {int(k): v for k, v in meta.get("structures", {}).items()}
    if any(STRUCTURES.get(k) != v for k, v in names.items()) or len(names) != net_cfg.n_structures:
        raise InputError(f"{where}: structures {names} do not match this library's {STRUCTURES}")
    net = ShapeNet(net_cfg, template, faces)
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{where}: weights of another architecture ({str(exc).splitlines()[0]})") from None
    return net.eval(), train_cfg, meta


def input_warnings(image: ImageGrid, meta: dict, window_width: float) -> list[str]:
    """Warnings (with the numbers) when the image's spacing or intensities are far from the training data."""
    from AnatomyINRLib.image_to_mesh._shape_data import intensity_range

    rng = meta.get("data_range") or {}
    out = []
    sp = image.spacing
    lo, hi = rng.get("spacing_mm_min"), rng.get("spacing_mm_max")
    if lo is not None and (sp.min() < 0.5 * lo or sp.max() > 2.0 * hi):
        out.append(f"spacing {', '.join(f'{s:.3g}' for s in sp)} mm is far from the training spacing "
                   f"[{lo:.3g}, {hi:.3g}] mm (accepted [{0.5 * lo:.3g}, {2 * hi:.3g}] mm)")
    p1, p99 = intensity_range(image)
    margin = INTENSITY_MARGIN * window_width
    for name, value, key in (("1st", p1, "intensity_p1"), ("99th", p99, "intensity_p99")):
        a, b = rng.get(f"{key}_min"), rng.get(f"{key}_max")
        if a is not None and not a - margin <= value <= b + margin:
            out.append(f"intensity {name} percentile {value:.4g} is far from the training range [{a:.4g}, {b:.4g}] "
                       f"(accepted ±{margin:.4g}); is the image CT in HU?")
    return out


def repair_self_intersections(mesh: TriangleMesh) -> tuple[TriangleMesh, int, bool]:
    """(mesh, self-intersections of the returned mesh, whether a repair was applied); see module docstring."""
    from AnatomyINRLib.image_to_mesh._refine import ring_matrix, taubin
    from AnatomyINRLib.meshing.self_intersection import count_self_intersections

    count = count_self_intersections(mesh)
    if count == 0:
        return mesh, 0, False
    ring = ring_matrix(mesh.faces, mesh.n_vertices)
    v = mesh.vertices
    for _ in range(REPAIR_ITERATIONS // 5):
        v = taubin(ring, v, 5)
        candidate = TriangleMesh(v, mesh.faces)
        count = count_self_intersections(candidate)
        if count == 0:
            break
    return candidate, count, True


def run_network(net: ShapeNet, cfg: ShapeTrainConfig, image: ImageGrid, device) -> tuple[dict, object]:
    """{label: (V, 3) RAS mm vertices} of every structure's final mesh, and the crop frame."""
    from AnatomyINRLib.image_to_mesh._shape_data import image_tensor

    x, frame = image_tensor(image, cfg)
    with torch.no_grad():
        meshes, _ = net.to(device)(torch.from_numpy(x)[None, None].to(device))
    return {k + 1: frame.to_world(stages[-1][0].double().cpu().numpy()) for k, stages in enumerate(meshes)}, frame


def structure_meshes(net: ShapeNet, cfg: ShapeTrainConfig, image: ImageGrid, device, refine=None) -> tuple[dict, dict]:
    """({label: TriangleMesh in RAS mm}, {label: {"self_intersections", "repaired", "refine"}}).

    ``refine`` (``RefineConfig``; None or disabled: the network's meshes) moves each mesh onto the
    image's edge (``_refine``) before the self-intersection check and repair.
    """
    from AnatomyINRLib.image_to_mesh._refine import ImageSampler, refine_to_edges

    vertices, _ = run_network(net, cfg, image, device)
    faces = net.faces.cpu().numpy()
    if np.linalg.det(image.ijk_to_ras[:3, :3]) < 0:
        faces = faces[:, ::-1].copy()  # a reflection turns outward normals inward
    sampler = ImageSampler(image, refine.sigma_mm) if refine is not None and refine.enabled else None
    meshes, checks = {}, {}
    for label, v in vertices.items():
        mesh, refined = TriangleMesh(v, faces), None
        if sampler is not None:
            mesh, refined = refine_to_edges(mesh, sampler, refine)
        mesh, count, repaired = repair_self_intersections(mesh)
        meshes[label] = mesh
        checks[label] = {"self_intersections": int(count), "repaired": bool(repaired), "refine": refined}
    return meshes, checks
