"""`course demo`: the course's main job on a generated class.

Builds a course folder, releases the module with nbgrader, writes submissions for a small
class (complete, partial, untouched, broken, hostile), grades them in parallel with
`course grade`'s engine (real nbgrader autograde with the project's config, on Dask), writes
each student's feedback (no hidden test) and the class report, and prints the grade table and
where everything is.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.commands.grade import format_table
from autograder.grading import pipeline

#: student id -> how their notebooks are filled (French descriptions for the table legend).
CLASS = {
    "alice": "toutes les fonctions écrites (solution)",
    "bruno": "la première moitié des fonctions écrites",
    "chloe": "notebook rendu sans modification (Non tenté)",
    "david": "solution, sauf la dernière fonction qui lève une NameError",
    "eve": "rien d'écrit, mais cellules de test réécrites (« 4.0 »), supprimées ou marquées skip-execution",
}


def _tamper(nb):
    """Eve's notebook: claims full marks in the test cells instead of writing code."""
    tests = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    for cell in tests:
        cell.source = repr(float(cell.metadata["nbgrader"].get("points", 1)))
    if tests:
        tests[0].metadata.setdefault("tags", []).append("skip-execution")
        nb.cells.remove(tests[-1])
    return nb


def make_submission(release_nb: Path, source_nb: Path, profile: str):
    """A submission of ``profile`` (a key of :data:`CLASS`) built from the release notebook."""
    solutions = pipeline.solution_sources(source_nb)
    ids = list(solutions)
    if profile == "alice":
        answers = solutions
    elif profile == "bruno":
        answers = {gid: solutions[gid] for gid in ids[: max(1, len(ids) // 2)]}
    elif profile in ("chloe", "eve"):
        answers = {}
    elif profile == "david":
        answers = dict(solutions)
        last = ids[-1]
        # A typo in the last function: it raises NameError when the checks call it.
        answers[last] = solutions[last].replace("return ", "return variable_mal_nommee + ", 1)
    else:
        raise ValueError(profile)
    nb = pipeline.fill_solutions(release_nb, answers)
    return _tamper(nb) if profile == "eve" else nb


@dataclass
class Demo:
    """Where a demo course put things."""

    course: Path
    assignment: str
    returncode: int
    results: dict = field(default_factory=dict)
    feedback: list[Path] = field(default_factory=list)
    report: Path | None = None


def build(course: Path, assignment: str, notebooks: list[str] | None = None, say=print) -> Demo:
    """Create, grade and report a demo class for ``assignment`` in ``course`` (replaced)."""
    from autograder.commands import feedback, report
    from autograder.grading import parallel

    if course.exists():
        shutil.rmtree(course)
    pipeline.make_course(course, [assignment], notebooks=notebooks)
    say(f"[1/5] nbgrader generate_assignment {assignment} → {course / 'release' / assignment}")
    release = pipeline.generate(course, assignment)
    names = sorted(release.glob("*.ipynb"))
    for student in CLASS:
        subs = {nb.stem: make_submission(nb, course / "source" / assignment / nb.name, student) for nb in names}
        pipeline.submit(course, assignment, student, subs)
    say(f"[2/5] {len(CLASS)} submissions × {len(names)} notebook(s) written to {course / 'submitted'}")
    for student, what in CLASS.items():
        say(f"      {student}: {what}")
    say("[3/5] course grade: nbgrader autograde of each submission, in parallel on Dask …")
    graded_report = parallel.grade(course, assignment, say=lambda line: say(f"      {line}"))
    demo = Demo(course, assignment, 0 if graded_report.ok else 1, pipeline.results(course, assignment))
    say("[4/5] feedback per student (hidden tests removed) …")
    graded = feedback.autograded_students(course, assignment)
    try:
        demo.feedback = feedback.generate(course, assignment, graded, say=lambda *a: None, quiet=True) if graded else []
    except RuntimeError as exc:  # shown, not fatal: the grades and the report still stand
        say(f"      feedback not written: {exc}")
    say("[5/5] class report …")
    demo.report = report.build(course, [assignment], course / "reports", say=lambda *a: None)[0]
    return demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="where to build the demo course (default: ./demo)")
    parser.add_argument("--assignment", default="m3-fundamentals", help="module to release and grade")
    parser.add_argument("--notebook", action="append", default=None,
                        help="grade only this notebook of the module (repeatable; default: all)")
    parser.add_argument("--quiet", action="store_true", help="print only the final table and paths")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError
    from autograder.commands.release import assignments

    if args.assignment not in assignments():
        raise UsageError(f"unknown module {args.assignment!r}; known: {', '.join(assignments())}")
    if args.notebook:
        available = {p.stem for p in (pipeline.COURSE_ROOT / "source" / args.assignment).glob("*.ipynb")}
        unknown = [n for n in args.notebook if n not in available]
        if unknown:
            raise UsageError(f"no notebook {unknown[0]!r} in {args.assignment}; known: {', '.join(sorted(available))}")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    start = time.monotonic()
    demo = build(args.dir.resolve(), args.assignment, args.notebook, say)
    print(format_table(demo.results))
    course = demo.course
    print(f"\ndone in {time.monotonic() - start:.0f} s")
    print(f"  gradebook:           {course / 'gradebook.db'}")
    print(f"  autograded:          {course / 'autograded'}")
    print(f"  feedback (HTML):     {course / 'feedback'}  ({len(demo.feedback)} files)")
    print(f"  class report:        {demo.report}")
    return 0 if demo.returncode == 0 else 1
