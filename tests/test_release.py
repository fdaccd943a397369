"""release/ is exactly what nbgrader generates from source/, and it leaks nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from autograder.commands import release as rel
from autograder.grading import pipeline

ROOT = pipeline.COURSE_ROOT
ASSIGNMENTS = rel.assignments()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    return rel.regenerate(ASSIGNMENTS, tmp_path_factory.mktemp("release"))


def test_every_source_assignment_is_released():
    assert ASSIGNMENTS, "source/ holds no assignment"
    for name in ASSIGNMENTS:
        sources = sorted(p.name for p in (ROOT / "source" / name).glob("*.ipynb"))
        released = sorted(p.name for p in (ROOT / "release" / name).glob("*.ipynb"))
        assert sources == released, name


@pytest.mark.notebook
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_is_reproduced_byte_for_byte(regenerated, name):
    assert rel.diff_trees(regenerated / name, ROOT / "release" / name) == []


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_release_passes_the_audit(name):
    assert rel.audit_release(ROOT / "release" / name, ROOT / "source" / name) == []


def test_source_notebooks_have_no_outputs_and_valid_metadata():
    for path in sorted((ROOT / "source").rglob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c.get("metadata", {})]
        assert len(ids) == len(set(ids)), f"{path}: duplicate grade_id"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and not cell.get("execution_count"), path
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and cell["cell_type"] == "code":
                src = "".join(cell["source"])
                # Grading contract: the cell's last line is the score expression.
                assert src.rstrip().splitlines()[-1].strip() == "g.score()", (path, meta["grade_id"])
                assert src.lstrip().startswith('"""'), f"{path}: {meta['grade_id']} lacks its docstring"


def test_audit_catches_planted_leaks(tmp_path):
    """The audit is a check too: it must fail on a release that leaks."""
    src = ROOT / "source" / "m3-fundamentals"
    leaky = tmp_path / "m3-fundamentals"
    shutil.copytree(ROOT / "release" / "m3-fundamentals", leaky)
    nb_path = leaky / "convolution.ipynb"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    source_nb = json.loads((src / "convolution.ipynb").read_text(encoding="utf-8"))
    hidden_cell = next(c for c in source_nb["cells"] if "BEGIN HIDDEN TESTS" in "".join(c["source"]))
    hidden_line = "".join(hidden_cell["source"]).split("### BEGIN HIDDEN TESTS\n")[1].splitlines()[0]
    target = next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
    target["source"] = "".join(target["source"]) + "\n" + hidden_line
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    nb_path.write_text(json.dumps(nb), encoding="utf-8")
    (leaky / "notes.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": "### BEGIN SOLUTION\n", "outputs": []}]}))
    problems = rel.audit_release(leaky, src)
    assert any("hidden line" in p for p in problems)
    assert any("has outputs" in p for p in problems)
    assert any("BEGIN SOLUTION" in p for p in problems)


@pytest.mark.notebook
def test_release_check_acts_on_the_course_it_is_run_in(tmp_path, monkeypatch, capsys):
    """`course release --check` in a copy of the course checks the copy, not this checkout: an
    edited source notebook there is reported as such (and the exit code says so)."""
    from autograder.cli import main

    name, notebook = "m3-fundamentals", "convolution.ipynb"
    ours = (ROOT / "release" / name / notebook).read_bytes()
    copy = tmp_path / "course copy"
    shutil.copytree(ROOT / "source" / name, copy / "source" / name)
    shutil.copytree(ROOT / "release" / name, copy / "release" / name)
    shutil.copy2(ROOT / "nbgrader_config.py", copy / "nbgrader_config.py")
    # The copy's release/ made from its own source/ (this checkout's may be mid-edit), named from
    # elsewhere with --course; then it is up to date.
    monkeypatch.chdir(tmp_path)
    assert main(["release", name, "--no-execute", "--course", str(copy), "--quiet"]) == 0
    assert main(["release", name, "--check", "--no-execute", "--course", str(copy), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"{name}: up to date ({copy / 'release' / name})" in out and "audits run" not in out

    path = copy / "source" / name / notebook
    nb = json.loads(path.read_text(encoding="utf-8"))
    index = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown")
    nb["cells"][index]["source"] = "".join(nb["cells"][index]["source"]) + "\n\nUne consigne ajoutée."
    path.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")
    monkeypatch.chdir(copy)  # --course defaults to the current folder, like grade/report/export
    assert main(["release", name, "--check", "--no-execute"]) == 1
    out = capsys.readouterr().out
    assert f"{name}: OUT OF DATE ({copy / 'release' / name})" in out
    assert f"  {notebook}: ~markdown cell {index}\n" in out  # the edit, and nothing else
    assert f"run `course release {name}` to regenerate it" in out  # how to fix it
    assert "  - no output in any cell" in out  # the audits it ran…
    assert f"{name}: skipped: no notebook executed: --no-execute" in out  # …and what it skipped
    assert (ROOT / "release" / name / notebook).read_bytes() == ours  # this checkout untouched
