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


# ---- flagged submissions: hand-made autograded notebooks + a real gradebook -------------------

FLAGS_ASSIGNMENT = "m9-flags"
FLAGS_NOTEBOOK = "checks"
#: question (grade cell without ``-tests``) -> points, in notebook order
FLAGS_QUESTIONS = {"f": 2.0, "g": 3.0, "h": 1.0}
#: the French messages planted with each failure code (as the checks print them)
MESSAGES = {
    "conv.padding": "`conv2d` avec padding=1 : sortie de forme (2, 8, 3, 3), attendu (2, 8, 5, 5). Vérifiez la formule.",
    "conv.flip": "Vous avez retourné le noyau : conv2d calcule une corrélation croisée.",
    "conv.stride": "Avec stride=2, la sortie n'a pas la bonne forme.",
}
#: student -> {question: outcome}; an outcome is "ok", "stub" (« Non tenté »), a failure code
#: (the cell's check fails with it), or one of the grading decisions below; "+" joins several.
FLAGS_CLASS = {
    "ok": {"f": "ok", "g": "ok", "h": "ok"},
    "nina": {"f": "stub", "g": "stub", "h": "stub"},  # not attempted
    "kurt": {"f": "ok", "g": "died", "h": "ok"},  # kernel death in g
    "tim": {"f": "timeout", "g": "stub", "h": "stub"},  # f ran past the cell timeout
    "tara": {"f": "ok", "g": "ok+forged", "h": "ok"},  # g's score forged: zeroed by the guard
    "fred": {"f": "ok+neutralised", "g": "ok", "h": "ok"},  # tampering neutralised, no points lost
    "rosa": {"f": "ok", "g": "ok", "h": "ok+restored"},  # h deleted, put back at its place
    "uma": {"f": "unreadable", "g": "unreadable", "h": "unreadable"},  # unreadable file
    "lea": {"f": "ok", "g": "ok", "h": "ok"},  # late: nbgrader's "zero" penalty
    "zed": {"f": "conv.padding", "g": "conv.flip", "h": "conv.stride"},  # a real zero
    "pia": {"f": "ok+conv.padding", "g": "ok", "h": "ok"},  # half of f: the padding again
    # nothing written, but h checks something built elsewhere (like module 5's trained model):
    # it reports a failure code, not « Non tenté »
    "sam": {"f": "stub", "g": "stub", "h": "conv.stride"},
}
#: students whose solution cells all hold nbgrader's stub (the others: an answer)
STUB_SOLUTIONS = {"nina", "sam", "uma"}
FLAGS_EXPECTED = {
    "nina": {"not_attempted"}, "kurt": {"kernel_died"}, "tim": {"timeout"}, "tara": {"tampering"},
    "fred": {"tampering"}, "rosa": {"restored"}, "uma": {"unreadable"}, "lea": {"late"}, "zed": {"zero"},
    "sam": {"not_attempted"},
}
LATE_HOURS = {"lea": 5}


