"""`course data`: find, verify and install Fashion-MNIST for Keras and torchvision (offline)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--path",
        metavar="DIR",
        help="folder holding the four IDX files (.gz or raw); when given, the only place tried",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-check every file by SHA-256 even when the data is already installed",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError
    from autograder.data import fashion_mnist as fm

    if args.path is not None and not Path(args.path).expanduser().is_dir():
        raise UsageError(f"--path {args.path}: no such folder")
    start = time.perf_counter()
    try:
        report = fm.ensure(args.path, verify=args.verify)
    except fm.DataError as exc:
        print(f"course data: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        for label, where, outcome in report.attempts:
            if outcome != "ok":
                print(f"  skipped {label} [{where}]: {outcome}")
        print(fm.describe(report))
        print(f"  done in {time.perf_counter() - start:.2f} s")
    return 0
