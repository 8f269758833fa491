"""The static checker reaches the Vessel blend module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each
mistake is planted in one of this module's files (or the shared-layer code it
added) and must add a finding of the expected rule.
"""

from pathlib import Path

import pytest

from slicer_static_check import check_python_source, wrapper_fields
from slicer_static_check.ui_checks import check_ui, ui_object_names

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "AnatomyINR/AnatomyINRVesselBlend"
MODULE_FILE = FOLDER / "AnatomyINRVesselBlend.py"
UI_FILE = FOLDER / "Resources/UI/AnatomyINRVesselBlend.ui"
INPUTS_TEST = FOLDER / "Testing/Python/AnatomyINRVesselBlendInputsTest.py"
MRML_CONVERT = REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py"


def findings(path: Path, source: str) -> set:
    names = ui_object_names(UI_FILE) if path == MODULE_FILE else None
    return {f.rule for f in check_python_source(source, str(path), ui_names=names, own_modules=("anatomyinrvesselblend",))}


@pytest.mark.parametrize("path", [MODULE_FILE, INPUTS_TEST, FOLDER / "AnatomyINRVesselBlendLib/compute.py"])
def test_module_files_are_clean(path):
    assert findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget():
    from slicer_static_check import default_facts

    assert check_ui(UI_FILE, default_facts(), UI_FILE.name, wrapper_fields(MODULE_FILE)) == []


MISTAKES = [
    (MODULE_FILE, "markups.GetNumberOfDefinedControlPoints()", "markups.GetNumberOfDefinedPoints()", "mrml-method"),
    (MODULE_FILE, "segmentationNode.GetSegmentation().GetSegment(segmentId)",
     "segmentationNode.GetSegmentation().GetSegmentByID(segmentId)", "mrml-method"),
    (MODULE_FILE, "model.GetDisplayNode().SetColor(", "model.GetDisplayNode().SetColour(", "mrml-method"),
    (MODULE_FILE, "self.ui.radiiTable.enabled", "self.ui.radiusTable.enabled", "ui-object"),
    (MODULE_FILE, "parameters.perInputRadii else None", "parameters.perInputRadius else None", "wrapper-field"),
    (MODULE_FILE, 'slicer.util.tempDirectory("AnatomyINR-blend")', 'slicer.util.tempDir("AnatomyINR-blend")',
     "util-missing"),
    (MODULE_FILE, '"vtkMRMLModelNode", _("Blended vessels")', '"vtkMRMLSurfaceModelNode", _("Blended vessels")',
     "mrml-class"),
    (INPUTS_TEST, "segmentation.ContainsRepresentation(", "segmentation.HasRepresentation(", "mrml-method"),
    (INPUTS_TEST, "segmentationNode.SetSourceRepresentationToBinaryLabelmap()",
     "segmentationNode.SetMasterRepresentationToBinaryLabelmap()", "mrml-deprecated"),
    (MRML_CONVERT, "temporary.CopySegmentFromSegmentation(", "temporary.CopySegment(", "mrml-args"),
    (MRML_CONVERT, "temporary.CreateRepresentation(CLOSED_SURFACE)", "temporary.ConvertRepresentation(CLOSED_SURFACE)",
     "mrml-method"),
    (MRML_CONVERT, "surface.GetNumberOfPoints()", "surface.GetNumberOfVertices()", "vtk-method"),
]


@pytest.mark.parametrize("path,old,new,rule", MISTAKES, ids=[f"{m[0].stem}-{m[3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistake_in_module_file_is_caught(path, old, new, rule):
    source = path.read_text()
    assert old in source, f"{old!r} no longer in {path.name}: update this test"
    assert rule not in findings(path, source)
    assert rule in findings(path, source.replace(old, new, 1))
