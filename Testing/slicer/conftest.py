"""Make the Slicer-side Python importable outside Slicer for these tests.

``AnatomyINR`` holds ``AnatomyINRSlicerLib`` (its Qt-free files are tested
here) and each module folder holds its Slicer-free ``<Module>Lib`` package;
in Slicer both folders are on ``sys.path`` (qt-scripted-modules).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = ("AnatomyINRSurfaceFromPoints", "AnatomyINRVesselBlend", "AnatomyINRNestedWalls", "AnatomyINRPulmonarySegments",
           "AnatomyINRTreeSynthesis", "AnatomyINRShapeFromImage")
for folder in (REPO / "AnatomyINR", *(REPO / "AnatomyINR" / m for m in MODULES), Path(__file__).parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from trees_fixtures import treeCheckpoint  # noqa: E402,F401 - one tiny diffusion checkpoint per session
from widget_harness import fakeSlicer  # noqa: E402,F401 - the fake Slicer fixture of the widget tests
