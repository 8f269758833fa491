"""``python -m slicer_static_check [ROOT] [--write-package-lists [--tracked-only]] [--api-inventory FILE...]``.

Run from Testing/slicer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import api_inventory, check_extension, write_package_lists


def main() -> int:
    parser = argparse.ArgumentParser(prog="slicer_static_check", description=__doc__)
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[3]),
                        help="extension root (default: this repository)")
    parser.add_argument("--write-package-lists", action="store_true",
                        help="regenerate the file lists of the ctkMacroCompilePythonScript packages")
    parser.add_argument("--tracked-only", action="store_true",
                        help="with --write-package-lists: list only files git tracks")
    parser.add_argument("--api-inventory", nargs="+", metavar="FILE",
                        help="list the Slicer APIs these Python files use and where each is documented")
    args = parser.parse_args()
    if args.api_inventory:
        for api, source in api_inventory(Path(args.root), [Path(f) for f in args.api_inventory]):
            print(f"{api}\t{source}")
        return 0
    if args.write_package_lists:
        for changed in write_package_lists(Path(args.root), args.tracked_only):
            print(f"updated {changed}")
        return 0
    findings = check_extension(Path(args.root))
    for finding in findings:
        print(finding)
    print(f"{len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
