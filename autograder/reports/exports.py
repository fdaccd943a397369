"""Grade exports: a Moodle grade-import CSV and a per-question CSV, PyTorch and TensorFlow tracks merged.

From module 6 on a student follows one track: ``m6-improving-pytorch`` or
``m6-improving-tensorflow``. Moodle has one grade item per module, so both assignments feed one
column (``m6-improving``), holding the track the student submitted. A student who submitted
both tracks gets the latest submission and a warning (the teaching team decides).

Scores are nbgrader's (``score = max(0, raw - late penalty)``, as ``nbgrader export`` computes
them) rescaled to ``out_of`` points (20 by default, the French scale), or raw with
``out_of=None``. A missing submission is left empty (Moodle then keeps no grade) unless
``missing_as_zero``.

The per-question CSV (:func:`question_table`) has one row per student and graded cell of each
module they submitted: raw points on that cell (before any late penalty), its maximum, the
failure codes its checks printed and why grading zeroed, flagged or restored it. Tracks are
merged as in the Moodle CSV: the ``module`` column is the Moodle column, ``assignment`` the track
the row comes from (the latest submission when a student submitted both), and the same graded
idea has the same ``question`` (grade_id) in both tracks, so rows line up across frameworks.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

TRACK_RE = re.compile(r"^(?P<column>[^-]+-.+)-(?P<track>pytorch|tensorflow)$")  # m4-tensorflow is a module
IDENTITY = ("Username", "Email address", "First name", "Last name")


def column_of(assignment: str) -> tuple[str, str | None]:
    """Moodle column and track of an assignment id: ``m6-improving-pytorch`` -> (``m6-improving``, ``pytorch``)."""
    m = TRACK_RE.match(assignment)
    return (m["column"], m["track"]) if m else (assignment, None)


@dataclass
class Entry:
    assignment: str
    score: float
    max_score: float
    timestamp: datetime | None
    ungraded: bool


def _number(x: float) -> str:
    text = f"{round(x, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def moodle_table(url: str, out_of: float | None = 20.0, missing_as_zero: bool = False) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and warnings of the Moodle CSV for the gradebook at ``url``."""
    from nbgrader.api import Gradebook, MissingEntry

    warnings: list[str] = []
    with Gradebook(url) as gb:
        assignments = [(a.name, float(a.max_score or 0)) for a in gb.assignments]
        columns: list[str] = []
        for name, _ in assignments:
            col = column_of(name)[0]
            if col not in columns:
                columns.append(col)
        maxima: dict[str, set[float]] = {}
        for name, mx in assignments:
            maxima.setdefault(column_of(name)[0], set()).add(mx)
        if out_of is None:
            for col, values in maxima.items():
                if len(values) > 1:
                    warnings.append(f"{col}: tracks have different maxima {sorted(values)}; raw points are not comparable (use --out-of)")
        rows: list[list[str]] = []
        for student in sorted(gb.students, key=lambda s: s.id):
            entries: dict[str, list[Entry]] = {c: [] for c in columns}
            for name, mx in assignments:
                try:
                    sub = gb.find_submission(name, student.id)
                except MissingEntry:
                    continue
                ungraded = any(
                    g.max_score and g.auto_score is None and g.manual_score is None
                    for nb in sub.notebooks for g in nb.grades
                )
                score = max(0.0, float(sub.score or 0) - float(sub.late_submission_penalty or 0))
                entries[column_of(name)[0]].append(Entry(name, score, mx, sub.timestamp, ungraded))
            row = [student.id, student.email or "", student.first_name or "", student.last_name or ""]
            if any(ch in field for field in row for ch in ',"\n'):
                warnings.append(f"{student.id}: a name or email holds a comma or quote; nbgrader's CSV does "
                                "not quote fields, so that row is misaligned there (the Moodle CSV is quoted)")
            for col in columns:
                found = entries[col]
                if not found:
                    row.append("0" if missing_as_zero else "")
                    continue
                if len(found) > 1:
                    found.sort(key=lambda e: (e.timestamp or datetime.min, e.assignment))
                    warnings.append(
                        f"{student.id}: submitted {', '.join(e.assignment for e in found)}; "
                        f"{col} takes the latest, {found[-1].assignment}"
                    )
                chosen = found[-1]
                if chosen.ungraded:
                    warnings.append(f"{student.id}: {chosen.assignment} has cells without a grade (counted 0)")
                value = chosen.score if out_of is None else (chosen.score / chosen.max_score * out_of if chosen.max_score else 0.0)
                row.append(_number(value))
            rows.append(row)
    return [*IDENTITY, *columns], rows, warnings


QUESTION_HEADER = ("Username", "module", "assignment", "notebook", "question", "score", "max_score",
                   "failure_codes", "flags")


def question_table(course: Path, url: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and warnings of the per-question CSV of the course at ``course``.

    ``failure_codes`` and ``flags`` are space-separated (codes once each, in the order printed;
    flags among ``not_attempted unreadable kernel_died timeout tampering restored``); a cell
    never scored has an empty ``score``.
    """
    from autograder.reports.gradebook import assignment_names, load_assignment

    warnings: list[str] = []
    chosen: dict[tuple[str, str], tuple] = {}  # (student, module) -> (timestamp, assignment, data, record)
    for name in assignment_names(url):
        data = load_assignment(course, url, name)
        column = column_of(name)[0]
        for student, rec in data.submissions.items():
            key = (student, column)
            entry = (rec.timestamp or datetime.min, name, data, rec)
            if key in chosen:
                warnings.append(f"{student}: submitted {chosen[key][1]} and {name}; {column} takes the latest")
                entry = max(chosen[key], entry, key=lambda e: (e[0], e[1]))
            chosen[key] = entry
    rows: list[list[str]] = []
    for (student, column), (_, name, data, rec) in sorted(chosen.items(), key=lambda kv: kv[0]):
        for nb_name, questions in data.questions.items():
            nb = rec.notebooks.get(nb_name)
            for question, max_score in questions.items():
                score = None if nb is None else nb.cells.get(question)
                codes = list(dict.fromkeys(nb.codes.get(question, []))) if nb else []
                note = nb.notes.get(question) if nb else None
                flags = [] if note is None else list(dict.fromkeys(
                    (["not_attempted"] if note.not_attempted else []) + [f for f, _ in note.reasons]))
                rows.append([student, column, name, nb_name, question, "" if score is None else _number(score),
                             _number(max_score), " ".join(codes), " ".join(flags)])
    return list(QUESTION_HEADER), rows, warnings


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
