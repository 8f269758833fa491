"""Sample point lists: shipped files are what the generator makes, and each module registers them at startup."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np

from AnatomyINRLib.io.points import read_points
from AnatomyINRSlicerLib import sample_data

REPO = Path(__file__).resolve().parents[2]
AORTA = REPO / "Testing" / "Data" / "vmtk" / "aorta-surface.stl"
BRANCHES = REPO / "Testing" / "Data" / "vmtk" / "aorta-surface-branch-split.vtp"


def test_shipped_samples_are_what_the_generator_makes():
    made = sample_data.makeSamplePoints(str(AORTA), str(BRANCHES))
    for module, samples in sample_data.SAMPLES.items():
        for _name, fileNames, _nodes in samples:
            for fileName in fileNames:
                shipped = read_points(REPO / "AnatomyINR" / module / "Resources" / "SampleData" / fileName)
                np.testing.assert_allclose(shipped.points, made[fileName].points, atol=1e-6)
    assert len(made["AortaPoints.mrk.json"].points) == 400 and len(made["AAAPhantomPoints.mrk.json"].points) == 300
    branches = [made[f"AortaBranch{g}Points.mrk.json"].points for g in sample_data.BRANCH_GROUPS]
    whole = made["AortaPoints.mrk.json"].points
    for points in branches:  # each branch is a distinct part of the same aorta
        assert len(points) == 200 and np.all(points.min(axis=0) >= whole.min(axis=0) - 1.0)
        assert np.all(points.max(axis=0) <= whole.max(axis=0) + 1.0)
    centres = np.array([p.mean(axis=0) for p in branches])
    assert min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)) > 10.0


def test_samples_are_registered_once_slicer_has_started(fakeSlicer):
    import SampleData

    for moduleName in sample_data.SAMPLES:
        module = importlib.import_module(moduleName)
        getattr(module, moduleName)(type("Parent", (), {})())
    assert SampleData.SampleDataLogic.registered == []  # nothing before startup completes
    fakeSlicer.app.emit("startupCompleted")
    registered = {entry["sampleName"]: entry for entry in SampleData.SampleDataLogic.registered}
    assert set(registered) == {name for samples in sample_data.SAMPLES.values() for name, _f, _n in samples}
    for entry in registered.values():
        assert entry["category"] == "AnatomyINR" and len(entry["uris"]) == len(entry["nodeNames"])
        for uri, fileName in zip(entry["uris"], entry["fileNames"]):
            path = Path(url2pathname(urlparse(uri).path))
            assert path.name == fileName and json.loads(path.read_text(encoding="utf-8"))["markups"]
