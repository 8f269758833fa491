"""Atomic file writing: never leave a half-written output."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from AnatomyINRLib.core.errors import OutputError


def check_writable(path: "str | os.PathLike") -> Path:
    """Fail early, before any long computation, if ``path`` cannot be written.

    Raises:
        OutputError: the folder does not exist or is not writable, or path is a folder.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"output {str(path)!r}: is a folder, expected a file path")
    if not parent.is_dir():
        raise OutputError(f"output {str(path)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output {str(path)!r}: folder {str(parent)!r} is not writable")
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: "str | os.PathLike") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it becomes ``path`` only on success.

    Outside a transaction the temporary is renamed onto ``path`` when the block
    ends without error. Inside :func:`AnatomyINRLib.io.transaction.output_transaction`
    it is only staged: the transaction renames all of a run's files together,
    or none. The temporary name keeps the final suffix (".nii.gz", ".vtp"...)
    so writers that choose a format by extension still work.
    """
    from AnatomyINRLib.io.transaction import active_transaction

    path = check_writable(path)
    name = path.name
    suffix = "".join(path.suffixes) if path.suffixes else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=str(path.parent or "."))
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as exc:  # disk full, quota, I/O error inside a writer: name the output, one line
            raise OutputError(f"output {str(path)!r}: could not be written ({exc.strerror or exc})") from exc
        # mkstemp creates 0600 files; give the output the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        transaction = active_transaction()
        if transaction is None:
            os.replace(tmp_path, path)
        else:
            transaction.stage(path, tmp_path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
