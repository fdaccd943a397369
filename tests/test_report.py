"""`course report`: the numbers in the class report are the gradebook's.

The report's tables carry ``data-*`` attributes; these tests read them back with an HTML parser
and compare them with what nbgrader's own API says, on a synthetic gradebook holding every case
(late, ungraded, zero, never graded, planted failure codes and timings) and on the real demo
class graded by nbgrader. The plots must be real PNG images.
"""

from __future__ import annotations

import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
from graded_class import (
    ASSIGNMENT,
    CODES,
    DURATIONS,
    FLAGS_ASSIGNMENT,
    FLAGS_CLASS,
    FLAGS_EXPECTED,
    FLAGS_NOTEBOOK,
    FLAGS_QUESTIONS,
    MESSAGES,
    NOTEBOOK,
    demo_class,
    flags_course,
    synthetic_course,
)

from autograder.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Tables(HTMLParser):
    """Rows (``<tr>`` attributes + the ``data-*`` attributes of their cells), keyed by table.

    Each cell also holds its visible text under ``_text``; each row lists its ``<li>`` items
    (attributes + ``_text``) and links (``<a>`` attributes) under ``items`` and ``links``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._row: dict | None = None
        self._open: list[dict] = []  # td / li being read: their text accumulates

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            key = a.get("id") or f"{a.get('class')}:{a.get('data-notebook')}"
            self._table = key
            self.tables[key] = []
        elif tag == "tr" and self._table:
            self._row = {"attrs": a, "cells": [], "items": [], "links": []}
            self.tables[self._table].append(self._row)
        elif tag == "td" and self._row is not None:
            a["_text"] = ""
            self._row["cells"].append(a)
            self._open = [a]
        elif tag == "li" and self._row is not None:
            a["_text"] = ""
            self._row["items"].append(a)
            self._open.append(a)
        elif tag == "a" and self._row is not None:
            self._row["links"].append(a)
        elif tag == "img":
            self.images.append(a["src"])

    def handle_data(self, data):
        for element in self._open:
            element["_text"] += data

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "li" and len(self._open) > 1:
            self._open.pop()
        elif tag == "td":
            self._open = []


def parse(path: Path) -> Tables:
    t = Tables()
    t.feed(path.read_text(encoding="utf-8"))
    return t


def gradebook_truth(course: Path, assignment: str) -> dict:
    """Scores straight from nbgrader's API: {student: (score after penalty, raw, penalty, ungraded)}."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(assignment).submissions:
            ungraded = any(g.auto_score is None and g.manual_score is None for nb in sub.notebooks for g in nb.grades)
            penalty = sub.late_submission_penalty or 0.0
            nbs = {nb.name: nb.score for nb in sub.notebooks}
            out[sub.student.id] = (max(0.0, sub.score - penalty), sub.score, penalty, ungraded, nbs)
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    course = synthetic_course(tmp_path_factory.mktemp("synthetic") / "course")
    assert main(["report", ASSIGNMENT, "--course", str(course), "--quiet"]) == 0
    return course, course / "reports" / ASSIGNMENT / "index.html"


def test_scores_table_matches_the_gradebook(synthetic):
    course, index = synthetic
    truth = gradebook_truth(course, ASSIGNMENT)
    rows = {r["attrs"]["data-student"]: r for r in parse(index).tables["scores"] if "data-student" in r["attrs"]}
    assert set(rows) == set(truth)
    for student, (score, _raw, penalty, ungraded, nbs) in truth.items():
        cells = rows[student]["cells"]
        total = next(c for c in cells if c.get("class") == "total")["data-score"]
        shown_penalty = float(next(c for c in cells if "data-penalty" in c)["data-penalty"])
        assert shown_penalty == pytest.approx(penalty)
        if ungraded:  # an ungraded cell is not silently a 0 in the report
            assert total == ""
        else:
            assert float(total) == pytest.approx(score)
            for c in cells:
                if "data-notebook" in c:
                    assert float(c["data-score"]) == pytest.approx(nbs[c["data-notebook"]])


