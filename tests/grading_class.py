"""A small class of m3-fundamentals/convolution submissions, graded once by serial nbgrader.

Shared by the parallel-grading and PostgreSQL tests (imported, so built once per pytest
session): :func:`serial_class` releases the notebook, writes six submissions (full marks,
untouched release, three mutants, half done) with collection timestamps, keeps an ungraded
copy of the course folder and grades the other copy with plain ``nbgrader autograde``.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.grading import pipeline
from autograder.grading.gradebook_sync import gradebook_rows

ASSIGNMENT = "m3-fundamentals"
NOTEBOOK = "convolution"
ROOT = Path(__file__).resolve().parents[1]

# student: (grade_id, old text, new text) applied to the solution; None = special profile.
MUTANTS = {
    "cleo": ("conv2d_forward", "np.tensordot(patch, w, axes", "np.tensordot(patch, w[:, :, ::-1, ::-1], axes"),
    "dan": ("conv2d_forward", "return out + b[None, :, None, None]", "return out"),
    "eve": ("convolve1d", "correlate1d(x, np.asarray(k)[::-1])", "correlate1d(x, k)"),
}
STUDENTS = ["ada", "ben", "cleo", "dan", "eve", "finn"]


@dataclass(frozen=True)
class GradedClass:
    pristine: Path  # released, submissions in place, nothing graded
    serial: Path  # the same, graded by serial `nbgrader autograde`


def write_class(course: Path) -> None:
    """Submissions of :data:`STUDENTS` in a released course folder."""
    release = course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    source = course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    solutions = pipeline.solution_sources(source)
    for i, student in enumerate(STUDENTS):
        if student == "ada":
            nb = source
        elif student == "ben":
            nb = release
        elif student == "finn":
            ids = list(solutions)
            nb = pipeline.fill_solutions(release, {g: solutions[g] for g in ids[: len(ids) // 2]})
        else:
            grade_id, old, new = MUTANTS[student]
            answers = dict(solutions)
            assert old in answers[grade_id], student
            answers[grade_id] = answers[grade_id].replace(old, new)
            nb = pipeline.fill_solutions(release, answers)
        folder = pipeline.submit(course, ASSIGNMENT, student, {NOTEBOOK: nb})
        (folder / "timestamp.txt").write_text(f"2026-11-2{i} 10:0{i}:00.000000 UTC\n")


@functools.cache
def serial_class() -> GradedClass:
    """Build (once per session) the class and its serial-nbgrader grading.

    ``GRADING_CLASS_CACHE=DIR`` keeps it in DIR and reuses it across sessions (development only:
    a stale cache hides changes to the notebook or the config).
    """
    cache = os.environ.get("GRADING_CLASS_CACHE")
    if cache and (Path(cache) / "serial" / "gradebook.db").exists():
        return GradedClass(Path(cache) / "pristine", Path(cache) / "serial")
    if cache:
        base = Path(cache)
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="grading-class-"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)
    pristine = pipeline.make_course(base / "pristine", [ASSIGNMENT], notebooks=[NOTEBOOK])
    pipeline.generate(pristine, ASSIGNMENT)
    write_class(pristine)
    serial = base / "serial"
    shutil.copytree(pristine, serial)
    pipeline.autograde(serial, ASSIGNMENT)
    return GradedClass(pristine, serial)


def fresh_copy(graded: GradedClass, target: Path) -> Path:
    """An ungraded copy of the class course folder at ``target``."""
    shutil.copytree(graded.pristine, target)
    return target


def rows(db_url: str, students: list[str] | None = None) -> dict[str, list[tuple]]:
    """Gradebook rows of the assignment (optionally only these students)."""
    with Gradebook(db_url) as gb:
        out = gradebook_rows(gb, ASSIGNMENT)
    if students is not None:
        out = {table: [r for r in values if r[0] in students] for table, values in out.items()}
    return out


def sqlite_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def feedback(course: Path, student: str) -> dict[str, str]:
    """Feedback printed by each graded cell of the student's autograded notebook."""
    path = course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    return pipeline.read_feedback(path)[0]


def course_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """``course ARGS`` in a child process (as a user runs it)."""
    full_env = pipeline.env_with_venv()
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args],
        env=full_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kwargs,
    )


def course_popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``course ARGS`` started in the background (its output in pipes)."""
    full_env = pipeline.env_with_venv()
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", *args],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def export_csv(course: Path, env: dict[str, str] | None = None) -> list[str]:
    """``nbgrader export`` of the course, as sorted CSV lines (timestamp column kept)."""
    out = course / "grades.csv"
    full_env = pipeline.env_with_venv()
    full_env.update(env or {})
    full_env["COURSE_ROOT"] = str(course)
    subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "export", "--to", str(out)],
        cwd=course, env=full_env, check=True, capture_output=True, timeout=300,
    )
    lines = out.read_text().splitlines()
    return [lines[0], *sorted(lines[1:])]

