"""Centreline graphs (vessel/airway trees) as JSON: points, parent, radius.

File layout (``.centerline.json``, RAS mm)::

    {"format": "anatomy-inr-centerline", "format_version": 1, "units": "mm", "frame": "RAS",
     "points": [[x, y, z], ...], "parent": [-1, 0, ...], "radius": [r0, r1, ...], "info": {...}}

Node k ≠ 0 is joined to ``parent[k]`` by a tube of radius ``radius[k]``
(see :class:`~AnatomyINRLib.core.types.CenterlineGraph`). ``info`` carries
free JSON (generator parameters, tree statistics).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.core.types import CenterlineGraph
from AnatomyINRLib.io.atomic import atomic_path
from AnatomyINRLib.io.formats import check_readable

FORMAT_NAME = "anatomy-inr-centerline"
FORMAT_VERSION = 1
EXTENSION = ".centerline.json"


def _check_name(path, argument: str) -> None:
    if not str(path).lower().endswith(EXTENSION):
        raise InputError(f"{argument} {str(path)!r}: expected a {EXTENSION} file")


def write_centerline(graph: CenterlineGraph, path: "str | os.PathLike", info: Optional[dict] = None) -> None:
    """Write ``graph`` (and ``info``) atomically as ``<name>.centerline.json``."""
    _check_name(path, "path")
    data = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "units": "mm", "frame": "RAS",
            "points": graph.points.tolist(), "parent": graph.parent.tolist(), "radius": graph.radius.tolist(),
            "info": dict(info or {})}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, allow_nan=False), encoding="utf-8")


def read_centerline(path: "str | os.PathLike") -> tuple[CenterlineGraph, dict]:
    """Read a file written by :func:`write_centerline`.

    Returns:
        (CenterlineGraph, info dict).

    Raises:
        InputError: missing, unreadable or foreign file, or an invalid graph.
    """
    _check_name(path, "path")
    path = check_readable(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"path {str(path)!r}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise InputError(f"path {str(path)!r}: not an AnatomyINR centreline file")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"path {str(path)!r}: written by a newer AnatomyINR; update the library")
    try:
        graph = CenterlineGraph(data["points"], data["parent"], data["radius"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"path {str(path)!r}: expected points, parent and radius lists ({exc})") from exc
    except InputError as exc:
        raise InputError(f"path {str(path)!r}: {exc}") from exc
    return graph, dict(data.get("info") or {})