def test_summary_and_histogram_match_the_gradebook(synthetic):
    course, index = synthetic
    truth = gradebook_truth(course, ASSIGNMENT)
    graded = [v[0] for v in truth.values() if not v[3]]
    t = parse(index)
    summary = {r["attrs"]["data-key"]: r["attrs"]["data-value"] for r in t.tables["summary"] if "data-key" in r["attrs"]}
    assert int(summary["submissions"]) == len(truth) == 4
    assert int(summary["graded"]) == len(graded) == 3
    assert int(summary["students"]) == 5
    assert float(summary["mean"]) == pytest.approx(statistics.fmean(graded))
    assert float(summary["median"]) == pytest.approx(statistics.median(graded))
    assert float(summary["max"]) == pytest.approx(max(graded))
    # Per notebook: raw scores; total: after the late penalty (ben: 3.5 raw, 0 in the end).
    for table, scores in (("histogram:convolution", [v[4]["convolution"] for v in truth.values() if not v[3]]),
                          ("histogram:__total__", graded)):
        hist = [r["attrs"] for r in t.tables[table] if "data-count" in r["attrs"]]
        assert sum(int(h["data-count"]) for h in hist) == len(scores)
        for i, h in enumerate(hist):
            low, high = float(h["data-low"]), float(h["data-high"])
            last = i == len(hist) - 1
            expected = sum(1 for s in scores if low <= s < high or (last and s == high))
            assert int(h["data-count"]) == expected, (table, h)


def test_failure_codes_timing_and_flags(synthetic):
    _, index = synthetic
    t = parse(index)
    codes = {r["attrs"]["data-code"]: r["attrs"] for r in t.tables["codes"] if "data-code" in r["attrs"]}
    expected: dict[str, set] = {}
    for student, cells in CODES.items():
        for cell_codes in cells.values():
            for code in cell_codes:
                expected.setdefault(code, set()).add(student)
    assert {c: int(a["data-students"]) for c, a in codes.items()} == {c: len(s) for c, s in expected.items()}
    assert int(codes["conv.padding"]["data-occurrences"]) == 3
    order = [r["attrs"]["data-code"] for r in t.tables["codes"] if "data-code" in r["attrs"]]
    assert order[0] == "conv.padding"  # the most widespread misconception first
    timing = next(r["attrs"] for r in t.tables["timing"] if r["attrs"].get("data-notebook") == "convolution")
    assert int(timing["data-n"]) == len(DURATIONS)
    assert float(timing["data-max"]) == pytest.approx(max(DURATIONS.values()), abs=1e-3)
    assert float(timing["data-total"]) == pytest.approx(sum(DURATIONS.values()), abs=1e-3)
    flags = {r["attrs"]["data-student"]: set(r["attrs"]["data-flags"].split()) for r in t.tables["flagged"] if "data-student" in r["attrs"]}
    # ben's 0 is the late penalty's (raw 3.5): flagged late, not « zéro sans autre motif ».
    assert flags == {"ben": {"late"}, "cleo": {"zero"}, "dan": {"ungraded"}, "zoe": {"not_in_gradebook"}}


def test_plots_are_real_images_built_from_the_data(synthetic):
    import matplotlib.image as mpimg

    _, index = synthetic
    images = parse(index).images
    assert set(images) == {"hist-convolution.png", "hist-__total__.png", "codes.png"}  # total: ben was late
    for name in images:
        path = index.parent / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        pixels = mpimg.imread(path)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels.std() > 0.05  # not a blank canvas


