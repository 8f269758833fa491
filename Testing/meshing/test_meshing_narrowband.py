"""Coarse-to-fine sampling equals dense sampling wherever marching cubes looks."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.types import ImageGrid
from AnatomyINRLib.meshing.grid import FieldEvaluator, geometry_grid, make_grid
from AnatomyINRLib.meshing.narrowband import (
    _upsample,
    choose_levels,
    dense_sample,
    level_shape,
    narrowband_sample,
)
from meshing_fields import ellipsoid, rotation, sphere, torus, union

CENTER = np.array([-7.1, 3.3, 18.9])


def _crossing_corners(values: np.ndarray) -> np.ndarray:
    """Nodes that are corners of a cell whose corners do not all share one sign."""
    inside = values < 0
    shape = tuple(n - 1 for n in inside.shape)
    corners = [inside[a:a + shape[0], b:b + shape[1], c:c + shape[2]] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    crossing = np.logical_or.reduce(corners) & ~np.logical_and.reduce(corners)
    out = np.zeros(inside.shape, dtype=bool)
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                out[a:a + shape[0], b:b + shape[1], c:c + shape[2]] |= crossing
    return out


def _compare(field, grid, **kwargs):
    dense = dense_sample(FieldEvaluator(field), grid).values[0]
    evaluator = FieldEvaluator(field)
    narrow = narrowband_sample(evaluator, grid, **kwargs)
    values = narrow.values[0]
    sign_errors = int(np.count_nonzero((values < 0) != (dense < 0)))
    crossing = _crossing_corners(dense)
    inexact = int(np.count_nonzero(values[crossing] != dense[crossing]))
    return sign_errors, inexact, narrow


OBLIQUE = geometry_grid((70, 61, 45), ImageGrid.make_affine(CENTER - [16.0, 14.0, 15.0], [0.45, 0.5, 0.7], rotation((10, -25, 40))))

FIELDS = {
    "sphere": sphere(CENTER, 9.0),
    "torus": torus(CENTER, 9.0, 2.5),
    "ellipsoid": ellipsoid(CENTER, (12.0, 7.0, 4.0), rotation()),
    "union": union(sphere(CENTER, 5.0), sphere(CENTER + [9.0, 0, 0], 3.0), torus(CENTER, 10.0, 1.2)),
}


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("oblique", [False, True])
def test_signs_everywhere_and_values_at_crossing_cells_match_dense(name, oblique):
    grid = OBLIQUE if oblique else make_grid(np.stack([CENTER - 13.0, CENTER + 13.0]), 0.4, 1.0)
    sign_errors, inexact, narrow = _compare(FIELDS[name], grid)
    assert narrow.levels >= 2
    assert sign_errors == 0 and inexact == 0
    assert narrow.n_evaluations < 0.35 * np.prod(grid.shape)


def test_too_thin_band_is_detected():
    # Below the Lipschitz bound the guarantee breaks: the comparison must notice.
    grid = make_grid(np.stack([CENTER - 10.0, CENTER + 10.0]), 0.4, 1.0)
    # adapt=False: with it, the verification sees the thin band and widens it (next tests).
    sign_errors, inexact, _ = _compare(FIELDS["torus"], grid, band_factor=0.4, adapt=False)
    assert sign_errors + inexact > 0


def test_steep_field_widens_the_band():
    # f = 3·SDF has |∇f| = 3: without adapting the band the result is wrong.
    steep = lambda p: 3.0 * FIELDS["torus"](p)
    grid = make_grid(np.stack([CENTER - 12.0, CENTER + 12.0]), 0.4, 1.0)
    errors_fixed = _compare(steep, grid, adapt=False)
    sign_errors, inexact, narrow = _compare(steep, grid, adapt=True)
    assert sum(errors_fixed[:2]) > 0
    assert sign_errors == 0 and inexact == 0
    assert 2.5 < narrow.gradient_bound <= 1.05 * 3.0 + 1e-9  # the estimate with its 5 % margin


def test_multi_output_band_covers_every_output():
    a, b = FIELDS["sphere"], FIELDS["torus"]
    both = lambda p: np.stack([a(p), b(p)], axis=1)
    grid = make_grid(np.stack([CENTER - 13.0, CENTER + 13.0]), 0.5, 1.0)
    narrow = narrowband_sample(FieldEvaluator(both), grid).values
    for k, f in enumerate((a, b)):
        dense = dense_sample(FieldEvaluator(f), grid).values[0]
        crossing = _crossing_corners(dense)
        assert np.array_equal(narrow[k][crossing], dense[crossing])
        assert np.array_equal(narrow[k] < 0, dense < 0)


def test_upsampling_is_trilinear():
    rng = np.random.default_rng(0)
    coarse = rng.normal(size=(1, 5, 4, 6))
    fine = _upsample(coarse, (9, 7, 11))
    assert np.array_equal(fine[:, ::2, ::2, ::2], coarse[:, :5, :4, :6])
    assert fine[0, 1, 2, 4] == pytest.approx(0.5 * (coarse[0, 0, 1, 2] + coarse[0, 1, 1, 2]))
    assert fine[0, 3, 3, 3] == pytest.approx(coarse[0, 1:3, 1:3, 1:3].mean())
    # A linear function is reproduced exactly.
    i, j, k = np.meshgrid(np.arange(5), np.arange(4), np.arange(6), indexing="ij")
    lin = (2.0 * i - 3.0 * j + 0.5 * k)[None]
    fi, fj, fk = np.meshgrid(np.arange(9) / 2, np.arange(7) / 2, np.arange(11) / 2, indexing="ij")
    assert np.allclose(_upsample(lin, (9, 7, 11))[0], 2.0 * fi - 3.0 * fj + 0.5 * fk)


def test_level_bookkeeping():
    assert level_shape((101, 50, 9), 2) == (26, 14, 3)
    assert choose_levels((129, 40, 40), 16, 8) == 3
    assert choose_levels((129, 40, 40), 16, 1) == 1
    assert choose_levels((20, 20, 20), 16, 8) == 0


def _floater_field():
    """A sphere SDF plus a steep Gaussian dip that makes a small blob ("floater") outside it.

    f = |x − c| − 8 − A·exp(−|x − q|² / 2s²), s = 0.6 mm, with q the centre of a
    coarsest-grid cell about 6 mm outside the sphere and A chosen so the blob has
    radius 1 mm: no coarse node sees it and |∇f| reaches ≈ 25 near it, while
    every coarse edge near the sphere gives the estimate L ≈ 1.
    """
    from AnatomyINRLib.meshing import MeshingConfig
    from AnatomyINRLib.meshing.narrowband import _coarse_grid

    base = sphere(CENTER, 8.0)
    config = MeshingConfig(spacing_mm=0.4, largest_component=False)
    grid = make_grid(np.stack([CENTER - 15.0, CENTER + 15.0]), config.spacing_mm, config.padding_mm)
    levels = choose_levels(grid.shape, config.coarse_cells, config.max_levels)
    coarse = _coarse_grid(grid, levels)
    # The coarse cell whose centre is nearest to 14 mm from the centre along +x.
    cell = np.round(coarse.world_to_index((CENTER + [14.0, 0.0, 0.0])[None])[0] - 0.5)
    q = coarse.index_to_world((cell + 0.5)[None])
    s, radius = 0.6, 1.0
    amplitude = float(base(q)[0]) / np.exp(-radius**2 / (2 * s**2))

    def field(p):
        return base(p) - amplitude * np.exp(-np.sum((p - q) ** 2, axis=1) / (2 * s**2))

    return field, config, levels


def test_floater_missed_by_the_gradient_estimate_is_found():
    from AnatomyINRLib.meshing import extract_surface

    field, config, levels = _floater_field()
    assert levels >= 2
    bounds = np.stack([CENTER - 15.0, CENTER + 15.0])
    dense = extract_surface(field, bounds, config.replace(method="dense"))
    narrow = extract_surface(field, bounds, config)
    # The dense mesh has the sphere and the floater; the narrow band mesh must be the same, bit for bit.
    from AnatomyINRLib.meshing.topology import face_components

    assert face_components(dense.mesh.faces, dense.mesh.n_vertices)[0] == 2
    assert narrow.mesh.n_faces == dense.mesh.n_faces
    np.testing.assert_array_equal(narrow.mesh.faces, dense.mesh.faces)
    np.testing.assert_array_equal(narrow.mesh.vertices, dense.mesh.vertices)
    assert narrow.gradient_bound > 10.0  # the estimate was raised by what the verification saw


def test_floater_values_match_dense_where_marching_cubes_looks():
    field, config, _ = _floater_field()
    grid = make_grid(np.stack([CENTER - 15.0, CENTER + 15.0]), config.spacing_mm, config.padding_mm)
    sign_errors, inexact, _ = _compare(field, grid)
    assert sign_errors == 0 and inexact == 0


def test_after_the_last_restart_the_rest_is_sampled_densely(monkeypatch):
    import AnatomyINRLib.meshing.narrowband as narrowband

    monkeypatch.setattr(narrowband, "_MAX_RESTARTS", 0)  # the floater's first pass fails: go dense at once
    field, config, _ = _floater_field()
    grid = make_grid(np.stack([CENTER - 15.0, CENTER + 15.0]), config.spacing_mm, config.padding_mm)
    dense = dense_sample(FieldEvaluator(field), grid).values
    evaluator = FieldEvaluator(field)
    narrow = narrowband_sample(evaluator, grid)
    assert narrow.levels == 0
    np.testing.assert_array_equal(narrow.values, dense)
    # Nodes evaluated by the failed pass are reused (only the coarse grid's overhang is evaluated twice).
    assert evaluator.n_evaluations < 1.05 * np.prod(grid.shape)
