"""Method B (learned, ImPulSe+): network shapes, loss values, sampler, checkpoints, resume, refusals."""

import math

import numpy as np
import pytest
import torch

from AnatomyINRLib import io
from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.io.checkpoint import load_checkpoint, save_checkpoint
from AnatomyINRLib.pulmonary import learned_preset, segment_lungs, train_segments_model
from AnatomyINRLib.pulmonary._learned_data import LearnedCase, load_cases, sample_points, to_index
from AnatomyINRLib.pulmonary._learned_infer import LearnedModel
from AnatomyINRLib.pulmonary._learned_net import ImPulSeNet, sample_volume, segment_loss
from AnatomyINRLib.pulmonary._learned_train import state_digest
from AnatomyINRLib.pulmonary.config import segment_lobe

CASE_FILES = ("ct", "lobes", "airways", "arteries", "veins", "segments")


def write_case(phantom, folder, ext=".nrrd"):
    folder.mkdir(parents=True)
    for name in CASE_FILES:
        io.write_image(getattr(phantom, name), folder / f"{name}{ext}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, phantom, unseen_phantom):
    root = tmp_path_factory.mktemp("learned") / "cases"
    write_case(phantom, root / "a")
    write_case(unseen_phantom, root / "b", ext=".nii.gz")  # the loader reads both formats
    return root


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return train_segments_model(data_dir, out, preset="tiny", seed=3), out


def test_network_shapes_and_eq9_at_start():
    torch.manual_seed(0)
    cfg = learned_preset("tiny").network  # input 16, width 4, template 8³
    net = ImPulSeNet(cfg).eval()
    vol = torch.rand(2, cfg.n_input_channels, 16, 16, 16)
    pyr = net.encode(vol)
    assert [tuple(f.shape) for f in pyr] == [(2, 4, 16, 16, 16), (2, 8, 8, 8, 8), (2, 16, 4, 4, 4), (2, 32, 2, 2, 2)]
    assert tuple(net.template().shape) == (1, 19, 8, 8, 8)
    pts = torch.rand(2, 50, 3) * 2 - 1
    logits, delta = net(vol, pts)
    assert tuple(logits.shape) == (2, 50, 19) and tuple(delta.shape) == (2, 50, 3)
    assert torch.all(delta == 0)  # zero-initialised deformation: training starts at the template
    feats = torch.cat([sample_volume(f, pts) for f in pyr] + [pts], dim=-1)
    expected = sample_volume(net.template().expand(2, -1, -1, -1, -1), pts) + net.correction(feats)
    assert torch.allclose(logits, expected, atol=1e-6)


def test_sample_volume_axis_order():
    ii, jj, kk = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), torch.arange(9.0), indexing="ij")
    vol = torch.stack([ii, jj, kk])[None]  # value = voxel index per axis
    pts = torch.tensor([[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, -0.5, 0.25], [0.5, 0.0, -1.0]]])
    got = sample_volume(vol, pts)[0]
    want = (pts[0] + 1) / 2 * torch.tensor([4.0, 6.0, 8.0])
    assert torch.allclose(got, want, atol=1e-5)


def test_loss_on_hand_built_case():
    labels = torch.tensor([0, 1, 1, 2])
    delta = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    total, terms = segment_loss(torch.zeros(4, 19), labels, delta, 0.5, 1.0, 1e-3)
    dice = 1 - 2 * (3 / 19) / (4 * 18 / 19 + 3)  # soft Dice of uniform probabilities, classes 1-18 together
    assert terms["ce"] == pytest.approx(math.log(19), rel=1e-6)
    assert terms["dice"] == pytest.approx(dice, rel=1e-6) and terms["deformation"] == pytest.approx(5.0)
    assert float(total) == pytest.approx(0.5 * math.log(19) + dice + 5e-3, rel=1e-6)
    perfect = 50.0 * torch.nn.functional.one_hot(labels, 19).float()
    total, terms = segment_loss(perfect, labels, None, 0.5, 1.0, 1e-3)
    assert terms["ce"] < 1e-15 and terms["dice"] < 1e-15 and float(total) < 1e-15


def synthetic_case():
    seg = np.zeros((21, 21, 21), dtype=np.uint8)
    seg[:, :, 11:] = 7
    seg[:, 11:, :] += 1
    trees = {"airways": np.array([[2, 2, 2], [3, 2, 2], [4, 2, 2], [5, 2, 2]]) + 10,  # lo offset 10
             "arteries": np.array([[20, 25, 25], [21, 25, 25]]),
             "veins": np.array([[26, 15, 28]])}
    return LearnedCase("syn", np.zeros((1, 4, 4, 4), np.float32), np.array([10, 10, 10]), np.array([30, 30, 30]),
                       seg, trees)


