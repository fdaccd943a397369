"""`course bench grading`: serial nbgrader vs `course grade` on the same generated class.

Builds a course folder with N generated submissions of m3-fundamentals/convolution (full
marks, untouched, mutants, half done, in turn), then grades three copies of it in one run:
serial ``nbgrader autograde`` (the reference), ``course grade --workers 1`` and
``course grade --workers 2`` (each a fresh process, cluster start included), and serial
``nbgrader autograde`` again with no kernel started ahead (``prestart_kernel`` off: each kernel
starts when its notebook comes, as nbgrader's own Execute does), and plain nbgrader (its own
default preprocessors and kernel, no sandbox or guard: what a course without this project
runs; its gradebook is reported, not required, to match). Prints wall time,
throughput (notebooks/min), the throughput ratio to serial, and the per-notebook overhead
beyond cell execution: ``(wall × workers − Σ cell time) / notebooks``, where cell time is
kernel-side execution read from each autograded notebook's ``metadata.execution``. Checks that
the three gradebooks are equal row by row. DESIGN.md §6 targets: ratio ≥ 1.8 with 2 workers on
2 cores; overhead ≤ 0.5 s per notebook.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSIGNMENT = "m3-fundamentals"
NOTEBOOK = "convolution"

#: (grade_id, old, new) edits of the solution: plausible student bugs.
MUTANTS = [
    ("conv2d_forward", "np.tensordot(patch, w, axes", "np.tensordot(patch, w[:, :, ::-1, ::-1], axes"),
    ("conv2d_forward", "return out + b[None, :, None, None]", "return out"),
    ("convolve1d", "correlate1d(x, np.asarray(k)[::-1])", "correlate1d(x, k)"),
    ("conv2d_backward", "db = dout.sum(axis=(0, 2, 3))", "db = dout.mean(axis=(0, 2, 3))"),
]
#: nbgrader as it ships (its preprocessors, the notebook's own kernel), the course's id and timeout.
PLAIN_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "cnn-course"
c.Execute.timeout = 300
"""
PROFILES = ["solution", "release", "mutant", "half", "mutant", "solution"]


def make_class(course: Path, n: int) -> None:
    """A released course folder holding ``n`` generated submissions (``student-NN``)."""
    from autograder.grading import pipeline

    pipeline.make_course(course, [ASSIGNMENT], notebooks=[NOTEBOOK])
    release = pipeline.generate(course, ASSIGNMENT) / f"{NOTEBOOK}.ipynb"
    source = course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    solutions = pipeline.solution_sources(source)
    ids = list(solutions)
    mutants = 0
    for i in range(n):
        profile = PROFILES[i % len(PROFILES)]
        if profile == "solution":
            nb = source
        elif profile == "release":
            nb = release
        elif profile == "half":
            nb = pipeline.fill_solutions(release, {g: solutions[g] for g in ids[: len(ids) // 2]})
        else:
            grade_id, old, new = MUTANTS[mutants % len(MUTANTS)]
            mutants += 1
            nb = pipeline.fill_solutions(release, {**solutions, grade_id: solutions[grade_id].replace(old, new)})
        folder = pipeline.submit(course, ASSIGNMENT, f"student-{i:02d}", {NOTEBOOK: nb})
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC\n")


def cell_seconds(course: Path) -> float:
    """Σ kernel-side cell execution time over every autograded notebook of the course."""
    from autograder.grading.worker import _cell_seconds

    return sum(_cell_seconds(p.read_bytes()) for p in (course / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb"))


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["grading"], help="what to benchmark")
    parser.add_argument("--submissions", type=int, default=20, help="generated submissions (default 20)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--unsafe", action="store_true", help="pass --unsafe to course grade (no sandbox here)")


def run(args: argparse.Namespace) -> int:
    from nbgrader.api import Gradebook

    from autograder.cli import UsageError
    from autograder.grading import pipeline
    from autograder.grading.gradebook_sync import gradebook_rows

    if args.submissions < 2:
        raise UsageError("--submissions must be at least 2")
    work = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="course-bench-"))
    if args.dir and work.exists():
        shutil.rmtree(work)
    n = args.submissions
    print(f"course bench grading: {n} submissions of {ASSIGNMENT}/{NOTEBOOK}, {os.cpu_count()} CPU(s), "
          f"load average {_load()} (shared machine: figures vary with other users' load)", flush=True)
    try:
        pristine = work / "pristine"
        make_class(pristine, n)
        runs = []
        for label, name, workers in (("serial nbgrader autograde", "serial", 1),
                                     ("course grade --workers 1", "workers-1", 1),
                                     ("course grade --workers 2", "workers-2", 2),
                                     ("serial, no kernel ahead", "serial-cold", 1),
                                     ("plain nbgrader (no config)", "serial-plain", 1)):
            course = work / name
            shutil.copytree(pristine, course)
            if name == "serial-plain":
                (course / "nbgrader_config.py").write_text(PLAIN_CONFIG)
            start = time.monotonic()
            if label.startswith("serial"):
                extra = ["--GuardedExecute.prestart_kernel=False"] if name == "serial-cold" else []
                proc = pipeline.nbgrader(course, "autograde", ASSIGNMENT, "--force", *extra, check=False)
            else:
                cmd = [sys.executable, "-m", "autograder.cli", "grade", ASSIGNMENT, "--course", str(course),
                       "--workers", str(workers), "--quiet"] + (["--unsafe"] if args.unsafe else [])
                proc = subprocess.run(cmd, env=pipeline.env_with_venv(), capture_output=True, text=True)
            wall = time.monotonic() - start
            if proc.returncode != 0:
                print(f"{label}: exited {proc.returncode}\n{(proc.stdout + proc.stderr)[-2000:]}", file=sys.stderr)
                return 1
            cells = cell_seconds(course)
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
                rows = gradebook_rows(gb, ASSIGNMENT)
            runs.append((label, workers, wall, cells, rows))
            print(f"  {label}: {wall:.1f} s (load average {_load()})", flush=True)

        serial_wall = runs[0][2]
        print()
        print(f"{'run':<28} {'wall s':>7} {'nb/min':>7} {'ratio':>6} {'cells s':>8} {'overhead s/nb':>13}")
        for label, workers, wall, cells, _ in runs:
            overhead = (wall * workers - cells) / n
            print(f"{label:<28} {wall:7.1f} {60 * n / wall:7.1f} {serial_wall / wall:6.2f} {cells:8.1f} {overhead:13.2f}")
        same = all(r[4] == runs[0][4] for r in runs[1:4])
        plain_same = runs[4][4] == runs[0][4]
        ratio = serial_wall / runs[2][2]
        over1 = (runs[1][2] - runs[1][3]) / n
        print()
        print(f"gradebooks identical to serial nbgrader (row by row): {'yes' if same else 'NO'}"
              f"; plain nbgrader's: {'identical' if plain_same else 'different'}")
        print(f"2 workers / serial throughput: {ratio:.2f} (target ≥ 1.8); against serial nbgrader "
              f"starting each kernel when its notebook comes (nbgrader's own way): {runs[3][2] / runs[2][2]:.2f}; "
              f"against plain nbgrader: {runs[4][2] / runs[2][2]:.2f}")
        print(f"overhead beyond cell execution, 1 worker: {over1:.2f} s per notebook (target ≤ 0.5); "
              f"serial nbgrader: {(runs[0][2] - runs[0][3]) / n:.2f} s")
        return 0 if same else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
