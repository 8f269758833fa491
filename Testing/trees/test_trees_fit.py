"""Stage 1 of tree synthesis: occupancy INR per tree, saved files, extract round trip, stacked path."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from AnatomyINRLib import io
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.fitting.config import OptimConfig
from AnatomyINRLib.meshing import MeshingConfig, mesh_quality
from AnatomyINRLib.metrics.surface import surface_distances
from AnatomyINRLib.nn.occupancy import OccupancyNetworkConfig, OccupancyResNet
from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, grow_tree, tree_mesh, tree_occupancy
from AnatomyINRLib.surface.api import extract_mesh
from AnatomyINRLib.trees import TreeFitConfig, TreeSamplingConfig, fit_trees

SMALL = SynthTreeParams(seed=1, bifurcations=1, terminal_radius=2.5, domain_radius=20.0, min_distance=6.0)


def small_config(iterations=600, **changes) -> TreeFitConfig:
    """64 x 2 net, 3k points, 1k minibatches: a 1-bifurcation thick tree in about 10 s of CPU."""
    return TreeFitConfig(
        network=OccupancyNetworkConfig(width=64, blocks=2),
        sampling=TreeSamplingConfig(points_per_draw=3000, pool_draws=1, resample_every=0, batch_size=1024,
                                    eval_points=20_000),
        optim=OptimConfig(iterations=iterations, lr=5e-3, schedule="cosine", lr_final_factor=0.05,
                          min_iterations=iterations, check_every=50, rel_tol=0.0), **changes)


@pytest.fixture(scope="module")
def tree():
    g = grow_tree(SMALL)
    return g, tree_mesh(g, 0.5), tree_occupancy(g, 0.5)


@pytest.fixture(scope="module")
def fitted(tree):
    return fit_trees([tree[1]], config=small_config(), seed=0, device="cpu")


def test_network_matches_the_paper():
    net = OccupancyResNet()
    assert sum(p.numel() for p in net.parameters()) == 165_761  # paper Table 1: 0.17 M
    assert len(net.state_dict()) == 24
    assert all(torch.count_nonzero(f.weight) == 0 for f in net.fc_1)  # blocks start as the identity
    x = torch.rand(5, 3)
    assert torch.equal(net(x)[:, 0], -net.logits(x))  # negative inside


def test_tiny_tree_reaches_a_tight_iou(fitted, tree):
    assert fitted.report["per_tree"][0]["heldout_iou"] >= 0.93
    occ = tree[2]
    inside = fitted.fields[0](occ.voxel_centers()) < 0
    ref = occ.array.reshape(-1) > 0
    assert np.count_nonzero(inside & ref) / np.count_nonzero(inside | ref) >= 0.90


def test_same_seed_same_fit(tree):
    cfg = small_config(iterations=60)
    a = fit_trees([tree[1]], config=cfg, seed=3, device="cpu").fields[0]
    b = fit_trees([tree[1]], config=cfg, seed=3, device="cpu").fields[0]
    for (ka, va), (kb, vb) in zip(a.network.state_dict().items(), b.network.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_saved_inr_rebuilds_without_trees_and_extracts(fitted, tree, tmp_path):
    path = tmp_path / "t.safetensors"
    io.save_inr(fitted.fields[0], path, metadata=fitted.metadata[0])
    code = ("import sys; from AnatomyINRLib.io import load_inr; f, m = load_inr(sys.argv[1]); "
            "assert 'AnatomyINRLib.trees' not in sys.modules; print(m['network']['kind'], m['field_kind'])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["occupancy-resnet", "occupancy-logit"]
    field, meta = io.load_inr(path)
    pts = np.random.default_rng(0).uniform(*fitted.metadata[0]["points_bounds_mm"], (1000, 3))
    assert np.array_equal(field(pts), fitted.fields[0](pts))
    mesh = extract_mesh(field, config=MeshingConfig(spacing_mm=0.5), points=np.asarray(meta["points_bounds_mm"]))
    q = mesh_quality(mesh, check_manifold3d=False)
    assert q["watertight"] and q["n_components"] == 1
    d = surface_distances(mesh, tree[1], n_samples=5000, seed=0)
    assert d["asd"] < 0.5  # mm; tubes of radius 2.5-3.2 mm


def test_narrow_band_meshing_of_an_occupancy_field_equals_dense(fitted):
    field, corners = fitted.fields[0], np.asarray(fitted.metadata[0]["points_bounds_mm"])
    band = extract_mesh(field, config=MeshingConfig(spacing_mm=0.8), points=corners)
    dense = extract_mesh(field, config=MeshingConfig(spacing_mm=0.8, method="dense"), points=corners)
    assert band.n_faces == dense.n_faces
    assert np.allclose(band.vertices, dense.vertices, atol=1e-9)


def _volume_iou(field, occ) -> float:
    inside, ref = field(occ.voxel_centers()) < 0, occ.array.reshape(-1) > 0
    return np.count_nonzero(inside & ref) / np.count_nonzero(inside | ref)


def test_bce_and_warm_start(tree):
    g2 = grow_tree(SMALL.replace(seed=2))
    cfg = small_config(iterations=200, loss="bce", warm_start=True, warm_iterations_factor=0.5)
    res = fit_trees([tree[1], tree_mesh(g2, 0.5)], config=cfg, seed=0, device="cpu")
    assert [r["iterations"] for r in res.report["per_tree"]] == [200, 100]
    assert res.report["per_tree"][0]["heldout_iou"] >= 0.85
    # the second tree started from the first one's weights and moved to its own shape
    occ2 = tree_occupancy(g2, 0.5)
    template_on_2 = type(res.fields[0])(res.fields[0].network, res.fields[1].normalization)
    assert _volume_iou(res.fields[1], occ2) > _volume_iou(template_on_2, occ2) + 0.1


def test_set_frame_is_the_union_of_the_boxes_and_tree_frames_differ(tree):
    """frame "set": every network of a call maps the same union box into [−extent, extent]³; "tree":
    each its own box. Only in one shared frame does a network fitted to tree 2 mesh back where tree 2 is."""
    g2 = grow_tree(SMALL.replace(seed=2, domain_radius=15.0))  # a smaller tree in another box
    m2 = tree_mesh(g2, 0.5)
    meshes = [tree[1], m2]
    lo = np.minimum(tree[1].vertices.min(axis=0), m2.vertices.min(axis=0))
    hi = np.maximum(tree[1].vertices.max(axis=0), m2.vertices.max(axis=0))
    shared = fit_trees(meshes, config=small_config(iterations=200, frame="set"), seed=0, device="cpu")
    extent = shared.config.sampling.extent
    for f in shared.fields:
        np.testing.assert_allclose(f.normalization.center, (lo + hi) / 2, atol=1e-9)
        assert f.normalization.scale == pytest.approx(np.max(hi - lo) / 2 / extent, rel=1e-12)
    own = fit_trees(meshes, config=small_config(iterations=200), seed=0, device="cpu")
    assert own.fields[1].normalization.scale < 0.9 * own.fields[0].normalization.scale
    # the set's network of tree 2 under the set's frame is tree 2 (in mm)
    assert _volume_iou(shared.fields[1], tree_occupancy(g2, 0.5)) >= 0.9  # 0.94; 0.08 under its own box
    with pytest.raises(InputError, match="frame"):
        small_config(frame="world").validate()


def test_set_frame_ignores_a_mesh_that_skip_bad_drops(tree):
    """An open mesh far away, skipped by skip_bad, does not widen the set's frame."""
    from AnatomyINRLib.core.types import TriangleMesh

    far = TriangleMesh(tree[1].vertices + 500.0, tree[1].faces[:-4])  # open, 500 mm away
    res = fit_trees([tree[1], far], names=["tree", "far"], config=small_config(iterations=30, frame="set"),
                    skip_bad=True, seed=0, device="cpu")
    assert list(res.skipped) == ["far"]
    v = tree[1].vertices
    np.testing.assert_allclose(res.fields[0].normalization.center, (v.min(axis=0) + v.max(axis=0)) / 2, atol=1e-9)
    assert res.fields[0].normalization.scale == pytest.approx(np.max(np.ptp(v, axis=0)) / 2 / 0.9, rel=1e-12)


