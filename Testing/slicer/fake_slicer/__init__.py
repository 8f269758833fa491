"""A small fake of the 3D Slicer Python API the AnatomyINR modules use, for executing widgets in tests.

Slicer cannot run here, so the module files are executed against this stand-in:
``install()`` puts ``slicer`` (scene, node classes, ``slicer.util``, the parameter-node
wrapper, ``ScriptedLoadableModule``, ``slicer.app``), ``qt``, ``ctk`` and a
``PyTorchUtils`` into ``sys.modules``; ``vtk`` is the real one. What it provides is
checked against the Slicer API facts in ``Testing/Data/slicer_api`` by
``test_slicer_fake_facts.py`` so it cannot drift from Slicer's signatures.

Nothing runs by itself: tests pump the fake event loop (:mod:`fake_slicer.eventloop`).
``PythonSlicer`` is a launcher script in a temporary folder put first on ``PATH``
that runs this interpreter (the worker is then the real ``python -m AnatomyINRLib``).
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
import tempfile
import types

from fake_slicer import eventloop, mrml, qtfake, qtui, util, wrapper

FAKE_MODULES = ("slicer", "slicer.util", "slicer.i18n", "slicer.parameterNodeWrapper",
                "slicer.ScriptedLoadableModule", "qt", "ctk", "PyTorchUtils", "SampleData")


def _sampleData() -> types.ModuleType:
    module = types.ModuleType("SampleData")

    class SampleDataLogic:
        registered: list = []  # the keyword arguments of every registration

        @staticmethod
        def registerCustomSampleDataSource(category="Custom", sampleName=None, uris=None, fileNames=None,
                                           nodeNames=None, customDownloader=None, thumbnailFileName=None,
                                           loadFileTypes=None, loadFiles=None, loadFileProperties={}, checksums=None,
                                           loadFileType=None):
            SampleDataLogic.registered.append({"category": category, "sampleName": sampleName, "uris": uris,
                                               "fileNames": fileNames, "nodeNames": nodeNames})

    module.SampleDataLogic = SampleDataLogic
    return module


class _Application(qtfake.QObject):
    """``slicer.app``: Qt signals (``startupCompleted()``) and ``processEvents``."""

    def processEvents(self) -> int:
        return eventloop.processEvents()


def _i18nModule() -> types.ModuleType:
    module = types.ModuleType("slicer.i18n")
    module.tr = lambda text: text
    module.translate = lambda context, text: text
    return module


def _pyTorchUtils() -> types.ModuleType:
    module = types.ModuleType("PyTorchUtils")

    class PyTorchUtilsLogic:
        installRequests: list = []

        def torchInstalled(self) -> bool:
            return importlib.util.find_spec("torch") is not None

        def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None,
                         torchvisionVersionRequirement=None):
            self.installRequests.append(torchVersionRequirement)
            return None

    module.PyTorchUtilsLogic = PyTorchUtilsLogic
    return module


def _launcher() -> str:
    """A folder holding ``PythonSlicer``: runs this interpreter with the same ``sys.path`` roots."""
    folder = tempfile.mkdtemp(prefix="fake-slicer-bin-")
    path = os.path.join(folder, "PythonSlicer")
    pythonPath = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    with open(path, "w", encoding="utf-8") as script:
        script.write(f'#!/bin/sh\nPYTHONPATH="{pythonPath}" exec "{sys.executable}" "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return folder


def install() -> types.ModuleType:
    """Put the fake modules into ``sys.modules`` with a fresh scene; returns the fake ``slicer``."""
    slicer = types.ModuleType("slicer")
    slicer.__path__ = []  # a package, so ``import slicer.util`` works
    for name, cls in vars(mrml).items():
        if name.startswith(("vtkMRML", "vtkSegment")) and isinstance(cls, type):
            setattr(slicer, name, cls)
    slicer.mrmlScene = mrml.vtkMRMLScene()
    slicer.app = _Application()
    markupsLogic = mrml.vtkSlicerMarkupsLogic()
    slicer.modules = types.SimpleNamespace(markups=types.SimpleNamespace(logic=lambda: markupsLogic))
    utilModule = types.ModuleType("slicer.util")
    for name in dir(util):
        value = getattr(util, name)
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", "") == util.__name__:
            setattr(utilModule, name, value)
    wrapperModule = types.ModuleType("slicer.parameterNodeWrapper")
    for name in ("parameterNodeWrapper", "WithinRange", "Choice"):
        setattr(wrapperModule, name, getattr(wrapper, name))
    slmModule = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                 "ScriptedLoadableModuleTest"):
        setattr(slmModule, name, getattr(wrapper, name))
    modules = {"slicer": slicer, "slicer.util": utilModule, "slicer.i18n": _i18nModule(),
               "slicer.parameterNodeWrapper": wrapperModule, "slicer.ScriptedLoadableModule": slmModule,
               "qt": qtui.makeQtModule(), "ctk": qtui.makeCtkModule(), "PyTorchUtils": _pyTorchUtils(),
               "SampleData": _sampleData()}
    for name, module in modules.items():
        if "." in name:
            setattr(slicer, name.split(".", 1)[1], module)
        sys.modules[name] = module
    if not os.path.isdir(os.environ.get("FAKE_SLICER_BIN", "")):
        os.environ["FAKE_SLICER_BIN"] = _launcher()
    os.environ["PATH"] = os.environ["FAKE_SLICER_BIN"] + os.pathsep + os.environ["PATH"]
    eventloop.reset()
    util.dialogs.clear()
    util.pipRequests.clear()
    util.pipConstraints.clear()
    util.answers["confirm"] = True
    return slicer


def uninstall(keep=()) -> None:
    """Remove the fake modules and every module imported while they were installed (except ``keep``)."""
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)
    folder = os.environ.get("FAKE_SLICER_BIN", "")
    os.environ["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != folder)
    eventloop.reset()
