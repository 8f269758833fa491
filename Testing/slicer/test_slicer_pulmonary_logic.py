"""The Logic of AnatomyINRPulmonarySegments outside Slicer.

Segment names, lobe and tree segments of a segmentation (TotalSegmentator names),
the resection list, worker files and arguments the ``pulmonary segments`` parser
accepts, then the real worker (``python -m AnatomyINRLib pulmonary segments``)
driven by the protocol code the Slicer Logic uses, on the library's small lung
phantom (2 mm, 150×125×125; a run takes a few seconds): 18 named segments whose
volumes add up to the lobes' volume, the resection and nodule rows, failure and cancel.
"""

import sys

import numpy as np
import pytest

from AnatomyINRLib.core.types import PointSet
from AnatomyINRPulmonarySegmentsLib import compute
from AnatomyINRSlicerLib.worker_protocol import (PULMONARY_SEGMENTS_STAGES, StagePlan, library_search_dir,
                                                 run_blocking, worker_command)


@pytest.fixture(scope="module")
def phantom():
    from AnatomyINRLib.phantoms.lung import make_lung_phantom

    return make_lung_phantom(1, "small")


def run(folder, inputs, options=compute.SegmentsOptions(preset="fast"), events=None, should_cancel=None):
    folder.mkdir(exist_ok=True)
    files = compute.WorkFiles(str(folder))
    written = compute.writeWorkerInputs(files, inputs)
    command = worker_command(sys.executable, "pulmonary", compute.workerArguments(files, written, inputs.resect, options))
    outcome = run_blocking(command, StagePlan(PULMONARY_SEGMENTS_STAGES), cwd=library_search_dir(),
                           should_cancel=should_cancel,
                           on_event=(lambda e, overall: events.append((e.stage, overall))) if events is not None else None)
    return files, outcome


def test_constants_match_the_library():
    from AnatomyINRLib.pulmonary import LOBE_NAMES, PRESETS, SEGMENT_NAMES
    from AnatomyINRLib.pulmonary.config import segment_label

    assert compute.SEGMENT_NAMES == tuple(SEGMENT_NAMES[v] for v in range(1, 19))
    assert compute.LOBE_NAMES == tuple(LOBE_NAMES[v] for v in range(1, 6)) and compute.PRESETS == tuple(PRESETS)
    for name in compute.SEGMENT_NAMES + ("rul_s1", "LLL-S7+8", "lul s1+2"):
        assert compute.segmentValue(name) == segment_label(name)
    assert compute.segmentValue("RUL S11") is None and compute.segmentValue("F-1") is None


def test_lobes_by_totalsegmentator_name_among_other_segments_by_terminology_or_by_order():
    names = ["liver", "lung_lower_lobe_left", "lung_upper_lobe_right", "heart", "lung_middle_lobe_right",
             "lung_upper_lobe_left", "lung_lower_lobe_right", "lung_trachea_bronchia"]
    assert compute.lobeValues(names) == [None, 5, 1, None, 2, 4, 3, None]
    terms = ["Right upper lobe of lung", "right middle lobe of lung", "Right lower lobe of lung",
             "upper lobe of left lung", "Lower lobe of left lung"]
    assert compute.lobeValues(terms) == [1, 2, 3, 4, 5]
    assert compute.lobeValues(["LLL", "LUL", "RLL", "RML", "RUL"]) == [5, 4, 3, 2, 1]
    assert compute.lobeValues(["Segment_1", "Segment_2", "Segment_3", "Segment_4", "Segment_5"]) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="lung_upper_lobe_right, lung_middle_lobe_right.*found: a, b"):
        compute.lobeValues(["a", "b"])
    with pytest.raises(ValueError, match="RUL is named by more than one segment"):
        compute.lobeValues(terms + ["lung_upper_lobe_right"])
    with pytest.raises(ValueError, match="found: lung_upper_lobe_right, liver"):
        compute.lobeValues(["lung_upper_lobe_right", "liver"])  # four lobes missing: never guessed


