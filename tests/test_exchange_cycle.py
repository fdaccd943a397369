"""The whole nbgrader cycle through nbgrader's own exchange, for a class of three students.

release_assignment → fetch_assignment → submit → collect → autograde → generate_feedback →
release_feedback → fetch_feedback, with the course's config plus what this cycle needs:

- the exchange under a temporary root (``c.Exchange.root``);
- the late-submission policy the course sets: ``c.LateSubmissionPlugin.penalty_method = "zero"``
  — a notebook submitted after the assignment's due date (``nbgrader db assignment add
  ASSIGNMENT --duedate=...``) scores 0, its raw score kept in the gradebook;
- feedback without hidden tests: ``HideHiddenTests`` first in ``GenerateFeedback.preprocessors``.

Students share this machine's user: each has their own HOME (their nbgrader cache) and working
folder, and names themselves with ``--student``. ana submits on time; ben submits late; cleo
submits the untouched notebook, then a resubmission with two functions written — the latest is
the one collected and graded.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from graded_class import ASSIGNMENT, NOTEBOOK

from autograder.cli import main
from autograder.commands.release import release_to_exchange
from autograder.grading import pipeline
from autograder.reports.feedback import html_text, leaks, notebook_hidden_lines

pytestmark = [pytest.mark.notebook]

COURSE_ID = "cnn-course"
SOURCE_NB = pipeline.COURSE_ROOT / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"

#: Appended to the course's nbgrader_config.py in the test course (see the module docstring).
CYCLE_CONFIG = '''
# ---- added by tests/test_exchange_cycle.py -------------------------------------------------
c.Exchange.root = {exchange!r}
c.LateSubmissionPlugin.penalty_method = "zero"
c.GenerateFeedback.preprocessors = [
    "autograder.reports.feedback.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
'''


class Student:
    """A student on the shared machine: own HOME, own working folder, ``--student`` id."""

    def __init__(self, name: str, root: Path, exchange: Path) -> None:
        self.name = name
        self.home = root / "home" / name
        self.home.mkdir(parents=True)
        self.exchange = exchange
        self.timestamps: list[str] = []

    def nbgrader(self, *args: str) -> subprocess.CompletedProcess:
        env = pipeline.env_with_venv()
        for var in ("COURSE_ROOT", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PATH"):
            env.pop(var, None)
        env["HOME"] = str(self.home)
        cmd = [str(Path(sys.executable).parent / "nbgrader"), *args, f"--course={COURSE_ID}",
               f"--student={self.name}", f"--Exchange.root={self.exchange}"]
        proc = subprocess.run(cmd, cwd=self.home, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{self.name}: nbgrader {args[0]} failed:\n{proc.stderr[-3000:]}"
        return proc

    @property
    def notebook(self) -> Path:
        return self.home / ASSIGNMENT / f"{NOTEBOOK}.ipynb"

    def write(self, answers: dict[str, str]) -> None:
        """Edit the fetched notebook: fill these solution cells."""
        nbformat.write(pipeline.fill_solutions(self.notebook, answers), str(self.notebook))

    def submit(self) -> None:
        self.nbgrader("submit", ASSIGNMENT)
        cache = sorted((self.home / ".local/share/jupyter/nbgrader_cache" / COURSE_ID).glob(f"{self.name}+{ASSIGNMENT}+*"))
        self.timestamps.append(cache[-1].name.split("+")[2])


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    root = tmp_path_factory.mktemp("cycle")
    exchange = root / "exchange"
    course = pipeline.make_course(root / "course", [ASSIGNMENT], notebooks=[NOTEBOOK])
    with open(course / "nbgrader_config.py", "a", encoding="utf-8") as fh:
        fh.write(CYCLE_CONFIG.format(exchange=str(exchange)))
    pipeline.generate(course, ASSIGNMENT)
    release_to_exchange(ASSIGNMENT, course=course)  # `course release --exchange`, Exchange.root from the config

    solutions = pipeline.solution_sources(SOURCE_NB)
    partial = {gid: solutions[gid] for gid in ("correlate1d", "convolve1d")}
    students = {name: Student(name, root, exchange) for name in ("ana", "ben", "cleo")}
    for s in students.values():
        s.nbgrader("fetch_assignment", ASSIGNMENT)
        assert s.notebook.is_file()
    students["ana"].write(solutions)
    students["ana"].submit()
    students["cleo"].submit()  # the untouched notebook…
    students["cleo"].write(partial)
    students["cleo"].submit()  # …then a resubmission: this one counts
    time.sleep(0.05)
    due = datetime.now(UTC)
    time.sleep(1.0)
    students["ben"].write(partial)
    students["ben"].submit()  # after the due date
    pipeline.nbgrader(course, "db", "assignment", "add", ASSIGNMENT,
                      f"--duedate={due.strftime('%Y-%m-%d %H:%M:%S.%f')} UTC")

    pipeline.nbgrader(course, "collect", ASSIGNMENT)
    pipeline.autograde(course, ASSIGNMENT)
    pipeline.nbgrader(course, "generate_feedback", ASSIGNMENT)
    pipeline.nbgrader(course, "release_feedback", ASSIGNMENT)
    for s in students.values():
        s.nbgrader("fetch_feedback", ASSIGNMENT)
    return course, students


def test_collect_takes_the_latest_submission_of_each_student(cycle):
    course, students = cycle
    assert len(students["cleo"].timestamps) == 2
    for name, s in students.items():
        recorded = (course / "submitted" / name / ASSIGNMENT / "timestamp.txt").read_text().strip()
        assert recorded == s.timestamps[-1], name


def test_grades_late_penalty_and_resubmission(cycle):
    from nbgrader.api import Gradebook

    course, _ = cycle
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs = {s.student.id: s for s in gb.find_assignment(ASSIGNMENT).submissions}
        got = {k: (s.score, s.late_submission_penalty or 0.0, s.total_seconds_late) for k, s in subs.items()}
    assert got["ana"] == (12.0, 0.0, 0)
    assert got["cleo"] == (2.0, 0.0, 0)  # the resubmission (2 functions), not the untouched first one
    score, penalty, late = got["ben"]
    assert score == 2.0 and penalty == 2.0 and late > 0  # late: penalty method "zero" → 0 in the end


def test_each_student_fetches_feedback_without_hidden_tests(cycle):
    _, students = cycle
    hidden = notebook_hidden_lines(SOURCE_NB)
    for name, s in students.items():
        pages = list((s.home / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK}.html"))
        assert [p.parent.name for p in pages] == [s.timestamps[-1]], name
        raw = pages[0].read_text(encoding="utf-8")
        assert leaks(raw, hidden) == [], name
        text = html_text(raw)
        assert "── Résultats" in text, name
        assert ("Pénalité de retard" in text) == (name == "ben"), name


def test_report_and_moodle_export_of_the_cycle(cycle, capsys):
    course, _ = cycle
    assert main(["report", ASSIGNMENT, "--course", str(course), "--quiet"]) == 0
    page = (course / "reports" / ASSIGNMENT / "index.html").read_text(encoding="utf-8")
    # ben's 0 is the late penalty's: flagged late (with its delay and penalty), not a bare « zéro »
    assert 'data-student="ben" data-flags="late"' in page
    assert main(["export", "--course", str(course), "--quiet"]) == 0
    rows = (course / "exports" / "grades_moodle.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].endswith(f",{ASSIGNMENT}")
    assert {r.split(",")[0]: r.split(",")[-1] for r in rows[1:]} == {"ana": "20", "ben": "0", "cleo": "3.33"}
