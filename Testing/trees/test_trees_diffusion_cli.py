"""``anatomy-inr trees train|sample|evaluate`` on INR files made with the library's MLP and on tube meshes."""

import json
import warnings

import numpy as np
import pytest
import torch

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP, MLPConfig

ARCH = MLPConfig(width=16, depth=2, geometric_init=True, init_radius=0.5)


def _write_inrs(folder, n=8, config=ARCH, seed=0):
    """n sphere-like fields: the geometric init's sphere with every weight jittered by 1 % per INR."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        net = MLP(config)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.from_numpy(rng.normal(scale=0.01, size=tuple(p.shape))).float())
        box = [[-6.0, -6.0, -6.0 + i], [6.0, 6.0, 6.0 + i]]  # mm; with the normalisation below: ±0.6 (+0.1·i)
        io.save_inr(NeuralField(net, Normalization(center=np.zeros(3), scale=10.0)), folder / f"inr_{i}.safetensors",
                    {"field_kind": "toy-sdf", "points_bounds_mm": box})
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trees_cli")
    inrs = _write_inrs(root / "inrs")
    ckpt = root / "diff.safetensors"
    code = main(["trees", "train", str(inrs), "--output", str(ckpt), "--preset", "tiny", "--epochs", "40",
                 "--threads", "1", "--report", str(root / "train.json")])
    assert code == 0
    return root, inrs, ckpt


def test_train_writes_checkpoint_sidecar_and_report(trained):
    root, inrs, ckpt = trained
    report = json.loads((root / "train.json").read_text())
    assert report["networks"] == 8 and report["epochs"] == 40 and len(report["history"]) == 40
    meta = json.loads((root / "diff.json").read_text())
    assert meta["inr"]["network"]["kind"] == "mlp" and meta["inr"]["names"][0] == "inr_0.safetensors"
    assert meta["inr"]["field_kind"] == "toy-sdf"
    assert np.allclose(meta["inr"]["points_bounds_mm"], [[-6, -6, -6], [6, 6, 13]])
    assert meta["layout"][0] == ["layers.0.weight", [16, 3]] or meta["layout"][0][1] == [16, 3]


def test_sample_writes_inr_files_and_meshes(trained, tmp_path):
    root, inrs, ckpt = trained
    out = tmp_path / "samples"
    args = ["trees", "sample", "--checkpoint", str(ckpt), "--count", "3", "--output-dir", str(out), "--seed", "4",
            "--spacing", "0.5", "--report", str(tmp_path / "s.json")]
    assert main(args) == 0
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.endswith(".safetensors")] == [f"tree_00{i}.safetensors" for i in range(3)]
    field, meta = io.load_inr(out / "tree_000.safetensors")
    assert meta["sampled_from"] == str(ckpt) and meta["seed"] == 4 and meta["field_kind"] == "toy-sdf"
    assert np.allclose(meta["points_bounds_mm"], [[-6, -6, -6], [6, 6, 13]])
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["count"] == 3 and report["empty"] == 0 and report["components"] == "largest"
    from AnatomyINRLib.meshing.postprocess import component_areas

    for i, entry in enumerate(report["meshes"]):  # one piece written; the pieces found are reported
        written = io.read_mesh(out / f"tree_00{i}.vtp")
        assert component_areas(written)[1].size == 1 and entry["faces"] == written.n_faces
        assert entry["pieces"] >= 1 and (entry["pieces"] > 1) == (entry["largest_area_fraction"] < 1)
    assert report["in_pieces"] == sum(e["pieces"] > 1 for e in report["meshes"])
    # each mesh is the zero level set of the INR file written beside it, closed off by the training box
    # where it leaves it (how well samples follow the training distribution is test_diffusion_train's toy
    # test; 40 steps here only exercise the plumbing)
    from AnatomyINRLib.meshing.topology import edge_table

    for i in range(3):
        mesh = io.read_mesh(out / f"tree_00{i}.vtp")
        field, _ = io.load_inr(out / f"tree_00{i}.safetensors")
        values = field(mesh.vertices)
        assert mesh.n_faces > 100 and np.count_nonzero(edge_table(mesh.faces).counts != 2) == 0  # watertight
        assert np.all(values < 0.25) and np.mean(np.abs(values) < 0.25) > 0.5  # on the zero set or a cap inside
    # the same seed gives the same trees; the INR re-meshes with 'extract'
    again = tmp_path / "again"
    assert main(args[:7] + [str(again), "--seed", "4"]) == 0
    same, _ = io.load_inr(again / "tree_001.safetensors")
    other, _ = io.load_inr(out / "tree_001.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(same.network.state_dict().values(), other.network.state_dict().values()))
    # 'extract' meshes a sampled INR file into the very mesh 'trees sample' wrote
    assert main(["extract", str(out / "tree_002.safetensors"), "--output", str(tmp_path / "e.vtp"), "--spacing", "0.5"]) == 0
    again_mesh, written = io.read_mesh(tmp_path / "e.vtp"), io.read_mesh(out / "tree_002.vtp")
    assert np.array_equal(again_mesh.faces, written.faces) and np.array_equal(again_mesh.vertices, written.vertices)


def _with_a_second_piece(monkeypatch):
    """Every surface marching cubes finds gets a second piece before the largest is chosen: a copy at a
    tenth of its size about its centroid (1 % of its area; no shared vertex, so a piece of its own)."""
    import AnatomyINRLib.meshing.extract as extract

    real = extract._orient_along_gradient

    def two_pieces(*args, **kwargs):
        m = real(*args, **kwargs)
        centre = m.vertices.mean(axis=0)
        copy = (m.vertices - centre) * 0.1 + centre
        return TriangleMesh(np.concatenate([m.vertices, copy]), np.concatenate([m.faces, m.faces + m.n_vertices]))

    monkeypatch.setattr(extract, "_orient_along_gradient", two_pieces)


def test_sampled_surfaces_in_pieces_are_reported_and_kept_only_when_asked(trained, tmp_path, monkeypatch):
    root, inrs, ckpt = trained
    from AnatomyINRLib.meshing.postprocess import component_areas

    _with_a_second_piece(monkeypatch)
    for flag, written in (([], 1), (["--keep-all-components"], 2)):
        out, rep = tmp_path / f"s{written}", tmp_path / f"s{written}.json"
        assert main(["trees", "sample", "--checkpoint", str(ckpt), "--count", "3", "--output-dir", str(out),
                     "--seed", "4", "--spacing", "0.5", "--report", str(rep), *flag]) == 0
        report = json.loads(rep.read_text())
        assert report["components"] == ("all" if flag else "largest") and report["in_pieces"] == 3
        for i, entry in enumerate(report["meshes"]):
            assert entry["pieces"] == 2 and entry["largest_area_fraction"] == 0.99  # 100/101 rounded down
            assert component_areas(io.read_mesh(out / f"tree_00{i}.vtp"))[1].size == written
    assert json.loads((tmp_path / "s2" / "sample.config.json").read_text())["keep_all_components"] is True


def test_bad_inputs_write_nothing(trained, tmp_path, capsys):
    root, inrs, ckpt = trained
    out = tmp_path / "s"
    for extra, message in ((["--count", "0"], "--count"), (["--count", "2", "--spacing", "-1"], "--spacing"),
                           (["--count", "2", "--keep-all-components"], "--keep-all-components"),
                           (["--count", "2", "--keep-apart", "-1"], "--keep-apart: expected a strength >= 0"),
                           (["--count", "2", "--keep-apart", "nan"], "--keep-apart: expected a strength >= 0"),
                           (["--count", "2", "--keep-apart", "inf"], "--keep-apart: expected a strength >= 0"),
                           (["--count", "2", "--keep-apart", "1"], "keep_apart: applies to centreline-model "
                                                                   "checkpoints only")):
        code = main(["trees", "sample", "--checkpoint", str(ckpt), "--output-dir", str(out), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err
    assert not out.exists()
    # INRs of another architecture: the checkpoint refuses to resume on them
    other = _write_inrs(tmp_path / "wide", n=3, config=MLPConfig(width=8, depth=2))
    code = main(["trees", "train", str(other), "--output", str(ckpt), "--preset", "tiny"])
    err = capsys.readouterr().err
    assert code == 2 and "another weight layout" in err and err.count("\n") == 1
    # a folder mixing architectures is refused naming the odd file; an unreadable file is named
    mixed = _write_inrs(tmp_path / "mixed", n=2)
    (tmp_path / "wide" / "inr_0.safetensors").rename(mixed / "odd.safetensors")
    code = main(["trees", "train", str(mixed), "--output", str(tmp_path / "m.safetensors"), "--preset", "tiny"])
    assert code == 2 and "odd.safetensors" in capsys.readouterr().err
    (mixed / "odd.safetensors").write_bytes(b"not a file")
    code = main(["trees", "train", str(mixed), "--output", str(tmp_path / "m.safetensors"), "--preset", "tiny"])
    err = capsys.readouterr().err
    assert code == 2 and "unreadable" in err and "odd.safetensors" in err and "--skip-unreadable" in err
    assert not (tmp_path / "m.safetensors").exists()
    code = main(["trees", "train", str(tmp_path / "nothing"), "--output", str(tmp_path / "m.safetensors")])
    assert code == 2 and "not a folder" in capsys.readouterr().err


def _tube_mesh(a, b, r, h=0.5):
    from skimage.measure import marching_cubes

    lo = np.minimum(a, b) - r - 2 * h
    hi = np.maximum(a, b) + r + 2 * h
    axes = [np.arange(lo[i], hi[i], h) + 0.1 for i in range(3)]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    inside = (np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1) <= r).astype(np.float32)
    verts, faces, _, _ = marching_cubes(inside, 0.5, spacing=(h, h, h))
    return TriangleMesh(verts + np.array([ax[0] for ax in axes]), faces[:, ::-1].astype(np.int64))


def test_evaluate_identical_sets(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, length in enumerate((6.0, 12.0, 18.0)):
        io.write_mesh(_tube_mesh(np.zeros(3), np.array([length, 1.0, 0.5]), 1.5), ref / f"t{i}.vtp")
    report, png = tmp_path / "r.json", tmp_path / "h.png"
    assert main(["trees", "evaluate", "--generated", str(ref), "--reference", str(ref), "--training", str(ref),
                 "--report", str(report), "--histograms", str(png), "--voxel", "0.4"]) == 0
    r = json.loads(report.read_text())
    # each set draws its own 2048 surface points: twins differ by the sampling noise only (≈ 0.1 mm)
    assert r["points_per_shape"] == 2048 and r["distance"].startswith("chamfer (half")
    assert r["cov"] == 1.0 and r["mmd"] < 0.2 and r["one_nna"] == 0.0 and r["memorisation"]["copies"] == 1.0
    assert min(r["memorisation"]["train_spacing"]) > 4 * r["mmd"]
    lengths = r["tree_statistics"]["generated"]["total_length"]
    # centrelines of 6.1, 12.05, 18.03 mm; the thinning stops short of the caps by up to a radius at each end
    assert np.all((np.array(lengths) <= [6.1, 12.05, 18.03]) & (np.array(lengths) >= [3.1, 9.05, 15.03]))
    assert r["tree_statistics"]["reference"]["bifurcations"] == [0, 0, 0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stack_fields_median_normalisation_and_box():
    from AnatomyINRLib.core.errors import InputError
    from AnatomyINRLib.trees._inr_sets import field_from_vector, stack_fields

    fields = [NeuralField(MLP(ARCH), Normalization(center=[c, 0, 0], scale=s)) for c, s in ((0, 1), (2, 2), (10, 3))]
    # each tree's box is ±0.5 of its own normalised frame, the third one reaches +0.9 along x
    metas = [{"field_kind": "k", "points_bounds_mm": [[c - 0.5 * s, -0.5 * s, -0.5 * s], [c + hx * s, 0.5 * s, 0.5 * s]]}
             for (c, s), hx in zip(((0, 1), (2, 2), (10, 3)), (0.5, 0.5, 0.9))]
    with pytest.warns(UserWarning, match=r"fitted in different frames \(scales 1-3 mm\).*--frame set"):
        weights, layout, info = stack_fields(fields, ["a", "b", "c"], metas)
    assert weights.shape == (3, sum(p.numel() for p in MLP(ARCH).parameters()))
    assert info["normalization"] == {"center_mm": [2.0, 0.0, 0.0], "scale_mm": 2.0}
    assert info["field_kind"] == "k" and np.allclose(info["points_bounds_mm"], [[1, -1, -1], [3.8, 1, 1]])
    back = field_from_vector(weights[1], layout, info)
    pts = np.random.default_rng(0).normal(size=(20, 3))
    # same weights as field b; the normalisation is the median one (= b's here)
    assert np.allclose(back(pts), fields[1](pts))
    other = NeuralField(MLP(MLPConfig(width=8, depth=2)), Normalization(center=np.zeros(3), scale=1.0))
    with pytest.raises(InputError, match="^odd: another network architecture"):
        stack_fields(fields[:2] + [other], ["a", "b", "odd"])
    with pytest.raises(InputError, match="no INR architecture"):
        field_from_vector(weights[0], layout, {})
    one = [NeuralField(MLP(ARCH), Normalization(center=[2, 0, 0], scale=2)) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one frame: no warning
        stack_fields(one, ["a", "b", "c"])


def test_evaluate_names_every_unreadable_mesh_and_skips_them_only_when_asked(tmp_path, capsys):
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, length in enumerate((6.0, 12.0)):
        io.write_mesh(_tube_mesh(np.zeros(3), np.array([length, 1.0, 0.5]), 1.5), ref / f"t{i}.vtp")
    gen = tmp_path / "gen"
    gen.mkdir()
    io.write_mesh(_tube_mesh(np.zeros(3), np.array([9.0, 1.0, 0.5]), 1.5), gen / "ok.vtp")
    (gen / "bad1.vtp").write_bytes(b"not a mesh")
    (gen / "bad2.stl").write_bytes(b"")
    report = tmp_path / "r.json"
    args = ["trees", "evaluate", "--generated", str(gen), "--reference", str(ref), "--report", str(report),
            "--voxel", "0.4"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--generated: 2 unreadable file(s): bad1.vtp, bad2.stl" in err
    assert "--skip-unreadable evaluates the rest" in err and not report.exists()
    assert main(args + ["--skip-unreadable"]) == 0
    err = capsys.readouterr().err
    assert "skipped bad1.vtp" in err and "skipped bad2.stl" in err
    r = json.loads(report.read_text())
    assert r["skipped_unreadable"] == {"--generated": ["bad1.vtp", "bad2.stl"], "--reference": []}
    assert len(r["tree_statistics"]["generated"]["total_length"]) == 1
    # nothing readable left: refused even with --skip-unreadable
    (gen / "ok.vtp").unlink()
    report.unlink()
    assert main(args + ["--skip-unreadable"]) == 2
    assert "2 unreadable file(s)" in capsys.readouterr().err and not report.exists()


def test_sample_refuses_a_checkpoint_whose_layout_is_not_its_inr_architecture(trained, tmp_path, capsys):
    """An altered checkpoint (stored INR architecture 8 wide, weights laid out for 16) fails before sampling."""
    from AnatomyINRLib.io.checkpoint import load_checkpoint, save_checkpoint

    root, inrs, ckpt = trained
    tensors, meta = load_checkpoint(ckpt)
    meta["inr"]["network"]["config"]["width"] = 8
    bad = tmp_path / "altered.safetensors"
    save_checkpoint(bad, tensors, meta)
    out = tmp_path / "s"
    code = main(["trees", "sample", "--checkpoint", str(bad), "--count", "2", "--output-dir", str(out),
                 "--json-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1
    assert "weight layout does not match its INR architecture (mlp)" in captured.err
    assert "[16, 3] where the network has" in captured.err and "[8, 3]" in captured.err
    assert "denoising" not in captured.out and not out.exists()  # refused before any sampling step


def test_hull_head_checkpoint_samples_with_a_temperature_and_reports_the_blend(tmp_path, capsys):
    from AnatomyINRLib.trees.config import diffusion_preset

    inrs = _write_inrs(tmp_path / "inrs", n=6)
    config = tmp_path / "hull_config.json"
    config.write_text(json.dumps(diffusion_preset("tiny").replace(head="hull", x0_skip=False, epochs=5,
                                                                  temperature=3.0).to_dict()))
    ckpt = tmp_path / "hull.safetensors"
    assert main(["trees", "train", str(inrs), "--output", str(ckpt), "--config", str(config), "--threads", "1"]) == 0
    reports = {}
    for temperature in ("1", "1e6"):
        out, rep = tmp_path / f"s{temperature}", tmp_path / f"s{temperature}.json"
        assert main(["trees", "sample", "--checkpoint", str(ckpt), "--count", "2", "--output-dir", str(out),
                     "--temperature", temperature, "--report", str(rep)]) == 0
        reports[temperature] = json.loads(rep.read_text())
        assert json.loads((out / "sample.config.json").read_text())["temperature"] == float(temperature)
    assert reports["1"]["head"] == "hull" and reports["1"]["temperature"] == 1.0
    # no --temperature: the checkpoint's own (3 here) is used and reported
    assert main(["trees", "sample", "--checkpoint", str(ckpt), "--count", "2", "--output-dir", str(tmp_path / "own"),
                 "--report", str(tmp_path / "own.json")]) == 0
    own = json.loads((tmp_path / "own.json").read_text())
    assert own["temperature"] == 3.0 and len(own["blended_networks"]) == 2
    assert all(1.0 <= b < 6.0 for b in reports["1"]["blended_networks"])
    assert reports["1e6"]["blended_networks"] == [6.0, 6.0]  # equal weights: all six networks
    # a temperature means nothing to a per-token head: refused before anything is written
    plain = tmp_path / "plain.safetensors"
    assert main(["trees", "train", str(inrs), "--output", str(plain), "--preset", "tiny", "--epochs", "1"]) == 0
    capsys.readouterr()
    code = main(["trees", "sample", "--checkpoint", str(plain), "--count", "1", "--output-dir", str(tmp_path / "no"),
                 "--temperature", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "temperature" in err and err.count("\n") == 1 and not (tmp_path / "no").exists()


def test_trees_train_offers_every_diffusion_preset_and_shared_drops_the_skip(capsys):
    """The CLI's --preset choices are the library's presets (spelled out there so that --help needs no
    import of the trees package); "shared" drops the x̂_0 skip and keeps per-parameter normalisation,
    which leaves out the layers every shared-decoder network has in common."""
    from AnatomyINRLib.trees.config import DIFFUSION_PRESETS, diffusion_preset

    with pytest.raises(SystemExit):
        main(["trees", "train", "--help"])
    assert "{" + ",".join(DIFFUSION_PRESETS) + "}" in capsys.readouterr().out
    cfg = diffusion_preset("shared")
    cfg.validate()
    assert (cfg.x0_skip, cfg.normalisation, cfg.head, cfg.epochs) == (False, "parameter", "tokens", 100)


def test_piece_share_is_rounded_down_and_below_one_for_several_pieces():
    from AnatomyINRLib.trees.api import piece_share

    assert piece_share([30.0]) == 1.0 and piece_share([]) == 1.0
    assert piece_share([100.0, 1.0]) == 0.99 and piece_share([2.0, 1.0]) == 0.6666
    assert piece_share([1.0, 1e-17]) == 0.9999 and piece_share([0.0, 0.0]) == 0.9999
