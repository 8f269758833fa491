"""Masks and distance volumes on oblique reference grids."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyINRLib.core.errors import Cancelled, InputError
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.meshing import (
    MeshingConfig,
    extract_surface,
    labelmap_from_field,
    make_grid,
    sdf_volume,
    voxelize_mesh,
)
from meshing_fields import Counted, box_faces, ellipsoid, rotation, sphere

CENTER = np.array([31.0, -12.5, 40.2])
# Oblique, anisotropic, left-handed (det < 0, like many LPS-derived volumes).
DIRECTION = rotation((15.0, -30.0, 65.0)) @ np.diag([1.0, -1.0, 1.0])
SHAPE, SPACING = (64, 58, 36), np.array([0.45, 0.5, 0.7])
REFERENCE = ImageGrid(
    np.zeros(SHAPE, dtype=np.int16),
    ImageGrid.make_affine(CENTER - DIRECTION @ (SPACING * (np.array(SHAPE) - 1) / 2), SPACING, DIRECTION),
)
FIELD = ellipsoid(CENTER, (11.0, 7.0, 5.0), rotation())


@pytest.mark.parametrize("method", ["narrowband", "dense"])
def test_labelmap_matches_analytic_inside_test_at_voxel_centres(method):
    counted = Counted(FIELD)
    out = labelmap_from_field(counted, REFERENCE, label=7, config=MeshingConfig(method=method))
    truth = FIELD(REFERENCE.voxel_centers()).reshape(REFERENCE.shape) < 0
    assert out.array.dtype == np.uint8 and out.shape == REFERENCE.shape
    assert np.array_equal(out.ijk_to_ras, REFERENCE.ijk_to_ras)
    assert set(np.unique(out.array)) == {0, 7}
    assert np.array_equal(out.array == 7, truth)
    assert truth.sum() > 5000
    if method == "narrowband":
        assert counted.n < 0.3 * truth.size
    else:
        assert counted.n == truth.size


def test_labelmap_arguments_are_checked():
    with pytest.raises(InputError, match="label"):
        labelmap_from_field(FIELD, REFERENCE, label=300)
    with pytest.raises(InputError, match="reference"):
        labelmap_from_field(FIELD, np.zeros((4, 4, 4)))
    with pytest.raises(Cancelled):
        labelmap_from_field(FIELD, REFERENCE, should_cancel=lambda: True)


def test_sdf_volume_is_the_field_at_voxel_centres():
    out = sdf_volume(FIELD, REFERENCE)
    assert out.array.dtype == np.float32 and out.shape == REFERENCE.shape
    expected = FIELD(REFERENCE.voxel_centers()).reshape(REFERENCE.shape).astype(np.float32)
    assert np.array_equal(out.array, expected)
    grid = make_grid(np.stack([CENTER - 12.0, CENTER + 12.0]), 0.5, 0.0)
    narrow = sdf_volume(FIELD, grid, method="narrowband")
    exact = FIELD(grid.voxel_centers()).reshape(grid.shape)
    assert np.array_equal(narrow.array < 0, exact < 0)
    near = np.abs(exact) < 0.25
    assert np.array_equal(narrow.array[near], exact[near].astype(np.float32))


def test_voxelize_mesh_on_oblique_grid():
    field = sphere(CENTER, 9.0)
    mesh = extract_surface(field, np.stack([CENTER - 9.0, CENTER + 9.0]), MeshingConfig(spacing_mm=0.4)).mesh
    out = voxelize_mesh(mesh, REFERENCE)
    f = field(REFERENCE.voxel_centers()).reshape(REFERENCE.shape)
    wrong = (out.array == 1) != (f < 0)
    assert out.array.dtype == np.uint8 and (f < 0).sum() > 10000
    # Only voxels closer to the surface than the mesh's chordal error may differ.
    assert wrong.sum() < 50 and (not wrong.any() or np.abs(f[wrong]).max() < 0.02)


def test_voxelize_mesh_needs_a_closed_mesh():
    v, faces = box_faces()
    with pytest.raises(InputError, match="not closed"):
        voxelize_mesh(TriangleMesh(v, faces[:-2]), REFERENCE)
    grid = make_grid(np.array([[0.0, 0, 0], [1, 1, 1]]), 0.25, 0.25)
    inside = voxelize_mesh(TriangleMesh(v, faces[:, ::-1]), grid)      # winding does not matter
    centres = grid.voxel_centers().reshape(grid.shape + (3,))
    strict = np.all((centres > 0.01) & (centres < 0.99), axis=3)
    outside = np.any((centres < -0.01) | (centres > 1.01), axis=3)
    assert np.all(inside.array[strict] == 1) and np.all(inside.array[outside] == 0)
