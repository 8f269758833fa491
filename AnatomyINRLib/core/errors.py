"""Error hierarchy.

Every failure the library raises on purpose derives from ``AnatomyINRError`` so
callers (CLI, Slicer Logic) can show a one-line message instead of a traceback.
``InputError`` also derives from ``ValueError`` so generic callers that catch
``ValueError`` for bad arguments keep working.
"""


class AnatomyINRError(Exception):
    """Base class of every error raised on purpose by AnatomyINRLib."""


class InputError(AnatomyINRError, ValueError):
    """An argument or input file is invalid; the message names it and what was expected."""


class OutputError(AnatomyINRError, OSError):
    """An output could not be written (unwritable folder, unknown format...)."""


class FitError(AnatomyINRError, RuntimeError):
    """Fitting failed (diverged, produced no surface...)."""


class DependencyError(AnatomyINRError, ImportError):
    """An optional dependency is missing; the message says what to install."""


class Cancelled(AnatomyINRError):
    """The caller asked to stop; raised from inside a progress callback or cancel check."""
