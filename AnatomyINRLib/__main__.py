"""``python -m AnatomyINRLib`` runs the command-line interface."""

import sys

from AnatomyINRLib.cli import main

if __name__ == "__main__":
    sys.exit(main())
