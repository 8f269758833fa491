"""The computation behind "Nested walls", with no Slicer and no Qt.

Two or three point sets (RAS mm, innermost first: lumen, [inner wall,] outer
wall) → one nested surface each, thickness maps, volumes, Dmax. The work runs
in the library's ``fit-nested`` worker (``python -m AnatomyINRLib fit-nested
... --json-progress``):

- :func:`writeWorkerInputs` writes the point sets (RAS ``.mrk.json``) and
  :func:`workerArguments` builds the ``fit-nested`` arguments;
- :func:`readWorkerResult` reads the meshes (``PREFIX_<name>.vtp``, innermost
  first, with ``thickness_mm`` point scalars) and the report;
- :func:`measurementRows`, :func:`dmaxEndpoints`, :func:`thicknessRange`,
  :func:`legendEntries` and :func:`summaryText` turn the report into the table
  node, the Dmax line, the colour scale and the panel text.

The library (and torch) is imported inside the functions: this file is
imported when Slicer loads the module, before dependencies are installed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from AnatomyINRLib.core.types import PointSet, TriangleMesh

PRESETS = ("fast", "default", "accurate", "paper")  # AnatomyINRLib.nested.config.PRESETS (tested)
NAMES = ("lumen", "inner", "outer")  # AnatomyINRLib.nested.config.DEFAULT_NAMES (tested)
MIN_POINTS = 10
THICKNESS_ARRAY = "thickness_mm"  # AnatomyINRLib.nested.analysis.THICKNESS (tested)
SURFACE_TITLES = {"lumen": "Lumen", "inner": "Inner wall", "outer": "Outer wall"}
SHELL_TITLES = {"thrombus": "Thrombus", "wall": "Wall", "thrombus_and_wall": "Thrombus and wall"}
SURFACE_COLORS = {"lumen": (0.80, 0.20, 0.18), "inner": (0.96, 0.86, 0.62), "outer": (0.95, 0.76, 0.31)}
SURFACE_OPACITY = {"lumen": 1.0, "inner": 0.6, "outer": 0.35}  # see the inner surfaces through the outer ones
# Thickness colour scale: a perceptually ordered dark-blue → teal → yellow ramp (anchors in RGB 0..1).
_RAMP = np.array([[0.27, 0.00, 0.33], [0.23, 0.32, 0.55], [0.13, 0.57, 0.55], [0.37, 0.79, 0.38], [0.99, 0.91, 0.14]])


def surfaceNames(count: int) -> list[str]:
    """Names of ``count`` surfaces, innermost first (the worker's defaults: lumen, [inner,] outer)."""
    if count not in (2, 3):
        raise ValueError(f"surfaces: expected 2 or 3 point sets (innermost first), got {count}")
    return list(NAMES) if count == 3 else [NAMES[0], NAMES[2]]


@dataclass
class NestedOptions:
    """What the user chooses (lengths in mm).

    Attributes:
        preset: Fit preset ("fast", "default", "accurate", "paper").
        minThicknessMm: Minimum distance between consecutive surfaces (held everywhere by construction).
        spacingMm: Grid spacing on which all surfaces are extracted.
        seed: Random seed of the fit.
        device: "auto", "cpu" or "cuda".
        iterations: Optional override of the preset's iteration budget.
        threads: Optional CPU thread count of the worker.
    """

    preset: str = "default"
    minThicknessMm: float = 0.0
    spacingMm: float = 0.5
    seed: int = 0
    device: str = "auto"
    iterations: Optional[int] = None
    threads: Optional[int] = None

    def validate(self) -> None:
        """Raise ValueError naming the first invalid option."""
        if self.preset not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {self.preset!r}")
        if not (math.isfinite(self.minThicknessMm) and self.minThicknessMm >= 0):
            raise ValueError(f"minThicknessMm: expected a thickness >= 0 mm, got {self.minThicknessMm}")
        if not (math.isfinite(self.spacingMm) and self.spacingMm > 0):
            raise ValueError(f"spacingMm: expected a positive spacing in mm, got {self.spacingMm}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations: expected a positive count, got {self.iterations}")


def checkPointSets(pointSets: Sequence[PointSet]) -> list[str]:
    """Names for the point sets; ValueError if there are not 2–3 sets of at least ``MIN_POINTS`` finite points."""
    names = surfaceNames(len(pointSets))
    for name, pointSet in zip(names, pointSets):
        points = np.asarray(pointSet.points, dtype=np.float64).reshape(-1, 3)
        if len(points) < MIN_POINTS:
            raise ValueError(f"{name} points: at least {MIN_POINTS} placed points are needed, got {len(points)}")
        if not np.all(np.isfinite(points)):
            raise ValueError(f"{name} points: some coordinates are not finite")
    return names


@dataclass(frozen=True)
class WorkFiles:
    """Files of one worker run, all in one temporary folder."""

    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def points(self, name: str) -> str:
        return self.path(f"{name}.mrk.json")

    @property
    def prefix(self) -> str:
        return self.path("walls")

    def mesh(self, name: str) -> str:
        return f"{self.prefix}_{name}.vtp"  # the worker's PREFIX_<name>.vtp

    @property
    def report(self) -> str:
        return self.path("report.json")


def writeWorkerInputs(files: WorkFiles, pointSets: Sequence[PointSet]) -> list[str]:
    """Write the point sets (RAS .mrk.json), innermost first; returns their paths."""
    from AnatomyINRLib.io.points import write_points

    names = checkPointSets(pointSets)
    paths = [files.points(name) for name in names]
    for pointSet, path in zip(pointSets, paths):
        write_points(pointSet, path, coordinate_system="RAS")
    return paths


def workerArguments(files: WorkFiles, pointPaths: Sequence[str], options: NestedOptions) -> list[str]:
    """Arguments of ``fit-nested`` (AnatomyINRLib/cli/fit_nested.py) for these files and options."""
    from AnatomyINRSlicerLib.worker_protocol import cli_arguments

    options.validate()
    return cli_arguments([], (
        ("--points", list(pointPaths)), ("--names", surfaceNames(len(pointPaths))),
        ("--output-prefix", files.prefix), ("--min-thickness", float(options.minThicknessMm)),
        ("--preset", options.preset), ("--spacing", float(options.spacingMm)), ("--iterations", options.iterations),
        ("--seed", options.seed), ("--device", options.device), ("--threads", options.threads),
        ("--report", files.report),
    ))


@dataclass
class NestedResult:
    """Meshes (innermost first, with ``thickness_mm`` point scalars) and the worker's report."""

    meshes: list
    names: list
    report: dict = field(default_factory=dict)


def readWorkerResult(files: WorkFiles, names: Sequence[str]) -> NestedResult:
    """Read the meshes and the report of a successful run (ValueError if something is missing)."""
    from AnatomyINRLib.io.meshes import read_mesh
    from AnatomyINRSlicerLib.worker_protocol import read_report

    report = read_report(files.report)
    if list(report.get("names", [])) != list(names) or "volumes" not in report:
        raise ValueError("the worker's report does not describe the requested surfaces")
    meshes = [read_mesh(files.mesh(name)) for name in names]
    for name, mesh in zip(names, meshes):
        if THICKNESS_ARRAY not in mesh.point_data:
            raise ValueError(f"{name}: the mesh has no {THICKNESS_ARRAY} point scalars")
    return NestedResult(meshes, list(names), report)


def shellNames(report: dict) -> list[str]:
    """Shells between consecutive surfaces (thrombus, wall, ...), from the report's volume keys."""
    surfaces = set(report["names"])
    return [key[:-4] for key in report["volumes"] if key.endswith("_mm3") and key[:-4] not in surfaces]


def measurementRows(report: dict) -> list[tuple[str, Optional[float], str]]:
    """``(measure, value, unit)`` rows for the table node: volumes, Dmax, thickness, violations."""
    volumes, names = report["volumes"], report["names"]
    rows = [(f"{SURFACE_TITLES.get(names[0], names[0])} volume", volumes[f"{names[0]}_mm3"] / 1000.0, "mL")]
    for shell in shellNames(report):
        rows.append((f"{SHELL_TITLES.get(shell, shell)} volume", volumes[f"{shell}_mm3"] / 1000.0, "mL"))
    rows.append(("Total volume (inside the outer wall)", volumes[f"{names[-1]}_mm3"] / 1000.0, "mL"))
    dmax = report.get("dmax")
    rows.append(("Maximum diameter (Dmax)", None if dmax is None else float(dmax["dmax_mm"]), "mm"))
    if dmax is not None:
        rows.append(("Dmax position along the centreline", float(dmax["arc_length_mm"]), "mm"))
    for name in names:
        stats = report["thickness"][name]
        title = SURFACE_TITLES.get(name, name)
        rows.append((f"{title}: median thickness", float(stats["median"]), "mm"))
        rows.append((f"{title}: 95th percentile thickness", float(stats["p95"]), "mm"))
    violations = report["violations"]["meshes"]
    rows.append(("Nesting violation volume", float(sum(v["volume_mm3"] for v in violations)), "mm³"))
    rows.append(("Vertices outside their outer surface", float(sum(v["vertices_outside"] for v in violations)), ""))
    return rows


def dmaxEndpoints(report: dict) -> Optional[np.ndarray]:
    """(2, 3) RAS mm end points of the maximum diameter, or None if it was not measured."""
    dmax = report.get("dmax")
    if dmax is None:
        return None
    ends = np.asarray(dmax["endpoints_mm"], dtype=np.float64).reshape(2, 3)
    return ends if np.all(np.isfinite(ends)) else None


def _niceCeiling(value: float) -> float:
    """Smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is >= value (a readable scale maximum)."""
    if not value > 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * 10.0**exponent >= value * (1 - 1e-12):
            return step * 10.0**exponent
    return 10.0 ** (exponent + 1)


def thicknessRange(report: dict) -> tuple[float, float]:
    """(0, top) mm shared by all surfaces: top = a round number above every surface's 95th percentile."""
    return 0.0, _niceCeiling(max(float(s["p95"]) for s in report["thickness"].values()))


def thicknessColors(count: int = 256) -> np.ndarray:
    """(count, 3) RGB in 0..1 of the thickness scale, thin → thick."""
    position = np.linspace(0.0, len(_RAMP) - 1, count)
    low = np.minimum(np.floor(position).astype(int), len(_RAMP) - 2)
    weight = (position - low)[:, None]
    return (1 - weight) * _RAMP[low] + weight * _RAMP[low + 1]


def legendEntries(valueRange: tuple[float, float], count: int = 6) -> list[tuple[float, tuple]]:
    """``[(thickness mm, (r, g, b))]`` evenly spaced over the range, for the colour legend."""
    colors = thicknessColors(256)
    out = []
    for value in np.linspace(valueRange[0], valueRange[1], count):
        index = int(round((value - valueRange[0]) / max(valueRange[1] - valueRange[0], 1e-12) * 255))
        out.append((float(value), tuple(float(c) for c in colors[index])))
    return out


def legendHtml(entries: Sequence[tuple[float, tuple]]) -> str:
    """The colour legend as a one-row HTML table (Qt rich text): a swatch and its value in mm."""
    cells = []
    for value, (r, g, b) in entries:
        color = f"#{int(round(255 * r)):02x}{int(round(255 * g)):02x}{int(round(255 * b)):02x}"
        cells.append(f'<td style="background-color:{color}">&nbsp;&nbsp;&nbsp;&nbsp;</td><td>&nbsp;{value:g}&nbsp;</td>')
    return f"<b>Thickness (mm)</b><table cellspacing=\"0\"><tr>{''.join(cells)}</tr></table>"


def summaryText(result: NestedResult) -> str:
    """Volumes, Dmax, violations and run time, for the module panel."""
    report = result.report
    rows = {measure: (value, unit) for measure, value, unit in measurementRows(report)}
    volumes = ", ".join(f"{measure.replace(' volume', '').lower()} {value:.1f} {unit}"
                        for measure, (value, unit) in rows.items()
                        if measure.endswith(" volume") and not measure.startswith("Nesting"))
    dmax = rows["Maximum diameter (Dmax)"][0]
    lines = [f"Volumes: {volumes}",
             "Dmax: not measured" if dmax is None else f"Dmax: {dmax:.1f} mm (the Dmax line marks where)"]
    violation = rows["Nesting violation volume"][0]
    lines.append("Nesting: no violation (surfaces nested by construction)" if violation == 0 and
                 rows["Vertices outside their outer surface"][0] == 0 else
                 f"Nesting: {violation:.1f} mm³ of an inner surface outside its outer one")
    seconds = report.get("seconds", {}).get("total")
    if seconds is not None:
        lines.append(f"Fitted {len(result.names)} surfaces in {float(seconds):.1f} s "
                     f"({report.get('fit', {}).get('iterations', '?')} iterations)")
    return "\n".join(lines)
