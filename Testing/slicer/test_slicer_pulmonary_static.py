"""The static checker reaches the Pulmonary segments module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each
mistake is planted in one of this module's files (the module, its Slicer-free
computation, the shared conversion helpers it added) and must add a finding of
the expected rule.
"""

import pytest

from static_harness import MRML_CONVERT, ModuleFiles

MODULE = ModuleFiles("AnatomyINRPulmonarySegments")
MODULE_FILE = MODULE.moduleFile


@pytest.mark.parametrize("path", [MODULE_FILE, MODULE.computeFile, MRML_CONVERT])
def test_module_files_are_clean(path):
    assert MODULE.findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget_including_union_node_fields(tmp_path):
    assert MODULE.uiFindings() == []
    planted = tmp_path / MODULE.uiFile.name  # a node type outside the Union of the lobes field is refused
    planted.write_text(MODULE.uiFile.read_text().replace("<string>vtkMRMLLabelMapVolumeNode</string>",
                                                         "<string>vtkMRMLModelNode</string>", 1))
    assert [f.message for f in MODULE.uiFindings(planted)] == [
        "lobesSelector: nodeType vtkMRMLModelNode is not a vtkMRMLSegmentationNode or vtkMRMLLabelMapVolumeNode, "
        "the type of lobes"]


MISTAKES = [
    (MODULE_FILE, "slicer.util.loadSegmentation(result.segmentationFile)",
     "slicer.util.loadSegmentation(result.segmentationFile, returnNodes=True)", "util-args"),
    (MODULE_FILE, "output.GetSegmentation().DeepCopy(", "output.GetSegmentation().CopyFrom(", "mrml-method"),
    (MODULE_FILE, "vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()",
     "vtkMRMLSegmentationNode.GetReferenceGeometryRole()", "mrml-method"),
    (MODULE_FILE, "loaded.GetStorageNode()", "loaded.GetStorage()", "mrml-method"),
    (MODULE_FILE, "points.SetNthControlPointLabel(count - 1, name)", "points.SetNthControlPointLabel(name)",
     "mrml-args"),
    (MODULE_FILE, "table.SetUseColumnTitleAsColumnHeader(True)", "table.SetUseColumnTitlesAsHeader(True)",
     "mrml-method"),
    (MODULE_FILE, "parameters.planningTable = table", "parameters.planTable = table", "wrapper-field"),
    (MODULE_FILE, "self.ui.pointsStatusLabel.text", "self.ui.pointStatusLabel.text", "ui-object"),
    (MODULE_FILE, '"vtkMRMLMarkupsFiducialNode", _("Segment points")',
     '"vtkMRMLMarkupsPointListNode", _("Segment points")', "mrml-class"),
    (MRML_CONVERT, "slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)",
     "slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, reference=referenceVolumeNode)",
     "util-args"),
    (MRML_CONVERT, "segmentation.GetNthSegment(i).GetName()", "segmentation.GetNthSegment(i).Name()", "mrml-method"),
]


@pytest.mark.parametrize("path,old,new,rule", MISTAKES, ids=[f"{m[0].stem}-{m[3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistake_in_module_file_is_caught(path, old, new, rule):
    MODULE.assertMistakeCaught(path, old, new, rule)
