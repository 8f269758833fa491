"""Nested walls outputs inside Slicer: what ``applyResult`` puts in the scene, without the fit.

Run by ctest through ``slicer_add_python_unittest``. The result is built from
analytic nested capsules with the library's own measuring functions (the same
ones ``fit-nested`` uses), so the expected numbers are known: thickness colouring
on every model, a table node with the volumes and Dmax, a line at Dmax, output
nodes reused by a second run, and two surfaces without an inner wall.
"""

import unittest

import numpy as np
import slicer

from AnatomyINRNestedWalls import AnatomyINRNestedWallsLogic
from AnatomyINRNestedWallsLib import compute
from AnatomyINRSlicerLib import dependencies

RADII = {"lumen": 7.0, "inner": 10.0, "outer": 12.0}


def capsuleResult(names) -> compute.NestedResult:
    """A NestedResult of concentric capsules (axis S, 40 mm), measured like the worker does."""
    from AnatomyINRLib.nested.analysis import add_thickness_maps, mesh_violations, neighbour_distances, volumes
    from AnatomyINRLib.nested.diameter import max_diameter
    from AnatomyINRLib.nested.analysis import thickness_stats
    from AnatomyINRLib.nested.pipeline import extract_nested
    from AnatomyINRLib.phantoms.tubes import Capsule

    capsules = [Capsule((0.0, 0.0, -20.0), (0.0, 0.0, 20.0), RADII[name]) for name in names]
    field = lambda p: np.stack([c.sdf(p) for c in capsules], axis=1)  # noqa: E731 - (N, K) mm
    bounds = np.array([[-15.0, -15.0, -35.0], [15.0, 15.0, 35.0]])
    extraction, bounds = extract_nested(field, bounds, 1.0)
    signed = neighbour_distances(extraction.meshes)
    meshes = add_thickness_maps(extraction.meshes, signed)
    diameter = max_diameter(lambda p: capsules[-1].sdf(p), bounds, spacing_mm=1.0)
    report = {"names": list(names), "volumes": volumes(meshes, list(names)),
              "thickness": thickness_stats(meshes, list(names)), "dmax": diameter.to_dict(),
              "violations": {"meshes": mesh_violations(extraction.meshes, list(names), 1.0, signed)}}
    return compute.NestedResult(meshes, list(names), report)


class AnatomyINRNestedWallsOutputsTest(unittest.TestCase):
    def setUp(self) -> None:
        dependencies.ensureDependencies(askConfirmation=False)  # the library's measuring functions need torch
        slicer.mrmlScene.Clear()

    def test_ThreeSurfacesColouredTableAndLine(self) -> None:
        logic = AnatomyINRNestedWallsLogic()
        parameters = logic.getParameterNode()
        result = capsuleResult(["lumen", "inner", "outer"])
        logic.applyResult(parameters, result)
        for name in result.names:
            model = getattr(parameters, f"{name}Model")
            display = model.GetDisplayNode()
            self.assertEqual(display.GetActiveScalarName(), compute.THICKNESS_ARRAY)
            self.assertTrue(display.GetScalarVisibility())
            self.assertEqual(display.GetColorNodeID(), parameters.thicknessColors.GetID())
            self.assertEqual(list(display.GetScalarRange()), list(compute.thicknessRange(result.report)))
        lumenThickness = slicer.util.arrayFromModelPointData(parameters.lumenModel, compute.THICKNESS_ARRAY)
        self.assertAlmostEqual(float(np.median(lumenThickness)), 3.0, delta=0.3)
        table = parameters.measurementsTable
        rows = compute.measurementRows(result.report)
        self.assertEqual(table.GetNumberOfRows(), len(rows))
        self.assertEqual(table.GetCellText(1, 0), "Thrombus volume")
        thrombus = np.pi * (RADII["inner"] ** 2 - RADII["lumen"] ** 2) * 40.0 \
            + 4.0 / 3.0 * np.pi * (RADII["inner"] ** 3 - RADII["lumen"] ** 3)
        self.assertAlmostEqual(float(table.GetCellText(1, 1)) * 1000.0 / thrombus, 1.0, delta=0.05)
        self.assertAlmostEqual(parameters.dmaxLine.GetLineLengthWorld(), 2 * RADII["outer"], delta=0.5)

        before = slicer.mrmlScene.GetNumberOfNodes()
        logic.applyResult(parameters, result)  # a second run updates the same nodes
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)

    def test_TwoSurfacesHaveNoInnerModel(self) -> None:
        logic = AnatomyINRNestedWallsLogic()
        parameters = logic.getParameterNode()
        result = capsuleResult(["lumen", "outer"])
        logic.applyResult(parameters, result)
        self.assertIsNone(parameters.innerModel)
        self.assertIsNotNone(parameters.outerModel)
        measures = [parameters.measurementsTable.GetCellText(row, 0)
                    for row in range(parameters.measurementsTable.GetNumberOfRows())]
        self.assertIn("Thrombus and wall volume", measures)
