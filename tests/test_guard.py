"""Unit tests of the grading guard's independent ledger, its history scrubbing, the sourceless
``solutions`` copy of the sandbox and the reading of broken submission files.

End to end (real nbgrader, sandboxed kernel): tests/test_hostile.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import feedback
from autograder.feedback import CheckFailure, Grader
from autograder.grading import guard
from autograder.grading.sandbox_kernel import sourceless_copy
from autograder.grading.submissions import placeholder, read_problem, unreadable_reason


def _passes() -> None:
    return None


def _fails() -> None:
    raise CheckFailure("x.wrong", "faux")


@pytest.fixture
def ledger(monkeypatch):
    """The guard as in a grading kernel (its ledger part only: no state is restored here)."""
    state = {"scores": [], "claims": [], "ledger": {}, "reported": []}
    state["own"] = {n: v for n, v in vars(guard).items() if callable(v) and getattr(v, "__module__", "") == guard.__name__}
    monkeypatch.setattr(guard, "_state", state)
    return state


def test_honest_grader_matches_the_ledger(ledger):
    g = Grader("cell", 4)
    g.check(_passes, name="a")
    g.check(_fails, name="b", weight=3)
    g.deepen("a", _fails)  # the passed visible check fails on its hidden cases
    assert g.score() == 0.0
    g2 = Grader("cell2", 2)
    g2.check(_passes, name="a")
    g2.deepen("a", _passes)
    g2.deepen("new", _fails)
    assert g2.score() == 1.0
    assert guard._forged_scores() == []


def test_swapped_result_list_is_detected(ledger):
    """The corpus' grader-state-forgery: a list that turns every appended failure into a pass."""
    g = Grader("cell", 2)

    class Passing(list):
        def append(self, result):
            result.status, result.code = feedback.PASSED, None
            super().append(result)

    g.results = Passing(g.results)
    g.check(_fails, name="a")
    assert g.score() == 2.0  # what the forged Grader shows...
    (finding,) = guard._forged_scores()  # ...and what the guard recomputes
    assert "score 2 calculé, 0 d'après les vérifications" in finding


def test_results_edited_in_place_or_points_changed_are_detected(ledger):
    g = Grader("cell", 2)
    g.check(_fails, name="a")
    g.results[0].status = feedback.PASSED
    g.score()
    g2 = Grader("cell2", 1)
    g2.check(_passes, name="a")
    g2.points = 10
    g2.score()
    assert len(guard._forged_scores()) == 2


def test_score_from_an_unregistered_grader_is_detected(ledger):
    guard.record_score("cell", 1.0, key=12345)
    assert guard._forged_scores() == ["score 1 annoncé par un correcteur inconnu de la garde"]


def test_replaced_guard_function_is_detected(ledger, monkeypatch):
    monkeypatch.setattr(guard, "record_result", lambda *a, **k: None)
    found: list[str] = []
    guard._own_functions_intact(found)
    assert found == ["garde de correction : `record_result` remplacé"]


def test_hidden_tests_are_cut_from_sources():
    src = "g = f(x)\n### BEGIN HIDDEN TESTS\nhidden_f(g, seed=7)\n### END HIDDEN TESTS\ng.score()\n"
    out = guard._without_hidden(src)
    assert "hidden_f" not in out and "BEGIN HIDDEN" not in out
    assert out == "g = f(x)\n# (tests cachés)\ng.score()\n"
    assert guard._without_hidden("a = 1\n") == "a = 1\n"


def test_scrub_hidden_tests_cleans_linecache():
    import linecache

    name = "<ipython-input-test-guard>"
    linecache.cache[name] = (10, None, ["x = 1\n", "# BEGIN HIDDEN TESTS\n", "secret()\n", "# END HIDDEN TESTS\n"], name)
    try:
        assert guard.scrub_hidden_tests() >= 1
        assert "secret" not in "".join(linecache.cache[name][2])
    finally:
        linecache.cache.pop(name, None)


