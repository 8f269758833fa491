"""The static checker reaches the Nested walls module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each
mistake is planted in one of this module's files and must add a finding of
the expected rule.
"""

import pytest

from static_harness import ModuleFiles

MODULE = ModuleFiles("AnatomyINRNestedWalls")
MODULE_FILE = MODULE.moduleFile
OUTPUTS_TEST = MODULE.folder / "Testing/Python/AnatomyINRNestedWallsOutputsTest.py"


@pytest.mark.parametrize("path", [MODULE_FILE, OUTPUTS_TEST, MODULE.computeFile])
def test_module_files_are_clean(path):
    assert MODULE.findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget():
    assert MODULE.uiFindings() == []


MISTAKES = [
    (MODULE_FILE, "display.SetActiveScalarName(", "display.SetActiveScalars(", "mrml-method"),
    (MODULE_FILE, "display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)",
     "display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualRange)", "mrml-method"),
    (MODULE_FILE, "display.SetAndObserveColorNodeID(colors.GetID())", "display.SetAndObserveColorNodeID()", "mrml-args"),
    (MODULE_FILE, "colors.SetTypeToUser()", "colors.SetTypeToCustom()", "mrml-method"),
    (MODULE_FILE, "table.SetAndObserveTable(", "table.SetTable(", "mrml-method"),
    (MODULE_FILE, "markups.GetNumberOfDefinedControlPoints()", "markups.GetNumberOfDefinedPoints()", "mrml-method"),
    (MODULE_FILE, "parameters.dmaxLine.GetLineLengthWorld()", "parameters.dmaxLine.GetLength()", "mrml-method"),
    (MODULE_FILE, "parameters.measurementsTable = table", "parameters.measurementTable = table", "wrapper-field"),
    (MODULE_FILE, "self.ui.legendLabel.text", "self.ui.colorLegendLabel.text", "ui-object"),
    (MODULE_FILE, '"vtkMRMLMarkupsLineNode", "Dmax"', '"vtkMRMLMarkupsRulerNode", "Dmax"', "mrml-class"),
    (MODULE_FILE, "slicer.util.updateMarkupsControlPointsFromArray(line, ends, world=True)",
     "slicer.util.updateMarkupsControlPointsFromArray(line, ends, worldCoordinates=True)", "util-args"),
    (OUTPUTS_TEST, "slicer.util.arrayFromModelPointData(", "slicer.util.arrayFromModelScalars(", "util-missing"),
]


@pytest.mark.parametrize("path,old,new,rule", MISTAKES, ids=[f"{m[0].stem}-{m[3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistake_in_module_file_is_caught(path, old, new, rule):
    MODULE.assertMistakeCaught(path, old, new, rule)
