"""Renamed: the split-depth experiment is `splitleak experiment sweep --preset depth`."""

import argparse
import sys

NEW = "splitleak experiment sweep --preset depth [--config FILE] [--out DIR]"


def add_arguments(parser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args) -> int:
    print(f"splitleak sweep depth is now: {NEW}", file=sys.stderr)
    return 2
