"""File-extension handling shared by every reader and writer in ``io``.

Extensions are matched case-insensitively, and compound extensions
(``.nii.gz``, ``.mrk.json``, ``.seg.nrrd``) are recognised before the final
suffix so that ``liver.seg.nrrd`` is not mistaken for a plain ``.nrrd``.
"""

from __future__ import annotations

import os
from pathlib import Path

from AnatomyINRLib.core.errors import InputError

#: Extensions each kind of reader/writer understands (lower case, with the dot).
SUPPORTED: dict[str, tuple[str, ...]] = {
    "points": (".mrk.json", ".fcsv", ".csv", ".txt", ".npy"),
    "mesh": (".vtp", ".vtk", ".stl", ".ply", ".obj"),
    "image": (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".seg.nrrd"),
    "inr": (".safetensors", ".pt", ".pth"),
}

#: Extensions that can be read but are not written by this library.
READ_ONLY: dict[str, tuple[str, ...]] = {
    # A .seg.nrrd needs Slicer's per-segment header keys; writing a bare label
    # image under that name would load in Slicer with made-up segment names.
    "image": (".seg.nrrd",),
}

# Longest first so ".seg.nrrd" wins over ".nrrd" and ".mrk.json" over ".json".
_COMPOUND = (".nii.gz", ".mrk.json", ".seg.nrrd")


def file_extension(path: "str | os.PathLike") -> str:
    """Lower-case extension of ``path`` including compound ones.

    Examples: ``a/b.NII.GZ`` → ``.nii.gz``; ``p.mrk.json`` → ``.mrk.json``;
    ``x.y.vtp`` → ``.vtp``; ``noext`` → ``""``.
    """
    name = Path(path).name.lower()
    for ext in _COMPOUND:
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    return Path(name).suffix


def strip_extension(path: "str | os.PathLike") -> Path:
    """``path`` without its (possibly compound) extension."""
    path = Path(path)
    ext = file_extension(path)
    return path.with_name(path.name[: len(path.name) - len(ext)]) if ext else path


def format_of(path: "str | os.PathLike", kind: str, *, writing: bool = False, argument: str = "path") -> str:
    """Check that ``path`` has an extension supported for ``kind`` and return it.

    Args:
        path: File name to classify.
        kind: One of the keys of :data:`SUPPORTED` ("points", "mesh", "image", "inr").
        writing: True when the file is an output; read-only formats are then refused.
        argument: Name of the argument, for the error message.

    Returns:
        The lower-case extension, e.g. ".nii.gz".

    Raises:
        InputError: unknown extension (or read-only when writing); the message lists supported ones.
    """
    if kind not in SUPPORTED:
        raise InputError(f"kind: expected one of {sorted(SUPPORTED)}, got {kind!r}")
    ext = file_extension(path)
    allowed = SUPPORTED[kind]
    if writing:
        allowed = tuple(e for e in allowed if e not in READ_ONLY.get(kind, ()))
    if ext not in allowed:
        shown = ext or "no extension"
        message = (
            f"{argument} {str(path)!r}: unsupported {kind} file type ({shown}); "
            f"supported: {', '.join(allowed)}"
        )
        raise InputError(message)  # a wrong extension is a bad argument, reading or writing
    return ext


def check_readable(path: "str | os.PathLike", argument: str = "path") -> Path:
    """Raise InputError unless ``path`` is an existing, readable regular file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{argument} {str(path)!r}: file does not exist")
    if path.is_dir():
        raise InputError(f"{argument} {str(path)!r}: is a folder, expected a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{argument} {str(path)!r}: file is not readable (permissions)")
    return path
