"""What the staff tools read from a graded course: the gradebook plus the autograded notebooks.

One pass over nbgrader's gradebook gives scores, late penalties and timestamps; the autograded
notebooks add what the gradebook does not hold: the failure codes printed by the checks (see
:func:`autograder.grading.pipeline.read_feedback`) and the time each notebook took to run
(nbclient records per-cell timestamps in ``metadata.execution``).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autograder.grading.pipeline import read_feedback

#: Flag keys -> French label shown in the class report.
FLAGS = {
    "ungraded": "non noté (autograde en échec ou notation manuelle requise)",
    "zero": "zéro",
    "late": "rendu en retard",
    "internal_error": "une vérification n'a pas pu s'exécuter (internal.error)",
    "not_in_gradebook": "rendu mais absent du carnet de notes (jamais autogradé)",
}


@dataclass
class NotebookRecord:
    """One submitted notebook: gradebook scores and what its autograded file tells."""

    name: str
    score: float | None  # None: at least one graded cell has no score
    max_score: float
    cells: dict[str, float | None] = field(default_factory=dict)
    codes: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float | None = None
    autograded_file: bool = False


@dataclass
class SubmissionRecord:
    """One student's submission of an assignment."""

    student: str
    timestamp: datetime | None
    seconds_late: float
    late_penalty: float
    max_score: float
    notebooks: dict[str, NotebookRecord] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def raw_score(self) -> float | None:
        scores = [nb.score for nb in self.notebooks.values()]
        return None if not scores or None in scores else float(sum(scores))

    @property
    def score(self) -> float | None:
        """Score after the late penalty, as nbgrader's export computes it (never below 0)."""
        raw = self.raw_score
        return None if raw is None else max(0.0, raw - self.late_penalty)


@dataclass
class AssignmentData:
    """Everything the report and the exports need about one assignment."""

    name: str
    duedate: datetime | None
    notebooks: dict[str, float]  # notebook name -> max score, in gradebook order
    students: list[str]  # every student of the gradebook
    submissions: dict[str, SubmissionRecord] = field(default_factory=dict)
    not_in_gradebook: list[str] = field(default_factory=list)

    @property
    def max_score(self) -> float:
        return float(sum(self.notebooks.values()))

    def graded(self) -> list[SubmissionRecord]:
        return [s for s in self.submissions.values() if s.raw_score is not None]


def execution_seconds(nb: dict) -> float | None:
    """Wall time from the first cell's start to the last cell's reply, if nbclient recorded it."""
    starts, ends = [], []
    for cell in nb.get("cells", []):
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            starts.append(_parse_time(start))
            ends.append(_parse_time(end))
    if not starts:
        return None
    return max(0.0, (max(ends) - min(starts)).total_seconds())


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_assignment(course: Path, url: str, assignment: str) -> AssignmentData:
    """Read ``assignment`` from the gradebook at ``url`` and the autograded files of ``course``."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(url) as gb:
        try:
            record = gb.find_assignment(assignment)
        except MissingEntry:
            raise KeyError(assignment) from None
        data = AssignmentData(
            name=assignment,
            duedate=record.duedate,
            notebooks={nb.name: float(nb.max_score or 0) for nb in record.notebooks},
            students=sorted(s.id for s in gb.students),
        )
        for sub in record.submissions:
            student = sub.student.id
            rec = SubmissionRecord(
                student=student,
                timestamp=sub.timestamp,
                seconds_late=float(sub.total_seconds_late or 0),
                late_penalty=float(sub.late_submission_penalty or 0),
                max_score=float(sub.max_score or 0),
            )
            for nb in sub.notebooks:
                graded = [g for g in nb.grades if g.max_score]
                cells = {g.name.removesuffix("-tests"): g.score for g in graded}
                missing = any(g.auto_score is None and g.manual_score is None for g in graded)
                rec.notebooks[nb.name] = NotebookRecord(
                    name=nb.name,
                    score=None if missing else float(nb.score),
                    max_score=float(nb.max_score or 0),
                    cells=cells,
                )
            data.submissions[student] = rec
    for student, rec in data.submissions.items():
        folder = course / "autograded" / student / assignment
        for nb in rec.notebooks.values():
            path = folder / f"{nb.name}.ipynb"
            if not path.is_file():
                continue
            nb.autograded_file = True
            try:
                nb.codes = read_feedback(path)[1]
                nb.duration_s = execution_seconds(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):  # an unreadable autograded file: flagged below
                nb.autograded_file = False
        _flag(rec)
    submitted = course / "submitted"
    if submitted.is_dir():
        data.not_in_gradebook = sorted(
            p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir() and p.parent.name not in data.submissions
        )
    return data


def _flag(rec: SubmissionRecord) -> None:
    if rec.raw_score is None or any(not nb.autograded_file for nb in rec.notebooks.values()):
        rec.flags.append("ungraded")
    elif rec.score == 0:
        rec.flags.append("zero")
    if rec.seconds_late > 0 or rec.late_penalty > 0:
        rec.flags.append("late")
    if any("internal.error" in codes for nb in rec.notebooks.values() for codes in nb.codes.values()):
        rec.flags.append("internal_error")


def assignment_names(url: str) -> list[str]:
    """Assignments of the gradebook, in nbgrader's order (by due date, then name)."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        return [a.name for a in gb.assignments]


def describe(values: list[float]) -> dict[str, float | int | None]:
    """n, mean, median, min, max of ``values`` (None when empty)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