def test_sourceless_solutions_import_without_source(tmp_path):
    import solutions

    copy = sourceless_copy(Path(solutions.__file__).parent)
    assert copy == sourceless_copy(Path(solutions.__file__).parent)  # cached
    assert not list(copy.rglob("*.py")) and (copy / "conv.pyc").exists()
    (tmp_path / "solutions").symlink_to(copy)
    script = (
        "import inspect, solutions.conv as c\n"
        "import numpy as np\n"
        "assert c.__file__.endswith('.pyc'), c.__file__\n"
        "assert c.ref_correlate1d(np.arange(4.0), np.ones(2)).tolist() == [1.0, 3.0, 5.0]\n"
        "try:\n    inspect.getsource(c)\nexcept OSError:\n    print('no source')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(tmp_path)!r}] + {sys.path!r}\n{script}"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no source"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "est vide"),
        (b'{"cells": [', "JSON invalide"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "fichier binaire"),
        ('{"cells": [], "x": "é"}'.encode("latin-1"), "UTF-8"),
        (b"[1, 2]", "pas un notebook Jupyter"),
        (b'{"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "pas un notebook lisible"),
    ],
)
def test_unreadable_files_get_a_french_reason(tmp_path, content, needle):
    path = tmp_path / "convolution.ipynb"
    path.write_bytes(content)
    nb, reason = read_problem(path, max_bytes=1 << 20)
    assert nb is None and needle in reason and "« convolution.ipynb »" in reason
    assert unreadable_reason(placeholder(reason)) == reason


def test_missing_and_huge_files(tmp_path):
    (tmp_path / "Convolution (1).ipynb").write_text("{}")
    _, reason = read_problem(tmp_path / "convolution.ipynb", max_bytes=1 << 20)
    assert "absent du rendu" in reason and "« Convolution (1).ipynb »" in reason
    big = tmp_path / "big.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x" * 3000)]), big)
    assert "au-delà de la limite" in read_problem(big, max_bytes=1000)[1]
    nb, reason = read_problem(big, max_bytes=1 << 20)
    assert reason is None and nb.cells[0].source.startswith("xxx")


def test_readable_notebooks_are_not_placeholders(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Titre")])
    assert unreadable_reason(nb) is None
    v3 = tmp_path / "v3.ipynb"
    v3.write_text(nbformat.writes(nbformat.convert(nb, 3), version=3))
    got, reason = read_problem(v3, max_bytes=1 << 20)
    assert reason is None and got.nbformat == 4


# ---- Student calls run on their own stack; reaching for the grader is flagged -----------------


def test_student_code_cannot_walk_up_into_the_check():
    from autograder.checks._core import call_student

    def student(x):
        frame, names = sys._getframe(0), []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        try:
            raise ValueError
        except ValueError as exc:
            tb_frame, via_tb = exc.__traceback__.tb_frame, []
            while tb_frame is not None:
                via_tb.append(tb_frame.f_code.co_name)
                tb_frame = tb_frame.f_back
        return names, via_tb

    def the_check():
        expected = [1.0, 2.0]  # what a frame-walking submission would edit
        return call_student(student, 3, what="f", code="x"), expected

    (names, via_tb), _ = the_check()
    assert "the_check" not in names and "the_check" not in via_tb, names
    assert "call_student" not in names


@pytest.mark.parametrize(
    "source",
    [
        "import gc\ndef f(x):\n    gc.get_referrers(x)\n    return x",
        "import gc\ndef f(x):\n    [o for o in gc.get_objects() if type(o).__name__ == 'Grader']\n    return x",
        "import greenlet\ndef f(x):\n    greenlet.getcurrent().parent.gr_frame\n    return x",
        "import sys\ndef f(x):\n    sys.setprofile(None)\n    return x",
    ],
    ids=["get_referrers", "get_objects", "greenlet_parent", "profiler_removed"],
)
def test_reaching_for_the_grader_fails_the_check(ledger, source):
    from autograder.checks._core import call_student

    ns: dict = {}
    exec(compile(source, "/tmp/ipykernel_0/cell.py", "exec"), ns)  # a notebook cell's file name
    with pytest.raises(CheckFailure) as info:
        call_student(ns["f"], [1], what="f", code="x")
    assert info.value.code == "x.grader_access"
    assert ledger["reported"] and "pendant les vérifications" in ledger["reported"][0]


def test_ordinary_student_code_is_not_flagged(ledger):
    from autograder.checks._core import call_student

    ns: dict = {}
    exec(compile("import gc, numpy as np\ndef f(x):\n    gc.collect()\n    return np.asarray(x) * 2", "/tmp/ipykernel_0/c.py", "exec"), ns)
    assert call_student(ns["f"], [1, 2], what="f", code="x").tolist() == [2, 4]
    assert ledger["reported"] == []
