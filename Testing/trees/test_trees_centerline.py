"""The centreline model of tree synthesis: branch tokens, and ``trees train --centerlines`` / ``trees sample``."""

import itertools
import json

import numpy as np
import pytest

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import CenterlineGraph
from AnatomyINRLib.phantoms.tree_synth import SynthTreeParams, dataset_params, grow_tree, tree_statistics
from AnatomyINRLib.trees._centerline_tokens import (centerline_training_set, decode_tokens, encode_graph, normalise,
                                                    token_size, valid_flags)


F = token_size(8)  # the `centerline` preset's token size


def _ends(graph: CenterlineGraph) -> tuple:
    """(bifurcation points, terminal points), each sorted: the nodes a decoded tree must put back exactly."""
    kids = graph.children()
    bif = np.array(sorted(map(tuple, graph.points[[k for k in range(len(kids)) if len(kids[k]) == 2]])))
    leaf = np.array(sorted(map(tuple, graph.points[[k for k in range(len(kids)) if len(kids[k]) == 0]])))
    return bif, leaf


@pytest.mark.parametrize("index", [0, 3, 7])
def test_round_trip_keeps_every_bifurcation_terminal_and_radius(index):
    graphs = [grow_tree(p) for p in dataset_params(10, 5)]
    _, _, info = centerline_training_set(graphs, [str(i) for i in range(10)], F)
    g = graphs[index]
    raw = encode_graph(g, info["max_branches"], info["points_per_branch"])
    back = decode_tokens(normalise(raw, info).ravel(), info)  # float64 all the way: exact up to rounding
    for a, b in zip(_ends(g), _ends(back)):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-9)
    assert np.allclose(back.points[0], g.points[0], atol=1e-9)
    assert sorted(set(np.round(back.radius, 9))) == sorted(set(np.round(g.radius, 9)))
    s, t = tree_statistics(g), tree_statistics(back)
    assert s["bifurcations"] == t["bifurcations"]
    # 8 points per branch cut the bends' corners a little: shorter, never longer
    assert 0.97 * s["total_length_mm"] < t["total_length_mm"] <= s["total_length_mm"] + 1e-9


def test_preorder_lists_the_wider_child_first_and_keeps_graph_order_on_ties():
    # inlet 0 → 1 bifurcates into 2 (narrow, listed first in the graph) and 3 (wide); 3 bifurcates into
    # 4 and 5 of equal radius
    pts = [[0, 0, 0], [0, 0, -5], [-4, 0, -9], [4, 0, -9], [6, 1, -13], [6, -1, -13]]
    g = CenterlineGraph(np.asarray(pts, float), np.array([-1, 0, 1, 1, 3, 3]),
                        np.array([2.0, 2.0, 1.0, 1.5, 1.2, 1.2]))
    raw = encode_graph(g, 5, 2)
    ends = raw[:, :3] + raw[:, 3:6] * np.exp(raw[:, 6:7])  # start + direction × length
    assert np.allclose(ends, np.asarray(pts, float)[[1, 3, 4, 5, 2]])  # root, wide 3, its 4 then 5, narrow 2
    assert np.allclose(np.exp(raw[:, -2]), [2.0, 1.5, 1.2, 1.2, 1.0]) and list(raw[:, -1]) == [1, 1, 0, 0, 0]


def test_a_branch_that_ends_where_it_starts_is_refused():
    g = CenterlineGraph(np.array([[0, 0, 0], [0, 0, 0.0]]), np.array([-1, 0]), np.ones(2))
    with pytest.raises(InputError, match="tree 'flat': branch 0 .preorder. ends where it starts"):
        centerline_training_set([g], ["flat"], F)


def _graph(points, parent):
    return CenterlineGraph(np.asarray(points, float), np.asarray(parent), np.ones(len(parent)))


@pytest.mark.parametrize("graph, message", [
    (_graph([[0, 0, 0], [0, 0, 1], [1, 0, 2], [-1, 0, 2], [0, 1, 2]], [-1, 0, 1, 1, 1]), "node 1 has 3 children"),
    (_graph([[0, 0, 0], [1, 0, 0], [-1, 0, 0]], [-1, 0, 0]), "root (node 0) to be an inlet with one child"),
])
def test_trees_it_cannot_hold_are_refused_by_name(graph, message):
    with pytest.raises(InputError, match=rf"tree 'bad'.*{message}".replace("(", r"\(").replace(")", r"\)")):
        centerline_training_set([graph], ["bad"], F)


def test_more_bifurcations_than_the_model_holds_is_refused():
    g = grow_tree(SynthTreeParams(seed=1, bifurcations=5))
    with pytest.raises(InputError, match="tree 't5': has 11 branches .5 bifurcations., the model holds at most 9"):
        centerline_training_set([g], ["t5"], F, max_bifurcations=4)


