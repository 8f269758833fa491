"""All-or-nothing output sets: every output of a run is written, or none is.

A run (one CLI subcommand, one API call that writes files) opens an
:func:`output_transaction`. Inside it, every writer of the library stages its
file through :func:`AnatomyINRLib.io.atomic.atomic_path` as a hidden
temporary beside its target; nothing visible changes. When the run succeeds
the transaction commits: each pre-existing target is moved aside to a hidden
backup, each temporary is renamed onto its target, and only when every rename
has succeeded are the backups deleted. If anything fails before or during the
commit (an exception, Ctrl-C, SIGTERM, a full disk), the temporaries are
removed and every backup is renamed back, so each pre-existing file is exactly
as it was (same bytes, same inode) and no temporary remains.

SIGINT and SIGTERM are blocked while the renames run (POSIX), so a signal
cannot tear the commit in half; it is delivered right after. Outside the main
thread (or on Windows) signals cannot be blocked: the rollback still restores
every file on an exception.

What is *not* guaranteed: a power cut or SIGKILL in the middle of the commit
(microseconds for a handful of renames) can leave a hidden ``.NAME.bak-*``
backup beside a new file; no data is lost (the backup holds the old bytes).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Mapping, Optional

from AnatomyINRLib.core.errors import InputError, OutputError

_ACTIVE: contextvars.ContextVar[Optional["OutputTransaction"]] = contextvars.ContextVar(
    "anatomy_inr_output_transaction", default=None)
_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class OutputTransaction:
    """Staged outputs of one run; see the module docstring.

    Use through :func:`output_transaction`; writers reach it through
    :func:`active_transaction`.
    """

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}  # target -> temporary holding its new bytes
        self._order: list[Path] = []
        self.committed = False

    @property
    def targets(self) -> list[Path]:
        """Targets staged so far, in the order they were written."""
        return list(self._order)

    def stage(self, target: Path, temporary: Path) -> None:
        """Record that ``temporary`` holds the new content of ``target``.

        Raises:
            OutputError: the same target was already written in this run (two
                outputs of one run must never name the same file).
        """
        key = Path(os.path.abspath(target))
        if key in self._staged:
            raise OutputError(f"output {str(target)!r}: written twice in one run (two outputs name the same file)")
        self._staged[key] = Path(temporary)
        self._order.append(key)

    def abort(self) -> None:
        """Remove every staged temporary; targets are untouched."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged.clear()
        self._order.clear()

    def commit(self) -> None:
        """Replace every target by its staged file, all or nothing.

        Raises:
            OutputError: a rename failed; every target was restored first.
        """
        with _signals_blocked():
            done: list[tuple[Path, Optional[Path]]] = []  # (target, backup or None)
            try:
                for target in self._order:
                    backup = _move_aside(target)
                    done.append((target, backup))
                    os.replace(self._staged[target], target)
            except OSError as exc:
                _roll_back(done)
                self.abort()
                raise OutputError(f"output {str(target)!r}: could not be written ({exc.strerror or exc}); "
                                  "no output was changed") from exc
            for _, backup in done:
                if backup is not None:
                    with contextlib.suppress(OSError):
                        backup.unlink()
            self._staged.clear()
            self.committed = True


def _move_aside(target: Path) -> Optional[Path]:
    """Rename an existing target to a hidden backup beside it; None if there was none."""
    if not os.path.lexists(target):
        return None
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.bak-", dir=str(target.parent))
    os.close(fd)
    os.replace(target, name)
    return Path(name)


def _roll_back(done: list) -> None:
    """Undo the renames of a failed commit, newest first."""
    for target, backup in reversed(done):
        with contextlib.suppress(OSError):
            if backup is not None:
                os.replace(backup, target)
            elif os.path.lexists(target):
                target.unlink()


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while the commit's renames run (POSIX main thread only)."""
    can_block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if not can_block:
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Terminated(KeyboardInterrupt):
    """SIGTERM received: unwinds like Ctrl-C so every clean-up runs (exit 130 in the CLI)."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration (main thread only).

    A handler the host installed already (the persistent worker's) is kept.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal API
        raise Terminated("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def output_transaction() -> Iterator[OutputTransaction]:
    """Make every file written inside the block part of one all-or-nothing set.

    Nested use joins the outer transaction (the outermost one commits).

    Example:
        >>> with output_transaction():          # doctest: +SKIP
        ...     write_mesh(mesh, "m.vtp")       # staged, not visible yet
        ...     write_json_report("r.json")     # staged
        ... # both appear here together, or neither does
    """
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    txn = OutputTransaction()
    token = _ACTIVE.set(txn)
    try:
        with _sigterm_unwinds():
            try:
                yield txn
                txn.commit()
            except BaseException:
                txn.abort()
                raise
    finally:
        _ACTIVE.reset(token)


def active_transaction() -> Optional[OutputTransaction]:
    """The transaction writers should stage into, or None (write through at once)."""
    return _ACTIVE.get()


# ----------------------------------------------------------------------------- path collisions
def _case_insensitive(folder: Path) -> bool:
    """True when ``folder``'s file system ignores case (probed with a temporary file)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".anatomy-inr-case-", dir=str(folder))
    except OSError:
        return False
    os.close(fd)
    try:
        probe = Path(name)
        return os.path.exists(probe.with_name(probe.name.upper()))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _same_file(a: Path, b: Path, case_cache: dict) -> bool:
    ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    if ra == rb:
        return True
    if ra.exists() and rb.exists():
        with contextlib.suppress(OSError):
            if os.path.samefile(ra, rb):  # hard links
                return True
    if str(ra).casefold() != str(rb).casefold():
        return False
    folder = ra.parent
    if folder not in case_cache:
        case_cache[folder] = folder.is_dir() and _case_insensitive(folder)
    return case_cache[folder]


def check_distinct_paths(inputs: Mapping[str, "str | os.PathLike | None"],
                         outputs: Mapping[str, "str | os.PathLike | None"]) -> None:
    """Refuse an output that is an input or another output, before any work.

    Paths are compared after resolving symlinks and ``..``; hard links count as
    the same file; on a case-insensitive file system names differing only in
    case collide.

    Args:
        inputs: Argument name (e.g. ``"POINTS"``, ``"--reference"``) → path; None entries are ignored.
        outputs: Argument name (e.g. ``"--output"``, ``"--report"``, ``"sidecar of --save-inr"``) → path.

    Raises:
        InputError: naming both arguments and the path.
    """
    cache: dict = {}
    outs = [(k, Path(v)) for k, v in outputs.items() if v is not None]
    ins = [(k, Path(v)) for k, v in inputs.items() if v is not None]
    for i, (name, path) in enumerate(outs):
        for in_name, in_path in ins:
            if _same_file(path, in_path, cache):
                raise InputError(f"{name} {str(path)!r} is the input {in_name}: refusing to overwrite an input")
        for other_name, other in outs[:i]:
            if _same_file(path, other, cache):
                raise InputError(f"{name} {str(path)!r} and {other_name} {str(other)!r} name the same file")
