"""The staff and student commands on real nbgrader course folders.

`course validate` (student side, no `solutions`), `course feedback` (no hidden test, ever),
`course export` (nbgrader CSV + Moodle CSV with merged tracks), `course release` (audit that
runs the notebooks, changes report, exchange) and `course demo`. Every command: bad arguments
give one line on stderr and exit code 2, and nothing is half-written.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from graded_class import (
    ASSIGNMENT,
    CODES,
    FLAGS_CLASS,
    NOTEBOOK,
    demo_class,
    flags_course,
    synthetic_course,
)

from autograder.cli import main
from autograder.commands import demo as demo_cmd
from autograder.commands import feedback as feedback_cmd
from autograder.commands import release as rel
from autograder.grading import pipeline
from autograder.reports import exports
from autograder.reports.feedback import html_text, leaks, notebook_hidden_lines, sanitize_notebook

ROOT = pipeline.COURSE_ROOT
RELEASE_NB = ROOT / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
SOURCE_NB = ROOT / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
HIDDEN = notebook_hidden_lines(SOURCE_NB)


def one_line_error(capsys, argv: list[str], command: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"course {command}:") and "\n" not in err, err
    return err


def solution_lines(source_nb: Path) -> list[str]:
    return [ln.strip() for src in pipeline.solution_sources(source_nb).values() for ln in src.splitlines()
            if len(ln.strip()) >= 12 and not ln.strip().startswith(("#", '"""', "def "))]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("release", "validate", "feedback", "report", "export", "demo"):
        assert name in out


# ---- course validate ------------------------------------------------------------------------


def test_validate_prints_feedback_per_question_without_solutions(tmp_path):
    """A student's notebook (one function right, one wrong, three stubs), run like a student
    would on an install without `solutions` (a stand-in package that cannot be imported)."""
    answers = pipeline.solution_sources(SOURCE_NB)
    nb = pipeline.fill_solutions(RELEASE_NB, {
        "correlate1d": answers["correlate1d"],
        "convolve1d": answers["convolve1d"].replace("np.asarray(k)[::-1]", "k"),  # forgot the flip
    })
    path = tmp_path / "mon notebook.ipynb"
    nbformat.write(nb, str(path))
    before = path.read_bytes()
    shadow = tmp_path / "shadow" / "solutions"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('staff only')\n")
    env = pipeline.env_with_venv()
    env["PYTHONPATH"] = str(shadow.parent)
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "validate", str(path)],
                          capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "Question 1 — cellule conv1d-correlate-tests : 1 / 1" in out
    assert "Question 2 — cellule conv1d-convolve-tests : 0 / 1" in out and "[conv1d.flip]" in out
    assert "Non tenté" in out
    assert "→ cumul : 1 / 2 (sur 12 au total)" in out
    assert out.rstrip().splitlines()[-1].startswith("Total provisoire : 1 / 12 points (5 question(s)).")
    assert "internal.error" not in out  # the visible checks never needed `solutions`
    assert path.read_bytes() == before  # the student's file is not modified


def test_validate_bad_arguments(tmp_path, capsys):
    one_line_error(capsys, ["validate", str(tmp_path / "absent.ipynb")], "validate")
    (tmp_path / "notes.txt").write_text("x")
    one_line_error(capsys, ["validate", str(tmp_path / "notes.txt")], "validate")
    (tmp_path / "broken.ipynb").write_text("{ not json")
    one_line_error(capsys, ["validate", str(tmp_path / "broken.ipynb")], "validate")


# ---- course feedback ------------------------------------------------------------------------


def test_sanitize_removes_hidden_tests_from_sources_outputs_and_tracebacks():
    hidden_call = "conv.hidden_conv2d_forward(g, conv2d_forward, seed=20261125)"
    cell = nbformat.v4.new_code_cell(
        '"""Vérifie."""\ng = conv.public_conv2d_forward(conv2d_forward, points=4)\n'
        f"### BEGIN HIDDEN TESTS\n{hidden_call}\n### END HIDDEN TESTS\ng.score()",
        metadata={"nbgrader": {"grade": True, "grade_id": "t", "locked": True, "points": 4, "solution": False}},
    )
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"── Résultats\nligne citée : {hidden_call}\n✓ cas\n"),
        nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="",
                               traceback=["\x1b[0;31m---\x1b[0m", f"\x1b[0;32m----> 4\x1b[0m {hidden_call}"]),
    ]
    student = nbformat.v4.new_code_cell("def conv2d_forward(x):\n    return x  # mon code à moi",
                                        metadata={"nbgrader": {"solution": True, "grade_id": "s", "locked": False}})
    nb = nbformat.v4.new_notebook(cells=[student, cell])
    sanitize_notebook(nb)
    text = json.dumps(nb, ensure_ascii=False)
    assert "hidden_conv2d_forward" not in text and "HIDDEN TESTS" not in text
    assert "public_conv2d_forward" in text and "✓ cas" in text
    assert "mon code à moi" in text  # the student's own code stays
    assert cell.outputs[1]["traceback"] == ["KeyboardInterrupt: "]


