"""Slicer-free helpers of the shared layer: VTK ⇄ core types, requirements, progress text."""

import re
from pathlib import Path

import numpy as np
import pytest
import vtk

from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRSlicerLib import dependencies
from AnatomyINRSlicerLib.progress import formatMetrics, progressText
from AnatomyINRSlicerLib.vtk_convert import (
    arrayFromMatrix,
    ijkFromKji,
    kjiFromIjk,
    matrixFromArray,
    meshFromPolyData,
    polyDataFromMesh,
    transformPoints,
)
from AnatomyINRSlicerLib.worker_protocol import ProgressEvent

REPO = Path(__file__).resolve().parents[2]


def tetrahedron():
    vertices = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], dtype=np.float64) + [5.0, -3.0, 2.0]
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # outward, counter-clockwise
    return TriangleMesh(vertices, faces, {"thickness": np.arange(4.0), "normals": np.ones((4, 3))})


def test_mesh_polydata_round_trip_keeps_geometry_order_and_point_data():
    mesh = tetrahedron()
    polydata = polyDataFromMesh(mesh)
    assert (polydata.GetNumberOfPoints(), polydata.GetNumberOfPolys()) == (4, 4)
    back = meshFromPolyData(polydata)
    np.testing.assert_array_equal(back.vertices, mesh.vertices)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.point_data["thickness"], mesh.point_data["thickness"])
    assert back.point_data["normals"].shape == (4, 3)
    assert back.signed_volume() == pytest.approx(1000.0 / 6.0)  # orientation survives


def test_polydata_from_mesh_does_not_share_memory():
    mesh = tetrahedron()
    polydata = polyDataFromMesh(mesh)
    mesh.vertices[0, 0] = 1e6
    assert polydata.GetPoint(0)[0] == pytest.approx(5.0)


def test_quads_are_triangulated():
    cube = vtk.vtkCubeSource()
    cube.SetXLength(2.0)
    cube.Update()
    mesh = meshFromPolyData(cube.GetOutput())
    assert mesh.n_faces == 12
    assert mesh.area() == pytest.approx(2 * (2 * 1) * 2 + 2 * (1 * 1))


def test_empty_polydata_is_refused():
    with pytest.raises(ValueError, match="empty"):
        meshFromPolyData(vtk.vtkPolyData())


def test_matrix_round_trip_and_transform():
    matrix = np.array([[0.0, -2.0, 0.0, 5.0], [1.5, 0.0, 0.0, -1.0], [0.0, 0.0, 3.0, 2.0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(arrayFromMatrix(matrixFromArray(matrix)), matrix)
    np.testing.assert_allclose(transformPoints([[1.0, 1.0, 1.0]], matrix), [[3.0, 0.5, 5.0]])
    with pytest.raises(ValueError):
        matrixFromArray(np.eye(3))


def test_kji_ijk_transposition():
    kji = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    ijk = ijkFromKji(kji)
    assert ijk.shape == (4, 3, 2) and ijk[3, 2, 1] == kji[1, 2, 3]
    np.testing.assert_array_equal(kjiFromIjk(ijk), kji)
    assert ijk.flags["C_CONTIGUOUS"]


def test_requirements_file_is_pyproject_minus_what_slicer_provides():
    # tomllib needs Python 3.11; the [project] dependencies array is simple enough to read directly.
    block = re.search(r"^dependencies = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.S | re.M).group(1)
    declared = re.findall(r'"([^"]+)"', block)
    bundled = {name.lower() for name in dependencies.SLICER_BUNDLED}
    expected = sorted([r.replace(" ", "") for r in declared if dependencies.requirementName(r).lower() not in bundled]
                      + list(dependencies.SLICER_SIDE_REQUIREMENTS))
    assert sorted(dependencies.readRequirements()) == expected


@pytest.mark.parametrize("requirement,name", [("scikit-image>=0.21", "scikit-image"), ("torch", "torch"),
                                               ("safetensors >= 0.4", "safetensors"), ("a_b.c[x]==1", "a_b.c")])
def test_requirement_name(requirement, name):
    assert dependencies.requirementName(requirement) == name


def test_missing_requirements_checks_presence_and_version():
    assert dependencies.missingRequirements(["numpy>=999"]) == []  # bundled with Slicer: never reinstalled
    assert dependencies.missingRequirements(["pytest>=1"]) == []
    assert dependencies.missingRequirements(["pytest>=999"]) == ["pytest>=999"]
    assert dependencies.missingRequirements(["surely-not-an-installed-package"]) == ["surely-not-an-installed-package"]


def test_install_explanation_mentions_cpu_and_cuda():
    text = dependencies.TORCH_EXPLANATION.format(packages="scipy")
    assert "CUDA" in text and "CPU" in text and "scipy" in text


@pytest.mark.parametrize("device,text", [("cuda:0", "GPU (cuda:0)"), ("cpu", "CPU"), (None, "unknown device")])
def test_device_description(device, text):
    assert dependencies.torchDeviceDescription(device) == text


def test_progress_text_shows_stage_message_and_metrics():
    event = ProgressEvent("fit", 0.5, "iteration 200/400", {"iteration": 200, "loss": 0.012345, "lr": 0.1})
    assert progressText("fit (2/4)", event) == "fit (2/4): iteration 200/400, iteration 200, loss 0.01235"
    assert formatMetrics({"surface_mm": 0.25, "loss": None, "iteration": True}) == "surface error 0.25 mm"
    assert progressText("extract", ProgressEvent("extract", 1.0)) == "extract"
