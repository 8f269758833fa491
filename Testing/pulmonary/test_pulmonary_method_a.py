"""Method A on an unseen phantom: accuracy, the bronchus guarantee, the field, progress and cancel."""

import numpy as np
from scipy import ndimage
import pytest

from AnatomyINRLib.core.errors import Cancelled
from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.metrics.segments import evaluate_labelmaps
from AnatomyINRLib.pulmonary import SEGMENT_NAMES, TerritoryConfig, segment_lungs


@pytest.fixture(scope="module")
def from_labels(unseen_phantom):
    events = []
    result = segment_lungs(unseen_phantom.lobes, unseen_phantom.airways,
                           segmental_labels=unseen_phantom.airways_labeled, progress=events.append)
    return result, events


def test_accuracy_from_labelled_airways(unseen_phantom, from_labels):
    result, _ = from_labels
    m = evaluate_labelmaps(result.labels, unseen_phantom.segments, names=SEGMENT_NAMES, bronchi=unseen_phantom.airways_labeled,
                          arteries=unseen_phantom.arteries_labeled, nsd_tolerance_mm=2.0)
    assert m["dice"] >= 0.9
    assert min(e["dice"] for e in m["per_segment"].values()) > 0.65  # the smallest segment (LUL S5, 62 ml) is hardest
    assert m["NIB"] == 0 and m["IDB"] == 0.0


def test_labelled_bronchi_keep_their_label(unseen_phantom, from_labels):
    result, _ = from_labels
    bron = unseen_phantom.airways_labeled.array
    assert np.array_equal(result.labels.array[bron > 0], bron[bron > 0])
    lobe_of = np.array([0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5])
    assert np.array_equal(lobe_of[result.labels.array], unseen_phantom.lobes.array)


def test_progress_stages(from_labels):
    _, events = from_labels
    stages = [e.stage for e in events]
    assert stages.index("territories") < stages.index("field") < stages.index("sample")
    assert events[-1].fraction == 1.0


def test_accuracy_from_one_point_per_segment(unseen_phantom):
    result = segment_lungs(unseen_phantom.lobes, unseen_phantom.airways, segment_points=unseen_phantom.segment_points)
    m = evaluate_labelmaps(result.labels, unseen_phantom.segments, names=SEGMENT_NAMES)
    assert m["dice"] >= 0.9
    # the propagated labels agree with the phantom's segmental subtrees on nearly every voxel
    ref, got = unseen_phantom.airways_labeled.array, result.airways_labeled.array
    assert np.mean(got[ref > 0] == ref[ref > 0]) > 0.95
    assert result.report["identity"]["source"] == "segment_points"


def test_smoothing_makes_boundaries_smoother(unseen_phantom, from_labels):
    smooth, _ = from_labels
    raw = segment_lungs(unseen_phantom.lobes, unseen_phantom.airways, segmental_labels=unseen_phantom.airways_labeled,
                        config=TerritoryConfig(smoothing_mm=0.0))

    def interface_faces(a):
        return sum(int(np.count_nonzero((np.take(a, range(a.shape[ax] - 1), ax) != np.take(a, range(1, a.shape[ax]), ax))
                                        & (np.take(a, range(a.shape[ax] - 1), ax) > 0)
                                        & (np.take(a, range(1, a.shape[ax]), ax) > 0))) for ax in range(3))

    # measured 0.95 on this phantom: the staircase of the 2 mm territories is partly smoothed away
    assert interface_faces(smooth.labels.array) < 0.97 * interface_faces(raw.labels.array)


def test_field_samples_any_geometry(unseen_phantom, from_labels):
    result, _ = from_labels
    # an oblique 1.5 mm grid rotated 20 degrees about S, covering the right lung
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    ref = ImageGrid(np.zeros((60, 80, 90), np.uint8), ImageGrid.make_affine((40, -60, -70), (1.5, 1.5, 1.5), rot))
    fine = result.field.sample(ref, chunk_voxels=50_000).array
    centres = ref.index_to_world(np.argwhere(np.ones(ref.shape, bool)))
    ijk = np.rint(result.labels.world_to_index(centres)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(result.labels.shape)), axis=1)
    coarse = np.zeros(len(centres), np.uint8)
    coarse[inside] = result.labels.array[tuple(ijk[inside].T)]
    lung = coarse.reshape(ref.shape) > 0
    assert lung.sum() > 50_000
    assert np.mean(fine[lung] == coarse.reshape(ref.shape)[lung]) > 0.95
    assert np.array_equal(result.field.labels_at(centres[:1000]), fine.reshape(-1)[:1000])


def test_cancel(unseen_phantom):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        segment_lungs(unseen_phantom.lobes, unseen_phantom.airways, segmental_labels=unseen_phantom.airways_labeled,
                      should_cancel=stop)


def test_point_mode_reports_each_lobe_fit_and_cancels_between_them(unseen_phantom):
    """The joint tube fits (about a second per branching at 1 mm) each report progress first; a cancel
    asked by then stops the run before the second fit runs."""
    events = []

    def record(event):
        events.append(event)

    def stop():
        return sum("fitting the segmental bronchi" in e.message for e in events) >= 2

    with pytest.raises(Cancelled):
        segment_lungs(unseen_phantom.lobes, unseen_phantom.airways, segment_points=unseen_phantom.segment_points,
                      progress=record, should_cancel=stop)
    fits = [e for e in events if "fitting the segmental bronchi" in e.message]
    assert [e.stage for e in fits] == ["propagate", "propagate"]
    assert fits[0].fraction < fits[1].fraction < 1.0
    assert not any(e.stage in ("territories", "field", "sample") for e in events)


def test_points_on_an_airway_mask_with_a_gap(unseen_phantom):
    """A segmentation gap in the bronchus intermedius cuts the middle and lower lobe airways off the trachea."""
    ph = unseen_phantom
    airways = ph.airways.array.copy()
    ras = ph.lobes.index_to_world(np.argwhere(airways > 0))
    gap = (np.abs(ras[:, 2] - 11.0) < 2.0) & (ras[:, 0] > 24) & (ras[:, 0] < 45) & (np.abs(ras[:, 1] - 3) < 11)
    airways[tuple(np.argwhere(airways > 0)[gap].T)] = 0
    comp, _ = ndimage.label(airways > 0, np.ones((3, 3, 3)))
    trachea = comp[tuple(np.rint(ph.lobes.world_to_index([[0.0, 10.0, 110.0]])[0]).astype(int))]
    lower = (ph.airways_labeled.array >= 4) & (ph.airways_labeled.array <= 10)
    assert trachea > 0 and not np.any(comp[lower] == trachea)
    result = segment_lungs(ph.lobes, ph.airways.with_array(airways), segment_points=ph.segment_points)
    m = evaluate_labelmaps(result.labels, ph.segments, names=SEGMENT_NAMES)
    assert m["dice"] >= 0.9
    assert min(m["per_segment"][name]["dice"] for name in ("RML S4", "RML S5", "RLL S6", "RLL S8", "RLL S10")) > 0.85


def test_arteries_as_extra_seeds(unseen_phantom):
    ph = unseen_phantom
    cfg = TerritoryConfig(vein_cost=5.0, use_arteries=True)
    result = segment_lungs(ph.lobes, ph.airways, segmental_labels=ph.airways_labeled, veins=ph.veins,
                           arteries=ph.arteries, config=cfg)
    assert result.report["veins_used"] and result.report["artery_seed_voxels"] > 1000
    assert evaluate_labelmaps(result.labels, ph.segments, names=SEGMENT_NAMES)["dice"] >= 0.9
