"""The fake Slicer cannot drift from Slicer: everything it offers exists in the API facts.

The widget tests are only as good as the fake they run against. A method the fake
has and Slicer lacks would let a module call it and pass; so every ``slicer.util``
function, every MRML method, constant and event, every parameter-node wrapper export
and every ``ScriptedLoadableModule`` method the fake provides is checked against
``Testing/Data/slicer_api`` (extracted from Slicer's source), with signatures for
5.10.0 and 5.12.3 where the facts record them.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

import fake_slicer
from fake_slicer import mrml, util, wrapper

FACTS = Path(__file__).resolve().parents[1] / "Data" / "slicer_api"
UTIL = json.loads((FACTS / "slicer_util_functions.json").read_text(encoding="utf-8"))
MRML = json.loads((FACTS / "mrml_classes.json").read_text(encoding="utf-8"))["classes"]
PYTHON_API = json.loads((FACTS / "slicer_python_api.json").read_text(encoding="utf-8"))["modules"]
RELEASES = ("v5.10.0", "v5.12.3")


@pytest.fixture(scope="module")
def fakeUtil():
    before = dict(__import__("sys").modules)
    slicer = fake_slicer.install()
    yield slicer.util
    fake_slicer.uninstall()
    assert "slicer" not in __import__("sys").modules or __import__("sys").modules.get("slicer") is before.get("slicer")


def _signatureIn(function: dict, release: str):
    value = function["compat"][release]
    return function["signature"] if value == "same" else value


def _parameters(signature: str) -> str:
    return signature[signature.index("("):]


def _signature(function) -> str:
    """The signature as Slicer's facts spell it (no annotations)."""
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in inspect.signature(function).parameters.values()]
    return str(inspect.Signature(parameters))


def _fakeFunctions(module) -> dict:
    return {name: value for name, value in vars(module).items()
            if inspect.isfunction(value) and not name.startswith("_")}


def test_every_fake_util_function_exists_in_both_releases_with_the_same_parameters(fakeUtil):
    functions = {f["name"]: f for f in UTIL["functions"]}
    fakes = _fakeFunctions(fakeUtil)
    assert len(fakes) > 20
    for name, fake in fakes.items():
        assert name in functions, f"slicer.util.{name} is not a Slicer function"
        assert not functions[name]["private"], name
        for release in RELEASES:
            real = _signatureIn(functions[name], release)
            assert real is not None, f"slicer.util.{name} is absent in {release}"
            if release == "v5.10.0":  # the oldest target: the fake accepts exactly what it accepts
                assert f"{name}{_signature(fake)}" == real, (name, release)
            else:  # newer releases may add parameters, never drop or change ours
                fakeParameters = _parameters(str(_signature(fake)))[1:-1]
                assert _parameters(real)[1:-1].startswith(fakeParameters), (name, release, real)


def test_fake_util_classes_have_only_slicer_methods(fakeUtil):
    classes = {c["name"]: c for c in UTIL["classes"]}
    for cls in (util.VTKObservationMixin, util.MRMLNodeNotFoundException):
        assert cls.__name__ in classes, cls.__name__
        methods = {m["name"]: m["signature"] for m in classes[cls.__name__]["methods"]}
        for name, member in vars(cls).items():
            if name.startswith("_") and name != "__init__":
                continue
            assert name in methods, f"{cls.__name__}.{name}"
            if inspect.isfunction(member):
                assert f"{name}{_signature(member)}" == methods[name], (cls.__name__, name)


def _factsMember(className: str, name: str):
    """``(kind, info)`` of ``name`` on the class or its superclasses in the facts, or None."""
    while className in MRML:
        info = MRML[className]
        if name in info["methods"]:
            return "method", info["methods"][name]
        for enum in info.get("enums", {}).values():
            if name in enum:
                return "constant", None
        className = info["superclass"]
    return None


def _fakeMrmlClasses() -> list:
    return [cls for name, cls in vars(mrml).items() if isinstance(cls, type) and name.startswith("vtk")]


def test_every_fake_mrml_class_exists_with_its_slicer_superclass():
    for cls in _fakeMrmlClasses():
        assert cls.__name__ in MRML, cls.__name__
        if cls.__name__ != "vtkObject":
            assert MRML[cls.__name__]["superclass"] == cls.__bases__[0].__name__, cls.__name__