def test_any_vector_decodes_to_one_connected_tree():
    info = {"max_branches": 9, "points_per_branch": 4, "feature_mean": [0.0] * 17, "feature_scale": [1.0] * 17}
    rng = np.random.default_rng(0)
    for _ in range(50):
        vec = rng.normal(scale=2.0, size=9 * token_size(4))
        g = decode_tokens(vec, info)  # CenterlineGraph itself refuses a parent listed after its child
        flags = valid_flags(vec.reshape(9, -1)[:, -1])
        assert g.parent[0] == -1 and np.all(g.parent[1:] < np.arange(1, len(g.parent)))
        assert len(g.points) - 1 == 4 * int((flags >= 0).sum())  # every branch token is read, no padding
        assert np.all(np.isfinite(g.points)) and np.all(g.radius > 0)
        assert len(g.bifurcations()) == int((flags == 1).sum())
    for bad in (np.full(9 * token_size(4), np.nan), np.full(9 * token_size(4), 1e6)):
        g = decode_tokens(bad, info)  # diverged samples still decode, clipped to ±10 spreads
        assert np.all(np.isfinite(g.points)) and np.all(g.radius <= np.exp(10.0) + 1e-9)


def _is_tree(flags) -> bool:
    """Flags of a full binary tree in preorder (1 bifurcation, 0 terminal) then padding (−1) only."""
    is_open = 1
    for f in flags:
        if (f == -1) != (is_open == 0):
            return False
        is_open += 0 if f == -1 else 2 * f - 1
    return is_open == 0


def test_valid_flags_are_the_nearest_flags_of_a_tree():
    trees = [np.array(s) for s in itertools.product([-1, 0, 1], repeat=9) if _is_tree(s)]
    assert len(trees) == 1 + 1 + 2 + 5 + 14  # Catalan numbers: trees of 0 to 4 bifurcations
    rng = np.random.default_rng(1)
    for _ in range(300):
        x = rng.normal(scale=1.0, size=9) + rng.choice([-1.0, 0.0, 1.0], 9)
        v = valid_flags(x)
        assert _is_tree(v) and np.isclose(((x - v) ** 2).sum(), min(((x - t) ** 2).sum() for t in trees))


def test_an_unsure_bifurcation_followed_by_branches_is_read_as_a_bifurcation():
    # a tree of 2 bifurcations whose root flag came out 0.45: read alone it would close the tree after
    # one branch, but the four tokens after it are branches (flags near 0 and 1), not padding (−1)
    info = {"max_branches": 9, "points_per_branch": 4, "feature_mean": [0.0] * 17, "feature_scale": [1.0] * 17}
    vec = np.zeros((9, token_size(4)))
    vec[:, 3] = 1.0  # every chord along +x, length e⁰ = 1 mm
    vec[:, -1] = [0.45, 0.9, 0.1, 0.05, -0.1, -0.9, -1.0, -1.1, -0.8]
    assert list(valid_flags(vec[:, -1])) == [1, 1, 0, 0, 0, -1, -1, -1, -1]
    g = decode_tokens(vec.ravel(), info)
    assert len(g.bifurcations()) == 2 and len(g.points) == 1 + 5 * 4


@pytest.fixture(scope="module")
def one_tree_model(tmp_path_factory):
    """A model trained on 64 copies of one tree: its samples must come back as that tree."""
    root = tmp_path_factory.mktemp("centerline")
    tree = grow_tree(SynthTreeParams(seed=11, bifurcations=3))
    folder = root / "centerlines"
    folder.mkdir()
    for i in range(64):
        io.write_centerline(tree, folder / f"t{i:02d}.centerline.json")
    ckpt = root / "m.safetensors"
    assert main(["trees", "train", str(folder), "--centerlines", "--output", str(ckpt), "--epochs", "300",
                 "--threads", "1", "--report", str(root / "train.json")]) == 0
    return root, tree, ckpt