def test_tree_segments_by_name_or_the_only_segment():
    assert compute.treeSegmentNames(["lung_vessels", "lung_trachea_bronchia"], "airways") == ["lung_trachea_bronchia"]
    assert compute.treeSegmentNames(["Segment_1"], "airways") == ["Segment_1"]
    assert compute.treeSegmentNames(["liver", "Pulmonary Artery"], "arteries") == ["Pulmonary Artery"]
    with pytest.raises(ValueError, match="veins: the segmentation has 2 segments and none is named pulmonary_vein"):
        compute.treeSegmentNames(["liver", "heart"], "veins")
    assert compute.labelSegmentValues(["RUL S1", "trachea", "lll_s10"]) == [1, None, 18]
    with pytest.raises(ValueError, match="no segment is named like a pulmonary segment"):
        compute.labelSegmentValues(["a", "b"])


def test_point_names_resection_list():
    assert compute.nextMissingName([]) == "RUL S1"
    assert compute.nextMissingName(["RUL S1", "rul_s3"]) == "RUL S2"
    assert compute.nextMissingName(list(compute.SEGMENT_NAMES)) is None
    assert compute.pointLabelProblem(["RUL S1", "RUL S2"]) == "2 of 18 points placed; next: RUL S3"
    assert "'F-3' is not a segment name" in compute.pointLabelProblem(["RUL S1", "F-3"])
    assert compute.pointLabelProblem(["RUL S1", "rul s1"]) == "segment RUL S1 has more than one point"
    assert compute.pointLabelProblem(list(compute.SEGMENT_NAMES)) is None
    assert compute.parseResect(" rul_s2; RUL S1 ,, ") == ["RUL S1", "RUL S2"] and compute.parseResect("") == []
    with pytest.raises(ValueError, match="'RUL S9' is not a segment name"):
        compute.parseResect("RUL S1, RUL S9")
    with pytest.raises(ValueError, match="RUL S1 is listed twice"):
        compute.parseResect("RUL S1, rul_s1")


@pytest.mark.parametrize("mode", ["points", "checkpoint"])
def test_worker_arguments_are_what_the_cli_parses(tmp_path, phantom, mode):
    from AnatomyINRLib.cli import build_parser

    files = compute.WorkFiles(str(tmp_path))
    inputs = compute.SegmentsInputs(phantom.lobes, phantom.airways, veins=phantom.veins, resect=["RUL S1", "RML S4"],
                                    nodule=PointSet(np.array([[1.0, 2.0, 3.0]])))
    if mode == "points":
        inputs.segmentPoints = phantom.segment_points
    else:
        inputs.checkpoint = "model.safetensors"
    written = compute.writeWorkerInputs(files, inputs)
    options = compute.SegmentsOptions(preset="fine", device="auto", seed=3)
    parsed = build_parser().parse_args(worker_command("python", "pulmonary",
                                                      compute.workerArguments(files, written, inputs.resect, options))[3:])
    assert (parsed.pulmonary_command, parsed.lobes, parsed.airways, parsed.veins) == (
        "segments", files.image("lobes"), files.image("airways"), files.image("veins"))
    assert parsed.arteries is None and parsed.ct is None and parsed.segmental_labels is None
    assert (parsed.nodule, parsed.resect, parsed.preset, parsed.seed) == (files.nodulePoints, ["RUL S1", "RML S4"], "fine", 3)
    assert parsed.output == files.output and parsed.report == files.report and parsed.json_progress
    if mode == "points":
        from AnatomyINRLib.io.points import read_points

        assert parsed.segment_points == files.points and parsed.checkpoint is None and parsed.device == "cpu"
        back = read_points(files.points)
        np.testing.assert_allclose(back.points, phantom.segment_points.points)  # written in RAS
        assert list(back.labels) == list(phantom.segment_points.labels)
    else:
        assert parsed.checkpoint == "model.safetensors" and parsed.segment_points is None and parsed.device == "auto"


def test_identity_must_be_exactly_one(tmp_path, phantom):
    both = compute.SegmentsInputs(phantom.lobes, phantom.airways, segmentalLabels=phantom.airways_labeled,
                                  segmentPoints=phantom.segment_points)
    for inputs in (both, compute.SegmentsInputs(phantom.lobes, phantom.airways)):
        with pytest.raises(ValueError, match="exactly one of segment points, segmental labels or a checkpoint"):
            compute.writeWorkerInputs(compute.WorkFiles(str(tmp_path)), inputs)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="preset"):
        compute.SegmentsOptions(preset="quick").validate()


