"""`course grade` over several assignments in one run: one cluster, one progress, longest first.

Unit level: the expected cost of each submission across assignments (ledger durations, typical
ones per assignment), the global longest-first order, and an ETA that weighs what is left (it
does not start high and only fall when the long submissions go first). End to end: m1 and m3
(convolution) submissions of the same students graded by one ``grade_many`` run on 2 workers
give the gradebook rows serial ``nbgrader autograde`` gives for each assignment, one ledger
record per submission, and progress lines naming the assignment and each notebook's own time.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from autograder.grading import parallel, pipeline
from autograder.grading.ledger import Ledger
from autograder.grading.worker import Job


def job(student: str, assignment: str) -> Job:
    return Job(student, {}, f"submitted/{student}/{assignment}", f"autograded/{student}/{assignment}", None, "d",
               assignment=assignment)


def test_expected_cost_comes_from_the_ledger_else_the_assignments_typical_one():
    jobs = [job("a", "m1"), job("b", "m1"), job("c", "m1"), job("a", "m3"), job("b", "m3"), job("a", "m9")]
    latest = {
        "m1": {"a": {"status": "graded", "duration_s": 2.0}, "b": {"status": "graded", "duration_s": 4.0}},
        "m3": {"a": {"status": "graded", "duration_s": 30.0}, "b": {"status": "failed", "duration_s": 99.0}},
    }
    got = parallel.expected_seconds(jobs, latest)
    # m1: c counts as m1's median (3); m3: b's failure says nothing, so m3's median (30);
    # m9 has nothing known: the whole run's median (4)
    assert got == {("m1", "a"): 2.0, ("m1", "b"): 4.0, ("m1", "c"): 3.0, ("m3", "a"): 30.0, ("m3", "b"): 30.0,
                   ("m9", "a"): 4.0}
    order = parallel.longest_first(jobs, latest, expected=parallel.expected_seconds(jobs, latest))
    assert [(j.assignment, j.student) for j in order] == [
        ("m3", "a"), ("m3", "b"), ("m1", "b"), ("m9", "a"), ("m1", "c"), ("m1", "a")
    ]


def test_eta_weighs_what_is_left(monkeypatch):
    clock = iter([0.0, 30.0, 40.0, 50.0])
    monkeypatch.setattr(parallel.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    # one long notebook (30 s expected) then three short ones (10 s each), 60 s in all
    progress = parallel.Progress(4, lines.append, [30.0, 10.0, 10.0, 10.0])
    progress.notebook("a", "nb", "1/1", 30.0)  # half the work in 30 s: 30 s left
    progress.notebook("b", "nb", "1/1", 10.0)  # 40 of 60 in 40 s: 20 s left
    progress.notebook("c", "nb", "1/1", 10.0)
    assert [re.search(r"ETA (.*)$", line).group(1) for line in lines] == ["30 s", "20 s", "10 s"]
    # a count-based estimate would have said 90 s after the first notebook
    clock = iter([0.0, 30.0])
    counted: list[str] = []
    parallel.Progress(4, counted.append).notebook("a", "nb", "1/1")
    assert counted[0].endswith("ETA 1 min 30 s")


A1, A3 = "m1-intro", "m3-fundamentals"


def rows(course: Path, assignment: str) -> dict[str, list[tuple]]:
    from nbgrader.api import Gradebook

    from autograder.grading.gradebook_sync import gradebook_rows

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gradebook_rows(gb, assignment)


@pytest.fixture(scope="module")
def two_assignments(tmp_path_factory) -> tuple[Path, Path]:
    """A course with m1 and m3 convolution released; ada submits correct work, ben the release."""
    base = tmp_path_factory.mktemp("grade-many")
    course = pipeline.make_course(base / "parallel", [A1, A3], notebooks=["cnn_vs_dense", "convolution"])
    for assignment in (A1, A3):
        pipeline.generate(course, assignment)
    for assignment, notebook in ((A1, "cnn_vs_dense"), (A3, "convolution")):
        pipeline.submit(course, assignment, "ada", {notebook: course / "source" / assignment / f"{notebook}.ipynb"})
        pipeline.submit(course, assignment, "ben", {notebook: course / "release" / assignment / f"{notebook}.ipynb"})
    serial = base / "serial"
    shutil.copytree(course, serial)
    for assignment in (A1, A3):
        pipeline.autograde(serial, assignment)
    return course, serial


@pytest.mark.notebook
def test_one_run_grades_every_assignment_like_serial_nbgrader(two_assignments):
    course, serial = two_assignments
    lines: list[str] = []
    reports = parallel.grade_many(course, [A1, A3], workers=2, say=lines.append)
    assert [r.assignment for r in reports] == [A1, A3]
    assert all(r.ok and r.count("graded") == 2 for r in reports), [r.submissions for r in reports]
    for assignment in (A1, A3):
        assert rows(course, assignment) == rows(serial, assignment), assignment
    records = list(Ledger.for_course(course).records())
    assert sorted((r["assignment"], r["student"], r["status"]) for r in records) == [
        (A1, "ada", "graded"), (A1, "ben", "graded"), (A3, "ada", "graded"), (A3, "ben", "graded")
    ]
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].endswith("done")
    assert {line.split()[2] for line in progress} == {A1, A3}  # each line names its assignment
    assert all(re.search(r"\(\d+\.\d s\)", line) for line in progress), progress  # the notebook's own time
    assert len({r["run"] for r in records}) == 1  # one run, one cluster
    # unchanged, a second run grades nothing in either assignment
    again = parallel.grade_many(course, [A1, A3], workers=1)
    assert [r.count("skipped") for r in again] == [2, 2]
    assert json.loads(json.dumps([r.cluster for r in again])) == ["none (nothing to grade)"] * 2


def test_a_run_with_an_unknown_assignment_grades_nothing(two_assignments, tmp_path):
    course = shutil.copytree(two_assignments[0], tmp_path / "course")
    (course / ".course").exists() and shutil.rmtree(course / ".course")
    with pytest.raises(parallel.GradingError, match="m9-nowhere is not in the gradebook"):
        parallel.grade_many(course, [A1, "m9-nowhere"], workers=1)
    assert not list(Ledger.for_course(course).records())


@pytest.mark.notebook
def test_course_grade_all_grades_every_submitted_assignment(two_assignments, tmp_path):
    from grading_class import course_cli

    serial = two_assignments[1]
    course = shutil.copytree(serial, tmp_path / "course")  # graded by nbgrader: no ledger yet
    proc = course_cli("grade", "--all", "--course", str(course), "--workers", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for assignment in (A1, A3):
        assert f"{assignment}: 2 graded, 0 incomplete, 0 failed" in proc.stdout
        assert rows(course, assignment) == rows(serial, assignment)
    assert len({r["run"] for r in Ledger.for_course(course).records()}) == 1


@pytest.mark.parametrize("argv", [["grade"], ["grade", "--all", "m1-intro"]])
def test_course_grade_needs_assignments_or_all(two_assignments, argv, capsys):
    from autograder.cli import main

    assert main([*argv, "--course", str(two_assignments[1])]) == 2
    assert "name one or more assignments, or use --all" in capsys.readouterr().err