def test_every_fake_mrml_method_constant_and_event_exists_on_that_class_in_slicer():
    checked = 0
    for cls in _fakeMrmlClasses():
        for name, member in vars(cls).items():
            if not name[:1].isupper():
                continue  # private helpers and test helpers are lower case
            found = _factsMember(cls.__name__, name)
            assert found is not None, f"{cls.__name__}.{name} is not in mrml_classes.json"
            kind, info = found
            if callable(member) or isinstance(member, classmethod):
                assert kind == "method", f"{cls.__name__}.{name}"
                assert info["wrapped"] and not info.get("deprecated"), f"{cls.__name__}.{name}"
            else:
                assert kind == "constant", f"{cls.__name__}.{name}"
            checked += 1
    assert checked > 80


def _cxxParameters(signature: str) -> tuple:
    """``(count, with default)`` of the parameters of a C++ declaration (no nested parentheses in defaults)."""
    inner = signature[signature.index("(") + 1:signature.rindex(")")].strip()
    parameters = [p for p in inner.split(",") if p.strip()] if inner else []
    return len(parameters), sum("=" in p for p in parameters)


def test_fake_markups_logic_methods_take_slicers_parameters():
    """The module logic calls the modules make (place mode, active list, view jumps) accept what Slicer's do."""
    methods = MRML["vtkSlicerMarkupsLogic"]["methods"]
    fakes = {n: m for n, m in vars(mrml.vtkSlicerMarkupsLogic).items() if n[:1].isupper() and callable(m)}
    assert {"SetActiveList", "StartPlaceMode", "JumpSlicesToNthPointInMarkup"} <= set(fakes)
    for name, fake in fakes.items():
        parameters = list(inspect.signature(fake).parameters.values())[1:]  # without self
        fakeShape = (len(parameters), sum(p.default is not inspect.Parameter.empty for p in parameters))
        shapes = [_cxxParameters(s) for s in methods[name]["signatures"]]
        assert fakeShape in shapes, (name, fakeShape, methods[name]["signatures"])


def test_scene_close_and_point_events_are_slicer_events():
    for cls, names in ((mrml.vtkMRMLScene, ("StartCloseEvent", "EndCloseEvent", "NodeAddedEvent", "NodeRemovedEvent")),
                       (mrml.vtkMRMLMarkupsNode, ("PointAddedEvent", "PointModifiedEvent", "PointRemovedEvent"))):
        for name in names:
            assert _factsMember(cls.__name__, name) == ("constant", None), name


def test_parameter_node_wrapper_exports_and_scripted_module_methods_exist(fakeUtil):
    import slicer

    exported = set()
    for info in PYTHON_API["slicer.parameterNodeWrapper"]["files"].values():
        exported.update(info["__all__"] or [])
    names = [n for n in vars(slicer.parameterNodeWrapper) if not n.startswith("_")]
    assert set(names) <= exported and {"parameterNodeWrapper", "WithinRange", "Choice"} <= set(names)
    classes = {c["name"]: c for c in PYTHON_API["slicer.ScriptedLoadableModule"]["classes"]}
    for cls in (wrapper.ScriptedLoadableModule, wrapper.ScriptedLoadableModuleWidget,
                wrapper.ScriptedLoadableModuleLogic, wrapper.ScriptedLoadableModuleTest):
        methods = {m["name"]: m["signature"] for m in classes[cls.__name__]["methods"]}
        for name, member in vars(cls).items():
            if inspect.isfunction(member) and (not name.startswith("_") or name == "__init__"):
                assert name in methods, f"{cls.__name__}.{name}"
                real = _parameters(methods[name])[1:-1]
                fake = _parameters(_signature(member))[1:-1]
                assert real.startswith(fake.split(",")[0]) and len(fake.split(",")) <= len(real.split(",")), (
                    cls.__name__, name, real, fake)


def test_fake_sample_data_registration_has_slicers_signature(fakeUtil):
    import SampleData

    classes = {c["name"]: c for c in PYTHON_API["SampleData"]["classes"]}
    methods = {m["name"]: m["signature"] for m in classes["SampleDataLogic"]["methods"]}
    fake = SampleData.SampleDataLogic.registerCustomSampleDataSource
    assert f"registerCustomSampleDataSource{_signature(fake)}" == methods["registerCustomSampleDataSource"]