def _flag_cell_outputs(question: str, points: float, outcome: str) -> tuple[list, float]:
    """Outputs of one autograded test cell and its score, written with the real producers."""
    from nbformat import NotebookNode

    from autograder.feedback import Grader, NotAttempted, fail
    from autograder.grading import preprocessors

    parts = outcome.split("+")
    cell = NotebookNode(outputs=[])
    if "unreadable" in parts:
        preprocessors.zero_cell(cell, "Rendu illisible : le fichier n'est pas du JSON valide (ligne 1).")
        return cell.outputs, 0.0
    if "timeout" in parts:  # nbgrader's Execute.error_on_timeout
        cell.outputs.append(NotebookNode(output_type="error", ename="CellTimeoutError", evalue="",
                                         traceback=["CellTimeoutError: No reply from kernel before timeout"]))
        return cell.outputs, 0.0
    if "died" in parts:  # GuardedExecute's text for a DeadKernelError
        preprocessors.zero_cell(cell, "Le noyau Python s'est arrêté pendant cette cellule (mémoire épuisée, "
                                      "`os._exit`, plantage ou limite de ressources atteinte).")
        return cell.outputs, 0.0
    g = Grader(f"{question}-tests", points, title=f"fonction_{question}")

    def passes() -> None:
        pass

    def stub() -> None:
        raise NotAttempted(f"fonction_{question}")

    for part in parts:
        if part == "ok":
            g.check(passes, name="cas de base")
        elif part == "stub":
            g.check(stub, name="cas de base")
        elif part in MESSAGES:
            g.check(lambda code=part: fail(code, MESSAGES[code]), name=f"cas {part}")
    text = g.report() + "\n"
    score = float(round(g.points * g.fraction, 4))
    cell.outputs.append(NotebookNode(output_type="stream", name="stdout", text=text))
    cell.outputs.append(NotebookNode(output_type="execute_result", execution_count=1, metadata={},
                                     data={"text/plain": repr(score)}))
    if "neutralised" in parts:
        preprocessors.flag_cell(cell, ["`np.sum` remplacée par du code de l'étudiant, restaurée"])
    if "forged" in parts:
        preprocessors.flag_cell(cell, ["pendant les vérifications : `Grader.results` modifié"])
        preprocessors.zero_cell(cell, "le score affiché diffère du score calculé par les vérifications : possible falsification")
        score = 0.0
    if "restored" in parts:
        note = preprocessors.RESTORED_NOTE["missing"] if hasattr(preprocessors, "RESTORED_NOTE") else "cellule manquante"
        cell.outputs.append(NotebookNode(output_type="stream", name="stdout",
                                         text=f"{preprocessors.RESTORED_PREFIX} : {note}\n"))
    return cell.outputs, score


def flags_course(course: Path) -> Path:
    """A course whose gradebook (nbgrader's API) and autograded notebooks hold every flag reason.

    Scores in the gradebook are those the hand-made autograded cells show; ``lea`` submitted
    after the due date and gets nbgrader's "zero" penalty.
    """
    import warnings

    from nbgrader.api import Gradebook

    warnings.filterwarnings("ignore", message=".*not in session.*")
    course.mkdir(parents=True)
    shutil.copy2(pipeline.COURSE_ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    a, nb_name = FLAGS_ASSIGNMENT, FLAGS_NOTEBOOK
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_assignment(a, duedate=DUE)
        gb.add_notebook(nb_name, a)
        for q, points in FLAGS_QUESTIONS.items():
            gb.add_grade_cell(f"{q}-tests", nb_name, a, max_score=points, cell_type="code")
        for i, (student, outcomes) in enumerate(FLAGS_CLASS.items()):
            gb.add_student(student)
            hours = LATE_HOURS.get(student, -24 + i)
            gb.add_submission(a, student, timestamp=DUE + timedelta(hours=hours))
            cells, raw = [], 0.0
            for j, (q, points) in enumerate(FLAGS_QUESTIONS.items()):
                outputs, score = _flag_cell_outputs(q, points, outcomes[q])
                gb.find_grade(f"{q}-tests", nb_name, a, student).auto_score = score
                raw += score
                answer = "raise NotImplementedError()" if student in STUB_SOLUTIONS else "return 1"
                solution = {"nbgrader": {"grade": False, "grade_id": f"fonction_{q}", "locked": False,
                                         "solution": True, "schema_version": 3}}
                cells.append({"cell_type": "code", "execution_count": None, "id": f"s{j}", "metadata": solution,
                              "source": f"def fonction_{q}():\n    {answer}", "outputs": []})
                meta = {"nbgrader": {"grade": True, "grade_id": f"{q}-tests", "locked": True, "points": points,
                                     "solution": False, "schema_version": 3}}
                cells.append({"cell_type": "code", "execution_count": j + 1, "id": f"c{j}", "metadata": meta,
                              "source": "g.score()", "outputs": outputs})
            if student in LATE_HOURS:
                gb.find_submission_notebook(nb_name, a, student).late_submission_penalty = raw
            gb.db.commit()
            folder = course / "autograded" / student / a
            folder.mkdir(parents=True)
            nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
            (folder / f"{nb_name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    # `course feedback`'s page for one student only: the report links it, and no other.
    page = course / "feedback" / "ok" / a / f"{nb_name}.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html><body>retour de ok</body></html>", encoding="utf-8")
    return course
