"""Move grading state between the course gradebook and a worker's private copy.

``course grade`` never lets a worker touch the course gradebook (SQLite or PostgreSQL). The
driver reads the assignment's *definition* (notebooks, graded/solution/task cells, locked
sources and checksums: what ``nbgrader generate_assignment`` stored) into a plain dict, and
builds from it a small SQLite template gradebook that every worker copies. A submission that
was graded before travels as a *snapshot* of its rows, so that nbgrader in the worker starts
from exactly the state serial ``nbgrader autograde`` would see (manual scores decide
``needs_manual_grade`` and late penalties). Back on the driver, only the columns that
autograding owns are written (timestamp, ``auto_score``, ``needs_manual_grade``,
``auto_comment``, ``late_submission_penalty``, ``flagged``): manual grades and comments that a
TA enters meanwhile in formgrader are never overwritten.

All functions take an open :class:`nbgrader.api.Gradebook`; states are JSON-serialisable dicts.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta
from typing import Any

from nbgrader.api import Gradebook, MissingEntry


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _upsert_submission(gb: Gradebook, assignment: str, student: str, **kwargs: Any):
    # nbgrader's add_submission trips SQLAlchemy autoflush warnings (harmless, seen in serial
    # runs too); keep them off the grader's stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gb.update_or_create_submission(assignment, student, **kwargs)


def assignment_definition(gb: Gradebook, assignment: str) -> dict[str, Any]:
    """What ``generate_assignment`` stored for ``assignment``, ordered by name (deterministic).

    Raises:
        nbgrader.api.MissingEntry: the assignment is not in the gradebook.
    """
    a = gb.find_assignment(assignment)
    notebooks = []
    for nb in sorted(a.notebooks, key=lambda n: n.name):
        notebooks.append(
            {
                "name": nb.name,
                "kernelspec": nb.kernelspec,
                "grade_cells": sorted(
                    ({"name": c.name, "max_score": c.max_score, "cell_type": c.cell_type} for c in nb.grade_cells),
                    key=lambda c: c["name"],
                ),
                "solution_cells": sorted(c.name for c in nb.solution_cells),
                "task_cells": sorted(
                    ({"name": c.name, "max_score": c.max_score, "cell_type": c.cell_type} for c in nb.task_cells),
                    key=lambda c: c["name"],
                ),
                "source_cells": sorted(
                    (
                        {
                            "name": c.name,
                            "cell_type": c.cell_type,
                            "locked": bool(c.locked),
                            "source": c.source,
                            "checksum": c.checksum,
                        }
                        for c in nb.source_cells
                    ),
                    key=lambda c: c["name"],
                ),
            }
        )
    return {"name": a.name, "duedate": _iso(a.duedate), "course_id": a.course_id, "notebooks": notebooks}


def definition_json(definition: dict[str, Any]) -> str:
    """Canonical JSON of a definition (for digests)."""
    return json.dumps(definition, sort_keys=True, ensure_ascii=False)


def alembic_version(gb: Gradebook) -> str:
    """The schema revision stamped in ``gb`` (nbgrader's ``alembic_version`` table)."""
    from sqlalchemy import text

    return gb.db.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def create_gradebook(path: str, version: str) -> None:
    """An empty SQLite gradebook at ``path`` stamped with schema ``version``.

    Does what ``Gradebook()`` does for a new database, without its ``alembic heads``
    subprocess (seconds on a loaded machine): the version is the course gradebook's own.
    """
    from nbgrader.api import Base
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{path}", future=True)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version})
    finally:
        engine.dispose()


def build_template(gb: Gradebook, definition: dict[str, Any]) -> None:
    """Write ``definition`` (from :func:`assignment_definition`) into an empty gradebook."""
    name = definition["name"]
    gb.check_course(definition["course_id"])
    gb.update_or_create_assignment(name, duedate=_from_iso(definition["duedate"]), course_id=definition["course_id"])
    for nb in definition["notebooks"]:
        gb.update_or_create_notebook(nb["name"], name, kernelspec=nb["kernelspec"])
        for c in nb["grade_cells"]:
            gb.update_or_create_grade_cell(c["name"], nb["name"], name, max_score=c["max_score"], cell_type=c["cell_type"])
        for cell in nb["solution_cells"]:
            gb.update_or_create_solution_cell(cell, nb["name"], name)
        for c in nb["task_cells"]:
            gb.update_or_create_task_cell(c["name"], nb["name"], name, max_score=c["max_score"], cell_type=c["cell_type"])
        for c in nb["source_cells"]:
            gb.update_or_create_source_cell(
                c["name"], nb["name"], name,
                cell_type=c["cell_type"], locked=c["locked"], source=c["source"], checksum=c["checksum"],
            )


def submission_state(gb: Gradebook, assignment: str, student: str, *, manual: bool = False) -> dict[str, Any] | None:
    """The rows of one submission, or ``None`` when it is not in the gradebook.

    Args:
        manual: also include ``manual_score``, ``extra_credit`` and ``extension`` (what a worker
            needs to reproduce nbgrader's decisions; never written back).
    """
    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    state: dict[str, Any] = {"timestamp": _iso(sub.timestamp), "notebooks": {}}
    if manual:
        state["extension_s"] = None if sub.extension is None else sub.extension.total_seconds()
    for nb in sub.notebooks:
        grades = {}
        for g in nb.grades:
            row = {"auto_score": g.auto_score, "needs_manual_grade": bool(g.needs_manual_grade)}
            if manual:
                row.update(manual_score=g.manual_score, extra_credit=g.extra_credit)
            grades[g.name] = row
        state["notebooks"][nb.name] = {
            "flagged": bool(nb.flagged),
            "late_submission_penalty": nb.late_submission_penalty,
            "grades": grades,
            "comments": {c.name: {"auto_comment": c.auto_comment} for c in nb.comments},
        }
    return state


def restore_submission(gb: Gradebook, assignment: str, student: str, state: dict[str, Any]) -> None:
    """Recreate a submission from :func:`submission_state` (``manual=True``) in a private gradebook."""
    gb.update_or_create_student(student)
    extension = state.get("extension_s")
    sub = _upsert_submission(
        gb, assignment, student,
        timestamp=_from_iso(state["timestamp"]),
        extension=None if extension is None else timedelta(seconds=extension),
    )
    for nb in sub.notebooks:
        saved = state["notebooks"].get(nb.name)
        if saved is None:
            continue
        nb.flagged = saved["flagged"]
        nb.late_submission_penalty = saved["late_submission_penalty"]
        for g in nb.grades:
            row = saved["grades"].get(g.name)
            if row is not None:
                g.auto_score = row["auto_score"]
                g.manual_score = row.get("manual_score")
                g.extra_credit = row.get("extra_credit")
                g.needs_manual_grade = row["needs_manual_grade"]
        for c in nb.comments:
            row = saved["comments"].get(c.name)
            if row is not None:
                c.auto_comment = row["auto_comment"]
    gb.db.commit()


def apply_autograde_state(gb: Gradebook, assignment: str, student: str, state: dict[str, Any]) -> None:
    """Write what autograding produced (a worker's :func:`submission_state`) into ``gb``.

    Mirrors nbgrader's own writes: student created if missing, submission created or its
    timestamp updated, then the autograde-owned columns of every notebook the state holds.
    One transaction.
    """
    gb.update_or_create_student(student)
    if state["timestamp"] is not None:
        sub = _upsert_submission(gb, assignment, student, timestamp=_from_iso(state["timestamp"]))
    else:
        sub = _upsert_submission(gb, assignment, student)
    for nb in sub.notebooks:
        new = state["notebooks"].get(nb.name)
        if new is None:
            continue
        nb.flagged = new["flagged"]
        nb.late_submission_penalty = new["late_submission_penalty"]
        for g in nb.grades:
            row = new["grades"].get(g.name)
            if row is None:
                continue
            g.auto_score = row["auto_score"]
            # nbgrader: a manual grade entered by a TA (even during this run) needs review.
            g.needs_manual_grade = bool(row["needs_manual_grade"] or g.manual_score is not None)
        for c in nb.comments:
            row = new["comments"].get(c.name)
            if row is not None:
                c.auto_comment = row["auto_comment"]
    gb.db.commit()


def ensure_submission(gb: Gradebook, assignment: str, student: str) -> None:
    """Make a submission that could not be graded visible in the gradebook.

    Its rows are created if missing (no auto score: formgrader lists it as needing manual
    grading); grades already there are left as they are, as a crashed serial run leaves them.
    """
    gb.update_or_create_student(student)
    _upsert_submission(gb, assignment, student)
    gb.db.commit()


def gradebook_rows(gb: Gradebook, assignment: str) -> dict[str, list[tuple]]:
    """Every row nbgrader keeps about ``assignment``'s submissions, keyed by names, not uuids.

    Two gradebooks graded the same way give equal results (used to compare ``course grade``
    with serial ``nbgrader autograde`` row by row, on SQLite or PostgreSQL).
    """
    rows: dict[str, list[tuple]] = {
        "student": [], "submitted_assignment": [], "submitted_notebook": [], "grade": [], "comment": []
    }
    a = gb.find_assignment(assignment)
    for sub in a.submissions:
        s = sub.student
        rows["student"].append((s.id, s.first_name, s.last_name, s.email, s.lms_user_id))
        rows["submitted_assignment"].append((s.id, _iso(sub.timestamp), sub.extension))
        for nb in sub.notebooks:
            rows["submitted_notebook"].append((s.id, nb.name, bool(nb.flagged), nb.late_submission_penalty))
            for g in nb.grades:
                rows["grade"].append(
                    (s.id, nb.name, g.name, g.auto_score, g.manual_score, g.extra_credit, bool(g.needs_manual_grade))
                )
            for c in nb.comments:
                rows["comment"].append((s.id, nb.name, c.name, c.auto_comment, c.manual_comment))
    return {table: sorted(values, key=repr) for table, values in rows.items()}
