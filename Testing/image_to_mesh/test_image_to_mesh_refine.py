"""Refinement of predicted meshes onto the image's edge (``_refine``): profile edge search on profiles
with known crossings, a sphere pulled onto a ball's boundary from either side, no edge → no change,
and the switch through predict_meshes and the CLI."""

import json

import numpy as np
import pytest

from AnatomyINRLib.cli import main
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import ImageGrid, TriangleMesh
from AnatomyINRLib.image_to_mesh import RefineConfig, predict_meshes
from AnatomyINRLib.image_to_mesh._refine import ImageSampler, edge_offsets, refine_to_edges
from AnatomyINRLib.image_to_mesh._template import icosphere
from AnatomyINRLib.meshing.self_intersection import count_self_intersections

from i2m_cases import blob_case

OFFSETS = np.arange(-3.0, 3.0001, 0.5)


def _ramp(inside: float, outside: float, edge: float, width: float = 1.0) -> np.ndarray:
    """A linear ramp from ``inside`` to ``outside`` centred on ``edge`` mm (its midpoint is there)."""
    t = np.clip((OFFSETS - edge) / width + 0.5, 0.0, 1.0)
    return inside + (outside - inside) * t


def test_edge_offsets_find_the_local_midpoint_crossing():
    profiles = np.stack([
        _ramp(400.0, 100.0, 1.0),     # blood → myocardium, edge 1 mm outside
        _ramp(400.0, -800.0, -0.75),  # blood → lung: its own midpoint (−200), not a fixed HU value
        np.full(OFFSETS.shape, 400.0),  # blood on both sides (a chamber's opening): no edge
        _ramp(400.0, 350.0, 0.0),     # 50 HU of contrast, below min_contrast
        _ramp(100.0, 400.0, 0.5),     # darker inside than outside: not the chamber's edge
    ])
    d, found = edge_offsets(profiles, OFFSETS, min_contrast=100.0)
    assert found.tolist() == [True, True, False, False, False]
    assert d[0] == pytest.approx(1.0, abs=1e-9) and d[1] == pytest.approx(-0.75, abs=1e-9)
    assert d[2] == 0.0 and d[3] == 0.0 and d[4] == 0.0


def test_edge_offsets_take_the_crossing_nearest_the_surface():
    # blood (400), a tissue gap (100) at s ∈ {−1, −0.5}, blood, tissue from s = 2: threshold 250; falling
    # crossings at −1.25 (between −1.5 and −1) and 1.75 (between 1.5 and 2): the nearer one, −1.25, wins
    outer = np.where(OFFSETS >= 2.0, 100.0, 400.0)
    gap = np.where((OFFSETS >= -1.0) & (OFFSETS <= -0.5), 100.0, outer)
    d, found = edge_offsets(np.stack([gap, outer]), OFFSETS, min_contrast=100.0)
    assert found.all()
    assert d[0] == pytest.approx(-1.25, abs=1e-9)
    assert d[1] == pytest.approx(1.75, abs=1e-9)  # without the gap: the outer edge


def _ball_image(radius: float, spacing=(1.0, 1.0, 1.0), direction=np.eye(3)) -> ImageGrid:
    """An image of a ball (400 HU) centred at RAS 0 in tissue (100 HU), partial volume from 4³ supersampling."""
    spacing = np.asarray(spacing)
    shape = tuple(int(np.ceil(40.0 / s)) + 1 for s in spacing)
    centre = (np.array(shape) - 1) / 2.0
    affine = ImageGrid.make_affine(-direction @ (centre * spacing), tuple(spacing), direction)
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    frac = np.zeros(shape)
    for a in sub:
        for b in sub:
            for c in sub:
                ijk = np.stack(np.meshgrid(*[np.arange(n) + o for n, o in zip(shape, (a, b, c))], indexing="ij"), -1)
                ras = ((ijk - centre) * spacing) @ direction.T
                frac += ((ras ** 2).sum(-1) <= radius * radius) / 64.0
    return ImageGrid(100.0 + 300.0 * frac, affine)


FRAMES = {"identity, 1 mm": ((1.0, 1.0, 1.0), np.eye(3)),
          "LPS, 0.8 × 0.8 × 1.5 mm": ((0.8, 0.8, 1.5), np.diag([-1.0, -1.0, 1.0])),
          "reflected, oblique": ((1.0, 1.0, 1.0), np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))}


@pytest.mark.parametrize("frame", sorted(FRAMES))
@pytest.mark.parametrize("start", [10.5, 13.5])
def test_sphere_moves_onto_the_ball_boundary_from_either_side(start, frame):
    image = _ball_image(12.0, *FRAMES[frame])
    verts, faces = icosphere(3, start)
    mesh, report = refine_to_edges(TriangleMesh(verts, faces), ImageSampler(image, 1.0), RefineConfig())
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert report["iterations"] == RefineConfig().iterations and report["edge_found_fraction"] == 1.0
    assert r.mean() == pytest.approx(12.0, abs=0.15)  # 1.5 mm off at the start
    assert r.std() < 0.05
    np.testing.assert_array_equal(mesh.faces, faces)
    assert count_self_intersections(mesh) == 0


