"""The static checker follows the modules into their shared base classes (``AnatomyINRSlicerLib.module_base``).

The three module widgets and logics inherit the template's parameter-node
lifecycle and the worker run from ``WorkerModuleWidget``/``WorkerModuleLogic``.
These tests prove the checker still reaches that code: a mistake planted in the
shared file is caught when a module file is checked (also the mistakes that
only show with a module's ``.ui``, parameter node wrapper or Logic), and a
module calling a method the bases do not define is caught. Mistakes are
planted in a copy of ``AnatomyINR/`` so the imports resolve to the edited file.
"""

import shutil
from pathlib import Path

import pytest

from slicer_static_check import check_python_source
from slicer_static_check.ui_checks import ui_object_names

REPO = Path(__file__).resolve().parents[2]
BASE = "AnatomyINRSlicerLib/module_base.py"
MODULES = ("AnatomyINRSurfaceFromPoints", "AnatomyINRNestedWalls", "AnatomyINRVesselBlend", "AnatomyINRPulmonarySegments",
           "AnatomyINRTreeSynthesis")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("extension") / "AnatomyINR"
    shutil.copytree(REPO / "AnatomyINR", root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def module_findings(root: Path, module: str, source=None) -> list:
    path = root / module / f"{module}.py"
    names = ui_object_names(root / module / "Resources" / "UI" / f"{module}.ui")
    return check_python_source(path.read_text() if source is None else source, str(path), ui_names=names)


def planted(path: Path, old: str, new: str):
    """Write ``new`` for ``old`` into ``path``; returns the function that restores the file."""
    original = path.read_text()
    assert old in original, f"{old!r} no longer in {path.name}: update this test"
    path.write_text(original.replace(old, new, 1))
    return lambda: path.write_text(original)


def test_modules_inherit_from_the_shared_base_and_are_clean(tree):
    for module in MODULES:
        source = (tree / module / f"{module}.py").read_text()
        assert (f"class {module}Widget(WorkerModuleWidget)" in source
                or f"class {module}Widget(LiveRefitModuleWidget)" in source)
        assert f"class {module}Logic(WorkerModuleLogic)" in source
        assert module_findings(tree, module) == []
    assert check_python_source((tree / BASE).read_text(), str(tree / BASE)) == []


# Planted in the shared base: (old, new, rule). Each must be reported, at the base file's line,
# when any module file is checked.
BASE_MISTAKES = [
    ("slicer.util.childWidgetVariables(", "slicer.util.childWidgetVars(", "util-missing"),
    ("slicer.util.tryWithErrorDisplay(self.startErrorText, waitCursor=True)",
     "slicer.util.tryWithErrorDisplay(self.startErrorText, busyCursor=True)", "util-args"),
    ("slicer.mrmlScene.EndCloseEvent", "slicer.mrmlScene.EndClosedEvent", "mrml-method"),
    ("self.removeObserver(self._parameterNode,", "self.removeObservr(self._parameterNode,", "self-method"),
    ("self.initializeParameterNode()\n\n    def exit", "self.initialiseParameterNode()\n\n    def exit", "self-method"),
    ("self.logic.cannotRunReason(self._parameterNode)", "self.logic.cannotApplyReason(self._parameterNode)",
     "self-method"),
    ("self.progress.started(", "self.progress.start(", "self-method"),
    # Only visible with a module's .ui / wrapper: the base code checked as each module's inherited code.
    ("self.ui.cancelButton.enabled = running", "self.ui.stopButton.enabled = running", "ui-object"),
    ("self._parameterNode.connectGui(self.ui)", "self._parameterNode.connectGUI(self.ui)", "wrapper-field"),
]


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("old,new,rule", BASE_MISTAKES, ids=[f"{m[2]}-{i}" for i, m in enumerate(BASE_MISTAKES)])
def test_mistake_in_shared_base_is_caught_from_each_module(tree, module, old, new, rule):
    assert rule not in {f.rule for f in module_findings(tree, module)}
    restore = planted(tree / BASE, old, new)
    try:
        found = [f for f in module_findings(tree, module) if f.rule == rule]
    finally:
        restore()
    assert found, f"{rule} not reported for {module} with {new!r} in {BASE}"
    assert all(f.path.endswith(BASE) for f in found), found  # reported where the mistake is
    text = (tree / BASE).read_text()
    line = text[:text.index(old)].count("\n") + 1
    assert any(f.line == line for f in found), (line, found)


def test_base_mistake_needing_a_module_names_the_module(tree):
    restore = planted(tree / BASE, "self.ui.cancelButton.enabled = running", "self.ui.stopButton.enabled = running")
    try:
        messages = {f.message for module in MODULES for f in module_findings(tree, module) if f.rule == "ui-object"}
        alone = check_python_source((tree / BASE).read_text(), str(tree / BASE))
    finally:
        restore()
    assert {m.rsplit(" ", 1)[-1] for m in messages} == {f"{module}Widget)" for module in MODULES}
    assert alone == []  # without a module there is no .ui to check against


# Planted in a module file: calls of what the shared bases do not define (or with a wrong signature).
MODULE_MISTAKES = [
    ("AnatomyINRVesselBlend", "self.initializeParameterNode()", "self.initialiseParameterNode()", "self-method"),
    ("AnatomyINRVesselBlend", "super().onParameterNodeModified(caller, event)",
     "super().onParameterNodeModifed(caller, event)", "self-method"),
    ("AnatomyINRVesselBlend", "super().setParameterNode(inputParameterNode)",
     "super().setParameterNode(inputParameterNode, True)", "call-args"),
    ("AnatomyINRVesselBlend", "return self.launch(", "return self.launchWorker(", "self-method"),
    ("AnatomyINRVesselBlend", "self._parameterNode.perInputRadii)", "self._parameterNode.perInputRadius)",
     "wrapper-field"),
    ("AnatomyINRNestedWalls", "self.setupPanel(", "self.setupPanels(", "self-method"),
    ("AnatomyINRNestedWalls", "self.checkCanStart(", "self.checkCanRun(", "self-method"),
    ("AnatomyINRNestedWalls", "self.logic.runBlocking(parameters, options)", "self.logic.runBlockin(parameters, options)",
     "self-method"),
    ("AnatomyINRSurfaceFromPoints", "self.stopLiveRefit()", "self.stopLiveRefits()", "self-method"),
    ("AnatomyINRSurfaceFromPoints", "self.setupLiveRefit(_(", "self.setupLiveRefit(True, _(", "call-args"),
    ("AnatomyINRSurfaceFromPoints", "super().onSceneStartClose(caller, event)", "super().onSceneClose(caller, event)",
     "self-method"),
    ("AnatomyINRSurfaceFromPoints", "self.showResults()", "self._showResults()", "self-method"),
    ("AnatomyINRSurfaceFromPoints", "self._parameterNode.outlierThresholdMm", "self._parameterNode.outlierThreshold",
     "wrapper-field"),
    ("AnatomyINRTreeSynthesis", "compute.PRESETS,\n                        compute.PRESET_TITLES)",
     "compute.PRESETS,\n                        compute.PRESET_TITLES, True)", "call-args"),
    ("AnatomyINRTreeSynthesis", "return self.launch(\"trees\", TREES_SAMPLE_STAGES",
     "return self.launchWorker(\"trees\", TREES_SAMPLE_STAGES", "self-method"),
]


@pytest.mark.parametrize("module,old,new,rule", MODULE_MISTAKES, ids=[f"{m[0][10:]}-{m[3]}-{i}"
                                                                      for i, m in enumerate(MODULE_MISTAKES)])
def test_module_calling_what_the_base_lacks_is_caught(tree, module, old, new, rule):
    source = (tree / module / f"{module}.py").read_text()
    assert old in source, f"{old!r} no longer in {module}.py: update this test"
    assert rule not in {f.rule for f in module_findings(tree, module, source)}
    assert rule in {f.rule for f in module_findings(tree, module, source.replace(old, new, 1))}


def test_script_importing_a_module_reaches_its_logic(tree):
    """``Testing/Python`` scripts build the module's Logic; its inherited API is checked there too."""
    path = tree / "AnatomyINRVesselBlend/Testing/Python/AnatomyINRVesselBlendInputsTest.py"
    source = path.read_text()
    old = "logic.cannotRunReason(parameters)"
    assert old in source
    before = {f.rule for f in check_python_source(source, str(path))}
    after = {f.rule for f in check_python_source(source.replace(old, "logic.cannotBlendReason(parameters)", 1), str(path))}
    assert "self-method" not in before and "self-method" in after


def test_bases_across_files_cycles_and_object_methods(tmp_path):
    """Generic resolver cases: a base of a base in a third file, an import cycle, ``super().__init__`` of a plain class."""
    shared = tmp_path / "SharedLib"
    shared.mkdir()
    (shared / "__init__.py").write_text("")
    (shared / "first.py").write_text(
        "from SharedLib.second import Helper\n\n"  # second imports first back: a cycle
        "class First:\n    def __init__(self):\n        super().__init__()\n\n    def ping(self, value):\n"
        "        return Helper().echo(value)\n")
    (shared / "second.py").write_text(
        "from SharedLib.first import First\n\n"
        "class Helper:\n    def echo(self, value):\n        return value\n\n"
        "class Second(First):\n    def pong(self):\n        return self.ping(1)\n")
    module = "from SharedLib.second import Second\n\nclass Demo(Second):\n    def run(self):\n        {}\n"

    def rules(call):
        return {f.rule for f in check_python_source(module.format(call), import_roots=[tmp_path])}

    assert rules("self.pong()") == set()
    assert rules("self.ping(2)") == set()  # defined two files away
    assert rules("super().pong()") == set()
    assert "self-method" in rules("self.pang()")
    assert "self-method" in rules("super().run()")  # run is Demo's own, not a base's
    assert "call-args" in rules("self.ping(1, 2)")
    assert check_python_source((shared / "first.py").read_text(), str(shared / "first.py"),
                               import_roots=[tmp_path]) == []
    assert "self-method" in {f.rule for f in check_python_source(
        (shared / "first.py").read_text().replace("Helper().echo(", "Helper().echoes("), import_roots=[tmp_path])}
