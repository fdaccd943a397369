"""`course bench grading`: serial nbgrader vs `course grade` on the same generated class.

(`course bench notebooks [--module A …] [--students N]` prints the CPU seconds per graded
notebook of every notebook of the course, each graded by serial nbgrader with the course config
on N submissions, half correct, half the release, then the wall time of one `course grade --all`
of that class over every module.)

(`course bench cluster` prints the CPU an idle embedded Dask cluster burns, with Dask's default
monitors and with the course's ``QUIET_CLUSTER`` settings: CPU that cells being graded lose.)

Builds a course folder with N generated submissions of m3-fundamentals/convolution (full
marks, untouched, mutants, half done, in turn), then grades a copy of it per run:
serial ``nbgrader autograde`` (the reference), ``course grade --workers 1`` and
``course grade --workers 2`` (each a fresh process, cluster start included), and serial
``nbgrader autograde`` again with no kernel started ahead (``prestart_kernel`` off: each kernel
starts when its notebook comes, as nbgrader's own Execute does), and plain nbgrader (its own
default preprocessors and kernel, no sandbox or guard: what a course without this project
runs; its gradebook is reported, not required, to match). Prints wall time,
throughput (notebooks/min), the throughput ratio to serial, and the per-notebook overhead
beyond cell execution: ``(wall × workers − Σ cell time) / notebooks``, where cell time is
kernel-side execution read from each autograded notebook's ``metadata.execution``, and the CPU
the machine spent during each run (``/proc/stat``: every process, the host's other users too):
cores used and CPU seconds per notebook, from which the ceiling of the 2-worker ratio at perfect
scaling follows (serial's CPU spread over 2 cores). Checks that the gradebooks are equal row by
row. ``--runs`` picks runs (serial always runs: it is the reference); ``--rounds N`` repeats
them interleaved and reports medians, the host's load drifting between runs. DESIGN.md §6
targets: ratio ≥ 1.8 with 2 workers on 2 cores; overhead ≤ 0.5 s per notebook.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
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


def busy_cpu_seconds() -> float | None:
    """CPU time spent by the whole machine so far (every process, ours or not), from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    label: str
    name: str
    workers: int
    #: one value per round: wall seconds, Σ cell seconds, machine-wide busy CPU seconds (None off Linux).
    walls: list[float] = field(default_factory=list)
    cell_sums: list[float] = field(default_factory=list)
    cpus: list[float | None] = field(default_factory=list)
    rows: t.Any = None

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cells(self) -> float:
        return statistics.median(self.cell_sums)

    @property
    def cpu(self) -> float | None:
        return None if None in self.cpus else statistics.median(self.cpus)


