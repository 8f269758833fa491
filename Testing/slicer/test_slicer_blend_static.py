"""The static checker reaches the Vessel blend module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each
mistake is planted in one of this module's files (or the shared-layer code it
added) and must add a finding of the expected rule.
"""

import pytest

from static_harness import MRML_CONVERT, ModuleFiles

MODULE = ModuleFiles("AnatomyINRVesselBlend")
MODULE_FILE = MODULE.moduleFile
INPUTS_TEST = MODULE.folder / "Testing/Python/AnatomyINRVesselBlendInputsTest.py"


@pytest.mark.parametrize("path", [MODULE_FILE, INPUTS_TEST, MODULE.computeFile])
def test_module_files_are_clean(path):
    assert MODULE.findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget():
    assert MODULE.uiFindings() == []


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
    MODULE.assertMistakeCaught(path, old, new, rule)
