"""What the staff tools read from a graded course: the gradebook plus the autograded notebooks.

One pass over nbgrader's gradebook gives scores (per notebook and per graded cell), late
penalties and timestamps; the autograded notebooks add what the gradebook does not hold: the
failure codes printed by the checks with their French message (see
:func:`autograder.grading.pipeline.read_feedback`), why a cell was zeroed or put back by grading
(the error outputs and stdout notes of :mod:`autograder.grading.preprocessors`), and the time each
notebook took to run (nbclient records per-cell timestamps in ``metadata.execution``).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autograder.feedback import FEEDBACK_HEADER
from autograder.grading.pipeline import read_feedback
from autograder.grading.preprocessors import FLAG_PREFIX, GUARD_ENAME, RESTORED_PREFIX
from autograder.reports.common import fr_number

#: Flag keys -> French label shown in the class report, in the order the report lists them.
FLAGS = {
    "ungraded": "non noté (autograde en échec ou notation manuelle requise)",
    "unreadable": "rendu illisible (fichier corrompu, vide ou mal nommé)",
    "not_attempted": "non tenté (toutes les cellules de test « Non tenté », ou aucune réponse écrite)",
    "kernel_died": "noyau Python arrêté pendant une cellule",
    "timeout": "délai d'exécution dépassé",
    "tampering": "falsification ou environnement de correction modifié",
    "restored": "cellules de test supprimées ou déplacées, restaurées par la correction",
    "late": "rendu en retard",
    "internal_error": "une vérification n'a pas pu s'exécuter (internal.error)",
    "zero": "zéro sans autre motif : aucune vérification réussie",
    "not_in_gradebook": "rendu mais absent du carnet de notes (jamais autogradé)",
}
#: Flags that explain a score of 0 by themselves: with one of them, no separate « zéro » flag.
ZERO_REASONS = ("ungraded", "unreadable", "not_attempted", "kernel_died", "timeout", "tampering")
#: First words of the line a check prints when the function is still nbgrader's stub.
NOT_ATTEMPTED_LINE = "Non tenté"
#: nbgrader's stub in a solution cell left unanswered (``ClearSolutions.code_stub`` for Python).
CODE_STUB = "raise NotImplementedError()"
#: nbgrader's ename for a cell past ``Execute.timeout`` (its ``error_on_timeout``).
TIMEOUT_ENAME = "CellTimeoutError"
#: ``✗ name (test caché) [code] : message`` lines of the checks' feedback (autograder.feedback).
_RESULT_RE = re.compile(r"^[✗!·]\s.*?\[(?P<code>[a-z_0-9]+(?:\.[a-z_0-9]+)+)\] : (?P<message>.*)$")


@dataclass
class CellNotes:
    """What the autograded file of one graded test cell tells beyond its score."""

    title: str = ""  # the question's name in its feedback header (« Résultats : conv2d_forward »)
    messages: dict[str, str] = field(default_factory=dict)  # failure code -> first French message
    not_attempted: bool = False
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (flag key, French text)


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
    notes: dict[str, CellNotes] = field(default_factory=dict)
    feedback_page: Path | None = None  # ``course feedback``'s HTML page, when it exists
    #: every solution cell still holds nbgrader's stub: nothing written (a test cell that checks
    #: a model trained elsewhere then reports a failure code, not « Non tenté »)
    stubs_only: bool = False

    @property
    def not_attempted(self) -> bool:
        """Nothing answered: every test cell « Non tenté », or every solution cell the stub."""
        return self.stubs_only or (bool(self.notes) and all(n.not_attempted for n in self.notes.values()))


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
    #: flag key -> French details (« convolution/conv2d-backward : Le noyau Python s'est arrêté… »).
    flag_details: dict[str, list[str]] = field(default_factory=dict)

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
    #: notebook -> {question (grade cell name without ``-tests``): max score}, in notebook order
    questions: dict[str, dict[str, float]] = field(default_factory=dict)
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


def _stream_text(cell: dict, name: str = "stdout") -> str:
    return "".join(
        "".join(o.get("text", "")) for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name", "stdout") == name
    )


def _cell_reasons(cell: dict) -> list[tuple[str, str]]:
    """Why grading zeroed, flagged or put back this test cell: ``(flag key, French text)``.

    The texts are those :mod:`autograder.grading.preprocessors` writes (a ``CourseGuardError``
    error output, the review note, the restored-cell note) and nbgrader's timeout error.
    """
    reasons: list[tuple[str, str]] = []
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
        if ename == TIMEOUT_ENAME or (ename == GUARD_ENAME and "Timeout" in evalue):
            reasons.append(("timeout", evalue or "pas de réponse du noyau avant la limite de temps"))
        elif ename != GUARD_ENAME:
            continue  # the student's own exception: the checks' feedback already tells it
        elif evalue.startswith("Rendu illisible"):
            reasons.append(("unreadable", evalue))
        elif "s'est arrêté" in evalue or "ne répond plus" in evalue:
            reasons.append(("kernel_died", evalue))
        else:  # forged score, guard unable to run, environment modified: all say tampering
            reasons.append(("tampering", evalue))
    for line in _stream_text(cell).splitlines():
        if line.startswith(FLAG_PREFIX):
            reasons.append(("tampering", line.removeprefix(FLAG_PREFIX).lstrip(" :")))
        elif line.startswith(RESTORED_PREFIX):
            reasons.append(("restored", line.removeprefix(RESTORED_PREFIX).lstrip(" :") or "cellule restaurée"))
    return reasons


def _cell_notes(cell: dict, feedback: str) -> CellNotes:
    notes = CellNotes(reasons=_cell_reasons(cell))
    lines = feedback.splitlines()
    if lines and lines[0].startswith(FEEDBACK_HEADER):
        notes.title = lines[0].removeprefix(FEEDBACK_HEADER).strip(" :─")
    notes.not_attempted = any(line.startswith(NOT_ATTEMPTED_LINE) for line in lines[1:2])
    for line in lines:
        m = _RESULT_RE.match(line)
        if m:
            notes.messages.setdefault(m["code"], m["message"].strip())
    return notes


def read_autograded(path: Path, nb: NotebookRecord) -> list[str]:
    """Fill ``nb`` from its autograded file; the graded cells' names in notebook order."""
    feedback, nb.codes = read_feedback(path)
    content = json.loads(path.read_text(encoding="utf-8"))
    nb.duration_s = execution_seconds(content)
    order = []
    solutions = []
    for cell in content.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            solutions.append(CODE_STUB in ("".join(source) if isinstance(source, list) else source))
        if not meta.get("grade") or cell.get("cell_type") != "code":
            continue
        name = meta["grade_id"].removesuffix("-tests")
        order.append(name)
        nb.notes[name] = _cell_notes(cell, feedback.get(name, ""))
    nb.stubs_only = bool(solutions) and all(solutions)
    return order


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
            questions={
                nb.name: {c.name.removesuffix("-tests"): float(c.max_score or 0) for c in nb.grade_cells if c.max_score}
                for nb in record.notebooks
            },
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
                # nbgrader's Grade.score reads 0 for a cell never scored: None here, not a 0.
                cells = {
                    g.name.removesuffix("-tests"): None if g.auto_score is None and g.manual_score is None else float(g.score)
                    for g in graded
                }
                missing = None in cells.values()
                rec.notebooks[nb.name] = NotebookRecord(
                    name=nb.name,
                    score=None if missing else float(nb.score),
                    max_score=float(nb.max_score or 0),
                    cells=cells,
                )
            data.submissions[student] = rec
    positions: dict[str, dict[str, int]] = {nb: {} for nb in data.notebooks}
    for student, rec in data.submissions.items():
        folder = course / "autograded" / student / assignment
        for nb in rec.notebooks.values():
            page = course / "feedback" / student / assignment / f"{nb.name}.html"
            nb.feedback_page = page if page.is_file() else None
            path = folder / f"{nb.name}.ipynb"
            if not path.is_file():
                continue
            nb.autograded_file = True
            try:
                order = read_autograded(path, nb)
            except (OSError, ValueError, KeyError):  # an unreadable autograded file: flagged below
                nb.autograded_file = False
                continue
            for i, name in enumerate(order):
                positions.setdefault(nb.name, {}).setdefault(name, i)
        _flag(rec)
    # Questions in notebook order (the gradebook keeps no cell order), as the autograded files show.
    for nb, questions in data.questions.items():
        seen = positions.get(nb, {})
        data.questions[nb] = dict(sorted(questions.items(), key=lambda kv: seen.get(kv[0], len(seen))))
    submitted = course / "submitted"
    if submitted.is_dir():
        data.not_in_gradebook = sorted(
            p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir() and p.parent.name not in data.submissions
        )
    return data


