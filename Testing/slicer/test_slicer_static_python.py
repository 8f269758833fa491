"""The Python rules of the static checker catch planted mistakes, and pass on the real code.

Each snippet is wrong in exactly one way (the same snippet without the
mistake is checked too, so a rule cannot pass by flagging everything).
"""

from pathlib import Path

import pytest

from slicer_static_check import check_python_source

REPO = Path(__file__).resolve().parents[2]
MODULE_FILE = REPO / "AnatomyINR/AnatomyINRSurfaceFromPoints/AnatomyINRSurfaceFromPoints.py"
HEADER = "import slicer\nimport vtk\nfrom slicer.util import VTKObservationMixin\n"


def rules(source, **kwargs):
    return {f.rule for f in check_python_source(HEADER + source, **kwargs)}


# (rule, wrong snippet, corrected snippet)
CASES = [
    ("util-missing", "slicer.util.arrayFromMarkupsPoints(n)", "slicer.util.arrayFromMarkupsControlPoints(n)"),
    ("util-args", "slicer.util.arrayFromMarkupsControlPoints(n, worldCoordinates=True)",
     "slicer.util.arrayFromMarkupsControlPoints(n, world=True)"),
    ("util-args", "slicer.util.tempDirectory('a', None, True, 4)", "slicer.util.tempDirectory('a', None, True)"),
    ("util-args", "slicer.util.launchConsoleProcess(['ls'], blocking=False)", "slicer.util.launchConsoleProcess(['ls'], cwd='/')"),
    ("util-args", "slicer.util.pip_install('x', show_progress=False)", "slicer.util.pip_install('x')"),
    ("util-version", "import slicer.packaging\nslicer.packaging.pip_ensure(['x'])",
     "import slicer.packaging\nif hasSlicerPackaging():\n    slicer.packaging.pip_ensure(['x'])"),
    ("util-private", "slicer.util._executePythonModule('pip', [])", "slicer.util.executePythonModule('pip', [])"),
    ("api-missing", "import slicer.packaging\nif hasSlicerPackaging():\n    slicer.packaging.ensure(['x'])",
     "import slicer.packaging\nif hasSlicerPackaging():\n    slicer.packaging.pip_ensure(['x'])"),
    ("call-args", "import slicer.packaging\nif hasSlicerPackaging():\n    slicer.packaging.pip_ensure(['x'], ask=False)",
     "import slicer.packaging\nif hasSlicerPackaging():\n    slicer.packaging.pip_ensure(['x'], prompt_install=False)"),
    ("mrml-method", "m = slicer.mrmlScene.AddNewNodeByClass('vtkMRMLModelNode')\nm.SetPolyDataMesh(None)",
     "m = slicer.mrmlScene.AddNewNodeByClass('vtkMRMLModelNode')\nm.SetAndObserveMesh(None)"),
    ("mrml-method", "def f(n: slicer.vtkMRMLMarkupsNode):\n    return n.GetControlPointCount()",
     "def f(n: slicer.vtkMRMLMarkupsNode):\n    return n.GetNumberOfControlPoints()"),
    ("mrml-method", "def f(n: 'vtkMRMLModelNode | None'):\n    n.GetDisplayNode().SetColour(1, 0, 0)",
     "def f(n: 'vtkMRMLModelNode | None'):\n    n.GetDisplayNode().SetColor(1, 0, 0)"),
    ("mrml-method", "s = slicer.vtkMRMLSegmentationNode()\ns.GetSegmentation().AddSegmentEmpty('a')",
     "s = slicer.vtkMRMLSegmentationNode()\ns.GetSegmentation().AddEmptySegment('a')"),
    ("mrml-method", "e = slicer.vtkMRMLMarkupsNode.PointMovedEvent", "e = slicer.vtkMRMLMarkupsNode.PointModifiedEvent"),
    ("mrml-method", "slicer.mrmlScene.StartClosingEvent", "slicer.mrmlScene.StartCloseEvent"),
    ("mrml-method", "slicer.modules.segmentations.logic().ImportLabelmapToSegment(None, None)",
     "slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(None, None)"),
    ("mrml-method", "slicer.modules.markups.logic().StartPlacingMode(True)",
     "slicer.modules.markups.logic().StartPlaceMode(True)"),
    ("mrml-method", "logic = slicer.modules.markups.logic()\nlogic.SetActivePointList(None)",
     "logic = slicer.modules.markups.logic()\nlogic.SetActiveList(None)"),
    ("mrml-args", "slicer.modules.markups.logic().StartPlaceMode()", "slicer.modules.markups.logic().StartPlaceMode(True)"),
    ("mrml-deprecated", "m = slicer.vtkMRMLModelNode()\nm.SetAndObservePolyData(None)",
     "m = slicer.vtkMRMLModelNode()\nm.SetAndObserveMesh(None)"),
    ("mrml-class", "slicer.mrmlScene.AddNewNodeByClass('vtkMRMLMarkupsPointNode')",
     "slicer.mrmlScene.AddNewNodeByClass('vtkMRMLMarkupsFiducialNode')"),
    ("mrml-class", "slicer.util.addVolumeFromArray(a, nodeClassName='vtkMRMLLabelVolumeNode')",
     "slicer.util.addVolumeFromArray(a, nodeClassName='vtkMRMLLabelMapVolumeNode')"),
    ("mrml-class", "x = slicer.vtkMRMLCurveNode()", "x = slicer.vtkMRMLMarkupsCurveNode()"),
    ("mrml-args", "def f(v: slicer.vtkMRMLVolumeNode):\n    v.GetIJKToRASMatrix()",
     "def f(v: slicer.vtkMRMLVolumeNode):\n    v.GetIJKToRASMatrix(vtk.vtkMatrix4x4())"),
    ("vtk-kwargs", "n = slicer.vtkMRMLModelNode()\nn.SetName(name='x')", "n = slicer.vtkMRMLModelNode()\nn.SetName('x')"),
    ("vtk-method", "p = vtk.vtkPolyData()\np.GetPointz()", "p = vtk.vtkPolyData()\np.GetPoints()"),
    ("vtk-method", "p = vtk.vtkPolyData()\np.GetPoints().GetDataz()", "p = vtk.vtkPolyData()\np.GetPoints().GetData()"),
    ("vtk-class", "m = vtk.vtkMatrix4()", "m = vtk.vtkMatrix4x4()"),
    ("slicer-module", "slicer.modules.segmentationz.logic()", "slicer.modules.segmentations.logic()"),
    ("import-time", "import torch", "def f():\n    import torch"),
    ("import-time", "from AnatomyINRLib.surface import api", "from AnatomyINRLib.core.types import PointSet"),
    ("api-missing", "from slicer.parameterNodeWrapper import IsNone", "from slicer.parameterNodeWrapper import NotNone"),
    ("syntax", "def f(:\n    pass", "def f():\n    pass"),
    ("util-missing", "from slicer.util import arrayFromMarkupsPoints", "from slicer.util import arrayFromMarkupsControlPoints"),
    ("api-missing", "VTKObservationMixin.__init__x(None)", "VTKObservationMixin.__init__(None)"),
    ("api-missing", "import PyTorchUtils\nPyTorchUtils.PyTorchUtilsLogic().isTorchInstalled()",
     "import PyTorchUtils\nPyTorchUtils.PyTorchUtilsLogic().torchInstalled()"),
    ("call-args", "import PyTorchUtils\nPyTorchUtils.PyTorchUtilsLogic().installTorch(torchVersion='>=2')",
     "import PyTorchUtils\nPyTorchUtils.PyTorchUtilsLogic().installTorch(torchVersionRequirement='>=2')"),
    ("api-missing", "from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidgets",
     "from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget"),
]


