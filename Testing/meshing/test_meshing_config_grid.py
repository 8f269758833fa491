"""MeshingConfig validation and round trip; grids and the chunked field evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.meshing import FieldEvaluator, MeshingConfig, make_grid
from AnatomyINRLib.meshing.grid import check_memory, max_cell_diagonal


def test_config_round_trip_and_defaults():
    cfg = MeshingConfig(spacing_mm=0.25, method="dense", backend="skimage", level=-1.5)
    again = MeshingConfig.from_json(cfg.to_json())
    assert again == cfg
    MeshingConfig().validate()


@pytest.mark.parametrize(
    "change, name",
    [
        ({"spacing_mm": 0.0}, "spacing_mm"),
        ({"method": "octree"}, "method"),
        ({"backend": "pymcubes"}, "backend"),
        ({"normals": "random"}, "normals"),
        ({"level": float("nan")}, "level"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"band_factor": -1.0}, "band_factor"),
        ({"coarse_cells": 1}, "coarse_cells"),
        ({"padding_mm": -1.0}, "padding_mm"),
        ({"largest_component": "yes"}, "largest_component"),
        ({"max_memory_mb": 0}, "max_memory_mb"),
    ],
)
def test_config_errors_name_the_field(change, name):
    with pytest.raises(InputError, match=name):
        MeshingConfig().replace(**change)


def test_make_grid_covers_padded_bounds_symmetrically():
    bounds = np.array([[-3.0, 10.0, 5.0], [7.1, 12.0, 5.0]])
    grid = make_grid(bounds, 0.5, 1.0)
    lo = grid.index_to_world(np.zeros((1, 3)))[0]
    hi = grid.index_to_world(np.array([grid.shape], dtype=float) - 1)[0]
    assert np.all(lo <= bounds[0] - 1.0 + 1e-9) and np.all(hi >= bounds[1] + 1.0 - 1e-9)
    assert np.allclose((lo + hi) / 2, bounds.mean(axis=0))
    assert np.all(hi - lo < bounds[1] - bounds[0] + 2.0 + 0.5 + 1e-9)
    assert np.allclose(grid.spacing, 0.5) and grid.shape == (26, 9, 5)
    assert grid.array.strides == (0, 0, 0)                         # geometry only, no storage
    assert max_cell_diagonal(grid.ijk_to_ras) == pytest.approx(0.5 * np.sqrt(3))
    with pytest.raises(InputError, match="bounds"):
        make_grid(bounds[::-1], 0.5)


def test_memory_check_message():
    with pytest.raises(InputError, match="max_memory_mb=10"):
        check_memory(np.array([[0.0, 0, 0], [100, 100, 100]]), 0.5, 0.0, 1, 10)
    check_memory(np.array([[0.0, 0, 0], [10, 10, 10]]), 0.5, 0.0, 1, 10)


def test_field_evaluator_chunks_counts_and_checks():
    calls = []

    def field(p):
        calls.append(len(p))
        return p[:, 0] * 2.0

    grid = make_grid(np.array([[0.0, 0, 0], [1, 1, 1]]), 0.25, 0.0)
    ev = FieldEvaluator(field, chunk_size=40)
    out = ev.at_nodes(grid, np.arange(125))
    assert calls == [40, 40, 40, 5] and ev.n_evaluations == 125 and ev.n_outputs == 1
    assert np.allclose(out[:, 0], 2.0 * grid.voxel_centers()[:, 0])
    with pytest.raises(InputError, match="value"):
        FieldEvaluator(lambda p: np.zeros((len(p), 2)) if len(p) > 3 else np.zeros(len(p)), 4).at_points(np.zeros((7, 3)))
    with pytest.raises(InputError, match="shape"):
        FieldEvaluator(lambda p: np.zeros(len(p) + 1)).at_points(np.zeros((5, 3)))
    with pytest.raises(InputError, match="callable"):
        FieldEvaluator(3.0)
    stop = ProgressReporter(None, should_cancel=lambda: True)
    with pytest.raises(Cancelled):
        FieldEvaluator(field, 10, stop).at_points(np.zeros((30, 3)))
