"""Shapes with known SDFs in RAS mm for tests, benchmarks and the demo.

Single-surface phantoms (:class:`AAAPhantom`, :class:`EllipsoidPhantom`) are
fields: ``phantom(points)`` returns the SDF (negative inside). They provide
``sdf``, ``normal``, ``bounds``, ``sample_surface``, ``volume``, ``area`` and
``name``. :class:`NestedAAAPhantom` bundles three nested surfaces.
"""

from __future__ import annotations

from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.phantoms.aaa import AAAParams, AAAPhantom
from AnatomyINRLib.phantoms.base import Phantom, UnionPhantom
from AnatomyINRLib.phantoms.ellipsoid import EllipsoidParams, EllipsoidPhantom
from AnatomyINRLib.phantoms.nested import NestedAAAParams, NestedAAAPhantom

_REGISTRY = {
    "aaa": AAAPhantom,
    "ellipsoid": EllipsoidPhantom,
    "nested-aaa": NestedAAAPhantom,
}


def phantom_names() -> list[str]:
    """Names accepted by :func:`get_phantom`."""
    return sorted(_REGISTRY)


def get_phantom(name: str, params=None):
    """A phantom by name with default (or given) parameters.

    Args:
        name: "aaa", "ellipsoid" or "nested-aaa" (case-insensitive).
        params: Optional matching params dataclass (AAAParams, EllipsoidParams,
            NestedAAAParams).

    Returns:
        AAAPhantom, EllipsoidPhantom or NestedAAAPhantom.

    Raises:
        InputError: unknown name.
    """
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise InputError(f"name: unknown phantom {name!r}; expected one of {phantom_names()}")
    return _REGISTRY[key](params)


__all__ = [
    "AAAParams",
    "AAAPhantom",
    "EllipsoidParams",
    "EllipsoidPhantom",
    "NestedAAAParams",
    "NestedAAAPhantom",
    "Phantom",
    "UnionPhantom",
    "get_phantom",
    "phantom_names",
]