def test_set_frame_cleans_each_mesh_once_with_progress_and_cancel(tree, monkeypatch):
    """frame "set": the frame's pass cleans every mesh and the samplers reuse it (one closed_mesh and one
    clean_mesh per tree); it reports a "frame" event per mesh, and a cancel there stops before any fit."""
    from AnatomyINRLib.meshing import postprocess
    from AnatomyINRLib.core.errors import Cancelled
    from AnatomyINRLib.trees import _sampling

    calls, cleans = [], []
    real, real_clean = _sampling.closed_mesh, postprocess.clean_mesh
    monkeypatch.setattr(_sampling, "closed_mesh", lambda mesh, name="mesh": calls.append(name) or real(mesh, name))
    monkeypatch.setattr(_sampling, "clean_mesh", lambda *a, **k: cleans.append(1) or real_clean(*a, **k))
    monkeypatch.setattr("AnatomyINRLib.meshing.mesh_sdf.clean_mesh", lambda *a, **k: cleans.append(1) or real_clean(*a, **k))
    g2 = grow_tree(SMALL.replace(seed=2))
    events = []
    res = fit_trees([tree[1], tree_mesh(g2, 0.5)], names=["a", "b"], config=small_config(iterations=30, frame="set"),
                    seed=0, device="cpu", progress=events.append)
    assert calls == ["a", "b"] and len(cleans) == 2 and len(res.fields) == 2
    frame_events = [e for e in events if e.stage == "frame"]
    assert [e.fraction for e in frame_events] == [0.5, 1.0]
    assert events.index(frame_events[-1]) < min(i for i, e in enumerate(events) if e.stage == "prepare")
    calls.clear()
    with pytest.raises(Cancelled):
        fit_trees([tree[1], tree_mesh(g2, 0.5)], names=["a", "b"], config=small_config(iterations=30, frame="set"),
                  seed=0, device="cpu", should_cancel=lambda: len(calls) >= 1)
    assert calls == ["a"]  # cancelled at the first mesh's "frame" event: nothing else cleaned or fitted
    calls.clear()
    fit_trees([tree[1]], config=small_config(iterations=30, frame="tree"), seed=0, device="cpu")
    assert calls == ["tree-000"]  # each tree in its own frame: cleaned once, when its mesh is checked


