"""Drive real nbgrader commands on a course folder (tests, `course demo`, `course grade`).

A *course folder* has nbgrader's layout (``source/``, ``release/``, ``submitted/<student>/<assignment>/``,
``autograded/``, ``gradebook.db``) and the project's ``nbgrader_config.py``. Commands run as
subprocesses with the current environment's ``bin`` first on ``PATH`` (nbgrader shells out to
``alembic``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from autograder.feedback import FEEDBACK_HEADER

#: The repository root (the folder that holds ``nbgrader_config.py`` and ``source/``).
COURSE_ROOT = Path(__file__).resolve().parents[2]

_CODE_RE = re.compile(r"\[([a-z_0-9]+(?:\.[a-z_0-9]+)+)\]")


class PipelineError(RuntimeError):
    """An nbgrader command failed; the message carries the end of its log."""


def env_with_venv() -> dict[str, str]:
    """The current environment with this interpreter's ``bin`` first on ``PATH``."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def nbgrader(course: Path, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in ``course`` (which must hold nbgrader_config.py)."""
    cmd = [str(Path(sys.executable).parent / "nbgrader"), *args]
    env = env_with_venv()
    env["COURSE_ROOT"] = str(course)
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise PipelineError(f"`nbgrader {' '.join(args)}` exited {proc.returncode}:\n{tail}")
    return proc


def make_course(
    course: Path,
    assignments: Iterable[str],
    *,
    with_release: bool = False,
    notebooks: Iterable[str] | None = None,
) -> Path:
    """Create a course folder holding copies of the given assignments' sources.

    Args:
        course: folder to create (must not exist or be empty).
        assignments: assignment ids, e.g. ``["m3-fundamentals"]``.
        with_release: also copy the committed ``release/`` folders.
        notebooks: copy only these notebooks (names without ``.ipynb``), e.g. to grade one
            notebook of a module in a test; other files of the assignment are copied.
    """
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COURSE_ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    keep = None if notebooks is None else {f"{n}.ipynb" for n in notebooks}

    def ignore(folder: str, names: list[str]) -> list[str]:
        if keep is None:
            return []
        return [n for n in names if n.endswith(".ipynb") and n not in keep]

    for assignment in assignments:
        shutil.copytree(
            COURSE_ROOT / "source" / assignment, course / "source" / assignment, dirs_exist_ok=True, ignore=ignore
        )
        if with_release:
            shutil.copytree(COURSE_ROOT / "release" / assignment, course / "release" / assignment, dirs_exist_ok=True)
    return course


def generate(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``: writes ``release/<assignment>`` and the gradebook."""
    nbgrader(course, "generate_assignment", assignment, "--force")
    return course / "release" / assignment


def submit(course: Path, assignment: str, student: str, notebooks: Mapping[str, Any]) -> Path:
    """Place a submission: ``notebooks`` maps a notebook name to a NotebookNode, a path or bytes."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in notebooks.items():
        target = folder / (name if name.endswith(".ipynb") else f"{name}.ipynb")
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, (str, Path)) and Path(content).exists():
            shutil.copy2(content, target)
        else:
            nbformat.write(content, str(target))
    return folder


def autograde(course: Path, assignment: str, *students: str, check: bool = True) -> subprocess.CompletedProcess:
    """``nbgrader autograde`` for all (or the given) students, ``--force``."""
    args = ["autograde", assignment, "--force"]
    for student in students:
        args += ["--student", student]
    return nbgrader(course, *args, check=check)


@dataclass
class NotebookResult:
    """Grades of one autograded notebook, read from the gradebook and the autograded file."""

    score: float | None
    max_score: float
    cells: dict[str, float | None] = field(default_factory=dict)
    codes: dict[str, list[str]] = field(default_factory=dict)
    feedback: dict[str, str] = field(default_factory=dict)


def results(course: Path, assignment: str) -> dict[str, dict[str, NotebookResult]]:
    """``{student: {notebook: NotebookResult}}`` for every submission in the gradebook."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, NotebookResult]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.find_assignment(assignment).submissions:
            student = submission.student.id
            out[student] = {}
            for nb in submission.notebooks:
                cells = {g.name.removesuffix("-tests"): g.score for g in nb.grades if g.max_score}
                auto = {g.auto_score for g in nb.grades if g.max_score}
                score = None if None in auto else nb.score
                res = NotebookResult(score, nb.max_score, cells)
                path = course / "autograded" / student / assignment / f"{nb.name}.ipynb"
                if path.exists():
                    res.feedback, res.codes = read_feedback(path)
                out[student][nb.name] = res
    return out


def read_feedback(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Feedback text and failure codes printed by each graded test cell of a notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    feedback: dict[str, str] = {}
    codes: dict[str, list[str]] = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or cell.get("cell_type") != "code":
            continue
        grade_id = meta["grade_id"].removesuffix("-tests")
        text = "".join(
            "".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream"
        )
        start = text.find(FEEDBACK_HEADER)
        text = text[start:] if start >= 0 else text
        feedback[grade_id] = text
        codes[grade_id] = [c for c in _CODE_RE.findall(text) if c != "not_attempted"]
    return feedback, codes


def fill_solutions(release_nb: Path | nbformat.NotebookNode, answers: Mapping[str, str]) -> nbformat.NotebookNode:
    """A submission made from a release notebook: solution cells replaced by ``answers``.

    Args:
        release_nb: the release notebook (path or node).
        answers: ``{grade_id: source}`` for the solution cells to fill; others keep the stub.
    """
    nb = nbformat.read(str(release_nb), as_version=4) if isinstance(release_nb, (str, Path)) else release_nb
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    missing = set(answers)
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
            missing.discard(grade_id)
    if missing:
        raise KeyError(f"no solution cell with grade_id {sorted(missing)}")
    return nb


def solution_sources(source_nb: Path) -> dict[str, str]:
    """``{grade_id: source}`` of the solution cells of a source notebook, markers removed."""
    nb = nbformat.read(str(source_nb), as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            lines = [ln for ln in cell.source.splitlines() if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln]
            out[meta["grade_id"]] = "\n".join(lines)
    return out
