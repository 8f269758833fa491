"""The static checker reaches the Shape from image module: its files are clean and planted mistakes are caught.

Complements ``test_slicer_static_layout.py`` (whole extension): here each mistake is
planted in one of this module's files (the module, its Slicer-free computation) and
must add a finding of the expected rule. The module's widget has no preset box, so it
derives from ``WorkerPanelWidget``: the preset code of ``WorkerModuleWidget`` is not
checked against its ``.ui``, everything else in the shared base is.
"""

import pytest

from static_harness import ModuleFiles

MODULE = ModuleFiles("AnatomyINRShapeFromImage")
MODULE_FILE = MODULE.moduleFile


@pytest.mark.parametrize("path", [MODULE_FILE, MODULE.computeFile])
def test_module_files_are_clean(path):
    assert MODULE.findings(path, path.read_text()) == set()


def test_ui_binds_every_parameter_widget(tmp_path):
    assert MODULE.uiFindings() == []
    planted = tmp_path / MODULE.uiFile.name  # a model selector offering point lists is refused
    text = MODULE.uiFile.read_text()
    anchor = text.index('name="leftAtriumModelSelector"')
    at = text.index("<string>vtkMRMLModelNode</string>", anchor)
    planted.write_text(text[:at] + "<string>vtkMRMLMarkupsFiducialNode</string>"
                       + text[at + len("<string>vtkMRMLModelNode</string>"):])
    assert [f.message for f in MODULE.uiFindings(planted)] == [
        "leftAtriumModelSelector: nodeType vtkMRMLMarkupsFiducialNode is not a vtkMRMLModelNode, the type of "
        "leftAtriumModel"]


def test_inherited_base_code_is_checked_against_this_module():
    """The base's ``self.ui.logTextEdit`` must be in this module's .ui: removing it there is caught in the base."""
    from slicer_static_check import check_python_source
    from slicer_static_check.ui_checks import ui_object_names

    names = set(ui_object_names(MODULE.uiFile)) - {"logTextEdit"}
    findings = check_python_source(MODULE_FILE.read_text(), str(MODULE_FILE), ui_names=names,
                                   own_modules=(MODULE.name.lower(),))
    assert any(f.rule == "ui-object" and "logTextEdit" in f.message and "module_base.py" in str(f.path)
               for f in findings), findings


MISTAKES = [
    (MODULE_FILE, "model.GetDisplayNode().SetColor(", "model.GetDisplayNode().SetColour(", "mrml-method"),
    (MODULE_FILE, "segmentation.SetAndObserveTransformNodeID(volume.GetTransformNodeID())",
     "segmentation.SetAndObserveTransformNodeID()", "mrml-args"),
    (MODULE_FILE, "parameters.outputSegmentation = segmentation", "parameters.outputSegmentations = segmentation",
     "wrapper-field"),
    (MODULE_FILE, "self.ui.structuresTableWidget", "self.ui.structureTableWidget", "ui-object"),
    (MODULE_FILE, '"vtkMRMLSegmentationNode", _(compute.SEGMENTATION_NAME)',
     '"vtkMRMLSegmentation", _(compute.SEGMENTATION_NAME)', "mrml-class"),
    (MODULE_FILE, "parameters.inputVolume.GetImageData()", "parameters.inputVolume.GetImage()", "mrml-method"),
    (MODULE_FILE, "super().getParameterNode()", "super().getParameterNodes()", "self-method"),
    (MODULE.computeFile, "import os\n", "import os\n\nimport torch\n", "import-time"),
]


@pytest.mark.parametrize("path,old,new,rule", MISTAKES, ids=[f"{m[0].stem}-{m[3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistake_in_module_file_is_caught(path, old, new, rule):
    MODULE.assertMistakeCaught(path, old, new, rule)
