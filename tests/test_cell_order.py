"""Deleted or moved test cells are graded at their release position (grading.cell_order).

Unit level: :func:`place_cells` on constructed notebooks — deleted, moved, reordered, cells of
the student's own in between (valid: nothing moves) — and :func:`release_order`'s fallbacks.
End to end: a correct m3 convolution submission with every test cell deleted, one with test
cells moved, and an untouched one, through plain ``nbgrader autograde`` with the course config
and through ``course grade --workers 2``: the same gradebook rows, the same scores as the
untouched submission, the « Cellule de test restaurée » note on exactly the placed cells and
the flags in the ledger. (The hostile corpus, ``slow``, adds full-marks cases with the
PyTorch/TensorFlow-checked cells.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from autograder.grading import pipeline
from autograder.grading.cell_order import place_cells, release_order, restored

#: A release: two answers (S), their tests (T), read-only cells (L), in this order.
RELEASE = ["imports", "sol_a", "t_a", "example", "sol_b", "t_b1", "t_b2"]
FIXED = {"imports", "t_a", "example", "t_b1", "t_b2"}


def cell(gid: str | None, source: str = "") -> NotebookNode:
    meta = {"nbgrader": {"grade_id": gid}} if gid else {}
    return nbformat.v4.new_code_cell(source or f"# {gid}", metadata=meta)


def nb_of(*ids: str | None) -> NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell(gid) if gid and not gid.startswith("+") else cell(None, gid or "x") for gid in ids]
    return nb


def layout(nb: NotebookNode) -> list[str]:
    """The notebook as ids, the student's own cells as their source (``+…``)."""
    return [c.metadata.get("nbgrader", {}).get("grade_id") or c.source for c in nb.cells]


def place(*ids: str | None) -> tuple[list[str], dict[str, str], NotebookNode]:
    nb = nb_of(*ids)
    placed = place_cells(nb, RELEASE, FIXED, FIXED, lambda gid: cell(gid, f"# {gid} (gradebook)"))
    return layout(nb), placed, nb


def test_an_untouched_notebook_is_left_as_is():
    got, placed, _ = place(*RELEASE)
    assert got == RELEASE and placed == {}


def test_cells_of_the_students_own_between_an_answer_and_its_test_are_not_moved():
    ids = ["imports", "sol_a", "+helper", "+scratch", "t_a", "example", "+more", "sol_b", "t_b1", "+x", "t_b2", "+end"]
    got, placed, _ = place(*ids)
    assert got == ids and placed == {}


def test_a_deleted_test_cell_comes_back_after_the_students_own_cells_and_before_the_next():
    got, placed, nb = place("imports", "sol_a", "+helper", "example", "sol_b", "t_b1", "t_b2")
    assert got == ["imports", "sol_a", "+helper", "t_a", "example", "sol_b", "t_b1", "t_b2"]
    assert placed == {"t_a": "missing"}
    assert nb.cells[3].source == "# t_a (gradebook)"  # rebuilt from the gradebook
    assert restored(nb.cells[3]) == "missing" and restored(nb.cells[2]) is None


def test_every_locked_cell_deleted_comes_back_in_release_order():
    got, placed, _ = place("sol_a", "+mine", "sol_b")
    assert got == ["imports", "sol_a", "+mine", "t_a", "example", "sol_b", "t_b1", "t_b2"]
    assert placed == dict.fromkeys(["imports", "t_a", "example", "t_b1", "t_b2"], "missing")


def test_the_first_of_two_test_cells_deleted_goes_before_the_second():
    got, placed, _ = place("imports", "sol_a", "t_a", "example", "sol_b", "+work", "t_b2")
    assert got == ["imports", "sol_a", "t_a", "example", "sol_b", "+work", "t_b1", "t_b2"]
    assert placed == {"t_b1": "missing"}


@pytest.mark.parametrize(
    ("submitted", "moved"),
    [
        (["imports", "sol_a", "example", "sol_b", "t_b1", "t_b2", "t_a"], {"t_a"}),  # to the end
        (["t_b2", "imports", "sol_a", "t_a", "example", "sol_b", "t_b1"], {"t_b2"}),  # to the top
        (["imports", "t_a", "sol_a", "example", "sol_b", "t_b1", "t_b2"], {"t_a"}),  # above its answer
        (["imports", "sol_a", "t_a", "sol_b", "t_b1", "t_b2", "example"], {"example"}),  # read-only cell
    ],
)
def test_a_moved_locked_cell_goes_back_to_its_release_position(submitted, moved):
    got, placed, nb = place(*submitted)
    assert got == RELEASE
    assert placed == dict.fromkeys(moved, "moved")
    assert {layout(nb)[i] for i, c in enumerate(nb.cells) if restored(c)} == moved
    assert all(c.source == f"# {layout(nb)[i]}" for i, c in enumerate(nb.cells))  # the student's cell, not a copy


def test_answers_reordered_by_the_student_keep_their_tests_after_them():
    ids = ["imports", "sol_b", "t_b1", "t_b2", "sol_a", "t_a", "example"]
    got, placed, _ = place(*ids)
    assert got == ids and placed == {}


def test_a_deleted_test_follows_its_answer_when_the_student_reordered_answers():
    got, placed, _ = place("imports", "sol_b", "t_b1", "t_b2", "sol_a", "example")
    assert got.index("t_a") == got.index("sol_a") + 1
    assert placed == {"t_a": "missing"}