@pytest.mark.notebook
def test_feedback_shows_checks_but_no_hidden_test_and_no_solution():
    demo = demo_class()
    pages = {p.parent.parent.name: p for p in (demo.course / "feedback").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}.html")}
    assert set(pages) == {"alice", "bruno", "chloe", "david", "eve"}
    assert HIDDEN, "the source notebook has hidden tests to look for"
    for student, page in pages.items():
        raw = page.read_text(encoding="utf-8")
        assert leaks(raw, HIDDEN) == [], student
        assert "HIDDEN TESTS" not in raw and "BEGIN SOLUTION" not in raw, student
        text = html_text(raw)
        assert "── Résultats" in text and "Score" in text
        assert "public_conv2d_forward" in text  # the release version of the test cell is shown
    david = html_text(pages["david"].read_text(encoding="utf-8"))
    assert "[conv_backward.exception]" in david and "NameError" in david
    assert "(test caché)" in david  # hidden checks' messages are feedback, their code is not
    chloe = html_text(pages["chloe"].read_text(encoding="utf-8"))
    assert [ln for ln in solution_lines(SOURCE_NB) if ln in chloe] == []


#: What nbgrader's own feedback template writes (nbgrader 0.9.6), and what the course writes instead.
NBGRADER_ENGLISH = ("Student's answer", "Student's task", "Grade cell", "Test cell", "Comments:", "(Top)",
                    "Score:", "Written response", "Coding free-response", "Late submission penalty")


