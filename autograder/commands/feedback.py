"""`course feedback ASSIGNMENT`: per-student HTML feedback, with no hidden test and no solution.

Runs nbgrader's own feedback converter (its template, scores from the gradebook) with
:class:`autograder.reports.feedback.HideHiddenTests` first, so each graded test cell shows its
release version and each check's French message. Files land where nbgrader puts them,
``feedback/<student>/<assignment>/<notebook>.html``, so ``nbgrader release_feedback`` publishes
them unchanged. Everything is generated in a staging folder and audited (no line of a hidden
test may be readable in any page) before a student's folder is replaced.

Pages work offline: the course's template inlines MathJax (:mod:`autograder.reports.feedback`),
applied here whatever the course's nbgrader_config.py says, and a page that would still fetch
something from the network (a student's HTML output naming a remote script) is reported.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

PREPROCESSORS = (
    "autograder.reports.feedback.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="assignment id, e.g. m3-fundamentals")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: current directory)")
    parser.add_argument("--student", action="append", default=[], help="only this student (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors and warnings")


def autograded_students(course: Path, assignment: str) -> list[str]:
    return sorted(p.parent.name for p in (course / "autograded").glob(f"*/{assignment}") if p.is_dir())


def known_assignments(course: Path) -> list[str]:
    """Assignments of ``course``: in ``source/``, ``release/`` or autograded for someone."""
    found = {p.name for folder in ("source", "release") for p in (course / folder).glob("*") if p.is_dir()}
    found |= {p.name for p in (course / "autograded").glob("*/*") if p.is_dir()}
    return sorted(n for n in found if not n.startswith("."))


def generate(course: Path, assignment: str, students: list[str], say=print, quiet: bool = False) -> list[Path]:
    """Write the feedback of ``students``; the HTML files written. Raises on a leak."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.converters.base import NbGraderException
    from nbgrader.coursedir import CourseDirectory

    from autograder.reports import common
    from autograder.reports.feedback import (
        exporter_config,
        gradebook_hidden_lines,
        leaks,
        remote_urls,
    )

    url = common.db_url(course)
    hidden = gradebook_hidden_lines(url, assignment)
    staging_name = f".feedback-staging-{assignment}"
    staging = course / staging_name
    shutil.rmtree(staging, ignore_errors=True)
    config = common.load_course_config(course)
    config.GenerateFeedback.preprocessors = list(PREPROCESSORS)
    # Offline pages even for a course whose nbgrader_config.py predates them.
    for key, value in exporter_config().items():
        setattr(config.HTMLExporter, key, value)
    config.CourseDirectory.feedback_directory = staging_name
    config.CourseDirectory.assignment_id = assignment
    written: list[Path] = []
    try:
        for i, student in enumerate(students, 1):
            say(f"[{i}/{len(students)}] {student}")
            coursedir = CourseDirectory(config=config)
            coursedir.student_id = student
            converter = GenerateFeedback(coursedir=coursedir, config=config)
            converter.force = True
            if quiet:
                converter.log.setLevel(logging.ERROR)
            try:
                converter.start()
            except NbGraderException as exc:
                raise RuntimeError(f"nbgrader could not render the feedback of {student}: {exc}") from None
        problems = []
        for page in sorted(staging.rglob("*.html")):
            notebook = page.stem
            text = page.read_text(encoding="utf-8")
            found = leaks(text, hidden.get(notebook, []))
            if found:
                problems.append(f"{page.relative_to(staging)}: shows a hidden test line {found[0][:60]!r}")
            remote = remote_urls(text)
            if remote:  # from the notebook's own outputs (the template has none): published anyway
                common.warn(f"{page.relative_to(staging)}: needs the network for {remote[0]} (an output of the notebook)")
        if problems:
            raise RuntimeError("feedback NOT written, it would leak hidden tests:\n  " + "\n  ".join(problems))
        for student in students:
            src = staging / student / assignment
            if not src.is_dir():
                continue
            common.replace_dir(src, course / "feedback" / student / assignment)
            written += sorted((course / "feedback" / student / assignment).glob("*.html"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def run(args: argparse.Namespace) -> int:
    from autograder.cli import suggest
    from autograder.reports import common

    course = common.course_folder(args.course)
    common.db_url(course)
    known = known_assignments(course)
    if args.assignment not in known:
        raise common.usage_error(f"unknown assignment {args.assignment!r}{suggest(args.assignment, known)}; "
                                 f"known: {', '.join(known) or 'none'}")
    available = autograded_students(course, args.assignment)
    if not available:
        raise common.usage_error(f"nothing autograded for {args.assignment!r} in {course / 'autograded'}")
    missing = [s for s in args.student if s not in available]
    if missing:
        raise common.usage_error(f"no autograded submission of {args.assignment!r} for {missing[0]!r}"
                                 f"{suggest(missing[0], available)}")
    students = args.student or available
    say = common.printer(args.quiet)
    say(f"feedback for {len(students)} student(s) of {args.assignment} (nbgrader GenerateFeedback, hidden tests removed)")
    try:
        written = generate(course, args.assignment, students, say, args.quiet)
    except RuntimeError as exc:
        print(f"course feedback: {exc}")
        return 1
    say(f"{len(written)} feedback file(s) in {course / 'feedback'}")
    return 0
