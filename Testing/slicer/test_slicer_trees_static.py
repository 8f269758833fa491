"""The static checker reaches the Tree synthesis module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each mistake is
planted in one of this module's files (the module with its in-Slicer test, its
Slicer-free computation) and must add a finding of the expected rule.
"""

import pytest

from static_harness import ModuleFiles

MODULE = ModuleFiles("AnatomyINRTreeSynthesis")
MODULE_FILE = MODULE.moduleFile


@pytest.mark.parametrize("path", [MODULE_FILE, MODULE.computeFile])
def test_module_files_are_clean(path):
    assert MODULE.findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget_including_the_model_or_segmentation_source(tmp_path):
    assert MODULE.uiFindings() == []
    planted = tmp_path / MODULE.uiFile.name  # a spin box cannot show the source node
    planted.write_text(MODULE.uiFile.read_text().replace("<string>count</string>", "<string>source</string>", 1))
    assert [f.rule for f in MODULE.uiFindings(planted)] != []


MISTAKES = [
    (MODULE_FILE, "segmentation.GetSegmentation().GetSegment(parameters.sourceSegmentId)",
     "segmentation.GetSegmentation().GetSegmentByID(parameters.sourceSegmentId)", "mrml-method"),
    (MODULE_FILE, "model.GetDisplayNode().SetColor(*compute.SAMPLE_COLOR)",
     "model.GetDisplayNode().SetColour(*compute.SAMPLE_COLOR)", "mrml-method"),
    (MODULE_FILE, "self.ui.segmentComboBox", "self.ui.segmentsComboBox", "ui-object"),
    (MODULE_FILE, "parameters.compressSpacingMm", "parameters.compressSpacing", "wrapper-field"),
    (MODULE_FILE, 'slicer.util.tempDirectory("AnatomyINR-trees")', 'slicer.util.tempDir("AnatomyINR-trees")',
     "util-missing"),
    (MODULE_FILE, '"vtkMRMLModelNode", compute.sampleName(index)', '"vtkMRMLTreeModelNode", compute.sampleName(index)',
     "mrml-class"),
    (MODULE_FILE, 'slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLModelNode")',
     'slicer.mrmlScene.GetNumberOfNodesOfClass("vtkMRMLModelNode")', "mrml-method"),
    (MODULE_FILE, "fillTable(self.ui.resultsTableWidget,", "fillTable(self.ui.resultTableWidget,", "ui-object"),
    (MODULE_FILE, "parameters.outputModel = model", "parameters.outputModels = model", "wrapper-field"),
]


@pytest.mark.parametrize("path,old,new,rule", MISTAKES, ids=[f"{m[0].stem}-{m[3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistake_in_module_file_is_caught(path, old, new, rule):
    MODULE.assertMistakeCaught(path, old, new, rule)