@pytest.mark.notebook
def test_feedback_pages_speak_french_with_french_numbers():
    demo = demo_class()
    pages = sorted((demo.course / "feedback").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}.html"))
    assert pages
    for page in pages:
        raw = page.read_text(encoding="utf-8")
        text = html_text(raw)
        assert [label for label in NBGRADER_ENGLISH if label in text] == [], page
        assert '<html lang="fr">' in raw, page
        assert "Votre réponse" in text and text.count("Cellule de test : conv2d-forward-tests") == 1, page
        assert "(haut de page)" in text, page
    # Scores with a decimal comma: bruno's partial marks are not integers
    bruno = html_text((demo.course / "feedback" / "bruno" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text(encoding="utf-8"))
    assert re.search(r"\(note : \d+,\d+ / 12\)", bruno), re.findall(r"\(note : [^)]*\)", bruno)[:3]


@pytest.mark.notebook
def test_plain_nbgrader_feedback_would_leak_so_the_check_can_fail(tmp_path):
    """Control: nbgrader's own generate_feedback shows hidden tests (#917) and the audit sees it."""
    demo = demo_class()
    # nbgrader's own preprocessors (the course config replaces them with HideHiddenTests first).
    proc = pipeline.nbgrader(demo.course, "generate_feedback", ASSIGNMENT, "--student", "chloe", "--force",
                             f"--CourseDirectory.feedback_directory={tmp_path.name}-plain",
                             "--GenerateFeedback.preprocessors=nbgrader.preprocessors.GetGrades",
                             "--GenerateFeedback.preprocessors=nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
                             check=False)
    plain = demo.course / f"{tmp_path.name}-plain" / "chloe" / ASSIGNMENT / f"{NOTEBOOK}.html"
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert leaks(plain.read_text(encoding="utf-8"), HIDDEN)
    finally:
        shutil.rmtree(demo.course / f"{tmp_path.name}-plain", ignore_errors=True)


@pytest.mark.notebook
def test_feedback_refuses_to_publish_a_leak_and_writes_nothing(monkeypatch):
    demo = demo_class()
    page = demo.course / "feedback" / "bruno" / ASSIGNMENT / f"{NOTEBOOK}.html"
    before = page.read_bytes()
    monkeypatch.setattr(feedback_cmd, "PREPROCESSORS", feedback_cmd.PREPROCESSORS[1:])  # no HideHiddenTests
    with pytest.raises(RuntimeError, match="leak hidden tests"):
        feedback_cmd.generate(demo.course, ASSIGNMENT, ["bruno"], say=lambda *a: None, quiet=True)
    assert page.read_bytes() == before
    assert not [p for p in demo.course.iterdir() if p.name.startswith(".feedback")]


@pytest.mark.notebook
def test_feedback_command_and_its_bad_arguments(capsys, tmp_path):
    demo = demo_class()
    assert main(["feedback", ASSIGNMENT, "--course", str(demo.course), "--student", "david", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    one_line_error(capsys, ["feedback", "m9-nope", "--course", str(demo.course)], "feedback")
    one_line_error(capsys, ["feedback", ASSIGNMENT, "--course", str(demo.course), "--student", "zed"], "feedback")
    one_line_error(capsys, ["feedback", ASSIGNMENT, "--course", str(tmp_path / "absent")], "feedback")


# ---- course export --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return synthetic_course(tmp_path_factory.mktemp("export") / "course")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_export_writes_nbgrader_and_moodle_csv_with_tracks_merged(synthetic, tmp_path, capsys):
    out = tmp_path / "exports"
    assert main(["export", "--course", str(synthetic), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "dan: submitted m6-improving-pytorch, m6-improving-tensorflow" in err
    assert "dan: m3-fundamentals has cells without a grade" in err
    assert "ben: a name or email holds a comma" in err
    moodle = {r["Username"]: r for r in read_csv(out / "grades_moodle.csv")}
    assert list(next(iter(moodle.values()))) == ["Username", "Email address", "First name", "Last name",
                                                 "m3-fundamentals", "m6-improving"]
    # One m6 column: ana took PyTorch (8/10), ben TensorFlow (5/10), dan both (latest: TF, 6/10).
    assert {s: r["m6-improving"] for s, r in moodle.items()} == {"ana": "16", "ben": "10", "cleo": "", "dan": "12", "eli": ""}
    assert moodle["ben"]["Last name"] == "Durand, Jr"  # quoted, not split
    assert moodle["eli"]["First name"] == "Éli"
    # m3 is not merged: Moodle's grade = nbgrader's exported score rescaled to 20.
    for row in read_csv(out / "grades_nbgrader.csv"):
        if row["assignment"] != ASSIGNMENT or None in row or row["student_id"] == "eli":
            continue  # eli never submitted; ben's row is misaligned by nbgrader (comma in his name)
        assert float(moodle[row["student_id"]][ASSIGNMENT]) == pytest.approx(
            round(float(row["score"]) / float(row["max_score"]) * 20, 2))
    assert moodle["ben"][ASSIGNMENT] == "0"  # late: nbgrader's penalty applied
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_per_question_csv_matches_the_gradebook_with_tracks_merged(synthetic, tmp_path):
    from nbgrader.api import Gradebook

    out = tmp_path / "exports"
    assert main(["export", "--course", str(synthetic), "--out", str(out), "--quiet"]) == 0
    rows = read_csv(out / "grades_questions.csv")
    assert list(rows[0]) == list(exports.QUESTION_HEADER)
    by_key = {(r["Username"], r["module"], r["question"]): r for r in rows}
    assert len(by_key) == len(rows)  # one row per student and question of a module
    with Gradebook(f"sqlite:///{synthetic / 'gradebook.db'}") as gb:
        for r in rows:
            grade = gb.find_grade(f"{r['question']}-tests", r["notebook"], r["assignment"], r["Username"])
            scored = grade.auto_score is not None or grade.manual_score is not None
            assert r["score"] == (f"{grade.score:g}" if scored else ""), r  # dan's b: never scored, empty
            assert float(r["max_score"]) == grade.max_score
    # m6: one module for both tracks; dan submitted both, his row is the latest (TensorFlow).
    m6 = {r["Username"]: r["assignment"] for r in rows if r["module"] == "m6-improving"}
    assert m6 == {"ana": "m6-improving-pytorch", "ben": "m6-improving-tensorflow", "dan": "m6-improving-tensorflow"}
    codes = {(r["Username"], r["question"]): r["failure_codes"].split() for r in rows if r["module"] == ASSIGNMENT}
    for student, cells in CODES.items():
        for cell, planted in cells.items():
            assert codes[(student, cell)] == planted
    assert codes[("ana", "a")] == []
    assert "eli" not in {r["Username"] for r in rows}  # no submission, no row (the Moodle CSV keeps the column empty)


def test_per_question_csv_names_what_grading_did_to_each_cell(tmp_path):
    course = flags_course(tmp_path / "course")
    header, rows, _ = exports.question_table(course, f"sqlite:///{course / 'gradebook.db'}")
    flags = {(r[0], r[4]): r[8] for r in rows}
    assert len(rows) == len(FLAGS_CLASS) * 3
    assert flags[("kurt", "g")] == "kernel_died" and flags[("tim", "f")] == "timeout"
    assert flags[("nina", "f")] == "not_attempted" and flags[("uma", "h")] == "unreadable"
    assert flags[("tara", "g")] == "tampering" and flags[("rosa", "h")] == "restored" and flags[("ok", "f")] == ""


def test_moodle_options_raw_points_and_missing_as_zero(synthetic):
    url = f"sqlite:///{synthetic / 'gradebook.db'}"
    header, rows, _ = exports.moodle_table(url, out_of=None, missing_as_zero=True)
    table = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert table["ana"]["m3-fundamentals"] == "5" and table["ana"]["m6-improving"] == "8"
    assert table["eli"]["m3-fundamentals"] == "0" and table["cleo"]["m6-improving"] == "0"
    assert exports.column_of("m7-case-studies-tensorflow") == ("m7-case-studies", "tensorflow")
    assert exports.column_of("m4-tensorflow") == ("m4-tensorflow", None)  # a module, not a track


def test_export_bad_arguments_and_failures_write_nothing(synthetic, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    one_line_error(capsys, ["export", "--course", str(tmp_path / "absent"), "--out", str(out)], "export")
    one_line_error(capsys, ["export", "--course", str(synthetic), "--out", str(out), "--out-of", "-1"], "export")

    def boom(*args, **kwargs):
        raise RuntimeError("gradebook locked")

    monkeypatch.setattr(exports, "moodle_table", boom)
    with pytest.raises(RuntimeError):
        main(["export", "--course", str(synthetic), "--out", str(out), "--quiet"])
    assert not out.exists() or list(out.iterdir()) == []


# ---- course release -------------------------------------------------------------------------


@pytest.mark.notebook
def test_release_audit_runs_notebooks_as_a_student_would(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy2(RELEASE_NB, good / f"{NOTEBOOK}.ipynb")
    assert rel.execute_release(good) == []
    broken = tmp_path / "broken"
    broken.mkdir()
    nb = nbformat.read(str(RELEASE_NB), as_version=4)
    imports = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "imports")
    imports.source += "\nfrom solutions.conv import ref_conv2d_forward"  # staff-only on a student install
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "conv1d-convolve-tests")
    test.source = test.source.replace("g.score()", "1.0")  # an untouched notebook would earn a point
    nbformat.write(nb, str(broken / f"{NOTEBOOK}.ipynb"))
    problems = rel.execute_release(broken)
    assert any("(imports): raises ImportError" in p for p in problems), problems
    assert any("conv1d-convolve-tests" in p and "must score 0" in p for p in problems), problems
    assert not any("example-1d" in p for p in problems)  # NotImplementedError from a stub: expected


def test_release_reports_what_changed_cell_by_cell(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(ROOT / "release" / ASSIGNMENT, old)
    new = tmp_path / "new"
    shutil.copytree(old, new)
    path = new / f"{NOTEBOOK}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == "conv2d-forward-tests":
            meta["points"] = 5
            cell["source"] = "".join(cell["source"]).replace("points=4", "points=5")
    nb["cells"] = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "example-1d"]
    path.write_text(json.dumps(nb), encoding="utf-8")
    (new / "data.csv").write_text("x\n1\n")
    changes = rel.describe_changes(new, old)
    line = next(ln for ln in changes if ln.startswith(f"{NOTEBOOK}.ipynb"))
    assert "~conv2d-forward-tests" in line and "-example-1d" in line and "points 12 → 13" in line
    assert "data.csv: added" in changes
    assert rel.describe_changes(old, old) == []
    assert rel.describe_changes(new, tmp_path / "never")[0].startswith("new assignment")


def test_release_to_a_temporary_exchange(tmp_path):
    where = rel.release_to_exchange(ASSIGNMENT, tmp_path / "exchange")
    outbound = tmp_path / "exchange" / "cnn-course" / "outbound" / ASSIGNMENT
    assert Path(where) == outbound
    assert (outbound / f"{NOTEBOOK}.ipynb").read_bytes() == RELEASE_NB.read_bytes()
    assert (tmp_path / "exchange" / "cnn-course" / "inbound").is_dir()


def test_release_bad_arguments(capsys, tmp_path):
    one_line_error(capsys, ["release"], "release")
    one_line_error(capsys, ["release", "m9-nope"], "release")
    one_line_error(capsys, ["release", ASSIGNMENT, "--check", "--exchange"], "release")
    one_line_error(capsys, ["release", ASSIGNMENT, "--exchange-root", str(tmp_path)], "release")


# ---- course demo ----------------------------------------------------------------------------


@pytest.mark.notebook
def test_demo_grades_the_class_and_writes_feedback_and_report():
    demo = demo_class()
    scores = {s: nbs[NOTEBOOK].score for s, nbs in demo.results.items()}
    # bruno: convolve1d without the flip, conv2d without padding; david: the flip forgotten too,
    # conv2d's kernel flipped and a NameError in conv2d_backward. eve's tampering earns 0.
    assert scores == {"alice": 12.0, "bruno": 2.6, "chloe": 0.0, "david": 3.0, "eve": 0.0}
    assert len(demo.feedback) == 5 and all(p.is_file() for p in demo.feedback)
    assert demo.report.is_file() and demo.report.name == "index.html"


def test_demo_bad_arguments(capsys, tmp_path):
    one_line_error(capsys, ["demo", "--dir", str(tmp_path / "d"), "--assignment", "m9-nope"], "demo")
    one_line_error(capsys, ["demo", "--dir", str(tmp_path / "d"), "--notebook", "nope"], "demo")
    one_line_error(capsys, ["demo", "--dir", str(tmp_path / "d"), "--all", "--notebook", NOTEBOOK], "demo")
    assert not (tmp_path / "d").exists()


def test_demo_misconceptions_are_written_into_the_submissions():
    """Each misconception applies to today's solution (its text is there), lands in the cell it
    names for the students it names, and leaves the other students' cells alone; every module
    release/ holds is in --all's list."""
    released = sorted(p.name for p in (ROOT / "release").iterdir() if p.is_dir())
    assert demo_cmd.released_modules() == released and {"m3-fundamentals", "m5-pytorch"} <= set(released)
    for key, bugs in demo_cmd.MISCONCEPTIONS.items():
        assignment, notebook = key.split("/")
        assert assignment in released, key
        release_nb = ROOT / "release" / assignment / f"{notebook}.ipynb"
        source_nb = ROOT / "source" / assignment / f"{notebook}.ipynb"
        solutions = pipeline.solution_sources(source_nb)
        cells = {}
        for student in demo_cmd.CLASS:
            nb = demo_cmd.make_submission(release_nb, source_nb, student, assignment)
            cells[student] = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                              if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
        for bug in bugs:
            buggy = bug.apply(solutions[bug.grade_id])
            assert buggy.strip() != solutions[bug.grade_id].strip() and bug.expect, bug
            for student in bug.students:
                if bug in demo_cmd.misconceptions_of(assignment, notebook, student):  # the first on its cell
                    assert cells[student][bug.grade_id] == buggy, (bug, student)
        assert cells["alice"] == solutions  # alice stays right


@pytest.mark.slow
@pytest.mark.notebook
def test_demo_all_grades_every_released_module_and_shows_its_misconceptions(tmp_path):
    """`course demo --all`: every module of release/, graded, reported, with the failure code of
    each misconception of its class in its report (not only `*.exception`)."""
    from test_report import parse

    demo = demo_cmd.build(tmp_path / "course", demo_cmd.released_modules(), say=lambda *a: None)
    assert demo.returncode == 0 and demo.assignments == demo_cmd.released_modules()
    index = demo.index.read_text(encoding="utf-8")
    for assignment in demo.assignments:
        assert f'href="{assignment}/index.html"' in index
        results = demo.all_results[assignment]
        assert set(results) == set(demo_cmd.CLASS)
        assert all(nb.score == nb.max_score for nb in results["alice"].values()), (assignment, results["alice"])
        t = parse(demo.reports[assignment])
        codes = {r["attrs"]["data-code"] for r in t.tables.get("codes", []) if "data-code" in r["attrs"]}
        expected = {bug.expect for key, bugs in demo_cmd.MISCONCEPTIONS.items() if key.startswith(f"{assignment}/") for bug in bugs}
        assert expected <= codes, (assignment, expected - codes)
        flags = {r["attrs"]["data-student"]: set(r["attrs"]["data-flags"].split()) for r in t.tables["flagged"] if "data-student" in r["attrs"]}
        assert flags["chloe"] == {"not_attempted"}, (assignment, flags)  # m5 too: no « zéro » for the release handed in
        assert {r["attrs"]["data-question"] for r in t.tables["questions"] if "data-question" in r["attrs"]}


def test_reading_a_course_config_leaves_the_environment_as_it_was():
    """The course config sets variables for grading kernels (COURSE_ROOT, JUPYTER_PATH…)."""
    from autograder.reports.common import load_course_config

    before = dict(os.environ)
    config = load_course_config(ROOT)
    assert dict(os.environ) == before
    assert config.CourseDirectory.root == str(ROOT)


# ---- the command line: --quiet, --version, suggestions, offline feedback -----------------------

#: The least each command needs to parse (names need not exist: only the parser runs).
MINIMAL_ARGS = {"doctor": [], "data": [], "release": ["m3-fundamentals"], "grade": ["m3-fundamentals"],
                "demo": [], "validate": ["nb.ipynb"], "feedback": ["m3-fundamentals"],
                "report": ["m3-fundamentals"], "export": [], "bench": ["grading"]}


def test_every_command_takes_quiet_before_or_after_its_name():
    from autograder.cli import COMMANDS, build_parser

    assert set(MINIMAL_ARGS) == set(COMMANDS)  # a new command gets a line here
    parser = build_parser()
    for name, argv in MINIMAL_ARGS.items():
        assert parser.parse_args([name, *argv, "--quiet"]).quiet is True, name
        assert parser.parse_args([name, *argv]).quiet is False, name
        assert parser.parse_args(["--quiet", name, *argv])._quiet_before is True, name


def test_doctor_quiet_prints_only_its_summary(capsys):
    assert main(["doctor", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Summary: "), lines


def test_version_is_the_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"course (cnn-course) {version('cnn-course')}"


def test_a_mistyped_assignment_is_answered_with_the_name_meant(tmp_path, capsys, synthetic):
    typo = "m3-fundamantals"
    meant = f"(did you mean {ASSIGNMENT}?)"
    err = one_line_error(capsys, ["release", typo, "--course", str(ROOT), "--check"], "release")
    assert meant in err
    course = tmp_path / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "submitted" / "ana" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    err = one_line_error(capsys, ["grade", typo, "--course", str(course)], "grade")
    assert meant in err and "generate_assignment" not in err, err
    err = one_line_error(capsys, ["feedback", typo, "--course", str(synthetic)], "feedback")
    assert meant in err
    err = one_line_error(capsys, ["feedback", ASSIGNMENT, "--course", str(synthetic), "--student", "anna"], "feedback")
    assert "(did you mean ana?)" in err
    err = one_line_error(capsys, ["report", typo, "--course", str(synthetic)], "report")
    assert meant in err
    shutil.copy2(RELEASE_NB, tmp_path / f"{NOTEBOOK}.ipynb")
    err = one_line_error(capsys, ["validate", str(tmp_path / "convolutoin.ipynb")], "validate")
    assert f" {NOTEBOOK}.ipynb?)" in err or f" {NOTEBOOK}.ipynb ?)" in err, err  # English or French
    # A name like none of the course's: nbgrader's own advice, which then fits.
    err = one_line_error(capsys, ["release", "m9-nope", "--course", str(ROOT)], "release")
    assert "did you mean" not in err


@pytest.mark.notebook
def test_demo_feedback_pages_need_no_network_and_carry_no_fontconfig_noise():
    """Every feedback page of the demo class: MathJax inlined (the m3 notebooks have formulas),
    no remote script, stylesheet, font or image, and no "Fontconfig error" block from the
    sandboxed kernel (its matplotlib figure)."""
    from autograder.reports.feedback import remote_urls

    demo = demo_class()
    pages = sorted((demo.course / "feedback").rglob("*.html"))
    assert len(pages) == 5
    for page in pages:
        raw = page.read_text(encoding="utf-8")
        assert "Fontconfig error" not in raw, page
        assert remote_urls(raw) == [], page
        assert "window.MathJax" in raw and "cdnjs.cloudflare.com" not in raw, page
