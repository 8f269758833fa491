"""The static checker reaches the Nested walls module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each
mistake is planted in one of this module's files and must add a finding of
the expected rule.
"""

from pathlib import Path

import pytest

from slicer_static_check import check_python_source, wrapper_fields
from slicer_static_check.ui_checks import check_ui, ui_object_names

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "AnatomyINR/AnatomyINRNestedWalls"
MODULE_FILE = FOLDER / "AnatomyINRNestedWalls.py"
UI_FILE = FOLDER / "Resources/UI/AnatomyINRNestedWalls.ui"
OUTPUTS_TEST = FOLDER / "Testing/Python/AnatomyINRNestedWallsOutputsTest.py"


def findings(path: Path, source: str) -> set:
    names = ui_object_names(UI_FILE) if path == MODULE_FILE else None
    return {f.rule for f in check_python_source(source, str(path), ui_names=names, own_modules=("anatomyinrnestedwalls",))}


@pytest.mark.parametrize("path", [MODULE_FILE, OUTPUTS_TEST, FOLDER / "AnatomyINRNestedWallsLib/compute.py"])
def test_module_files_are_clean(path):
    assert findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget():
    from slicer_static_check import default_facts

    assert check_ui(UI_FILE, default_facts(), UI_FILE.name, wrapper_fields(MODULE_FILE)) == []


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
    source = path.read_text()
    assert old in source, f"{old!r} no longer in {path.name}: update this test"
    assert rule not in findings(path, source)
    assert rule in findings(path, source.replace(old, new, 1))
