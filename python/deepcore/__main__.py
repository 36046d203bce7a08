"""``python -m deepcore`` runs the command line (see deepcore/cli.py)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
