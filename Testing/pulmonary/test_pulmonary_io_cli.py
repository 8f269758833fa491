"""The .seg.nrrd writer and the ``anatomy-inr pulmonary`` commands (exit codes, files, no partial output)."""

import hashlib
import json

import numpy as np
import pytest

from AnatomyINRLib import io
from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import InputError, OutputError
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.io.segmentation import read_segment_names, segmentation_header, write_segmentation
from AnatomyINRLib.pulmonary import SEGMENTS

PHANTOM_FILES = ["airways.nrrd", "airways_labeled.nrrd", "arteries.nrrd", "arteries_labeled.nrrd", "ct.nrrd",
                 "lobes.nrrd", "phantom.config.json", "segment_points.mrk.json", "segments.nrrd", "veins.nrrd"]


def test_seg_nrrd_round_trip(tmp_path):
    arr = np.zeros((6, 5, 4), dtype=np.uint8)
    arr[1:3, 2:4, 0:2] = 1
    arr[4, 0, 3] = 3
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    img = ImageGrid(arr, ImageGrid.make_affine((10.0, -5.0, 2.0), (0.5, 0.7, 1.2), rot))
    segs = {1: ("RUL S1", (1.0, 0.0, 0.0)), 2: ("RUL S2", (0.0, 1.0, 0.0)), 3: ("RUL S3", (0.0, 0.0, 1.0))}
    path = tmp_path / "s.seg.nrrd"
    write_segmentation(img, path, segs)
    back = io.read_image(path)
    assert np.array_equal(back.array, arr) and np.allclose(back.ijk_to_ras, img.ijk_to_ras)
    assert read_segment_names(path) == {1: "RUL S1", 2: "RUL S2", 3: "RUL S3"}
    head = segmentation_header(arr, segs)
    assert head["Segment0_Extent"] == "1 2 2 3 0 1" and head["Segment2_Extent"] == "4 4 0 0 3 3"
    assert head["Segment1_Extent"] == "0 -1 0 -1 0 -1" and head["Segment2_LabelValue"] == "3"
    assert head["Segmentation_MasterRepresentation"] == "Binary labelmap"
    text = path.read_bytes()[:4000].decode("latin-1")
    assert "Segment0_Name:=RUL S1" in text and "Segment1_Color:=0 1 0" in text


def test_seg_nrrd_refusals(tmp_path):
    img = ImageGrid(np.full((2, 2, 2), 4, np.uint8), np.eye(4))
    with pytest.raises(InputError, match=r"label value\(s\) \[4\]"):
        write_segmentation(img, tmp_path / "a.seg.nrrd", {1: ("x", (0, 0, 0))})
    with pytest.raises(OutputError, match="must end in .seg.nrrd"):
        write_segmentation(img, tmp_path / "a.nrrd", {4: ("x", (0, 0, 0))})
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pulm") / "ph"
    assert main(["pulmonary", "phantom", "--seed", "5", "--size", "small", "--output-dir", str(out)]) == 0
    return out


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_phantom_files(phantom_dir):
    assert sorted(p.name for p in phantom_dir.iterdir()) == PHANTOM_FILES
    pts = io.read_points(phantom_dir / "segment_points.mrk.json")
    assert pts.labels == [SEGMENTS[v][0] for v in range(1, 19)]
    assert json.loads((phantom_dir / "phantom.config.json").read_text())["seed"] == 5
    assert sorted(np.unique(io.read_image(phantom_dir / "segments.nrrd").array)) == list(range(19))


def test_segments_and_evaluate(phantom_dir, tmp_path, capsys):
    from AnatomyINRLib.core.device import configure_threads

    configure_threads(1)  # flush-to-zero on, as after a fit in the same process (scipy KD-trees crash then)
    d = phantom_dir
    before = digest(d)
    out, rep = tmp_path / "seg.seg.nrrd", tmp_path / "rep.json"
    code = main(["pulmonary", "segments", "--lobes", str(d / "lobes.nrrd"), "--airways", str(d / "airways.nrrd"),
                 "--ct", str(d / "ct.nrrd"), "--segmental-labels", str(d / "airways_labeled.nrrd"),
                 "--output", str(out), "--nodule", str(d / "segment_points.mrk.json"), "--resect", "LUL S4", "LUL_S5",
                 "--report", str(rep)])
    assert code == 0 and digest(d) == before
    assert read_segment_names(out) == {v: SEGMENTS[v][0] for v in SEGMENTS}
    report = json.loads(rep.read_text())
    assert report["planning"]["resection"]["segments"] == ["LUL S4", "LUL S5"]
    assert 0 < report["planning"]["resection"]["remaining_percent"] < 100
    assert len(report["planning"]["nodule"]["segments"]) == 18  # one point in each segment
    assert json.loads((tmp_path / "seg.config.json").read_text())["config"]["smoothing_mm"] == 3.0
    ev = tmp_path / "ev.json"
    assert main(["pulmonary", "evaluate", "--prediction", str(out), "--reference", str(d / "segments.nrrd"),
                 "--bronchi", str(d / "airways_labeled.nrrd"), "--arteries", str(d / "arteries_labeled.nrrd"),
                 "--nsd-tolerance", "2", "--report", str(ev)]) == 0
    metrics = json.loads(ev.read_text())
    assert {"dice", "nsd", "NIB", "IDB", "NIA", "IDA", "per_segment"} <= set(metrics)
    assert metrics["dice"] > 0.85 and metrics["NIB"] == 0 and len(metrics["per_segment"]) == 18
    assert "dice=" in capsys.readouterr().out