def test_samplers_are_built_one_at_a_time_and_released(tree, monkeypatch):
    """A tree's labelled points (~12 MB for a benchmark tree) live only while it is fitted: at most one
    sampler at a time with stack 1, at most ``stack`` with stacks, so memory does not grow with the folder."""
    import gc
    import weakref

    from AnatomyINRLib.trees import _sampling

    alive, peak = weakref.WeakSet(), []
    real = _sampling.TreeSampler

    class Counted(real):
        def __init__(self, *args, **kwargs):
            gc.collect()
            super().__init__(*args, **kwargs)
            alive.add(self)
            peak.append(len(alive))

    monkeypatch.setattr(_sampling, "TreeSampler", Counted)
    g2 = grow_tree(SMALL.replace(seed=2))
    meshes = [tree[1], tree_mesh(g2, 0.5), tree[1], tree_mesh(g2, 0.5)]
    res = fit_trees(meshes, config=small_config(iterations=20, warm_start=True), seed=0, device="cpu")
    assert len(res.fields) == 4 and peak == [1, 1, 1, 1]
    peak.clear()
    fit_trees(meshes, config=small_config(iterations=20, warm_start=True, stack=3), seed=0, device="cpu")
    assert peak == [1, 1, 2, 3]  # the cold first tree alone, then one stack of three


def test_fast_preset_fits_a_set_in_one_frame_and_the_paper_preset_each_tree_in_its_own():
    from AnatomyINRLib.trees.config import fit_preset

    assert fit_preset("fast").frame == "set" and fit_preset("paper").frame == "tree"


def test_stacked_fit_equals_separate_fits(tree):
    """vmap over stacked weights with one Adam = separate Adam optimisers (same seeds, same points)."""
    g2 = grow_tree(SMALL.replace(seed=2))
    meshes = [tree[1], tree[1], tree_mesh(g2, 0.5)]
    one = fit_trees(meshes, config=small_config(iterations=30), seed=0, device="cpu")
    stacked = fit_trees(meshes, config=small_config(iterations=30, stack=2), seed=0, device="cpu")
    for a, b in zip(one.fields[1:], stacked.fields[1:]):
        for va, vb in zip(a.network.state_dict().values(), b.network.state_dict().values()):
            assert torch.allclose(va, vb, atol=2e-5, rtol=1e-4)


def _two_cubes_sharing_an_edge():
    """Two closed unit cubes whose only contact is one edge: 4 faces meet there (non-manifold)."""
    from AnatomyINRLib.core.types import TriangleMesh

    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    # The second cube sits diagonally at (+1, +1, 0): it shares the edge x = y = 1, z in [0, 1].
    vertices = np.vstack([corners * 5.0, (corners + [1.0, 1.0, 0.0]) * 5.0])
    return TriangleMesh(vertices, np.vstack([faces, faces + 8]))


def test_non_manifold_mesh_is_refused_with_the_reason():
    mesh = _two_cubes_sharing_an_edge()
    with pytest.raises(InputError, match=r"0 boundary and 1 non-manifold edge.*non-manifold mesh cannot be fitted"):
        fit_trees([mesh], config=small_config(iterations=10), device="cpu")


def test_open_mesh_is_refused_with_the_reason(tree):
    m = tree[1]
    open_mesh = type(m)(m.vertices, m.faces[10:])
    with pytest.raises(InputError, match="boundary.*open or non-manifold mesh cannot be fitted") as err:
        fit_trees([open_mesh], config=small_config(iterations=10), device="cpu")
    assert "fitted as INRs instead" not in str(err.value)  # that remedy is blend's, not occupancy's
    res = fit_trees([open_mesh, m], names=["open", "closed"], config=small_config(iterations=10), skip_bad=True,
                    device="cpu")
    assert res.names == ["closed"] and list(res.skipped) == ["open"]
    with pytest.raises(InputError, match="none could be fitted"):
        fit_trees([open_mesh], config=small_config(iterations=10), skip_bad=True, device="cpu")
    with pytest.raises(InputError, match="at least one"):
        fit_trees([], preset="tiny", device="cpu")


def test_a_fit_that_collapses_to_an_empty_field_is_a_fit_error(tree):
    """MSE on sigmoid has no gradient once every logit saturates: say so instead of saving an empty INR."""
    from AnatomyINRLib.core.errors import FitError

    cfg = small_config(iterations=100)
    cfg.optim.lr, cfg.optim.schedule = 0.5, "constant"
    with pytest.raises(FitError, match="collapsed to an empty field"):
        fit_trees([tree[1]], config=cfg, seed=0, device="cpu")