#: name → (label, workers), in the order they run in each round.
RUNS = {
    "serial": ("serial nbgrader autograde", 1),
    "workers-1": ("course grade --workers 1", 1),
    "workers-2": ("course grade --workers 2", 2),
    "serial-cold": ("serial, no kernel ahead", 1),
    "serial-plain": ("plain nbgrader (no config)", 1),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["grading", "cluster", "notebooks"],
                        help="grading: serial nbgrader vs course grade; cluster: the CPU an idle embedded "
                             "Dask cluster burns, Dask's defaults vs the course's settings; notebooks: CPU "
                             "seconds per graded notebook for every notebook of the course, then the time "
                             "`course grade --all` takes for a whole class")
    parser.add_argument("--module", action="append", default=[], metavar="ASSIGNMENT",
                        help="notebooks: only this assignment (repeatable; default: every one in source/)")
    parser.add_argument("--students", type=int, default=4,
                        help="notebooks: submissions per notebook, half correct, half the release (default 4)")
    parser.add_argument("--submissions", type=int, default=20, help="generated submissions (default 20)")
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"comma-separated runs among {', '.join(RUNS)} (default: all; serial always runs)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the runs, interleaved, and report medians (default 1; the host's load drifts)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--unsafe", action="store_true", help="pass --unsafe to course grade (no sandbox here)")
    parser.add_argument("--workers", type=int, default=2, help="cluster: worker processes (default 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="cluster: idle seconds measured (default 20)")


def _grade_once(run_: Run, course: Path, unsafe: bool) -> str | None:
    """Grade ``course`` the way ``run_`` says; record its figures; returns an error or None."""
    from nbgrader.api import Gradebook

    from autograder.grading import pipeline
    from autograder.grading.gradebook_sync import gradebook_rows

    if run_.name == "serial-plain":
        (course / "nbgrader_config.py").write_text(PLAIN_CONFIG)
    cpu0, start = busy_cpu_seconds(), time.monotonic()
    if run_.name.startswith("serial"):
        extra = ["--GuardedExecute.prestart_kernel=False"] if run_.name == "serial-cold" else []
        proc = pipeline.nbgrader(course, "autograde", ASSIGNMENT, "--force", *extra, check=False)
    else:
        cmd = [sys.executable, "-m", "autograder.cli", "grade", ASSIGNMENT, "--course", str(course),
               "--workers", str(run_.workers), "--quiet"] + (["--unsafe"] if unsafe else [])
        proc = subprocess.run(cmd, env=pipeline.env_with_venv(), capture_output=True, text=True)
    wall = time.monotonic() - start
    cpu1 = busy_cpu_seconds()
    if proc.returncode != 0:
        return f"{run_.label}: exited {proc.returncode}\n{(proc.stdout + proc.stderr)[-2000:]}"
    run_.walls.append(wall)
    run_.cpus.append(None if cpu0 is None or cpu1 is None else cpu1 - cpu0)
    run_.cell_sums.append(cell_seconds(course))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        rows = gradebook_rows(gb, ASSIGNMENT)
    if run_.rows is not None and rows != run_.rows:
        return f"{run_.label}: another round left a different gradebook"
    run_.rows = rows
    return None


def process_tree_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of this process and each of its descendants, by pid."""
    import psutil

    me = psutil.Process()
    out: dict[int, float] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:  # exited meanwhile
            continue
        out[proc.pid] = times.user + times.system
    return out


def idle_cluster_cpu(workers: int, seconds: float, quiet: bool) -> tuple[float, float]:
    """Share of one core that an idle embedded cluster burns: (driver process, worker processes).

    The driver holds the scheduler and the nannies; the workers are its child processes. Measured
    over ``seconds`` once the cluster has settled, without any task.
    """
    from autograder.grading.parallel import dask_client

    with dask_client(workers, quiet=quiet):
        time.sleep(5.0)  # let the workers finish starting
        before, start = process_tree_cpu(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = process_tree_cpu(), time.monotonic() - start
    spent = {pid: cpu - before.get(pid, 0.0) for pid, cpu in after.items()}
    driver = spent.pop(os.getpid(), 0.0)
    return 100 * driver / elapsed, 100 * sum(spent.values()) / elapsed


def run_cluster(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    if args.workers < 1 or args.seconds <= 0:
        raise UsageError("--workers must be at least 1 and --seconds positive")
    print(f"course bench cluster: an idle embedded cluster of {args.workers} worker(s), {args.seconds:g} s each, "
          f"load average {_load()} (shared machine: figures vary with other users' load)", flush=True)
    print(f"{'settings':<22} {'driver %':>9} {'workers %':>10} {'total % of a core':>18}")
    for label, quiet in (("Dask's defaults", False), ("course (QUIET_CLUSTER)", True)):
        driver, workers = idle_cluster_cpu(args.workers, args.seconds, quiet)
        print(f"{label:<22} {driver:9.1f} {workers:10.1f} {driver + workers:18.1f}", flush=True)
    return 0


def notebook_class(course: Path, assignment: str, notebooks: list[str], students: int) -> None:
    """A released course of ``assignment`` (only ``notebooks``) with ``students`` submissions:
    even ones the source (full marks), odd ones the release (stubs)."""
    from autograder.grading import pipeline

    pipeline.make_course(course, [assignment], notebooks=notebooks)
    release = pipeline.generate(course, assignment)
    for i in range(students):
        folder = course / ("source" if i % 2 == 0 else "release") / assignment
        files = {nb: folder / f"{nb}.ipynb" for nb in notebooks}
        sub = pipeline.submit(course, assignment, f"student-{i:02d}", files)
        (sub / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC\n")
    assert release.is_dir()


def _course_notebooks(modules: list[str]) -> list[tuple[str, str]]:
    from autograder.grading import pipeline

    source = pipeline.COURSE_ROOT / "source"
    names = modules or sorted(p.name for p in source.iterdir() if p.is_dir())
    return [(a, p.stem) for a in names for p in sorted((source / a).glob("*.ipynb"))]


def run_notebooks(args: argparse.Namespace) -> int:
    """CPU-s per graded notebook for every notebook, then one ``course grade --all`` of the class."""
    from autograder.cli import UsageError
    from autograder.grading import pipeline

    if args.students < 1:
        raise UsageError("--students must be at least 1")
    pairs = _course_notebooks(args.module)
    unknown = sorted(set(args.module) - {a for a, _ in pairs})
    if unknown or not pairs:
        raise UsageError(f"no source notebook for {', '.join(unknown) or 'the course'}")
    work = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="course-bench-notebooks-"))
    n = args.students
    print(f"course bench notebooks: {len(pairs)} notebook(s), {n} submission(s) each (half correct, half the "
          f"release), serial nbgrader autograde per notebook, {os.cpu_count()} CPU(s), load average {_load()}",
          flush=True)
    print(f"{'assignment':<28} {'notebook':<22} {'wall s':>7} {'cells s/nb':>10} {'CPU s/nb':>9}")
    failures = 0
    try:
        for assignment, notebook in pairs:
            course = work / f"{assignment}-{notebook}"
            shutil.rmtree(course, ignore_errors=True)
            notebook_class(course, assignment, [notebook], n)
            cpu0, start = busy_cpu_seconds(), time.monotonic()
            proc = pipeline.nbgrader(course, "autograde", assignment, "--force", check=False)
            wall, cpu1 = time.monotonic() - start, busy_cpu_seconds()
            from autograder.grading.worker import _cell_seconds

            cells = sum(_cell_seconds(p.read_bytes()) for p in (course / "autograded").glob(f"*/{assignment}/*.ipynb"))
            cpu = "-" if cpu0 is None or cpu1 is None else f"{(cpu1 - cpu0) / n:.2f}"
            status = "" if proc.returncode == 0 else f"  (nbgrader exited {proc.returncode})"
            failures += proc.returncode != 0
            print(f"{assignment:<28} {notebook:<22} {wall:7.1f} {cells / n:10.2f} {cpu:>9}{status}", flush=True)
        whole = work / "class"
        shutil.rmtree(whole, ignore_errors=True)
        assignments = sorted({a for a, _ in pairs})
        pipeline.make_course(whole, assignments)
        for assignment in assignments:
            pipeline.generate(whole, assignment)
            notebooks = [nb for a, nb in pairs if a == assignment]
            for i in range(n):
                folder = whole / ("source" if i % 2 == 0 else "release") / assignment
                pipeline.submit(whole, assignment, f"student-{i:02d}",
                                {nb: folder / f"{nb}.ipynb" for nb in notebooks})
        cpu0, start = busy_cpu_seconds(), time.monotonic()
        cmd = [sys.executable, "-m", "autograder.cli", "grade", "--all", "--course", str(whole), "--quiet"]
        if args.unsafe:
            cmd.append("--unsafe")
        proc = subprocess.run(cmd, env=pipeline.env_with_venv(), capture_output=True, text=True)
        wall, cpu1 = time.monotonic() - start, busy_cpu_seconds()
        total_nb = n * len(pairs)
        cpu = "" if cpu0 is None or cpu1 is None else f", {(cpu1 - cpu0) / total_nb:.2f} CPU s per notebook"
        print(f"\nclass of {n} student(s) × {len(pairs)} notebook(s) ({len(assignments)} assignment(s)), "
              f"`course grade --all` on {os.cpu_count()} core(s): {wall:.1f} s{cpu}"
              + ("" if proc.returncode == 0 else f" (exited {proc.returncode}: {proc.stderr[-500:]})"))
        return 0 if proc.returncode == 0 and not failures else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    if args.what == "cluster":
        return run_cluster(args)
    if args.what == "notebooks":
        return run_notebooks(args)

    if args.submissions < 2:
        raise UsageError("--submissions must be at least 2")
    if args.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    names = [x.strip() for x in args.runs.split(",") if x.strip()]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        raise UsageError(f"unknown run(s) {', '.join(unknown)}; choose among {', '.join(RUNS)}")
    runs = {name: Run(RUNS[name][0], name, RUNS[name][1]) for name in RUNS if name == "serial" or name in names}
    work = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="course-bench-"))
    if args.dir and work.exists():
        shutil.rmtree(work)
    n = args.submissions
    print(f"course bench grading: {n} submissions of {ASSIGNMENT}/{NOTEBOOK}, {os.cpu_count()} CPU(s), "
          f"{args.rounds} round(s), load average {_load()} (shared machine: figures vary with other users' load)",
          flush=True)
    try:
        pristine = work / "pristine"
        make_class(pristine, n)
        for _ in range(args.rounds):
            for run_ in runs.values():
                course = work / run_.name
                shutil.rmtree(course, ignore_errors=True)
                shutil.copytree(pristine, course)
                error = _grade_once(run_, course, args.unsafe)
                if error:
                    print(error, file=sys.stderr)
                    return 1
                print(f"  {run_.label}: {run_.walls[-1]:.1f} s (load average {_load()})", flush=True)
        return _report(runs, n, args.rounds)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def _report(runs: dict[str, Run], n: int, rounds: int) -> int:
    """Print the table and the figures DESIGN.md §6 sets targets for; 1 when gradebooks differ."""
    serial = runs["serial"]
    print()
    if rounds > 1:
        print(f"medians over {rounds} rounds; wall s per round:")
        for r in runs.values():
            print(f"  {r.label:<28} " + " ".join(f"{w:.1f}" for w in r.walls))
        if "workers-2" in runs:
            ratios = [s / w for s, w in zip(serial.walls, runs["workers-2"].walls, strict=True)]
            print("  2 workers / serial, per round: " + " ".join(f"{x:.2f}" for x in ratios))
        print()
    print(f"{'run':<28} {'wall s':>7} {'nb/min':>7} {'ratio':>6} {'cells s':>8} {'overhead s/nb':>13} "
          f"{'cores':>6} {'CPU s/nb':>8}")
    for r in runs.values():
        overhead = (r.wall * r.workers - r.cells) / n
        cpu = r.cpu
        cores = "-" if cpu is None else f"{cpu / r.wall:.2f}"
        per_nb = "-" if cpu is None else f"{cpu / n:.2f}"
        print(f"{r.label:<28} {r.wall:7.1f} {60 * n / r.wall:7.1f} {serial.wall / r.wall:6.2f} {r.cells:8.1f} "
              f"{overhead:13.2f} {cores:>6} {per_nb:>8}")
    course_runs = [r for name, r in runs.items() if name not in ("serial", "serial-plain")]
    same = all(r.rows == serial.rows for r in course_runs)
    print()
    line = f"gradebooks identical to serial nbgrader (row by row): {'yes' if same else 'NO'}"
    if "serial-plain" in runs:
        line += f"; plain nbgrader's: {'identical' if runs['serial-plain'].rows == serial.rows else 'different'}"
    print(line)
    two = runs.get("workers-2")
    if two is not None:
        line = f"2 workers / serial throughput: {serial.wall / two.wall:.2f} (target ≥ 1.8)"
        if "serial-cold" in runs:
            line += (f"; against serial nbgrader starting each kernel when its notebook comes (nbgrader's own "
                     f"way): {runs['serial-cold'].wall / two.wall:.2f}")
        if "serial-plain" in runs:
            line += f"; against plain nbgrader: {runs['serial-plain'].wall / two.wall:.2f}"
        print(line)
        if serial.cpu and two.cpu:
            # Perfect scaling: the workers do exactly serial's work with every core busy throughout.
            cores = min(os.cpu_count() or 1, two.workers)
            print(f"ceiling for {two.workers} workers at perfect scaling (serial's CPU spread over {cores} cores): "
                  f"{serial.wall * cores / serial.cpu:.2f}; serial used {serial.cpu / serial.wall:.2f} cores "
                  f"and {serial.cpu / n:.2f} CPU s per notebook, {two.workers} workers {two.cpu / n:.2f}")
    one = runs.get("workers-1")
    if one is not None:
        print(f"overhead beyond cell execution, 1 worker: {(one.wall - one.cells) / n:.2f} s per notebook "
              f"(target ≤ 0.5); serial nbgrader: {(serial.wall - serial.cells) / n:.2f} s")
    return 0 if same else 1
