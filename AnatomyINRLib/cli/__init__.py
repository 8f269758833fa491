"""Command-line interface: ``anatomy-inr <subcommand> ...``.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds a parser whose ``func(args, progress)`` runs it, and optionally
``paths(args) -> (inputs, outputs)`` (argument name → path) so that ``main``
refuses an output that is an input or another output before any work. ``main``
runs the subcommand inside one output transaction (all of its files are
written, or none and every pre-existing file is untouched; SIGINT and SIGTERM
included) and maps library errors to one line on stderr and a documented exit
code (no traceback).

Exit codes: 0 success, 2 bad input/arguments, 3 output not writable,
4 fit or runtime failure, 5 missing dependency (a Python package that cannot be
imported; the line names it), 130 cancelled.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import warnings
from typing import Optional, Sequence

from AnatomyINRLib import __version__

# Nothing here imports numpy or torch at module level: a missing requirement must
# still reach main() and become exit 5 with one line (see cli.dependencies).

# One module per subcommand; capability packages add theirs here.
SUBCOMMAND_MODULES = (
    "AnatomyINRLib.cli.fit_points",
    "AnatomyINRLib.cli.extract",
    "AnatomyINRLib.cli.demo",
    "AnatomyINRLib.cli.fit_nested",
    "AnatomyINRLib.cli.blend",
    "AnatomyINRLib.cli.pulmonary",
    "AnatomyINRLib.cli.image_to_mesh",
    "AnatomyINRLib.cli.serve",
    "AnatomyINRLib.cli.trees",
)


EXIT_CODES_HELP = """exit codes:
  0    success
  2    bad input or arguments, including a `--device` this machine lacks (nothing was written)
  3    an output cannot be written (nothing was written)
  4    the fit or computation failed, or memory ran out (nothing was written)
  5    a required Python package is missing or broken (the line names it; install the requirements)
  130  cancelled (Ctrl-C, SIGTERM, or a cancel request; nothing was written)"""


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (its default prints usage too)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"anatomy-inr: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = _Parser(prog="anatomy-inr", description="Implicit neural representations of anatomy.",
                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"anatomy-inr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    import importlib.util

    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    for subparser in sub.choices.values():  # every --help documents the exit codes
        subparser.epilog = EXIT_CODES_HELP
        subparser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _exit_code(exc: BaseException) -> int:
    from AnatomyINRLib.core.errors import Cancelled, DependencyError, InputError, OutputError

    if isinstance(exc, Cancelled):
        return 130
    if isinstance(exc, OutputError):
        return 3
    if isinstance(exc, DependencyError):
        return 5
    if isinstance(exc, InputError):
        return 2
    return 4


def _missing_dependency(exc: ImportError) -> int:
    """Exit 5 with one line naming the package, for an ImportError of a requirement."""
    from AnatomyINRLib.cli.dependencies import missing_package_message

    message = missing_package_message(exc)
    if message is None:  # an AnatomyINRLib module failed to import: a bug, keep the traceback
        raise exc
    print(f"anatomy-inr: error: {message}", file=sys.stderr)
    return 5


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the process exit code."""
    try:
        parser = build_parser()
        from AnatomyINRLib.cli.common import make_progress
    except ImportError as exc:  # the subcommands need a package that is not installed
        return _missing_dependency(exc)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    # Warnings (duplicates removed, points subsampled...) go to stderr as one line each.
    warnings.showwarning = lambda msg, cat, *a, **k: print(f"anatomy-inr: warning: {msg}", file=sys.stderr)
    return run_parsed(args, make_progress(getattr(args, "json_progress", False)))


def run_parsed(args: argparse.Namespace, progress) -> int:
    """Run one parsed subcommand; errors become one stderr line and an exit code.

    Used by :func:`main` and by the persistent worker (``anatomy-inr serve``),
    so a request there behaves exactly like the same command line.
    """
    from AnatomyINRLib.core.errors import AnatomyINRError
    from AnatomyINRLib.io.transaction import check_distinct_paths, output_transaction

    try:
        if getattr(args, "paths", None) is not None:
            check_distinct_paths(*args.paths(args))  # before any work: no output may be an input
        # Every file the subcommand writes is staged and committed together, or none is
        # (the server opts out: each of its requests is a transaction of its own).
        transaction = output_transaction() if getattr(args, "transactional", True) else contextlib.nullcontext()
        with transaction:
            return int(args.func(args, progress) or 0)
    except KeyboardInterrupt:
        print("anatomy-inr: cancelled", file=sys.stderr)
        return 130
    except AnatomyINRError as exc:
        print(f"anatomy-inr: error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except ImportError as exc:  # a requirement imported lazily during the run
        return _missing_dependency(exc)
    except MemoryError:
        print("anatomy-inr: error: out of memory: use fewer points, a coarser --spacing or a smaller network",
              file=sys.stderr)
        return 4
    except OSError as exc:
        print(f"anatomy-inr: error: {exc}", file=sys.stderr)
        return 3
