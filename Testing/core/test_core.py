"""Core contracts: containers validate, configs round-trip, progress and devices behave."""

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from AnatomyINRLib.core import (
    Cancelled,
    ConfigBase,
    ImageGrid,
    InputError,
    PointSet,
    Progress,
    ProgressReporter,
    TriangleMesh,
    make_generator,
    resolve_device,
)


def test_pointset_rejects_bad_shapes_and_nan():
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        PointSet(np.zeros((4, 2)))
    with pytest.raises(InputError, match="NaN"):
        PointSet(np.array([[0, 0, np.nan]]))
    with pytest.raises(InputError, match="normals"):
        PointSet(np.zeros((3, 3)), normals=np.zeros((2, 3)))


def test_mesh_area_and_volume_of_a_unit_cube():
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
    f = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                  [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
    m = TriangleMesh(v * 2.0, f)
    assert m.area() == pytest.approx(24.0)
    assert m.signed_volume() == pytest.approx(8.0)
    with pytest.raises(InputError, match="indices"):
        TriangleMesh(v, f + 10)


def test_image_grid_oblique_index_world_round_trip():
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    grid = ImageGrid(np.zeros((4, 5, 6)), ImageGrid.make_affine([10, -20, 5], [0.5, 0.7, 2.0], direction))
    np.testing.assert_allclose(grid.spacing, [0.5, 0.7, 2.0])
    np.testing.assert_allclose(grid.direction, direction)
    ijk = np.array([[1.0, 2.0, 3.0], [3.5, 0.0, 1.0]])
    np.testing.assert_allclose(grid.world_to_index(grid.index_to_world(ijk)), ijk)
    np.testing.assert_allclose(grid.index_to_world([[1, 0, 0]])[0], [10 + 0.5 * c, -20 + 0.5 * s, 5])
    assert grid.voxel_centers().shape == (120, 3)
    with pytest.raises(InputError, match="singular"):
        ImageGrid(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]))


@dataclass
class _Inner(ConfigBase):
    a: int = 1
    shape: tuple = (1, 2)


@dataclass
class _Outer(ConfigBase):
    name: str = "x"
    inner: _Inner = field(default_factory=_Inner)


def test_config_json_round_trip_and_unknown_keys():
    cfg = _Outer(name="y", inner=_Inner(a=3, shape=(4, 5)))
    back = _Outer.from_json(cfg.to_json())
    assert back == cfg and isinstance(back.inner.shape, tuple)
    assert json.loads(cfg.to_json())["inner"]["a"] == 3
    with pytest.raises(InputError, match="unknown key"):
        _Outer.from_dict({"inner": {"b": 1}})
    with pytest.raises(InputError, match="invalid JSON"):
        _Outer.from_json("{")


def test_progress_reporter_and_cancellation():
    events = []
    rep = ProgressReporter(events.append)
    rep.report("fit", 1.7, "step", loss=float("nan"))
    assert events[0].fraction == 1.0
    assert json.loads(events[0].to_json())["metrics"]["loss"] is None  # valid JSON even for NaN
    with pytest.raises(Cancelled):
        ProgressReporter(None, should_cancel=lambda: True).report("fit", 0.1)
    assert ProgressReporter.wrap(rep) is rep
    assert isinstance(Progress("a", 0.5), Progress)


def test_devices_and_generators():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="device"):
        resolve_device("tpu")
    import torch

    a = torch.rand(3, generator=make_generator(5))
    b = torch.rand(3, generator=make_generator(5))
    assert torch.equal(a, b)


def test_wrap_keeps_a_reporter_and_adds_should_cancel():
    from AnatomyINRLib.core.errors import Cancelled
    from AnatomyINRLib.core.progress import ProgressReporter

    seen = []
    inner = ProgressReporter(seen.append)
    assert ProgressReporter.wrap(inner) is inner
    stop = {"now": False}
    outer = ProgressReporter.wrap(inner, lambda: stop["now"])
    outer.report("fit", 0.5, "half", loss=1.0)
    assert [(e.stage, e.fraction, e.metrics) for e in seen] == [("fit", 0.5, {"loss": 1.0})]
    stop["now"] = True
    with pytest.raises(Cancelled):
        outer.report("fit", 0.6)
    assert len(seen) == 2  # the event is delivered, then cancellation is honoured


@pytest.mark.parametrize("name", ["cuda", "cuda:7", "mps", "tpu", "cuda:x", ""])
def test_resolve_device_rejects_devices_this_machine_lacks(name):
    import torch

    from AnatomyINRLib.core.device import available_devices

    if name in available_devices():
        assert resolve_device(name) == torch.device(name)
        return
    with pytest.raises(InputError) as exc:
        resolve_device(name)
    message = str(exc.value)
    assert message.startswith("device: ") and repr(name) in message
    assert message.endswith("available: " + ", ".join(available_devices()))


def test_available_devices_all_resolve():
    from AnatomyINRLib.core.device import available_devices

    names = available_devices()
    assert names[:2] == ["auto", "cpu"]
    assert [resolve_device(n).type for n in names[1:]] == [n.split(":")[0] for n in names[1:]]
