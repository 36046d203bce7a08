"""Command line: `deepcore info` (or `python -m deepcore info`)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deepcore", description="deepcore command line")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print the build configuration")
    tr = sub.add_parser("train", help="train an MLP on scikit-learn's digits and report accuracy")
    tr.add_argument("--epochs", type=int, default=30)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=0.1)
    tr.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "train":
        from ._train_digits import train
        train(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
        return 0
    if args.command == "info":
        from .config import show_config
        show_config()
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