def test_all_writes_an_index_and_one_report_per_assignment(synthetic, tmp_path):
    course, _ = synthetic
    out = tmp_path / "reports"
    assert main(["report", "--all", "--course", str(course), "--out", str(out), "--quiet"]) == 0
    names = sorted(p.parent.name for p in out.glob("*/index.html"))
    assert names == ["m3-fundamentals", "m6-improving-pytorch", "m6-improving-tensorflow"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{n}/index.html"' in index for n in names)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_bad_arguments_give_one_line_and_write_nothing(synthetic, tmp_path, capsys):
    course, _ = synthetic
    out = tmp_path / "out"
    cases = [
        ["report", "nope", "--course", str(course), "--out", str(out)],
        ["report", "--course", str(course), "--out", str(out)],
        ["report", ASSIGNMENT, "--all", "--course", str(course), "--out", str(out)],
        ["report", ASSIGNMENT, "--course", str(tmp_path / "missing"), "--out", str(out)],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("course report:") and "\n" not in err, err
    assert not out.exists()
    # A course folder without a gradebook: refused, and no empty gradebook created by reading.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "nbgrader_config.py").write_text("c = get_config()\n")
    assert main(["report", ASSIGNMENT, "--course", str(empty)]) == 2
    assert not (empty / "gradebook.db").exists()


def test_a_failing_report_leaves_the_previous_one_intact(synthetic, monkeypatch):
    from autograder.reports import classreport

    course, index = synthetic
    before = index.read_text(encoding="utf-8")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(classreport, "_plot_codes", boom)
    with pytest.raises(RuntimeError):
        main(["report", ASSIGNMENT, "--course", str(course), "--quiet"])
    assert index.read_text(encoding="utf-8") == before
    assert not [p for p in index.parent.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.notebook
def test_report_of_the_graded_demo_class_matches_the_gradebook():
    demo = demo_class()
    truth = gradebook_truth(demo.course, ASSIGNMENT)
    t = parse(demo.report)
    rows = {r["attrs"]["data-student"]: r for r in t.tables["scores"] if "data-student" in r["attrs"]}
    assert {s: float(next(c for c in r["cells"] if c.get("class") == "total")["data-score"]) for s, r in rows.items()} == {
        s: pytest.approx(v[0]) for s, v in truth.items()
    }
    assert truth["alice"][0] == 12 and truth["chloe"][0] == 0
    codes = {r["attrs"]["data-code"]: int(r["attrs"]["data-students"]) for r in t.tables["codes"] if "data-code" in r["attrs"]}
    assert "conv_backward.exception" in codes  # david's NameError, read from the autograded notebook
    # The demo's misconceptions, not only exceptions: bruno and david forgot the flip in
    # convolve1d, david flipped conv2d's kernel, bruno forgot its padding.
    assert codes["conv1d.flip"] == 2 and "conv.flip" in codes and "conv.padding" in codes
    flags = {r["attrs"]["data-student"]: set(r["attrs"]["data-flags"].split()) for r in t.tables["flagged"] if "data-student" in r["attrs"]}
    # chloe handed in the release; eve wrote nothing and deleted a test cell (put back by grading).
    assert flags == {"chloe": {"not_attempted"}, "eve": {"not_attempted", "restored"}}
    # « rendu le » is the submission time nbgrader read from timestamp.txt.
    stamps = {s: next(c for c in r["cells"] if c.get("class") == "when")["data-timestamp"] for s, r in rows.items()}
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{demo.course / 'gradebook.db'}") as gb:
        expected = {sub.student.id: sub.timestamp.isoformat() for sub in gb.find_assignment(ASSIGNMENT).submissions}
    assert stamps == expected and all(stamps.values())
    # each student's feedback page, linked relative to the report
    for student, r in rows.items():
        (link,) = r["links"]
        assert (demo.report.parent / link["href"]).resolve() == demo.course / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html"
    timing = next(r["attrs"] for r in t.tables["timing"] if r["attrs"].get("data-notebook") == "convolution")
    assert int(timing["data-n"]) == 5 and float(timing["data-max"]) > 0
    for name in t.images:
        assert (demo.report.parent / name).read_bytes()[:8] == PNG_MAGIC


# ---- flags with their reason, per-question figures, links, format, permissions ----------------


@pytest.fixture(scope="module")
def flagged(tmp_path_factory):
    course = flags_course(tmp_path_factory.mktemp("flags") / "course")
    assert main(["report", FLAGS_ASSIGNMENT, "--course", str(course), "--quiet"]) == 0
    return course, course / "reports" / FLAGS_ASSIGNMENT / "index.html"


def test_the_grading_texts_the_flags_read_are_the_ones_grading_writes():
    """The hand-made notebooks of ``flags_course`` copy texts of autograder.grading: pin them."""
    import inspect

    from nbgrader.preprocessors import Execute

    from autograder.grading import preprocessors, submissions
    from autograder.reports import gradebook

    guarded = inspect.getsource(preprocessors.GuardedExecute)
    assert "le noyau Python s'est arrêté pendant cette cellule" in guarded
    assert guarded.count("possible falsification") == 2 and "environnement de correction modifié" in guarded
    assert 'f"Rendu illisible : {unreadable}"' in guarded
    assert "Rendu illisible" in inspect.getsource(submissions)
    assert Execute().error_on_timeout["ename"] == gradebook.TIMEOUT_ENAME
    assert preprocessors.RESTORED_PREFIX == "⚠ Cellule de test restaurée"


def test_every_flag_has_its_reason(flagged):
    _, index = flagged
    rows = {r["attrs"]["data-student"]: r for r in parse(index).tables["flagged"] if "data-student" in r["attrs"]}
    assert {s: set(r["attrs"]["data-flags"].split()) for s, r in rows.items()} == FLAGS_EXPECTED
    details = {s: {i["data-flag"]: i["_text"] for i in r["items"]} for s, r in rows.items()}
    assert "s'est arrêté" in details["kurt"]["kernel_died"] and "checks/g" in details["kurt"]["kernel_died"]
    assert "checks/f" in details["tim"]["timeout"]
    assert "possible falsification" in details["tara"]["tampering"]
    assert "`np.sum` remplacée" in details["fred"]["tampering"]  # the review note alone, no points lost
    assert "checks/h" in details["rosa"]["restored"] and "manquait" in details["rosa"]["restored"]
    assert "JSON valide" in details["uma"]["unreadable"]
    assert "3 cellule(s)" in details["nina"]["not_attempted"]
    assert "aucune réponse écrite" in details["sam"]["not_attempted"]  # every solution cell the stub
    assert "5 h 00 min" in details["lea"]["late"] and "pénalité 6 pt" in details["lea"]["late"]
    assert "conv.padding" in details["zed"]["zero"]
    assert not any("zéro" in text for s, d in details.items() if s != "zed" for text in d.values())


def test_per_question_figures_match_the_gradebook(flagged):
    from nbgrader.api import Gradebook

    course, index = flagged
    t = parse(index)
    rows = {r["attrs"]["data-question"]: r for r in t.tables["questions"] if "data-question" in r["attrs"]}
    assert list(rows) == list(FLAGS_QUESTIONS)  # notebook order
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for q, points in FLAGS_QUESTIONS.items():
            grades = [gb.find_grade(f"{q}-tests", FLAGS_NOTEBOOK, FLAGS_ASSIGNMENT, s) for s in FLAGS_CLASS]
            scores = [g.score for g in grades if g.auto_score is not None or g.manual_score is not None]
            a = rows[q]["attrs"]
            assert float(a["data-max"]) == points and int(a["data-n"]) == len(scores) == len(FLAGS_CLASS)
            assert float(a["data-mean"]) == pytest.approx(statistics.fmean(scores))
            assert float(a["data-success"]) == pytest.approx(sum(x == points for x in scores) / len(scores))
            # shown in French: « 1,18 / 2 », « 55 % »
            texts = [c["_text"] for c in rows[q]["cells"]]
            mean = f"{statistics.fmean(scores):.2f}".rstrip("0").rstrip(".").replace(".", ",")
            assert f"{mean} / {points:g}" in texts
            assert f"{round(100 * float(a['data-success']))}\u00a0%" in texts
    stubs = {q: sum(o[q] == "stub" for o in FLAGS_CLASS.values()) for q in FLAGS_QUESTIONS}
    assert {q: int(r["attrs"]["data-not-attempted"]) for q, r in rows.items()} == stubs
    codes = {q: {i["data-code"]: i for i in r["items"] if "data-code" in i} for q, r in rows.items()}
    assert {q: {c: int(i["data-students"]) for c, i in cs.items()} for q, cs in codes.items()} == {
        "f": {"conv.padding": 2}, "g": {"conv.flip": 1}, "h": {"conv.stride": 2}}  # zed and pia on f, zed and sam on h
    for cs in codes.values():
        for code, item in cs.items():
            assert MESSAGES[code].replace("`", "") in item["_text"]  # the French message the student read
    page = index.read_text(encoding="utf-8")
    assert "Réussite : part des soumissions" in page
    assert "<code>conv2d</code> avec padding=1" in page  # names in the message shown as code, as students saw them
    assert next(r for r in t.tables["codes"] if r["attrs"].get("data-code") == "conv.flip")["cells"][-1]["_text"] == MESSAGES["conv.flip"].replace("`", "")


def test_feedback_links_only_where_the_page_exists(flagged):
    course, index = flagged
    rows = {r["attrs"]["data-student"]: r for r in parse(index).tables["scores"] if "data-student" in r["attrs"]}
    links = {s: r["links"] for s, r in rows.items() if r["links"]}
    assert list(links) == ["ok"]
    (link,) = links["ok"]
    assert not Path(link["href"]).is_absolute()
    assert (index.parent / link["href"]).resolve() == course / "feedback" / "ok" / FLAGS_ASSIGNMENT / f"{FLAGS_NOTEBOOK}.html"


def test_numbers_are_french_on_the_page(synthetic):
    import re

    _, index = synthetic
    t = parse(index)
    rows = {r["attrs"]["data-student"]: r for r in t.tables["scores"] if "data-student" in r["attrs"]}
    ben = {c.get("data-notebook") or c.get("class") or ("penalty" if "data-penalty" in c else ""): c["_text"] for c in rows["ben"]["cells"]}
    assert ben["convolution"] == "3,5" and ben["penalty"] == "3,5"
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", ben["when"])
    shown = [c["_text"] for rows in t.tables.values() for r in rows for c in r["cells"]]
    assert not [x for x in shown if re.search(r"\d\.\d", x)], "a decimal point where French writes a comma"


def test_score_axes_have_integer_ticks_and_french_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autograder.reports import classreport

    fig, ax = plt.subplots()
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 2)
    classreport._format_score_axes(ax, 3.0)
    assert all(float(x).is_integer() for x in ax.get_xticks())  # no 0.5 between possible scores
    assert all(float(y).is_integer() for y in ax.get_yticks())
    assert ax.xaxis.get_major_formatter()(2.5, 0) == "2,5"
    ax.set_xlim(0, 2.5)
    classreport._format_score_axes(ax, 2.5)  # half points exist: half ticks allowed
    assert any(not float(x).is_integer() for x in ax.get_xticks())
    plt.close(fig)


def test_report_is_readable_by_the_course_group(synthetic, tmp_path):
    import os
    import stat

    course, _ = synthetic
    out = tmp_path / "group" / "reports"
    old = os.umask(0o077)  # even a strict umask: the staging folder was 0700 whatever it was
    try:
        assert main(["report", "--all", "--course", str(course), "--out", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o044 == 0o044, (path, oct(mode))  # group and others read
        if path.is_dir():
            assert mode & 0o011 == 0o011, (path, oct(mode))  # and enter
