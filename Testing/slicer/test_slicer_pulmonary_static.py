"""The static checker reaches the Pulmonary segments module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each
mistake is planted in one of this module's files (the module, its Slicer-free
computation, the shared conversion helpers it added) and must add a finding of
the expected rule.
"""

from pathlib import Path

import pytest

from slicer_static_check import check_python_source, default_facts, wrapper_fields
from slicer_static_check.ui_checks import check_ui, ui_object_names

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "AnatomyINR/AnatomyINRPulmonarySegments"
MODULE_FILE = FOLDER / "AnatomyINRPulmonarySegments.py"
UI_FILE = FOLDER / "Resources/UI/AnatomyINRPulmonarySegments.ui"
CONVERT = REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py"


def findings(path: Path, source: str) -> set:
    names = ui_object_names(UI_FILE) if path == MODULE_FILE else None
    return {f.rule for f in check_python_source(source, str(path), ui_names=names,
                                                own_modules=("anatomyinrpulmonarysegments",))}


@pytest.mark.parametrize("path", [MODULE_FILE, FOLDER / "AnatomyINRPulmonarySegmentsLib/compute.py", CONVERT])
def test_module_files_are_clean(path):
    assert findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget_including_union_node_fields(tmp_path):
    fields = wrapper_fields(MODULE_FILE)
    assert check_ui(UI_FILE, default_facts(), UI_FILE.name, fields) == []
    text = UI_FILE.read_text()
    planted = tmp_path / UI_FILE.name  # a node type outside the Union of the lobes field is refused
    planted.write_text(text.replace("<string>vtkMRMLLabelMapVolumeNode</string>", "<string>vtkMRMLModelNode</string>", 1))
    messages = [f.message for f in check_ui(planted, default_facts(), planted.name, fields)]
    assert messages == ["lobesSelector: nodeType vtkMRMLModelNode is not a vtkMRMLSegmentationNode or "
                        "vtkMRMLLabelMapVolumeNode, the type of lobes"]


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
    (MODULE_FILE, '"vtkMRMLMarkupsFiducialNode", _("Segment points")', '"vtkMRMLMarkupsPointListNode", _("Segment points")',
     "mrml-class"),
    (CONVERT, "slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)",
     "slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, reference=referenceVolumeNode)",
     "util-args"),
    (CONVERT, "segmentation.GetNthSegment(i).GetName()", "segmentation.GetNthSegment(i).Name()", "mrml-method"),
]


@pytest.mark.parametrize("path,old,new,rule", MISTAKES, ids=[f"{m[0].stem}-{m[3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistake_in_module_file_is_caught(path, old, new, rule):
    source = path.read_text()
    assert old in source, f"{old!r} no longer in {path.name}: update this test"
    assert rule not in findings(path, source)
    assert rule in findings(path, source.replace(old, new, 1))