def test_a_missing_answer_is_the_students_choice_and_not_rebuilt():
    got, placed, _ = place("imports", "t_a", "example", "sol_b", "t_b1", "t_b2")
    assert "sol_a" not in got and placed == {}


def test_release_order_reads_the_first_readable_notebook(tmp_path):
    good = tmp_path / "release.ipynb"
    nbformat.write(nb_of("b", "+mine", "a", "c"), str(good))
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    # Known to the gradebook in another order (sorted by name, as course grade's template is);
    # "d" is unknown to the notebook: it stays after its predecessor in the gradebook's order.
    assert release_order([tmp_path / "absent.ipynb", broken, good], ["a", "b", "c", "d"]) == ["b", "a", "c", "d"]
    assert release_order([tmp_path / "absent.ipynb"], ["a", "b"]) == ["a", "b"]
    assert release_order([good], ["z", "c", "a"]) == ["z", "a", "c"]


# ---- end to end: plain nbgrader autograde and course grade ------------------------------------

A, NB = "m3-fundamentals", "convolution"
CHEAP = ("correlate1d", "convolve1d", "correlate2d")
CHEAP_TESTS = ("conv1d-correlate-tests", "conv1d-convolve-tests", "conv2d-filter-tests")
ALL_TESTS = (*CHEAP_TESTS, "conv2d-forward-tests", "conv2d-backward-tests")


def _ids(nb: NotebookNode) -> list[str | None]:
    return [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A released m3 convolution course with three submissions of the same correct answers."""
    base = tmp_path_factory.mktemp("cell-order")
    course = pipeline.make_course(base / "course", [A], notebooks=[NB])
    pipeline.generate(course, A)
    solutions = pipeline.solution_sources(course / "source" / A / f"{NB}.ipynb")
    release = course / "release" / A / f"{NB}.ipynb"
    answers = {g: solutions[g] for g in CHEAP}

    untouched = pipeline.fill_solutions(release, answers)
    deleted = pipeline.fill_solutions(release, answers)
    deleted.cells = [c for c, gid in zip(deleted.cells, _ids(deleted), strict=True) if gid not in ALL_TESTS]
    moved = pipeline.fill_solutions(release, answers)
    ids = _ids(moved)
    first = moved.cells.pop(ids.index("conv2d-backward-tests"))
    moved.cells.insert(0, first)  # before the imports
    ids = _ids(moved)
    moved.cells.append(moved.cells.pop(ids.index("conv1d-correlate-tests")))
    for student, nb in {"untouched": untouched, "deleted": deleted, "moved": moved}.items():
        pipeline.submit(course, A, student, {NB: nb})
    shutil.copytree(course, base / "pristine")
    return course


@pytest.fixture(scope="module")
def serial(course) -> Path:
    pipeline.autograde(course, A)
    return course


@pytest.fixture(scope="module")
def parallel(course) -> Path:
    from grading_class import course_cli

    target = course.parent / "pristine"
    proc = course_cli("grade", A, "--course", str(target), "--workers", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return target


def _notes(course: Path, student: str) -> dict[str, list[str]]:
    path = course / "autograded" / student / A / f"{NB}.ipynb"
    out: dict[str, list[str]] = {}
    for c in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for o in c.get("outputs", []):
            text = "".join(o.get("text", ""))
            if o.get("output_type") == "stream" and text.startswith("⚠ Cellule de test restaurée"):
                out.setdefault(gid, []).append(text)
    return out



@pytest.mark.notebook
def test_plain_nbgrader_grades_deleted_and_moved_test_cells_like_untouched_ones(serial):
    scores = pipeline.results(serial, A)
    assert {s: r[NB].score for s, r in scores.items()} == {"untouched": 4.0, "deleted": 4.0, "moved": 4.0}
    assert scores["deleted"][NB].cells == scores["untouched"][NB].cells == scores["moved"][NB].cells
    assert _notes(serial, "untouched") == {}
    assert set(_notes(serial, "deleted")) == set(ALL_TESTS)
    assert set(_notes(serial, "moved")) == {"conv1d-correlate-tests", "conv2d-backward-tests"}
    note = _notes(serial, "deleted")["conv1d-correlate-tests"][0]
    assert "manquait dans votre rendu" in note and "place d'origine" in note
    assert "déplacée" in _notes(serial, "moved")["conv2d-backward-tests"][0]
    release = [g for g in _ids(nbformat.read(str(serial / "release" / A / f"{NB}.ipynb"), as_version=4)) if g]
    for student in ("deleted", "moved"):
        nb = nbformat.read(str(serial / "autograded" / student / A / f"{NB}.ipynb"), as_version=4)
        assert [g for g in _ids(nb) if g] == release, student


@pytest.mark.notebook
def test_course_grade_gives_the_serial_gradebook_and_flags_restored_cells(serial, parallel):
    from grading_class import rows, sqlite_url

    assert rows(sqlite_url(parallel)) == rows(sqlite_url(serial))
    for student in ("untouched", "deleted", "moved"):
        assert _notes(parallel, student) == _notes(serial, student), student
    ledger = [json.loads(line) for line in (parallel / ".course" / "ledger.jsonl").read_text().splitlines()]
    flags = {r["student"]: r.get("flags", {}).get(NB, []) for r in ledger}
    assert flags == {
        "untouched": [],
        "deleted": [f"cellule de test restaurée : {g}" for g in ALL_TESTS],
        "moved": ["cellule de test restaurée : conv1d-correlate-tests", "cellule de test restaurée : conv2d-backward-tests"],
    }