def interior_point(phantom, label: int) -> np.ndarray:
    """RAS of the ground-truth voxel of segment ``label`` farthest from every other label (mm)."""
    from scipy import ndimage

    mask = np.asarray(phantom.segments.array) == label
    depth = ndimage.distance_transform_edt(mask)
    return phantom.segments.index_to_world(np.array([np.unravel_index(np.argmax(depth), mask.shape)]))


def test_phantom_labels_through_the_worker(tmp_path, phantom):
    from AnatomyINRLib import io

    events = []
    nodule = PointSet(interior_point(phantom, 2))
    inputs = compute.SegmentsInputs(phantom.lobes, phantom.airways, segmentalLabels=phantom.airways_labeled,
                                    nodule=nodule, resect=["RUL S1", "RUL S2"])
    files, outcome = run(tmp_path / "run", inputs, events=events)
    assert outcome.ok, outcome.message + "\n".join(outcome.log_tail)
    assert {"territories", "sample"} <= {stage for stage, _ in events}
    overall = [value for _, value in events]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    result = compute.readWorkerResult(files)
    from AnatomyINRLib.io.segmentation import read_segment_names

    assert read_segment_names(result.segmentationFile) == {v: n for v, n in enumerate(compute.SEGMENT_NAMES, start=1)}
    labels = io.read_image(result.segmentationFile)
    np.testing.assert_array_equal(labels.array > 0, np.asarray(phantom.lobes.array) > 0)  # every lung voxel, once
    lung_ml = np.count_nonzero(np.asarray(phantom.lobes.array)) * float(np.prod(phantom.lobes.spacing)) / 1000.0
    rows = compute.tableRows(result.report)
    assert [row[0] for row in rows[:18]] == list(compute.SEGMENT_NAMES)
    assert sum(row[1] for row in rows[:18]) == pytest.approx(lung_ml, abs=0.01)
    assert sum(row[2] for row in rows[:18]) == pytest.approx(100.0, abs=0.01)
    byName = {row[0]: row for row in rows}
    assert byName["Both lungs"][1] == pytest.approx(lung_ml, abs=0.001)
    resected = byName["RUL S1"][1] + byName["RUL S2"][1]
    assert byName["Resected"][1] == pytest.approx(resected, abs=0.002) and byName["Resected"][3] == "RUL S1, RUL S2"
    assert byName["Remaining lung"][1] == pytest.approx(lung_ml - resected, abs=0.002)
    assert byName["Remaining lung"][2] == pytest.approx(100.0 * (lung_ml - resected) / lung_ml, abs=0.001)
    assert byName["RUL S1"][3] == "resect" and byName["RUL S2"][3] == "resect; holds the nodule"
    assert result.report["planning"]["nodule"]["segments"] == ["RUL S2"]
    margin = byName["Nodule margin (mm)"][1]
    assert margin == result.report["planning"]["nodule"]["margin_mm"] and margin > 2.0
    assert byName["Nodule"][3].startswith("in RUL S2 (100 %); margin ")
    text = compute.summaryText(result)
    assert "Method A" in text and "Resecting RUL S1, RUL S2" in text and "Nodule in RUL S2" in text


def test_failure_writes_no_output_and_says_why(tmp_path, phantom):
    empty = phantom.airways.with_array(np.zeros(phantom.airways.shape, np.uint8))
    inputs = compute.SegmentsInputs(phantom.lobes, empty, segmentalLabels=phantom.airways_labeled)
    files, outcome = run(tmp_path / "run", inputs)
    assert not outcome.ok and not outcome.cancelled and outcome.returncode == 2
    assert outcome.message == "The input was rejected: airways: the mask is empty"
    assert not (tmp_path / "run" / "segments.seg.nrrd").exists()


def test_cancel_stops_the_worker(tmp_path, phantom):
    seen = []
    inputs = compute.SegmentsInputs(phantom.lobes, phantom.airways, segmentalLabels=phantom.airways_labeled)
    files, outcome = run(tmp_path / "run", inputs, compute.SegmentsOptions(preset="fine"), seen,
                         should_cancel=lambda: any(stage == "territories" for stage, _ in seen))
    assert outcome.cancelled and not outcome.ok
    assert not (tmp_path / "run" / "segments.seg.nrrd").exists()
