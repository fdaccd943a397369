"""`course grade`: autograde an assignment's submissions with the project's nbgrader config.

Runs real ``nbgrader autograde`` in the course folder (serially for now: parallel grading on
Dask is the subject of its own issue) and prints the grade table read back from the gradebook.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.grading import pipeline


def format_table(results: dict[str, dict[str, pipeline.NotebookResult]]) -> str:
    """One row per (student, notebook): each graded cell's score and the total."""
    rows = []
    for student in sorted(results):
        for notebook, res in sorted(results[student].items()):
            cells = "  ".join(f"{gid}={'—' if s is None else f'{s:g}'}" for gid, s in res.cells.items())
            total = "non noté" if res.score is None else f"{res.score:g}/{res.max_score:g}"
            rows.append((student, notebook, total, cells))
    if not rows:
        return "(no graded submission)"
    titles = ("student", "notebook", "score")
    widths = [max(len(titles[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    header = f"{'student':<{widths[0]}}  {'notebook':<{widths[1]}}  {'score':<{widths[2]}}  cells"
    lines = [header, "-" * len(header)]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="assignment id, e.g. m3-fundamentals")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: current directory)")
    parser.add_argument("--student", action="append", default=[], help="grade only this student (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    course: Path = args.course.resolve()
    if not (course / "nbgrader_config.py").exists():
        raise UsageError(f"{course} is not a course folder (no nbgrader_config.py)")
    if not (course / "submitted").is_dir():
        raise UsageError(f"{course / 'submitted'} does not exist: collect submissions first")
    proc = pipeline.autograde(course, args.assignment, *args.student, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        print(f"nbgrader autograde exited {proc.returncode}; submissions without a grade are listed below.\n{tail}")
    if not args.quiet:
        print(format_table(pipeline.results(course, args.assignment)))
    return 0 if proc.returncode == 0 else 1