@pytest.mark.parametrize("rule,wrong,right", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_planted_mistake_is_caught(rule, wrong, right):
    assert rule in rules(wrong), f"{rule} not reported for:\n{wrong}"
    assert rule not in rules(right), f"{rule} wrongly reported for the corrected code:\n{right}"


WIDGET = """
from slicer.ScriptedLoadableModule import *
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer import vtkMRMLMarkupsNode

@parameterNodeWrapper
class DemoParameterNode:
    inputPoints: vtkMRMLMarkupsNode
    spacingMm: float = 0.5

class DemoLogic(ScriptedLoadableModuleLogic):
    def getParameterNode(self) -> DemoParameterNode:
        return DemoParameterNode(super().getParameterNode())

class DemoWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def setup(self):
        self.logic = DemoLogic()
        self._parameterNode = self.logic.getParameterNode()
        self.ui.applyButton.enabled = True
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.setup)
        points = self._parameterNode.inputPoints
        points.GetNumberOfDefinedControlPoints()

class DemoTest(ScriptedLoadableModuleTest):
    def runTest(self):
        self.delayDisplay("ok")
        self.assertTrue(True)
"""
WIDGET_MISTAKES = [
    ("ui-object", "self.ui.applyButton.enabled", "self.ui.applyButon.enabled"),
    ("wrapper-field", "self._parameterNode.inputPoints", "self._parameterNode.inputPoint"),
    ("mrml-method", "points.GetNumberOfDefinedControlPoints()", "points.GetNumberOfDefinedPoints()"),
    ("mrml-method", "slicer.mrmlScene.StartCloseEvent", "slicer.mrmlScene.StartCloseEvnt"),
    ("self-method", 'self.delayDisplay("ok")', 'self.delayDisply("ok")'),
    ("call-args", 'self.delayDisplay("ok")', 'self.delayDisplay("ok", timeout=3)'),
    ("self-method", "self.addObserver(", "self.addObservers("),
    ("self-method", "self.logic.getParameterNode()", "self.logic.getParameterNodes()"),
]


def test_widget_snippet_is_clean():
    assert check_python_source(HEADER + WIDGET, ui_names={"applyButton"}) == []


@pytest.mark.parametrize("rule,old,new", WIDGET_MISTAKES, ids=[f"{c[0]}-{i}" for i, c in enumerate(WIDGET_MISTAKES)])
def test_widget_mistake_is_caught(rule, old, new):
    assert old in WIDGET
    assert rule in rules(WIDGET.replace(old, new, 1), ui_names={"applyButton"})


# Mistakes planted into the real files: proves the inference reaches the code we ship.
REAL_MISTAKES = [
    (MODULE_FILE, "GetNumberOfDefinedControlPoints()", "GetNumberOfDefinedPoints()", "mrml-method"),
    (MODULE_FILE, "self.ui.outlierThresholdSpinBox.connect(", "self.ui.outlierThresholdSpinbox.connect(", "ui-object"),
    (MODULE_FILE, "parameters.outputSegmentation is not None and", "parameters.outputSegmentations is not None and",
     "wrapper-field"),
    (MODULE_FILE, 'slicer.util.tempDirectory("AnatomyINR")', 'slicer.util.tempDir("AnatomyINR")', "util-missing"),
    (MODULE_FILE, "model.GetDisplayNode().SetColor(", "model.GetDisplayNode().SetColour(", "mrml-method"),
    (MODULE_FILE, "segmentation.GetSegmentation().GetSegmentIdBySegmentName(",
     "segmentation.GetSegmentation().GetSegmentIdByName(", "mrml-method"),
    (MODULE_FILE, "self.logic.residualRows(threshold)", "self.logic.residuals(threshold)", "self-method"),
    (MODULE_FILE, "self._keepField(pointsNode.GetID(), files.inr)", "self._keepFields(pointsNode.GetID(), files.inr)",
     "self-method"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py", "modelNode.SetAndObserveMesh(",
     "modelNode.SetAndObservePolyData(", "mrml-deprecated"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py", "parent.IsTransformToWorldLinear()",
     "parent.IsTransformLinear()", "mrml-method"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py", "volumeNode.GetIJKToRASMatrix(matrix)",
     "volumeNode.GetIJKToRASMatrix()", "mrml-args"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/mrml_convert.py", "segmentation.AddEmptySegment(",
     "segmentation.AddEmptySegments(", "mrml-method"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/dependencies.py", "slicer.util.pip_install(legacyPipArguments(requirements, constraints))",
     "slicer.util.pip_install(legacyPipArguments(requirements, constraints), blocking=True)", "util-args"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/dependencies.py", "torchLogic.installTorch(askConfirmation=False,",
     "torchLogic.installTorch(confirm=False,", "call-args"),
    (REPO / "AnatomyINR/AnatomyINRSlicerLib/runner.py",
     "launchConsoleProcess(self.command, updateEnvironment=WORKER_ENVIRONMENT, cwd=self.cwd)",
     "launchConsoleProcess(self.command, updateEnvironment=WORKER_ENVIRONMENT, cwd=self.cwd, blocking=False)",
     "util-args"),
]


@pytest.mark.parametrize("path,old,new,rule", REAL_MISTAKES,
                         ids=[f"{m[0].name}-{m[3]}-{i}" for i, m in enumerate(REAL_MISTAKES)])
def test_mistake_in_real_file_is_caught(path, old, new, rule):
    source = path.read_text()
    assert old in source, f"{old!r} no longer in {path.name}: update this test"
    ui = REPO / "AnatomyINR/AnatomyINRSurfaceFromPoints/Resources/UI/AnatomyINRSurfaceFromPoints.ui"
    from slicer_static_check.ui_checks import ui_object_names

    names = ui_object_names(ui) if path == MODULE_FILE else None
    before = {f.rule for f in check_python_source(source, str(path), ui_names=names)}
    after = {f.rule for f in check_python_source(source.replace(old, new, 1), str(path), ui_names=names)}
    assert rule not in before
    assert rule in after
