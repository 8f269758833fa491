"""Shared set-up of the widget tests: the fake Slicer installed per test, module files imported fresh.

Each test gets a new fake (scene, event loop, dialogs) and imports the module file
and the Slicer-side layer anew, so nothing bound to one test's fake leaks into the
next one or into the tests that run without it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import fake_slicer
from fake_slicer import eventloop, util

# Modules that import ``slicer``/``qt`` at import time: dropped after each test.
_SLICER_BOUND = ("AnatomyINRSlicerLib.runner", "AnatomyINRSlicerLib.module_base", "AnatomyINRSlicerLib.mrml_convert",
                 "AnatomyINRSlicerLib.live", "AnatomyINRSlicerLib.panel", "AnatomyINRSurfaceFromPoints",
                 "AnatomyINRNestedWalls", "AnatomyINRVesselBlend", "AnatomyINRPulmonarySegments",
                 "AnatomyINRTreeSynthesis", "AnatomyINRShapeFromImage")


@pytest.fixture()
def fakeSlicer():
    before = set(sys.modules)
    slicer = fake_slicer.install()
    try:
        yield slicer
    finally:
        fake_slicer.uninstall()
        for name in set(sys.modules) - before:
            if name.startswith(_SLICER_BOUND):
                del sys.modules[name]


def spherePoints(count: int, center=(10.0, -20.0, 30.0), radius: float = 12.0, seed: int = 0) -> np.ndarray:
    """(count, 3) RAS mm points spread over a sphere."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return np.asarray(center) + radius * directions


def placePoints(node, points) -> None:
    """Place points one by one, as clicks in a view do (one PointAddedEvent each)."""
    for point in points:
        node.AddControlPoint(*[float(c) for c in point])


def errors() -> list:
    return [text for kind, text in util.dialogs if kind == "error"]


def waitForRun(widget, timeout: float = 240.0) -> None:
    """Pump the fake event loop until the widget's run has finished."""
    assert eventloop.pumpUntil(lambda: not widget.logic.isRunning(), timeout=timeout), "the worker did not finish"
    eventloop.processEvents()
