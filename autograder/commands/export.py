"""`course export`: nbgrader's grade CSV and a Moodle grade-import CSV (tracks merged).

Writes ``<out>/grades_nbgrader.csv`` (``nbgrader export``, unchanged: one row per assignment
and student), ``<out>/grades_moodle.csv`` (one row per student, one column per module; the
PyTorch and TensorFlow tracks of a module share a column) and ``<out>/grades_questions.csv``
(one row per student and question: score, maximum, failure codes, flags; tracks merged the same
way), see :mod:`autograder.reports.exports`. The three files are written together or not at all.

In Moodle: Grades → Import → CSV file, map ``Username`` (or ``Email address``) to the user
field and each module column to its grade item.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: current directory)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: COURSE/exports)")
    parser.add_argument("--out-of", type=float, default=20.0, metavar="N",
                        help="Moodle grades rescaled to N points (default 20); 0 keeps raw points")
    parser.add_argument("--missing-as-zero", action="store_true",
                        help="a student with no submission gets 0 in Moodle (default: empty, no grade)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from autograder.grading import pipeline
    from autograder.reports import common, exports

    course = common.course_folder(args.course)
    url = common.db_url(course)
    if args.out_of < 0:
        raise common.usage_error("--out-of must be positive (or 0 for raw points)")
    out = (args.out or course / "exports").expanduser().resolve()
    say = common.printer(args.quiet)
    nbgrader_csv, moodle_csv = out / "grades_nbgrader.csv", out / "grades_moodle.csv"
    questions_csv = out / "grades_questions.csv"
    with common.staged_files(nbgrader_csv, moodle_csv, questions_csv) as (tmp_nbgrader, tmp_moodle, tmp_questions):
        say("[1/3] Moodle CSV (tracks merged) …")
        header, rows, warnings = exports.moodle_table(url, args.out_of or None, args.missing_as_zero)
        exports.write_csv(tmp_moodle, header, rows)
        say("[2/3] per-question CSV (tracks merged) …")
        q_header, q_rows, _ = exports.question_table(course, url)  # its warnings repeat the Moodle ones
        exports.write_csv(tmp_questions, q_header, q_rows)
        say("[3/3] nbgrader export (CsvExportPlugin) …")
        proc = pipeline.nbgrader(course, "export", "--to", str(tmp_nbgrader), check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise common.usage_error(f"nbgrader export failed: {tail[0]}")
    for w in warnings:
        common.warn(w)
    say(f"{len(rows)} student(s), columns: {', '.join(header[len(exports.IDENTITY):]) or 'none'}")
    if not args.quiet:
        print(f"nbgrader CSV:     {nbgrader_csv}\nMoodle CSV:       {moodle_csv}\nper-question CSV: {questions_csv}")
    return 0
