"""Keeping a sampled tree's branches apart: the overlap measure, the guide, and the sampler's hook."""

import numpy as np
import pytest
import torch

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import CenterlineGraph
from AnatomyINRLib.phantoms.tree_synth import dataset_params, grow_tree
from AnatomyINRLib.trees._centerline_guidance import apart_mask, keep_apart_guide, overlapping_branch_pairs
from AnatomyINRLib.trees._centerline_tokens import (_branches, branch_parents, branch_points, centerline_training_set,
                                                    decode_tokens, encode_graph, normalise, valid_flags)
from AnatomyINRLib.trees._diffusion_schedule import DiffusionSchedule, ddim_sample
from AnatomyINRLib.trees.api import sample_trees


def _tree(a1_end) -> CenterlineGraph:
    """Root 0→1 down z; at 1 a bifurcation into B (along −x, radius 1) and A (down z), A bifurcating at
    (0, 0, −20) into A1 (to ``a1_end``) and A2. A1 is neither B's parent, child nor sibling."""
    pts = [[0, 0, 0], [0, 0, -10], [-10, 0, -10], [0, 0, -20], a1_end, [10, 0, -25]]
    return CenterlineGraph(np.asarray(pts, float), np.array([-1, 0, 1, 1, 3, 3]),
                           np.array([1.5, 1.5, 1.0, 1.2, 1.0, 1.0]))


def test_overlapping_pairs_count_only_tubes_of_branches_that_are_not_adjacent():
    assert overlapping_branch_pairs(_tree([-10, 0, -25])) == 0  # A1 ends 15 mm below B's end
    assert overlapping_branch_pairs(_tree([-10, 0, -11.5])) == 1  # A1's end 1.5 mm from B's: radii 1 + 1
    # siblings and parent and child always touch at their shared node and are not counted
    assert overlapping_branch_pairs(_tree([-10, 0, -12.5])) == 0
    parents = branch_parents(np.array([[1.0, 0.0, 1.0, 0.0, 0.0, -1.0]]))
    assert parents.tolist() == [[-1, 0, 0, 2, 2, -2]]  # preorder: root, B (terminal), A, A1, A2, padding
    pairs = sorted(map(tuple, np.argwhere(apart_mask(parents)[0].numpy())))
    assert pairs == [(0, 3), (0, 4), (1, 3), (1, 4)]  # root and B against A's children


def test_differentiable_points_are_the_trees_branches():
    # branch_points is decode_tokens' geometry and the guidance's: each branch starts at its
    # parent's end and ends where the tree's branch ends
    graphs = [grow_tree(p) for p in dataset_params(4, 3)]
    _, _, info = centerline_training_set(graphs, ["a", "b", "c", "d"], 30)
    k, p = info["max_branches"], info["points_per_branch"]
    raw = np.stack([encode_graph(g, k, p) for g in graphs])
    parents = branch_parents(raw[:, :, -1])
    points, radius = branch_points(torch.as_tensor(raw[:, :, :-1]), parents, p)
    for b, g in enumerate(graphs):
        branches = _branches(g, "g")
        n = len(branches)
        assert np.allclose(points[b, :n, -1].numpy(), [path[-1] for path, _, _ in branches], atol=1e-9)
        assert np.allclose(points[b, :n, 0].numpy(), [path[0] for path, _, _ in branches], atol=1e-9)
        assert np.allclose(radius[b, :n].numpy(), [r for _, r, _ in branches])
        assert np.all(parents[b, n:] == -2) and parents[b, 0] == -1
        back = decode_tokens(normalise(raw[b], info).ravel(), info)
        assert len(back.points) == 1 + n * p and len(back.bifurcations()) == (n - 1) // 2


def test_the_guide_separates_crossing_branches_and_keeps_size_radii_and_structure():
    crossing = _tree([-10, 0, -11.5])
    graphs = [grow_tree(p) for p in dataset_params(20, 3)]  # a training set's normalisation
    _, _, info = centerline_training_set(graphs, [str(i) for i in range(20)], 30)
    k, p = info["max_branches"], 8
    raw = normalise(encode_graph(crossing, k, p), info)
    guide = keep_apart_guide(info, 1.0)
    x = torch.as_tensor(raw.reshape(1, -1))
    assert guide(x, 301) is None  # early steps are left alone
    for _ in range(15):  # the guided steps of a 50-step DDIM run (t ≤ 300)
        x = guide(x, 100)
    after = x.numpy().reshape(k, -1)
    assert overlapping_branch_pairs(decode_tokens(after.ravel(), info)) == 0
    moved = np.abs(after - raw).max(axis=0)
    assert moved[6] == 0 and moved[-2] == 0 and moved[-1] == 0 and np.all(moved[:3] == 0)  # length, radius, flag
    assert list(valid_flags(after[:, -1])) == [1, 1, 0, 0, 0] + [-1] * (k - 5)  # root, A, A1, A2, B (wider child first)
    # decoded points, branch by branch in preorder (8 each after the root's start): A1 and B turned
    # away from each other by a few mm (the overlap was 0.5 mm), the others stayed where they were
    shift = np.linalg.norm(decode_tokens(after.ravel(), info).points - decode_tokens(raw.ravel(), info).points, axis=1)
    per_branch = shift[1:].reshape(5, 8).max(axis=1)
    assert np.allclose(per_branch[[0, 1, 3]], 0, atol=1e-9)
    assert 0.1 < per_branch[2] < 4.0 and 0.1 < per_branch[4] < 4.0


def test_a_guide_that_changes_nothing_leaves_ddim_exactly_as_it_was():
    schedule = DiffusionSchedule(steps=100)
    target = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))

    def denoise(x, t):  # a fixed imperfect x̂0
        return 0.5 * x + target

    plain = ddim_sample(denoise, schedule, (3, 4, 5), torch.Generator().manual_seed(1), sample_steps=10)
    same = ddim_sample(denoise, schedule, (3, 4, 5), torch.Generator().manual_seed(1), sample_steps=10,
                       guide=lambda x0, t: None if t > 50 else x0.clone())
    assert torch.allclose(plain, same, atol=1e-6)
    pulled = ddim_sample(denoise, schedule, (3, 4, 5), torch.Generator().manual_seed(1), sample_steps=10,
                         guide=lambda x0, t: torch.zeros_like(x0))
    assert torch.equal(pulled, torch.zeros_like(pulled))  # the last step's corrected x̂0 is the sample


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True])
def test_sample_trees_refuses_a_bad_keep_apart_before_reading_the_checkpoint(value, tmp_path):
    with pytest.raises(InputError, match="keep_apart: expected a strength >= 0"):
        sample_trees(tmp_path / "missing.safetensors", 1, keep_apart=value)
