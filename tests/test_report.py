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
from graded_class import ASSIGNMENT, CODES, DURATIONS, demo_class, synthetic_course

from autograder.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Tables(HTMLParser):
    """Rows (``<tr>`` attributes + the ``data-*`` attributes of their cells), keyed by table."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._row: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            key = a.get("id") or f"{a.get('class')}:{a.get('data-notebook')}"
            self._table = key
            self.tables[key] = []
        elif tag == "tr" and self._table:
            self._row = {"attrs": a, "cells": []}
            self.tables[self._table].append(self._row)
        elif tag == "td" and self._row is not None:
            self._row["cells"].append(a)
        elif tag == "img":
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None


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
    assert flags == {"ben": {"zero", "late"}, "cleo": {"zero"}, "dan": {"ungraded"}, "zoe": {"not_in_gradebook"}}


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
    codes = {r["attrs"]["data-code"] for r in t.tables["codes"] if "data-code" in r["attrs"]}
    assert "conv_backward.exception" in codes  # david's NameError, read from the autograded notebook
    flags = {r["attrs"]["data-student"]: r["attrs"]["data-flags"] for r in t.tables["flagged"] if "data-student" in r["attrs"]}
    assert flags == {"chloe": "zero", "eve": "zero"}
    timing = next(r["attrs"] for r in t.tables["timing"] if r["attrs"].get("data-notebook") == "convolution")
    assert int(timing["data-n"]) == 5 and float(timing["data-max"]) > 0
    for name in t.images:
        assert (demo.report.parent / name).read_bytes()[:8] == PNG_MAGIC
