"""`course demo`: the course's main job on a generated class.

Builds a course folder, releases the module with nbgrader, writes submissions for a small
class (complete, partial, untouched, broken), autogrades them with the project's config and
prints each student's score per graded cell.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from autograder.commands.grade import format_table
from autograder.grading import pipeline

#: student id -> how their notebooks are filled (French descriptions for the table legend).
CLASS = {
    "alice": "toutes les fonctions écrites (solution)",
    "bruno": "la première moitié des fonctions écrites",
    "chloe": "notebook rendu sans modification (Non tenté)",
    "david": "solution, sauf la dernière fonction qui lève une NameError",
}


def make_submission(release_nb: Path, source_nb: Path, profile: str):
    """A submission of ``profile`` (a key of :data:`CLASS`) built from the release notebook."""
    solutions = pipeline.solution_sources(source_nb)
    ids = list(solutions)
    if profile == "alice":
        answers = solutions
    elif profile == "bruno":
        answers = {gid: solutions[gid] for gid in ids[: max(1, len(ids) // 2)]}
    elif profile == "chloe":
        answers = {}
    elif profile == "david":
        answers = dict(solutions)
        last = ids[-1]
        # A typo in the last function: it raises NameError when the checks call it.
        answers[last] = solutions[last].replace("return ", "return variable_mal_nommee + ", 1)
    else:
        raise ValueError(profile)
    return pipeline.fill_solutions(release_nb, answers)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="where to build the demo course (default: ./demo)")
    parser.add_argument("--assignment", default="m3-fundamentals", help="module to release and grade")
    parser.add_argument("--quiet", action="store_true", help="print only the final table")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError
    from autograder.commands.release import assignments

    if args.assignment not in assignments():
        raise UsageError(f"unknown module {args.assignment!r}; known: {', '.join(assignments())}")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    course = args.dir.resolve()
    if course.exists():
        shutil.rmtree(course)
    start = time.monotonic()
    pipeline.make_course(course, [args.assignment])
    say(f"[1/3] nbgrader generate_assignment {args.assignment} → {course / 'release' / args.assignment}")
    release = pipeline.generate(course, args.assignment)
    notebooks = sorted(release.glob("*.ipynb"))
    for student in CLASS:
        subs = {
            nb.stem: make_submission(nb, course / "source" / args.assignment / nb.name, student) for nb in notebooks
        }
        pipeline.submit(course, args.assignment, student, subs)
    say(f"[2/3] {len(CLASS)} submissions × {len(notebooks)} notebook(s) written to {course / 'submitted'}")
    for student, what in CLASS.items():
        say(f"      {student}: {what}")
    say("[3/3] nbgrader autograde (project config) …")
    proc = pipeline.autograde(course, args.assignment, check=False)
    print(format_table(pipeline.results(course, args.assignment)))
    say(f"done in {time.monotonic() - start:.0f} s; gradebook: {course / 'gradebook.db'}, "
        f"autograded notebooks: {course / 'autograded'}")
    return 0 if proc.returncode == 0 else 1
