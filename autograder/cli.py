"""`course`: the course's command line (admins, TAs, students).

Each subcommand lives in its own module and is imported only when used, so `course --help`
is instant and a student install without nbgrader still runs `course validate`.
"""

from __future__ import annotations

import argparse
import difflib
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


def suggest(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``known`` to a mistyped ``name``, else ``""``.

    For every command that takes an assignment (or a student) name: a typo is answered with the
    name meant, not with advice that fits only a name that does not exist yet.
    """
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def version() -> str:
    """The installed course package's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cnn-course")
    except PackageNotFoundError:
        from autograder import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    # Before any command imports nbgrader: its jsonschema would build an unused IRI parser
    # (~1.3 s at start, ~0.6 s at exit; autograder.grading.speedups).
    from autograder.grading.speedups import defer_iri_parser

    defer_iri_parser()
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"course (cnn-course) {version()}")
    # Also accepted before the command (`course --quiet grade …`); a separate name, because a
    # subcommand's own default would overwrite the value parsed here.
    parser.add_argument("--quiet", dest="_quiet_before", action="store_true", help="same as a command's --quiet")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError as exc:  # a command whose dependencies are not installed
            p.set_defaults(_import_error=str(exc))
        # Every command takes --quiet (README): those with their own say what it leaves out.
        if not any("--quiet" in action.option_strings for action in p._actions):
            p.add_argument("--quiet", action="store_true", help="print only errors and the final result")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False) or args._quiet_before)
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