def test_train_and_sample_give_whole_trees_like_the_training_tree(one_tree_model, tmp_path):
    root, tree, ckpt = one_tree_model
    meta = json.loads((root / "m.json").read_text())
    assert meta["inr"]["representation"] == "centerline" and meta["inr"]["max_branches"] == 25
    assert meta["layout"] == [["branches", [25, 30]]] and meta["training"]["token_size"] == 30
    out = tmp_path / "s"
    assert main(["trees", "sample", "--checkpoint", str(ckpt), "--count", "4", "--output-dir", str(out), "--seed", "2",
                 "--spacing", "0.6", "--report", str(tmp_path / "s.json")]) == 0
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["in_pieces"] == 0 and all(m["pieces"] == 1 for m in report["meshes"])
    assert report["keep_apart"] == 4.0 and report["overlapping_branch_pairs"] == [0, 0, 0, 0]
    want = tree_statistics(tree)
    bif, leaf = _ends(tree)
    for i in range(4):
        g, info = io.read_centerline(out / f"tree_{i:03d}.centerline.json")
        assert info["sampled_from"] == str(ckpt) and info["index"] == i
        got = tree_statistics(g)
        assert got["bifurcations"] == 3
        assert abs(got["total_length_mm"] - want["total_length_mm"]) < 0.05 * want["total_length_mm"]
        assert abs(got["mean_radius_mm"] - want["mean_radius_mm"]) < 0.05
        assert np.max(np.abs(_ends(g)[1] - leaf)) < 2.0  # mm: the terminals are where the tree's are
        mesh = io.read_mesh(out / f"tree_{i:03d}.vtp")
        assert np.all(mesh.vertices.min(axis=0) > g.points.min(axis=0) - 2.5)


def test_sampling_is_seeded(one_tree_model, tmp_path):
    _, _, ckpt = one_tree_model
    for name in ("a", "b"):
        assert main(["trees", "sample", "--checkpoint", str(ckpt), "--count", "2", "--output-dir",
                     str(tmp_path / name), "--seed", "7"]) == 0
    for i in range(2):
        a = io.read_centerline(tmp_path / "a" / f"tree_{i:03d}.centerline.json")[0]
        b = io.read_centerline(tmp_path / "b" / f"tree_{i:03d}.centerline.json")[0]
        assert np.array_equal(a.points, b.points) and np.array_equal(a.radius, b.radius)


@pytest.mark.parametrize("extra, message", [
    (["--preset", "tiny"], "token_size: the centreline model needs 30 (one token per branch), got 64; use the preset"),
    (["--max-bifurcations", "0"], "max_bifurcations: expected an integer in [1, 100], got 0"),
])
def test_bad_centerline_training_arguments_exit_2_with_nothing_written(one_tree_model, tmp_path, capsys, extra,
                                                                       message):
    root, _, _ = one_tree_model
    args = ["trees", "train", str(root / "centerlines"), "--centerlines", "--output", str(tmp_path / "m.safetensors"),
            "--epochs", "1", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_centreline_files_is_refused(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.vtp").write_text("not a centreline")
    assert main(["trees", "train", str(tmp_path / "in"), "--centerlines", "--output", str(tmp_path / "m.safetensors")]) == 2
    assert "holds no .centerline.json files" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_python_api_trains_on_centrelines_and_samples_graphs(tmp_path):
    from AnatomyINRLib.trees import diffusion_preset, sample_trees, train_model

    graphs = [grow_tree(p) for p in dataset_params(8, 3)]
    with pytest.raises(InputError, match="token_size: the centreline model needs 30"):
        train_model(graphs, None, tmp_path / "x.safetensors", preset="tiny")
    cfg = diffusion_preset("centerline").replace(epochs=2, batch_size=4)
    result = train_model(graphs, None, tmp_path / "m.safetensors", config=cfg, seed=1)
    assert result.report["networks"] == 8 and len(result.report["history"]) == 2
    sampled = sample_trees(tmp_path / "m.safetensors", 3, seed=5)
    assert len(sampled.graphs) == 3 and sampled.fields == [] and sampled.meshes == []
    assert all(isinstance(g, CenterlineGraph) for g in sampled.graphs) and sampled.weights.shape == (3, 25 * 30)


def test_a_checkpoint_whose_branch_description_does_not_match_its_layout_is_refused(one_tree_model, tmp_path,
                                                                                   capsys):
    from AnatomyINRLib.io.checkpoint import load_checkpoint, save_checkpoint

    _, _, ckpt = one_tree_model
    tensors, meta = load_checkpoint(ckpt)
    meta["inr"]["points_per_branch"] = 6  # 6 points per branch would be 24-value tokens, the layout has 30
    save_checkpoint(tmp_path / "m.safetensors", tensors, meta)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["trees", "sample", "--checkpoint", str(tmp_path / "m.safetensors"), "--count", "1",
                 "--output-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its centreline description does not match its token layout" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("value", ["20", "12"])  # 12, the default, too: it was asked for
def test_max_bifurcations_without_centerlines_is_refused(tmp_path, capsys, value):
    (tmp_path / "in").mkdir()
    assert main(["trees", "train", str(tmp_path / "in"), "--output", str(tmp_path / "m.safetensors"),
                 "--max-bifurcations", value]) == 2
    assert "--max-bifurcations: applies to --centerlines only" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