def test_sampler_biases():
    case = synthetic_case()
    rng = np.random.default_rng(0)
    pts, labels = sample_points(case, 4000, {"airways": 1.0}, rng)
    vox = np.rint(to_index(pts, case.lo, case.hi)).astype(int)
    assert {tuple(v) for v in vox} <= {tuple(v) for v in case.trees["airways"]}
    assert np.all(labels == 0)  # airway voxels lie where the label is 0
    pts, labels = sample_points(case, 20000, {"airways": 0.15, "arteries": 0.15, "veins": 0.1}, rng)
    vox = np.rint(to_index(pts, case.lo, case.hi)).astype(int)
    for tree, share in (("airways", 0.15), ("arteries", 0.15), ("veins", 0.1)):
        hit = (vox[:, None, :] == case.trees[tree][None]).all(-1).any(1).mean()
        assert share <= hit < share + 0.01  # the uniform 60 % adds ~0.02-0.05 % on these few voxels
    uni = pts[int(0.4 * 20000):]
    assert np.all(np.abs(uni) <= 1) and np.abs(uni.mean(0)).max() < 0.02 and uni.std(0).min() > 0.55
    ijk = np.rint(to_index(pts, case.lo, case.hi) - case.lo).astype(int)
    assert np.array_equal(labels, case.segments[tuple(ijk.T)])  # nearest-voxel labels
    assert set(np.unique(labels)) == {0, 1, 7, 8}


def test_lung3d_layout_and_derived_lobes(tmp_path, phantom):
    case = tmp_path / "cases" / "lung3d_001"
    case.mkdir(parents=True)
    for ours, theirs in (("segments", "lungsegment"), ("airways", "airway"), ("arteries", "artery"),
                         ("veins", "vein")):
        io.write_image(getattr(phantom, ours), case / f"{theirs}.nii.gz")
    cfg = learned_preset("tiny")
    cfg.network = cfg.network.replace(channels=("airways", "arteries", "veins", "lobes"))  # Lung3D has no CT
    (loaded,) = load_cases(tmp_path / "cases", cfg)
    lobe_chan = loaded.volume[3:].argmax(0)  # one-hot lobes derived from the segments
    s = cfg.network.input_size
    axes = [np.rint(np.linspace(loaded.lo[a], loaded.hi[a], s)).astype(int) for a in range(3)]
    assert np.array_equal(lobe_chan, phantom.lobes.array[np.ix_(*axes)])
    with pytest.raises(InputError, match="has no ct volume"):
        load_cases(tmp_path / "cases", learned_preset("tiny"))


def test_checkpoint_round_trip_and_inference(trained, data_dir, unseen_phantom):
    result, path = trained
    tensors, meta = load_checkpoint(path)
    assert meta["epoch"] == 1 and meta["finished"] and meta["kind"] == "pulmonary-segments-impulse+"
    assert any(k.startswith("optim.") for k in tensors) and (path.parent / "tiny.json").exists()
    model = LearnedModel.from_checkpoint(path, torch.device("cpu"))
    assert state_digest(model.net) == result.report["digest"]
    ph = unseen_phantom
    res = segment_lungs(ph.lobes, ph.airways, arteries=ph.arteries, veins=ph.veins, ct=ph.ct, checkpoint=str(path))
    lab, lobes = res.labels.array, ph.lobes.array
    assert lab.shape == lobes.shape and np.all(lab[lobes == 0] == 0) and np.all(lab[lobes > 0] > 0)
    lobe_of = np.array([0] + [segment_lobe(v) for v in range(1, 19)])
    assert np.array_equal(lobe_of[lab], lobes)  # every voxel's segment is one of its own lobe
    idx = np.argwhere(lobes > 0)[::997]
    assert np.array_equal(res.field.labels_at(ph.lobes.index_to_world(idx)), lab[tuple(idx.T)])
    with pytest.raises(InputError, match="needs arteries"):
        segment_lungs(ph.lobes, ph.airways, veins=ph.veins, ct=ph.ct, checkpoint=str(path))


def test_mismatched_checkpoints_refused(trained, tmp_path):
    _, path = trained
    tensors, meta = load_checkpoint(path)
    bad_labels = dict(meta, labels={**meta["labels"], "18": "LLL S10b"})
    bad_arch = dict(meta, network={**meta["network"], "encoder_width": 8})
    for name, m, why in (("labels", bad_labels, "trained for another label set"),
                         ("arch", bad_arch, "weights do not match"),
                         ("kind", dict(meta, kind="surface-igr"), "'surface-igr' checkpoint")):
        save_checkpoint(tmp_path / f"{name}.safetensors", tensors, m)
        with pytest.raises(InputError, match=why) as err:
            LearnedModel.from_checkpoint(tmp_path / f"{name}.safetensors", torch.device("cpu"))
        assert "expected a Method B (ImPulSe+) checkpoint" in str(err.value)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(InputError, match="not an AnatomyINR training checkpoint"):
        LearnedModel.from_checkpoint(tmp_path / "plain.safetensors", torch.device("cpu"))


def test_resume_after_interruption_matches_uninterrupted(data_dir, tmp_path):
    cfg = learned_preset("tiny").replace(epochs=2)
    whole = train_segments_model(data_dir, tmp_path / "whole.safetensors", config=cfg, seed=5)

    def stop_after_first_epoch(event):
        if event.stage == "epoch" and event.metrics.get("epoch") == 1:
            raise Cancelled("interrupted")

    part = tmp_path / "part.safetensors"
    with pytest.raises(Cancelled):
        train_segments_model(data_dir, part, config=cfg, seed=5, progress=stop_after_first_epoch)
    assert load_checkpoint(part)[1]["epoch"] == 1
    resumed = train_segments_model(data_dir, part, config=cfg, seed=5)
    assert resumed.report["resumed"] and resumed.report["start_epoch"] == 1
    assert resumed.report["digest"] == whole.report["digest"]
    assert resumed.report["history"] == whole.report["history"]
    with pytest.raises(InputError, match="checkpoint of another configuration or seed"):
        train_segments_model(data_dir, part, config=cfg, seed=6)
