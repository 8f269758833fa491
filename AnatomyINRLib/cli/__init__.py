"""Command-line interface: ``anatomy-inr <subcommand> ...``.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds a parser whose ``func(args, progress)`` runs it. ``main`` maps
library errors to one line on stderr and a non-zero exit (no traceback).

Exit codes: 0 success, 2 bad input/arguments, 3 output not writable,
4 fit or runtime failure, 5 missing dependency, 130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from typing import Optional, Sequence

from AnatomyINRLib import __version__
from AnatomyINRLib.core.errors import (
    AnatomyINRError,
    Cancelled,
    DependencyError,
    InputError,
    OutputError,
)

# One module per subcommand; capability packages add theirs here.
SUBCOMMAND_MODULES = (
    "AnatomyINRLib.cli.fit_points",
    "AnatomyINRLib.cli.extract",
    "AnatomyINRLib.cli.demo",
    "AnatomyINRLib.cli.fit_nested",
    "AnatomyINRLib.cli.blend",
    "AnatomyINRLib.cli.pulmonary",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (its default prints usage too)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"anatomy-inr: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = _Parser(prog="anatomy-inr", description="Implicit neural representations of anatomy.")
    parser.add_argument("--version", action="version", version=f"anatomy-inr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    import importlib.util

    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, Cancelled):
        return 130
    if isinstance(exc, OutputError):
        return 3
    if isinstance(exc, DependencyError):
        return 5
    if isinstance(exc, InputError):
        return 2
    return 4


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    # Warnings (duplicates removed, points subsampled...) go to stderr as one line each.
    warnings.showwarning = lambda msg, cat, *a, **k: print(f"anatomy-inr: warning: {msg}", file=sys.stderr)
    from AnatomyINRLib.cli.common import make_progress

    progress = make_progress(getattr(args, "json_progress", False))
    try:
        return int(args.func(args, progress) or 0)
    except KeyboardInterrupt:
        print("anatomy-inr: cancelled", file=sys.stderr)
        return 130
    except AnatomyINRError as exc:
        print(f"anatomy-inr: error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except (OSError, MemoryError) as exc:
        print(f"anatomy-inr: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, OSError) else 4
