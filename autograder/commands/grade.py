"""`course grade`: autograde submissions of one or more assignments in parallel on Dask.

Each submission is graded by real ``nbgrader autograde`` with the course's nbgrader_config.py,
in a private folder on a Dask worker (an embedded LocalCluster, one process per core, or an
existing cluster given by ``--scheduler``). Results go to the course gradebook (SQLite, or
PostgreSQL through ``COURSE_DB_URL``) and to ``autograded/``, exactly as serial
``nbgrader autograde`` writes them; ``.course/ledger.jsonl`` records every graded submission
so that a re-run (after a crash, or with new submissions) grades only what changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.grading import pipeline


def format_table(
    results: dict[str, dict[str, pipeline.NotebookResult]], reasons: dict[str, str] | None = None
) -> str:
    """One row per (student, notebook): each graded cell's score and the total.

    Args:
        results: ``{student: {notebook: NotebookResult}}``.
        reasons: ``{student: why not graded}``, shown on that student's rows (and for students
            with no result at all).
    """
    reasons = reasons or {}
    rows = []
    for student in sorted(set(results) | set(reasons)):
        nbs = results.get(student) or {}
        if not nbs:
            rows.append((student, "—", "non noté", f"[{reasons.get(student, 'no result')}]"))
        for notebook, res in sorted(nbs.items()):
            cells = "  ".join(f"{gid}={'—' if s is None else f'{s:g}'}" for gid, s in res.cells.items())
            total = "non noté" if res.score is None else f"{res.score:g}/{res.max_score:g}"
            if student in reasons:
                cells = f"{cells}  [{reasons[student]}]"
            rows.append((student, notebook, total, cells))
    if not rows:
        return "(no graded submission)"
    titles = ("student", "notebook", "score")
    widths = [max(len(titles[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    header = f"{'student':<{widths[0]}}  {'notebook':<{widths[1]}}  {'score':<{widths[2]}}  cells"
    lines = [header, "-" * len(header)]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def misspelt_assignment(course: Path, assignment: str) -> str | None:
    """The error for an assignment name close to, but not, one of the course's; else None.

    Known names: ``source/``, ``release/``, ``submitted/*/`` and the gradebook (when it exists).
    A name unknown and like none of them goes on to nbgrader's own answer (not in the gradebook:
    run ``nbgrader generate_assignment`` first), which then fits.
    """
    from autograder.cli import suggest

    known = {p.name for folder in ("source", "release") for p in (course / folder).glob("*") if p.is_dir()}
    known |= {p.name for p in (course / "submitted").glob("*/*") if p.is_dir()}
    if assignment in known:
        return None
    try:
        from autograder.reports.common import db_url
        from autograder.reports.gradebook import assignment_names

        known |= set(assignment_names(db_url(course)))
    except Exception:  # noqa: BLE001 - no gradebook yet, a database down: the folders suffice
        pass
    hint = suggest(assignment, known) if assignment not in known else ""
    if not hint:
        return None
    return f"unknown assignment {assignment!r}{hint}; known: {', '.join(sorted(known))}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "assignment", nargs="*",
        help="assignment id(s), e.g. m3-fundamentals; several are graded in one run (one cluster, "
             "longest submissions first across them)",
    )
    parser.add_argument("--all", action="store_true", help="every assignment of the gradebook that has submissions")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: current directory)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="size of the embedded Dask LocalCluster (default: one worker per CPU core)",
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="grade on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (workers need this package installed)",
    )
    parser.add_argument("--student", action="append", default=[], help="grade only this student (repeatable)")
    parser.add_argument("--force", action="store_true", help="grade again submissions already graded and unchanged")
    parser.add_argument(
        "--retries", type=int, default=1, metavar="N",
        help="retries of a submission whose worker died or whose task failed (default: 1)",
    )
    parser.add_argument(
        "--subprocess", action="store_true",
        help="run each nbgrader autograde as its own process on the worker (slower start, ~2 s per submission)",
    )
    parser.add_argument(
        "--unsafe", action="store_true",
        help="grade even where kernels cannot be sandboxed (sets COURSE_UNSAFE=1 for nbgrader on every worker)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress and no table: only submissions not graded")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError
    from autograder.grading import parallel

    course: Path = args.course.resolve()
    if not (course / "nbgrader_config.py").exists():
        raise UsageError(f"{course} is not a course folder (no nbgrader_config.py)")
    if not (course / "submitted").is_dir():
        raise UsageError(f"{course / 'submitted'} does not exist: collect submissions first")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    assignments = list(dict.fromkeys(args.assignment))
    if args.all == bool(assignments):
        raise UsageError("name one or more assignments, or use --all")
    if args.all:
        assignments = submitted_assignments(course)
        if not assignments:
            raise UsageError(f"no submission of any assignment of the gradebook under {course / 'submitted'}")
    for assignment in assignments:
        typo = misspelt_assignment(course, assignment)
        if typo:
            raise UsageError(typo)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        reports = parallel.grade_many(
            course,
            assignments,
            students=args.student or None,
            workers=args.workers,
            scheduler=args.scheduler,
            force=args.force,
            retries=max(0, args.retries),
            in_process=not args.subprocess,
            env={"COURSE_UNSAFE": "1"} if args.unsafe else None,
            say=say,
        )
    except parallel.GradingError as exc:
        raise UsageError(str(exc)) from None

    failed = False
    for report in reports:
        not_graded = {
            s: f"{r.status}: {r.reason}" for s, r in report.submissions.items() if r.status not in ("graded", "skipped")
        }
        if not args.quiet:
            results = parallel.read_results(report.db_url, report.assignment, list(report.submissions))
            if len(reports) > 1:
                print(f"\n{report.assignment}")
            print(format_table(results, not_graded))
            n_nb = report.count("graded") * len(report.notebooks)
            rate = f", {60 * n_nb / report.wall_s:.1f} notebooks/min" if n_nb and report.wall_s else ""
            print(
                f"{report.assignment}: {report.count('graded')} graded, {report.count('incomplete')} incomplete, "
                f"{report.count('failed')} failed, {report.count('skipped')} skipped (unchanged) "
                f"in {report.wall_s:.1f} s{rate} — {report.cluster}"
            )
        for student, why in sorted(not_graded.items()):
            print(f"not graded: {report.assignment}: {student}: {why}" if len(reports) > 1
                  else f"not graded: {student}: {why}", file=sys.stderr)
        failed |= not report.ok
    return 1 if failed else 0


def submitted_assignments(course: Path) -> list[str]:
    """Assignments of the gradebook (its order: due date, then name) with at least one submission."""
    from autograder.reports.common import db_url
    from autograder.reports.gradebook import assignment_names

    submitted = {p.name for p in (course / "submitted").glob("*/*") if p.is_dir()}
    try:
        names = assignment_names(db_url(course))
    except Exception:  # noqa: BLE001 - no gradebook: nothing was released
        names = []
    return [name for name in names if name in submitted]