def test_without_contrast_the_mesh_is_left_as_it_is():
    image = ImageGrid(np.full((24, 24, 24), 300.0), ImageGrid.make_affine(np.full(3, -11.5), (1.0, 1.0, 1.0), np.eye(3)))
    verts, faces = icosphere(2, 6.0)
    mesh, report = refine_to_edges(TriangleMesh(verts, faces), ImageSampler(image, 1.0), RefineConfig())
    assert report["iterations"] == 0 and report["edge_found_fraction"] == 0.0
    np.testing.assert_array_equal(mesh.vertices, verts)


def test_refine_switch_and_validation(tiny_model):
    image, _ = blob_case(7)
    off = predict_meshes(image, checkpoint=tiny_model, refine=RefineConfig(enabled=False))
    on = predict_meshes(image, checkpoint=tiny_model)
    assert all(s["refine"] is None for s in off.structures.values())
    for name, s in on.structures.items():
        assert s["refine"]["iterations"] > 0 and s["refine"]["edge_found_fraction"] > 0.5
        shift = np.linalg.norm(on.meshes[name].vertices - off.meshes[name].vertices, axis=1).mean()
        assert shift == pytest.approx(s["refine"]["mean_shift_mm"], abs=1e-3) and shift > 0.1
    assert on.report["refine"] == RefineConfig().to_dict() and off.report["refine"]["enabled"] is False
    with pytest.raises(InputError, match="refine: expected a RefineConfig"):
        predict_meshes(image, checkpoint=tiny_model, refine={"enabled": False})
    bad = [({"step_mm": 1.0, "search_mm": 1.0}, "step_mm: expected search_mm / step_mm to be a whole number"),
           ({"step_mm": 0.4, "search_mm": 3.0}, "step_mm: expected search_mm / step_mm to be a whole number"),
           ({"step_mm": 0.01, "search_mm": 3.0}, "step_mm: expected search_mm / step_mm to be a whole number"),
           ({"search_mm": 1000.0}, "search_mm: expected at most 20 mm"),
           ({"enabled": "no"}, "enabled: expected true or false"),
           ({"rate": 5.0}, "rate: expected a fraction in"),
           ({"iterations": 10 ** 9}, "iterations"),
           ({"min_contrast": 0.0}, "min_contrast")]
    for fields, message in bad:
        with pytest.raises(InputError, match=message):
            predict_meshes(image, checkpoint=tiny_model, refine=RefineConfig(**fields))


def test_cli_no_refine(tiny_model, tmp_path):
    image, _ = blob_case(7)
    from AnatomyINRLib import io

    io.write_image(image, tmp_path / "ct.nrrd")
    prefix = tmp_path / "case"
    assert main(["image-to-mesh", "predict", str(tmp_path / "ct.nrrd"), "--checkpoint", str(tiny_model),
                 "--output-prefix", str(prefix), "--no-refine"]) == 0
    report = json.loads((tmp_path / "case_report.json").read_text())
    assert all(s["refine"] is None for s in report["structures"].values())
    assert json.loads((tmp_path / "case_config.json").read_text())["refine"]["enabled"] is False


def test_a_move_that_would_cross_the_surface_is_held_back_where_it_would():
    from AnatomyINRLib.image_to_mesh._refine import _simple_move, ring_matrix, taubin
    from AnatomyINRLib.meshing.postprocess import vertex_normals

    verts, faces = icosphere(3, 10.0)
    n = vertex_normals(TriangleMesh(verts, faces))
    ring = ring_matrix(faces, len(verts))
    move = 0.2 * n
    patch = (ring @ (ring @ (np.arange(len(verts)) == 0).astype(float))) > 0  # vertex 0 and two rings around it
    move[patch] = -25.0 * n[0]  # pushed through the sphere and out at the antipode
    assert count_self_intersections(TriangleMesh(taubin(ring, verts + move), faces)) > 0
    out = _simple_move(verts, faces, ring, move, allowed=0)
    assert out is not None and count_self_intersections(TriangleMesh(out, faces)) == 0
    still, free = taubin(ring, verts), taubin(ring, verts + 0.2 * n)  # the Taubin step alone / the whole move
    antipode = float(verts[0] @ n[0]) * -1.0
    assert np.all(out @ n[0] > antipode - 0.5)  # nothing came out of the far side (expanded by 0.2 there)
    rings = patch & (np.arange(len(verts)) != 0)
    assert np.linalg.norm(out[rings] - still[rings], axis=1).max() < 2.0  # the patch's rings held back (of 25 mm)
    band = np.abs(verts @ verts[0]) < 0.5 * 100.0  # an equatorial band, far from vertex 0 and its antipode
    np.testing.assert_allclose(out[band], free[band], atol=1e-9)  # moved as asked
