"""Command line: `deepcore info` (or `python -m deepcore info`)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deepcore", description="deepcore command line")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print the build configuration")
    args = parser.parse_args(argv)
    if args.command == "info":
        from .config import show_config
        show_config()
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