def _add(rec: SubmissionRecord, flag: str, detail: str | None = None) -> None:
    if flag not in rec.flags:
        rec.flags.append(flag)
    if detail and detail not in rec.flag_details.setdefault(flag, []):
        rec.flag_details[flag].append(detail)


def _flag(rec: SubmissionRecord) -> None:
    """Flags of a submission, each with its reasons, in the order of :data:`FLAGS`."""
    if rec.raw_score is None or any(not nb.autograded_file for nb in rec.notebooks.values()):
        missing = [nb.name for nb in rec.notebooks.values() if not nb.autograded_file or nb.score is None]
        _add(rec, "ungraded", "notebooks : " + ", ".join(missing) if missing else None)
    notes = [(nb.name, cell, n) for nb in rec.notebooks.values() for cell, n in nb.notes.items()]
    for nb_name, cell, n in notes:
        for flag, text in n.reasons:
            _add(rec, flag, f"{nb_name}/{cell} : {text}")
    unreadable = {nb for nb, _, n in notes if any(f == "unreadable" for f, _ in n.reasons)}
    readable = [nb for nb in rec.notebooks.values() if nb.notes and nb.name not in unreadable]
    if readable and all(nb.not_attempted for nb in readable):
        cells = sum(len(nb.notes) for nb in readable)
        _add(rec, "not_attempted", f"aucune réponse écrite ({cells} cellule(s) de test)")
    if rec.seconds_late > 0 or rec.late_penalty > 0:
        _add(rec, "late", f"{late_text(rec.seconds_late)} après l'échéance, pénalité {fr_number(rec.late_penalty)} pt")
    for nb_name, cell, _ in notes:
        if "internal.error" in rec.notebooks[nb_name].codes.get(cell, []):
            _add(rec, "internal_error", f"{nb_name}/{cell}")
    explained = any(f in rec.flags for f in ZERO_REASONS) or (rec.late_penalty > 0 and (rec.raw_score or 0) > 0)
    if rec.score == 0 and not explained:
        codes = Counter(c for nb in rec.notebooks.values() for cs in nb.codes.values() for c in cs)
        _add(rec, "zero", "codes : " + ", ".join(c for c, _ in codes.most_common(5)) if codes else None)
    rec.flags.sort(key=list(FLAGS).index)


def late_text(seconds: float) -> str:
    """« 1 j 2 h », « 3 h 05 min », « 12 min »: how late, in French."""
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} j {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


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