def test_labelmap_output_matches_seg_nrrd(phantom_dir, tmp_path):
    d = phantom_dir
    out, bronchi = tmp_path / "seg.nii.gz", tmp_path / "bronchi.seg.nrrd"
    assert main(["pulmonary", "segments", "--lobes", str(d / "lobes.nrrd"), "--airways", str(d / "airways.nrrd"),
                 "--segment-points", str(d / "segment_points.mrk.json"), "--output", str(out), "--preset", "fast",
                 "--bronchi-output", str(bronchi)]) == 0
    labels = io.read_image(out)
    assert set(np.unique(labels.array)) == set(range(19))
    # the bronchi propagated from the 18 points: airway voxels only, named, and the phantom's own labels
    got, truth = io.read_image(bronchi), io.read_image(d / "airways_labeled.nrrd")
    assert read_segment_names(bronchi) == {v: SEGMENTS[v][0] for v in SEGMENTS}
    airway = io.read_image(d / "airways.nrrd").array > 0
    assert np.allclose(got.ijk_to_ras, labels.ijk_to_ras) and not np.any(got.array[~airway])
    both = (got.array > 0) & (truth.array > 0)
    assert set(np.unique(got.array)) == set(range(19))
    # measured: 99.98 % of the true segmental voxels labelled, all alike; 5 % of the labelled lie just upstream
    assert both.sum() > 0.995 * (truth.array > 0).sum() and np.mean(got.array[both] == truth.array[both]) > 0.995
    assert ((got.array > 0) & (truth.array == 0)).sum() < 0.1 * (got.array > 0).sum()


def test_bronchi_output_refusals(phantom_dir, tmp_path, capsys):
    d = phantom_dir
    base = ["pulmonary", "segments", "--lobes", str(d / "lobes.nrrd"), "--airways", str(d / "airways.nrrd"),
            "--segment-points", str(d / "segment_points.mrk.json"), "--output", str(tmp_path / "s.nrrd")]
    assert main(base + ["--bronchi-output", str(tmp_path / "b.vtp")]) == 3
    assert "--bronchi-output" in capsys.readouterr().err
    assert main(base + ["--bronchi-output", str(tmp_path / "s.nrrd")]) != 0
    assert "--bronchi-output" in capsys.readouterr().err
    assert main(base + ["--bronchi-output", str(d / "airways.nrrd")]) != 0
    assert "is the input --airways" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_bad_input_writes_nothing(phantom_dir, tmp_path, capsys):
    d = phantom_dir
    lobes = io.read_image(d / "lobes.nrrd")
    small = lobes.with_array(lobes.array[:-2].copy())
    io.write_image(ImageGrid(small.array, small.ijk_to_ras), tmp_path / "cropped.nrrd")
    base = ["pulmonary", "segments", "--lobes", str(d / "lobes.nrrd"), "--segmental-labels",
            str(d / "airways_labeled.nrrd")]
    out = tmp_path / "o.nrrd"
    code = main(base + ["--airways", str(tmp_path / "cropped.nrrd"), "--output", str(out), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "airways and lobes are on different grids" in err and "size" in err
    code = main(base + ["--airways", str(d / "airways.nrrd"), "--output", str(tmp_path / "o.vtp")])
    err = capsys.readouterr().err
    assert code == 3 and "unknown output type .vtp" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cropped.nrrd"]


COLLISIONS = [
    (["segments", "--lobes", "{d}/lobes.nrrd", "--airways", "{d}/airways.nrrd", "--segmental-labels",
      "{d}/airways_labeled.nrrd", "--output", "{d}/lobes.nrrd"], "--output '{d}/lobes.nrrd' is the input --lobes"),
    (["segments", "--lobes", "{d}/lobes.nrrd", "--airways", "{d}/airways.nrrd", "--segment-points",
      "{d}/segment_points.mrk.json", "--output", "{t}/s.nrrd", "--report", "{d}/segment_points.mrk.json"],
     "is the input --segment-points"),
    (["segments", "--lobes", "{d}/lobes.nrrd", "--airways", "{d}/airways.nrrd", "--segmental-labels",
      "{d}/airways_labeled.nrrd", "--output", "{t}/s.seg.nrrd", "--report", "{t}/s.config.json"],
     "--report '{t}/s.config.json' and config file of --output"),
    (["evaluate", "--prediction", "{d}/segments.nrrd", "--reference", "{d}/lobes.nrrd", "--report",
      "{d}/lobes.nrrd"], "is the input --reference"),
    (["train", "{d}", "--output", "{t}/b.safetensors", "--report", "{t}/b.json"],
     "--report '{t}/b.json' and sidecar of --output"),
    (["train", "{t}", "--config", "{d}/phantom.config.json", "--output", "{t}/b.safetensors", "--report",
      "{d}/phantom.config.json"], "is the input --config"),
]


@pytest.mark.parametrize("argv, message", COLLISIONS, ids=[c[0][0] + " " + c[1].split()[-1] for c in COLLISIONS])
def test_an_output_that_is_an_input_or_another_output_is_refused_before_any_work(phantom_dir, tmp_path, capsys,
                                                                                   argv, message):
    d, t = str(phantom_dir), str(tmp_path)
    before = digest(phantom_dir)
    assert main(["pulmonary"] + [a.format(d=d, t=t) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(d=d, t=t) in err, err
    assert digest(phantom_dir) == before and not list(tmp_path.iterdir())
