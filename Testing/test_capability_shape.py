"""Every capability package has the same inner shape (docs/architecture.md), so a newcomer who knows one knows all.

- ``__init__.py`` exports only the public API: entry functions (from ``api.py``),
  config dataclasses and presets (from ``config.py``), result dataclasses, and
  the few input types a caller must build;
- entry functions take their inputs first, then keyword-only options with
  ``progress`` and ``should_cancel``; the ones that draw random numbers or run
  networks also take ``seed`` and ``device``, and ``config`` or ``preset``;
- result dataclasses carry a ``report`` dict and typed fields (no ``object``/``Any``).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import AnatomyINRLib

LIBRARY = Path(AnatomyINRLib.__file__).resolve().parent
CAPABILITIES = ("surface", "nested", "blend", "pulmonary", "trees", "image_to_mesh")
# Input types a caller builds to call an entry function (not results, not internals).
INPUT_TYPES = {("blend", "BlendInput"), ("blend", "ClipPlane")}
# Pure measurements: no randomness, no long loops worth cancelling.
NO_PROGRESS: set = set()
# Entry functions that fit networks (random initialisation, a device to run on).
FITTING = {("surface", "fit_points"), ("nested", "reconstruct_nested"), ("blend", "blend_surfaces"),
           ("blend", "prepare_inputs"), ("trees", "fit_trees"), ("trees", "train_model"),
           ("image_to_mesh", "pretrain_representation"), ("image_to_mesh", "train_shape_model")}


def test_every_capability_package_is_listed():
    """A new capability package joins CAPABILITIES (and so these checks) by having an api.py."""
    found = {p.parent.name for p in LIBRARY.glob("*/api.py") if p.parent.name not in ("meshing",)}
    assert found == set(CAPABILITIES)


@pytest.mark.parametrize("cap", CAPABILITIES)
def test_files(cap):
    folder = LIBRARY / cap
    assert {"__init__.py", "api.py", "config.py"} <= {p.name for p in folder.iterdir()}


def _results(cap) -> list:
    """Dataclasses defined in the capability's api.py and exported: what entry functions return."""
    package = importlib.import_module(f"AnatomyINRLib.{cap}")
    return [getattr(package, n) for n in package.__all__ if inspect.isclass(getattr(package, n))
            and dataclasses.is_dataclass(getattr(package, n))
            and getattr(package, n).__module__ == f"AnatomyINRLib.{cap}.api"]


@pytest.mark.parametrize("cap", CAPABILITIES)
def test_init_exports_only_the_public_api(cap):
    package = importlib.import_module(f"AnatomyINRLib.{cap}")
    # Types of the results' fields (e.g. nested's DiameterResult) are part of what a caller receives.
    parts = {f.type.split("[")[-1].rstrip("]").replace("Optional[", "") for cls in _results(cap)
             for f in dataclasses.fields(cls)}
    for name in package.__all__:
        obj = getattr(package, name)
        home = getattr(obj, "__module__", None) or ""
        if (cap, name) in INPUT_TYPES or name in parts or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # documented input types, parts of results; constants (label/preset tables) of config.py
        # Config dataclasses may come from the shared fitting engine's config (surface's LossConfig...).
        assert home in (f"AnatomyINRLib.{cap}.api", f"AnatomyINRLib.{cap}.config", "AnatomyINRLib.fitting.config"), \
            f"{cap}.{name} comes from {home}: not part of the API"


def _entry_functions(cap):
    package = importlib.import_module(f"AnatomyINRLib.{cap}")
    api = importlib.import_module(f"AnatomyINRLib.{cap}.api")
    return [(n, getattr(package, n)) for n in package.__all__
            if inspect.isfunction(getattr(package, n)) and getattr(package, n).__module__ == api.__name__]


@pytest.mark.parametrize("cap", CAPABILITIES)
def test_entry_function_signatures(cap):
    functions = _entry_functions(cap)
    assert 1 <= len(functions) <= 3, f"{cap}: expected 1-3 entry functions, got {[n for n, _ in functions]}"
    for name, fn in functions:
        params = inspect.signature(fn).parameters
        keyword_only = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        if (cap, name) not in NO_PROGRESS:
            assert {"progress", "should_cancel"} <= keyword_only, f"{cap}.{name}: progress/should_cancel"
        if (cap, name) in FITTING:
            assert {"seed", "device"} <= keyword_only, f"{cap}.{name}: seed/device"
            assert {"config"} <= keyword_only and ("preset" in keyword_only or cap == "blend"), f"{cap}.{name}"


@pytest.mark.parametrize("cap", CAPABILITIES)
def test_results_are_typed_and_carry_a_report(cap):
    results = _results(cap)
    assert results, f"{cap}: no result dataclass exported"
    for cls in results:
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        assert "report" in fields, f"{cls.__name__}: no report"
        for fname, ftype in fields.items():
            assert str(ftype) not in ("object", "Any", "typing.Any"), f"{cls.__name__}.{fname} is untyped"
