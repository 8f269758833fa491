"""Layout, CMake, .ui and index-JSON rules: the real extension passes, planted mistakes are caught.

Mistakes are planted in a copy of the extension under ``tmp_path``; each test
asserts that the mistake adds a finding of the expected rule.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from slicer_static_check import check_extension, write_package_lists

REPO = Path(__file__).resolve().parents[2]
MODULE = "AnatomyINR/AnatomyINRSurfaceFromPoints"
UI = f"{MODULE}/Resources/UI/AnatomyINRSurfaceFromPoints.ui"
COPIED = ("CMakeLists.txt", "LICENSE", "AnatomyINR.json", "AnatomyINR", "AnatomyINRLib", "Resources",
          "docs/modules/images", "README.md")


def test_real_extension_has_no_findings():
    findings = check_extension(REPO)
    assert findings == [], "\n".join(str(f) for f in findings)


@pytest.fixture
def tree(tmp_path):
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp_path / name)
    return tmp_path


def new_rules(tree, plant):
    before = set(check_extension(tree))
    plant(tree)
    return {f.rule for f in set(check_extension(tree)) - before}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_cmake_lists_missing_file(tree):
    plant = lambda t: edit(t / MODULE / "CMakeLists.txt", "${MODULE_NAME}Lib/compute.py",
                           "${MODULE_NAME}Lib/compute.py\n  ${MODULE_NAME}Lib/solver.py")
    assert "cmake-missing" in new_rules(tree, plant)


def test_cmake_misses_a_package_file(tree):
    plant = lambda t: (t / MODULE / "AnatomyINRSurfaceFromPointsLib" / "extra.py").write_text("X = 1\n")
    assert "cmake-unlisted" in new_rules(tree, plant)


def test_cmake_misses_a_resource(tree):
    plant = lambda t: (t / MODULE / "Resources" / "AnatomyINRSurfaceFromPoints.json").write_text("{}")
    assert "cmake-unlisted" in new_rules(tree, plant)


def test_cmake_unknown_macro_keyword(tree):
    plant = lambda t: edit(t / MODULE / "CMakeLists.txt", "WITH_GENERIC_TESTS", "WITH_GENERIC_TESTS\n  PYTHON_LIBS x")
    assert "cmake-keyword" in new_rules(tree, plant)


def test_unregistered_slicer_test_script(tree):
    plant = lambda t: (t / MODULE / "Testing" / "Python" / "ExtraTest.py").write_text("import unittest\n")
    assert "cmake-unlisted" in new_rules(tree, plant)


def test_stray_top_level_python_file_in_module(tree):
    plant = lambda t: (t / MODULE / "helpers.py").write_text("X = 1\n")
    assert {"module-file", "cmake-unlisted"} <= new_rules(tree, plant)


def test_module_not_added_to_cmake(tree):
    plant = lambda t: edit(t / "AnatomyINR" / "CMakeLists.txt", "add_subdirectory(AnatomyINRSurfaceFromPoints)", "")
    assert "cmake-unlisted" in new_rules(tree, plant)


def test_library_package_list_must_match_disk(tree):
    write_package_lists(tree)  # start from lists matching this copy
    assert not [f for f in check_extension(tree) if f.path.startswith("AnatomyINRLib/")]
    (tree / "AnatomyINRLib" / "core" / "extra_module.py").write_text("X = 1\n")
    listed = [f for f in check_extension(tree) if f.rule == "cmake-unlisted" and "core/extra_module.py" in f.message]
    assert listed
    write_package_lists(tree)
    assert "  core/extra_module.py\n" in (tree / "AnatomyINRLib" / "CMakeLists.txt").read_text()
    assert not [f for f in check_extension(tree) if f.path.startswith("AnatomyINRLib/")]


def test_library_list_naming_a_deleted_file(tree):
    write_package_lists(tree)
    plant = lambda t: (t / "AnatomyINRLib" / "core" / "errors.py").unlink()
    assert "cmake-missing" in new_rules(tree, plant)


def test_package_installed_outside_qt_scripted_modules(tree):
    plant = lambda t: edit(t / "AnatomyINRLib" / "CMakeLists.txt", "${Slicer_QTSCRIPTEDMODULES_LIB_DIR}/AnatomyINRLib",
                           "${Slicer_QTSCRIPTEDMODULES_LIB_DIR}/lib")
    assert "cmake-package" in new_rules(tree, plant)


def test_index_json_extra_key(tree):
    def plant(t):
        data = json.loads((t / "AnatomyINR.json").read_text())
        data["homepage"] = "https://example.org"
        (t / "AnatomyINR.json").write_text(json.dumps(data))
    assert "index-json" in new_rules(tree, plant)


def test_index_json_dependencies_differ_from_cmake(tree):
    plant = lambda t: edit(t / "CMakeLists.txt", 'set(EXTENSION_DEPENDS "PyTorch")', 'set(EXTENSION_DEPENDS "PyTorch SlicerVMTK")')
    assert "index-json" in new_rules(tree, plant)


def test_missing_extension_metadata(tree):
    plant = lambda t: edit(t / "CMakeLists.txt", 'set(EXTENSION_CONTRIBUTORS "AnatomyINR developers")', "")
    assert "extension-metadata" in new_rules(tree, plant)


def test_icon_url_to_missing_file(tree):
    plant = lambda t: (t / "Resources" / "Icons" / "AnatomyINR.png").unlink()
    assert "extension-url" in new_rules(tree, plant)


def test_license_file_missing(tree):
    plant = lambda t: (t / "LICENSE").unlink()
    assert {"license", "extension-file"} <= new_rules(tree, plant)


def test_ui_not_well_formed(tree):
    plant = lambda t: edit(t / UI, "</ui>", "")
    assert "ui-xml" in new_rules(tree, plant)


def test_ui_parameter_name_not_a_field(tree):
    plant = lambda t: edit(t / UI, "<string>spacingMm</string>", "<string>spacing</string>")
    assert "ui-parameter" in new_rules(tree, plant)


def test_ui_widget_cannot_show_field_type(tree):
    plant = lambda t: edit(t / UI, "<string>autoUpdate</string>", "<string>spacingMm</string>")
    assert "ui-parameter" in new_rules(tree, plant)


def test_ui_node_type_not_in_facts(tree):
    plant = lambda t: edit(t / UI, "<string>vtkMRMLMarkupsCurveNode</string>", "<string>vtkMRMLMarkupsSplineNode</string>")
    assert "mrml-class" in new_rules(tree, plant)


def test_ui_node_type_incompatible_with_field(tree):
    plant = lambda t: edit(t / UI, "<string>vtkMRMLMarkupsCurveNode</string>", "<string>vtkMRMLModelNode</string>")
    assert "ui-parameter" in new_rules(tree, plant)


def test_ui_selector_without_scene(tree):
    def plant(t):
        text = (t / UI).read_text()
        text = re.sub(r"\s*<connection>\s*<sender>\w+</sender>\s*<signal>[^<]+</signal>\s*"
                      r"<receiver>outputModelSelector</receiver>.*?</connection>", "", text, flags=re.S)
        (t / UI).write_text(text)
    assert "ui-scene" in new_rules(tree, plant)


def test_code_uses_widget_missing_from_ui(tree):
    plant = lambda t: edit(t / UI, 'name="cancelButton"', 'name="stopButton"')
    assert "ui-object" in new_rules(tree, plant)
