"""Shared core: typed containers, errors, progress, device, seeding, configs."""

from AnatomyINRLib.core.config import ConfigBase
from AnatomyINRLib.core.device import configure_threads, resolve_device
from AnatomyINRLib.core.errors import (
    AnatomyINRError,
    Cancelled,
    DependencyError,
    FitError,
    InputError,
    OutputError,
)
from AnatomyINRLib.core.progress import Progress, ProgressCallback, ProgressReporter
from AnatomyINRLib.core.seeding import make_generator
from AnatomyINRLib.core.types import ImageGrid, PointSet, TriangleMesh

__all__ = [
    "AnatomyINRError",
    "Cancelled",
    "ConfigBase",
    "DependencyError",
    "FitError",
    "ImageGrid",
    "InputError",
    "OutputError",
    "PointSet",
    "Progress",
    "ProgressCallback",
    "ProgressReporter",
    "TriangleMesh",
    "configure_threads",
    "make_generator",
    "resolve_device",
]
