"""`course`: the course's command line (admins, TAs, students).

Each subcommand lives in its own module and is imported only when used, so `course --help`
is instant and a student install without nbgrader still runs `course validate`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module exposes `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("autograder.doctor", "report versions, data, device, nbgrader config and sandbox capability"),
    "data": ("autograder.data.cli", "find, verify and install Fashion-MNIST for Keras and torchvision (offline)"),
    "release": ("autograder.commands.release", "generate release/ with nbgrader, audit and run it, release it to the exchange"),
    "grade": ("autograder.commands.grade", "autograde submissions of an assignment and print the grade table"),
    "demo": ("autograder.commands.demo", "build a demo class, grade it, write feedback and the class report"),
    "validate": ("autograder.commands.validate", "run a notebook like a student and print the visible checks' feedback"),
    "feedback": ("autograder.commands.feedback", "per-student HTML feedback, without hidden tests or solutions"),
    "report": ("autograder.commands.report", "HTML class report: score distributions, failure codes, flags"),
    "export": ("autograder.commands.export", "CSV of nbgrader's export and a Moodle grade-import CSV"),
    "bench": ("autograder.commands.bench", "benchmarks: serial nbgrader vs `course grade` on 1 and 2 workers; an idle cluster's CPU"),
}


class UsageError(Exception):
    """A bad argument or a missing folder: one line on stderr, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    # Before any command imports nbgrader: its jsonschema would build an unused IRI parser
    # (~1.3 s at start, ~0.6 s at exit; autograder.grading.speedups).
    from autograder.grading.speedups import defer_iri_parser

    defer_iri_parser()
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError as exc:  # a command whose dependencies are not installed
            p.set_defaults(_import_error=str(exc))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_import_error", None):
        print(f"course {args.command}: unavailable here ({args._import_error})", file=sys.stderr)
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UsageError as exc:
        print(f"course {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"course {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run as `python -m autograder.cli`: use the importable module so that its UsageError is
    # the class the commands raise.
    from autograder.cli import main as _main

    raise SystemExit(_main())
