"""The computation behind "Vessel blend", with no Slicer and no Qt.

Meshes (models, segments) and point sets (point lists) in RAS mm → one smooth,
watertight surface and its quality report. The work runs in the library's
``blend`` worker (``python -m AnatomyINRLib blend ... --json-progress``):

- :func:`writeWorkerInputs` writes every input to the run folder (meshes as
  ``.vtp``, points as RAS ``.mrk.json``), in the order given;
- :func:`workerArguments` builds the ``blend`` arguments (radius, per-input
  radii, spacing, fit preset, end clipping);
- :func:`readWorkerResult` reads the mesh and the report back, and
  :func:`qualitySummary` / :func:`fidelityRows` / :func:`summaryText` turn the
  report into what the module shows.

The library (and torch) is imported inside the functions: this file is
imported when Slicer loads the module, before dependencies are installed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from AnatomyINRLib.core.types import PointSet, TriangleMesh

PRESETS = ("fast", "default", "accurate", "paper")  # AnatomyINRLib.surface.config.PRESETS (tested)
# "auto": no preset is passed, so the library uses blend's own fit settings (the default
# preset with a shorter budget and lighter sampling); a named preset is used as defined.
AUTO_PRESET = "auto"
PRESET_CHOICES = (AUTO_PRESET,) + PRESETS
MIN_INPUTS = 2
MIN_POINTS = 10  # a point-set input is fitted with an INR: too few points give no closed surface
OUTPUT_COLOR = (0.85, 0.37, 0.32)
MAX_RADIUS_MM = 20.0


@dataclass
class BlendOptions:
    """What the user chooses (lengths in mm).

    Attributes:
        radiusMm: Fillet radius k of the smooth union (0 = plain union).
        spacingMm: Grid spacing of the output surface.
        preset: INR fit preset for point sets and open meshes; "auto" = the blend's own settings.
        clipOpenEnds: Cut the INRs of open vessel meshes flat at their open ends.
        radiiMm: Optional per-input radius (one per input): where that input
            joins the inputs listed before it; None = ``radiusMm`` everywhere.
        seed: Random seed of the INR fits.
        device: "auto", "cpu" or "cuda".
        iterations: Optional INR iteration budget (the library's default otherwise).
        threads: Optional CPU thread count of the worker.
    """

    radiusMm: float = 2.0
    spacingMm: float = 0.5
    preset: str = AUTO_PRESET
    clipOpenEnds: bool = True
    radiiMm: Optional[list] = None
    seed: int = 0
    device: str = "auto"
    iterations: Optional[int] = None
    threads: Optional[int] = None

    def validate(self, inputCount: int) -> None:
        """Raise ValueError naming the first invalid option."""
        if self.preset not in PRESET_CHOICES:
            raise ValueError(f"preset: expected one of {', '.join(PRESET_CHOICES)}, got {self.preset!r}")
        for name, value in [("radiusMm", self.radiusMm)] + [(f"radiiMm[{i}]", r) for i, r in enumerate(self.radiiMm or [])]:
            if not (math.isfinite(value) and 0.0 <= value <= MAX_RADIUS_MM):
                raise ValueError(f"{name}: expected a fillet radius in [0, {MAX_RADIUS_MM:g}] mm, got {value}")
        if not (math.isfinite(self.spacingMm) and self.spacingMm > 0):
            raise ValueError(f"spacingMm: expected a positive spacing in mm, got {self.spacingMm}")
        if self.radiiMm is not None and len(self.radiiMm) != inputCount:
            raise ValueError(f"radiiMm: expected one radius per input ({inputCount}), got {len(self.radiiMm)}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations: expected a positive count, got {self.iterations}")


@dataclass
class BlendSource:
    """One input: a surface mesh (closed or open) or a point set, RAS mm.

    Attributes:
        name: Shown in the quality table (the node or segment name).
        data: ``TriangleMesh`` or ``PointSet``.
    """

    name: str
    data: Union[TriangleMesh, PointSet]

    @property
    def isMesh(self) -> bool:
        return isinstance(self.data, TriangleMesh)


def checkSources(sources: Sequence[BlendSource]) -> None:
    """ValueError unless there are enough inputs, each usable."""
    if len(sources) < MIN_INPUTS:
        raise ValueError(f"inputs: at least {MIN_INPUTS} inputs are needed to blend, got {len(sources)}")
    for source in sources:
        if source.isMesh and source.data.n_faces == 0:
            raise ValueError(f"{source.name}: the surface has no triangles")
        if not source.isMesh and len(source.data.points) < MIN_POINTS:
            raise ValueError(f"{source.name}: at least {MIN_POINTS} points are needed, got {len(source.data.points)}")


@dataclass(frozen=True)
class WorkFiles:
    """Files of one worker run, all in one temporary folder."""

    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def input(self, index: int, source: BlendSource) -> str:
        return self.path(f"input{index + 1:02d}" + (".vtp" if source.isMesh else ".mrk.json"))

    @property
    def mesh(self) -> str:
        return self.path("blended.vtp")

    @property
    def report(self) -> str:
        return self.path("report.json")


def writeWorkerInputs(files: WorkFiles, sources: Sequence[BlendSource]) -> list[str]:
    """Write every input (meshes .vtp, points RAS .mrk.json); returns the paths in input order."""
    from AnatomyINRLib.io.meshes import write_mesh
    from AnatomyINRLib.io.points import write_points

    checkSources(sources)
    paths = []
    for index, source in enumerate(sources):
        path = files.input(index, source)
        if source.isMesh:
            write_mesh(source.data, path)
        else:
            write_points(source.data, path, coordinate_system="RAS")
        paths.append(path)
    return paths


def workerArguments(files: WorkFiles, inputPaths: Sequence[str], options: BlendOptions) -> list[str]:
    """Arguments of ``blend`` (AnatomyINRLib/cli/blend.py) for these files and options."""
    from AnatomyINRSlicerLib.worker_protocol import cli_arguments

    options.validate(len(inputPaths))
    return cli_arguments(inputPaths, (
        ("--output", files.mesh), ("--radius", float(options.radiusMm)),
        ("--radii", [float(r) for r in options.radiiMm] if options.radiiMm is not None else None),
        ("--spacing", float(options.spacingMm)), ("--preset", None if options.preset == AUTO_PRESET else options.preset),
        ("--no-clip-ends", not options.clipOpenEnds), ("--iterations", options.iterations),
        ("--seed", options.seed), ("--device", options.device), ("--threads", options.threads),
        ("--report", files.report),
    ))


@dataclass
class BlendResult:
    """The blended surface and the worker's report.

    Attributes:
        mesh: The surface, RAS mm, outward faces.
        report: The ``blend`` report (``surface``, ``inputs``, ``fidelity_away_from_junctions``...).
        names: Input names in input order (the report knows only file names).
    """

    mesh: TriangleMesh
    report: dict = field(default_factory=dict)
    names: list = field(default_factory=list)


def readWorkerResult(files: WorkFiles, names: Sequence[str]) -> BlendResult:
    """Read the mesh and report of a successful run."""
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRSlicerLib.worker_protocol import read_report

    report = read_report(files.report)
    if "surface" not in report:
        raise ValueError("the worker wrote no quality report")
    return BlendResult(read_mesh(files.mesh), report, list(names))


@dataclass(frozen=True)
class QualitySummary:
    """The promises the blend makes about its output, checked on the mesh itself."""

    ok: bool
    watertight: bool
    manifold: bool
    components: int
    componentsBeforeSelection: Optional[int]
    selfIntersections: int
    areaMm2: float
    volumeMm3: float


def qualitySummary(report: dict) -> QualitySummary:
    """The ``surface`` part of a ``blend`` report."""
    q = report["surface"]
    before = q.get("n_components_before_selection")
    return QualitySummary(bool(q["ok"]), bool(q["watertight"]), bool(q["manifold"]), int(q["n_components"]),
                          None if before is None else int(before), int(q["self_intersections"]),
                          float(q["area_mm2"]), abs(float(q["volume_mm3"])))


def fidelityRows(result: BlendResult) -> list[tuple]:
    """Per input: ``(name, how it was turned into a distance field, points used, mean, p95, max mm)``.

    Distances are from the input to the blended surface, measured only away
    from junctions and cut ends (None where no point qualified).
    """
    methods = {"exact_mesh_sdf": "mesh (exact distance)", "inr": "fitted INR"}
    rows = []
    for index, entry in enumerate(result.report.get("fidelity_away_from_junctions", [])):
        info = result.report["inputs"][index] if index < len(result.report.get("inputs", [])) else {}
        name = result.names[index] if index < len(result.names) else entry.get("name", str(index + 1))
        kind = {"closed_mesh": "closed mesh", "open_mesh": "open mesh", "points": "points"}.get(entry.get("kind"), "?")
        how = f"{kind}, {methods.get(info.get('method'), info.get('method', '?'))}"
        rows.append((name, how, int(entry.get("n_points_used", 0)), entry.get("mean_mm"), entry.get("p95_mm"),
                     entry.get("max_mm")))
    return rows


def flaggedRows(rows: Sequence[tuple], toleranceMm: float) -> list[int]:
    """Indices of :func:`fidelityRows` rows whose 95th-percentile distance exceeds ``toleranceMm``.

    Away from junctions a closed-mesh input should lie on the result within the
    grid spacing, so the module passes the spacing as the tolerance.
    """
    return [i for i, row in enumerate(rows) if row[4] is not None and float(row[4]) > toleranceMm]


def summaryText(result: BlendResult) -> str:
    """Pass/fail line, topology, size and run time, for the module panel."""
    q = qualitySummary(result.report)
    verdict = "Surface OK" if q.ok else "Surface check FAILED"
    dropped = ""
    if q.componentsBeforeSelection is not None and q.componentsBeforeSelection > q.components:
        dropped = f" (largest of {q.componentsBeforeSelection} kept)"
    yes = {True: "yes", False: "NO"}
    lines = [
        f"{verdict}: watertight {yes[q.watertight]}, manifold {yes[q.manifold]}, "
        f"{q.components} component{'s' if q.components != 1 else ''}{dropped}, "
        f"{q.selfIntersections} self-intersection{'s' if q.selfIntersections != 1 else ''}",
        f"Surface area: {q.areaMm2 / 100.0:.2f} cm²   Enclosed volume: {q.volumeMm3 / 1000.0:.2f} mL",
    ]
    seconds = result.report.get("seconds", {}).get("total")
    if seconds is not None:
        lines.append(f"Blended {len(result.names)} inputs in {float(seconds):.1f} s "
                     f"(grid {float(result.report.get('spacing_mm', 0.0)):g} mm)")
    return "\n".join(lines)
