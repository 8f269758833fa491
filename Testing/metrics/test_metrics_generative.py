"""Generation metrics (Chamfer, MMD, COV, 1-NNA, memorisation) on sets with known answers."""

import numpy as np
import pytest

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.metrics.generative import (chamfer, chamfer_matrices, chamfer_matrix, generation_metrics,
                                              generation_metrics_both, memorisation, mmd_cov, one_nna)


def _grid(n=6, step=1.0):
    g = np.arange(n) * step
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)


def test_chamfer_known_values():
    a, b = np.zeros((1, 3)), np.array([[3.0, 4.0, 0.0]])
    assert chamfer(a, b) == pytest.approx(5.0)  # ½ (5 + 5)
    assert chamfer(a, b, squared=True) == pytest.approx(50.0)  # 25 + 25, summed not halved
    grid = _grid()
    shifted = grid + [0.1, 0.2, 0.2]  # |δ| = 0.3 < half the spacing: every nearest neighbour is the twin
    assert chamfer(grid, shifted) == pytest.approx(0.3)
    assert chamfer(grid, shifted, squared=True) == pytest.approx(2 * 0.09)
    assert chamfer(grid, grid) == 0.0
    # asymmetric sets: A ⊂ B, B has one extra point at distance 10 from A
    b = np.vstack([a, [[10.0, 0, 0]]])
    assert chamfer(a, b) == pytest.approx(0.5 * (0 + 5.0))


def test_chamfer_matrix_matches_pairwise():
    rng = np.random.default_rng(0)
    clouds = [rng.normal(size=(50, 3)) + i for i in range(4)]
    m = chamfer_matrix(clouds)
    assert np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    assert m[1, 3] == pytest.approx(chamfer(clouds[1], clouds[3]))
    other = chamfer_matrix(clouds[:2], clouds[2:], squared=True)
    assert other.shape == (2, 2) and other[1, 0] == pytest.approx(chamfer(clouds[1], clouds[2], squared=True))


def test_both_chamfer_variants_from_one_pass_equal_each_computed_alone():
    rng = np.random.default_rng(5)
    xs, ys = [rng.normal(size=(40, 3)) * (1 + i) for i in range(3)], [rng.normal(size=(30, 3)) + i for i in range(2)]
    for args in ((xs,), (xs, ys)):
        both = chamfer_matrices(*args)
        for key, squared in (("unsquared", False), ("squared", True)):
            want = np.array([[chamfer(a, b, squared=squared) for b in args[-1]] for a in args[0]])
            assert np.allclose(both[key], want, rtol=1e-12, atol=0)
    assert not np.allclose(chamfer_matrices(xs)["squared"], chamfer_matrices(xs)["unsquared"])


def test_metrics_of_both_variants_match_pairwise_chamfer_and_name_the_nearest_training_shape():
    rng = np.random.default_rng(6)
    samples, refs, train = _shapes(5, rng), _shapes(6, rng), _shapes(7, rng)
    samples[2] = train[4] + 1e-3  # a copy of training shape 4
    both = generation_metrics_both(samples, refs, train)
    for key, squared in (("unsquared", False), ("squared", True)):
        def pairs(xs, ys):
            return np.array([[chamfer(a, b, squared=squared) for b in ys] for a in xs])

        d_sr = pairs(samples, refs)
        mmd, cov = mmd_cov(d_sr)
        nna = one_nna(pairs(samples, samples), pairs(refs, refs), d_sr)
        assert both[key]["mmd"] == pytest.approx(mmd, rel=1e-12) and both[key]["cov"] == cov
        assert both[key]["one_nna"] == nna["accuracy"]
        d_st = pairs(samples, train)
        assert both[key]["memorisation"]["nearest_train_index"] == d_st.argmin(axis=1).tolist()
    assert both["unsquared"]["memorisation"]["nearest_train_index"][2] == 4
    with pytest.raises(InputError, match="training: the memorisation check needs at least 2"):
        generation_metrics_both(samples, refs, train[:1])


def _shapes(n, rng, offset=0.0, points=64):
    """Point clouds of random boxes: the 'shapes' of a distribution."""
    return [(rng.uniform(size=(points, 3)) * rng.uniform(1, 3, size=3)) + offset for _ in range(n)]


def test_identical_sets_full_coverage_zero_mmd_and_zero_one_nna():
    refs = _shapes(12, np.random.default_rng(1))
    report = generation_metrics(refs, refs)
    assert report["cov"] == 1.0 and report["mmd"] == 0.0
    # every shape's nearest neighbour is its copy in the other set: the 1-NN classifier is always wrong
    assert report["one_nna"] == 0.0


