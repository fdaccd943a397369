"""Course folders shared by the staff-tool tests (test_commands, test_report, test_browser).

- :func:`demo_class`: the real thing, built once per test session by ``course demo``'s
  :func:`~autograder.commands.demo.build` (nbgrader generate_assignment + autograde of five
  generated submissions of m3-fundamentals/convolution, feedback, class report).
- :func:`synthetic_course`: a gradebook written with nbgrader's API (no notebook runs, one
  second), with every case the report and the exports must handle: late, ungraded, zero,
  submitted but never graded, both tracks of module 6, planted failure codes and timings.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from autograder.grading import pipeline

ASSIGNMENT = "m3-fundamentals"
NOTEBOOK = "convolution"


@functools.cache
def demo_class():
    """The demo course (built once per session, removed at exit)."""
    from autograder.commands import demo

    root = Path(tempfile.mkdtemp(prefix="course-tests-demo-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return demo.build(root / "course", ASSIGNMENT, [NOTEBOOK], say=lambda *a: None)


# ---- synthetic gradebook ----------------------------------------------------------------------

DUE = datetime(2026, 11, 1, 23, 59)
#: student -> {assignment: (timestamp offset from DUE in hours, {cell: auto score or None}, late penalty)}
SUBMISSIONS = {
    "ana": {"m3-fundamentals": (-30, {"a": 2.0, "b": 3.0}, 0.0), "m6-improving-pytorch": (-5, {"t": 8.0}, 0.0)},
    "ben": {"m3-fundamentals": (+26, {"a": 2.0, "b": 1.5}, 3.5), "m6-improving-tensorflow": (-2, {"t": 5.0}, 0.0)},
    "cleo": {"m3-fundamentals": (-1, {"a": 0.0, "b": 0.0}, 0.0)},
    "dan": {"m3-fundamentals": (-3, {"a": 1.0, "b": None}, 0.0),
            "m6-improving-pytorch": (-9, {"t": 2.0}, 0.0), "m6-improving-tensorflow": (-4, {"t": 6.0}, 0.0)},
    "eli": {},
}
#: planted feedback: student -> {cell: codes printed}; time per notebook in seconds.
CODES = {"ben": {"b": ["conv.padding", "conv.stride"]}, "cleo": {"a": ["conv.flip"], "b": ["conv.padding"]},
         "dan": {"a": ["conv.padding"]}}
DURATIONS = {"ana": 4.0, "ben": 6.5, "cleo": 2.0}
MAX = {"m3-fundamentals": {"a": 2.0, "b": 3.0}, "m6-improving-pytorch": {"t": 10.0}, "m6-improving-tensorflow": {"t": 10.0}}
NAMES = {"ana": ("Ana", "Lima", "ana@example.org"), "ben": ("Ben", "Durand, Jr", "ben@example.org"),
         "cleo": ("Cléo", "Martin", ""), "dan": ("Dan", "Roy", "dan@example.org"), "eli": ("Éli", "Petit", "eli@example.org")}


def _autograded_nb(student: str, cells: dict[str, float | None]) -> dict:
    start = datetime(2026, 11, 2, 10, 0, 0)
    out_cells = []
    for i, cell in enumerate(cells):
        codes = CODES.get(student, {}).get(cell, [])
        text = f"── Résultats : {cell} ──\n" + "".join(f"✗ cas {j} [{c}] : message\n" for j, c in enumerate(codes))
        t0 = start + timedelta(seconds=i * DURATIONS.get(student, 0) / len(cells))
        t1 = start + timedelta(seconds=(i + 1) * DURATIONS.get(student, 0) / len(cells))
        meta = {"nbgrader": {"grade": True, "grade_id": f"{cell}-tests", "locked": True, "points": MAX[ASSIGNMENT][cell],
                             "solution": False, "schema_version": 3}}
        if student in DURATIONS:
            meta["execution"] = {"iopub.execute_input": t0.isoformat() + "Z", "shell.execute_reply": t1.isoformat() + "Z"}
        out_cells.append({"cell_type": "code", "execution_count": i + 1, "id": f"c{i}", "metadata": meta,
                          "source": "g.score()", "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]})
    return {"cells": out_cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def synthetic_course(course: Path) -> Path:
    """Write the synthetic course folder at ``course`` and return it."""
    import warnings

    from nbgrader.api import Gradebook

    # nbgrader's add_submission triggers SQLAlchemy autoflush warnings on a fresh session.
    warnings.filterwarnings("ignore", message=".*not in session.*")
    course.mkdir(parents=True)
    shutil.copy2(pipeline.COURSE_ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for assignment, cells in MAX.items():
            gb.add_assignment(assignment, duedate=DUE)
            nb_name = NOTEBOOK if assignment == ASSIGNMENT else "regularization"
            gb.add_notebook(nb_name, assignment)
            for cell, points in cells.items():
                gb.add_grade_cell(f"{cell}-tests", nb_name, assignment, max_score=points, cell_type="code")
        for student, (first, last, email) in NAMES.items():
            gb.add_student(student, first_name=first, last_name=last, email=email)
        for student, subs in SUBMISSIONS.items():
            for assignment, (offset, scores, penalty) in subs.items():
                nb_name = NOTEBOOK if assignment == ASSIGNMENT else "regularization"
                gb.add_submission(assignment, student, timestamp=DUE + timedelta(hours=offset))
                for cell, score in scores.items():
                    grade = gb.find_grade(f"{cell}-tests", nb_name, assignment, student)
                    grade.auto_score = score
                gb.find_submission_notebook(nb_name, assignment, student).late_submission_penalty = penalty
                gb.db.commit()
                if assignment == ASSIGNMENT:
                    folder = course / "autograded" / student / assignment
                    folder.mkdir(parents=True)
                    (folder / f"{NOTEBOOK}.ipynb").write_text(json.dumps(_autograded_nb(student, scores)), encoding="utf-8")
    # Submitted but never autograded: in submitted/, not in the gradebook.
    (course / "submitted" / "zoe" / ASSIGNMENT).mkdir(parents=True)
    return course
