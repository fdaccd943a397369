"""`course report ASSIGNMENT|--all`: the HTML class report of graded assignments.

Writes ``<out>/<assignment>/index.html`` with its PNG plots (default ``<course>/reports``) and,
with ``--all``, ``<out>/index.html`` linking them. Each assignment's folder is replaced as a
whole, only once its report is complete, and is readable by the course group (0755/0644). The
page links each student's feedback (``course feedback``) relative to where it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", nargs="?", help="assignment id, e.g. m3-fundamentals")
    parser.add_argument("--all", action="store_true", help="every assignment of the gradebook")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: current directory)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: COURSE/reports)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def build(course: Path, names: list[str], out: Path, say=print) -> list[Path]:
    """Write the reports of ``names`` under ``out``; the paths of their index.html files."""
    from autograder.reports import classreport, common
    from autograder.reports.gradebook import load_assignment

    url = common.db_url(course)
    written = []
    entries = []
    for i, name in enumerate(names, 1):
        say(f"[{i}/{len(names)}] {name}: reading the gradebook and autograded notebooks …")
        data = load_assignment(course, url, name)
        with common.staged_dir(out / name) as staging:
            classreport.write_report(data, staging, course, final=out / name)
        written.append(out / name / "index.html")
        graded = data.graded()
        mean = sum(s.score for s in graded) / len(graded) if graded else None
        entries.append((name, len(data.submissions), mean))
        say(f"      {len(data.submissions)} submission(s), {len(graded)} graded → {out / name / 'index.html'}")
    if len(names) > 1:
        with common.staged_files(out / "index.html") as (tmp,):
            tmp.write_text(classreport.index_page(entries), encoding="utf-8")
    return written


def run(args: argparse.Namespace) -> int:
    from autograder.reports import common
    from autograder.reports.gradebook import assignment_names

    course = common.course_folder(args.course)
    if args.all == bool(args.assignment):
        raise common.usage_error("name one assignment or use --all")
    url = common.db_url(course)
    known = assignment_names(url)
    names = known if args.all else [args.assignment]
    if not names:
        raise common.usage_error(f"the gradebook of {course} holds no assignment")
    unknown = [n for n in names if n not in known]
    if unknown:
        from autograder.cli import suggest

        raise common.usage_error(
            f"unknown assignment {unknown[0]!r}{suggest(unknown[0], known)}; gradebook has: {', '.join(known) or 'none'}"
        )
    out = (args.out or course / "reports").expanduser().resolve()
    say = common.printer(args.quiet)
    written = build(course, names, out, say)
    if not args.quiet:
        print(f"report: {out / 'index.html' if len(written) > 1 else written[0]}")
    return 0