def test_independent_draws_of_one_distribution_give_one_nna_near_half():
    rng = np.random.default_rng(2)
    accs = [generation_metrics(_shapes(30, rng, points=32), _shapes(30, rng, points=32))["one_nna"] for _ in range(3)]
    assert 0.38 <= np.mean(accs) <= 0.62  # 50 % ideal; sd of the mean of three 60-shape runs ≈ 3.7 %


def test_disjoint_far_sets():
    rng = np.random.default_rng(3)
    samples, refs = _shapes(10, rng, offset=100.0), _shapes(10, rng)
    report = generation_metrics(samples, refs, squared=True)
    assert report["one_nna"] == 1.0 and report["one_nna_samples"] == 1.0 and report["one_nna_references"] == 1.0
    assert report["mmd"] > 3 * 100.0 ** 2 * 0.9  # squared distances of ≈ 173 mm offsets
    assert report["distance"].startswith("chamfer-squared")


def test_mmd_and_cov_from_a_matrix():
    # 3 samples, 4 references: samples 0 and 1 both pick reference 2, sample 2 picks reference 0
    d = np.array([[5.0, 6.0, 1.0, 9.0], [4.0, 7.0, 2.0, 9.0], [0.5, 8.0, 3.0, 9.0]])
    mmd, cov = mmd_cov(d)
    assert mmd == pytest.approx((0.5 + 6.0 + 1.0 + 9.0) / 4) and cov == 0.5


def test_one_nna_by_hand():
    # samples {0, 1} on a line, references {10, 11.5}: every nearest neighbour is in its own set
    x = np.array([0.0, 1.0, 10.0, 11.5])
    d = np.abs(x[:, None] - x[None])
    res = one_nna(d[:2, :2], d[2:, 2:], d[:2, 2:])
    assert res["accuracy"] == 1.0
    # move sample 1 to 10.4: its nearest is reference 10 (wrong), reference 10's nearest is sample 1 (wrong)
    x = np.array([0.0, 10.4, 10.0, 11.5])
    d = np.abs(x[:, None] - x[None])
    res = one_nna(d[:2, :2], d[2:, 2:], d[:2, 2:])
    # sample 0 → 10 (ref: wrong), sample 1 → 10 (wrong), ref 10 → 10.4 (wrong), ref 11.5 → 10.4 (wrong)
    assert res["accuracy"] == 0.0
    with pytest.raises(InputError, match="do not agree"):
        one_nna(d[:2, :2], d[2:, 2:], d[:3, 2:])


def test_memorisation_flags_copies():
    rng = np.random.default_rng(4)
    train = _shapes(10, rng)
    copies = [t + 1e-3 for t in train[:5]]
    fresh = _shapes(5, rng)
    d_tt = chamfer_matrix(train)
    m_copies = memorisation(chamfer_matrix(copies, train), d_tt)
    m_fresh = memorisation(chamfer_matrix(fresh, train), d_tt)
    assert m_copies["copies"] == 1.0 and m_copies["ratio"] < 0.01
    assert m_fresh["copies"] == 0.0 and 0.5 < m_fresh["ratio"] < 2.0
    report = generation_metrics(copies, train[5:], training=train)
    assert report["memorisation"]["copies"] == 1.0


def test_evaluate_mesh_sets_reports_open_meshes_as_unmeasured():
    from AnatomyINRLib.core.types import TriangleMesh
    from AnatomyINRLib.metrics.generative import evaluate_mesh_sets

    v = np.array([[0, 0, 0], [4, 0, 0], [0, 4, 0], [0, 0, 4]], float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    closed, open_ = TriangleMesh(v, faces), TriangleMesh(v, faces[:3])
    report = evaluate_mesh_sets([closed, open_], [closed, TriangleMesh(v + 1, faces)],
                                points=64, voxel_mm=0.2)
    assert report["tree_statistics_unmeasured"] == {"generated": 1, "reference": 0}
    assert report["tree_statistics"]["generated"]["total_length"][1] is None
    assert report["tree_statistics"]["generated"]["bifurcations"][0] == 0
    summary = report["tree_summary"]["generated"]["total_length"]
    assert summary["mean"] == pytest.approx(report["tree_statistics"]["generated"]["total_length"][0]) and summary["std"] == 0
