"""`course grade` on Dask: the driver of parallel and distributed grading.

The driver (one process, the only writer of the course gradebook and folders):

1. reads the course's nbgrader config the way nbgrader does (so ``db_url``, ``course_id`` and
   the folder layout are nbgrader's own; ``COURSE_DB_URL`` selects PostgreSQL);
2. lists ``submitted/<student>/<assignment>/`` and skips submissions whose last ledger record
   says ``graded`` for the same submitted files and the same grading setup (unless ``force``);
3. ships each remaining submission, with the assignment's source files, the config and a
   template gradebook (:mod:`autograder.grading.gradebook_sync`), to a Dask task that runs
   real ``nbgrader autograde`` in a private folder (:mod:`autograder.grading.worker`);
4. as results arrive, writes them into the gradebook (one transaction per submission), puts
   the autograded files in ``autograded/<student>/<assignment>/`` and appends a ledger record
   (:mod:`autograder.grading.ledger`), in that order: killed at any point, a re-run grades
   again exactly what has no record.

A task whose worker dies is retried (``allowed_failures`` worker deaths, ``retries``
exceptions), then recorded ``failed`` with its reason; the submission's rows are created in the gradebook
(no auto score: formgrader lists it as needing grading). Cluster: an embedded ``LocalCluster`` (one
single-threaded worker process per core, loopback only) or an existing scheduler by address;
on an external cluster the retry count after a worker death is the scheduler's
``distributed.scheduler.allowed-failures``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import glob
import json
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.grading import gradebook_sync
from autograder.grading.ledger import Ledger, digest_files
from autograder.grading.pipeline import NotebookResult
from autograder.grading.worker import GradingSetup, Job, Outcome, grade_submission

log = logging.getLogger(__name__)

#: Default number of retries after a worker death or a task exception.
RETRIES = 1


class GradingError(RuntimeError):
    """The run cannot start (no assignment in the gradebook, course locked, …)."""


@dataclass
class CourseSettings:
    """The course as nbgrader sees it through its config files."""

    root: Path
    db_url: str
    course_id: str
    config_text: str
    ignore: list[str]
    coursedir: Any  # nbgrader.coursedir.CourseDirectory
    #: what ClearSolutions puts in place of a Python solution in the release (nbgrader's ``code_stub``).
    code_stub: str = ""

    def folder(self, step: str, student: str, assignment: str) -> Path:
        """``<root>/<step>/<student>/<assignment>`` in the course's directory structure."""
        directory = getattr(self.coursedir, f"{step}_directory")
        return Path(self.coursedir.format_path(directory, student, assignment))

    def rel(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()


def course_settings(course: Path) -> CourseSettings:
    """Load the course config exactly as ``nbgrader`` run from ``course`` would."""
    from nbgrader.apps.baseapp import NbGrader
    from nbgrader.preprocessors import ClearSolutions

    course = Path(course).resolve()
    path_before = list(sys.path)
    saved_root = os.environ.get("COURSE_ROOT")
    os.environ["COURSE_ROOT"] = str(course)
    try:
        with contextlib.chdir(course):
            app = NbGrader()
            app.initialize([], root=str(course))
            cd = app.coursedir
            settings = CourseSettings(
                root=Path(cd.root).resolve(),
                db_url=cd.db_url,
                course_id=cd.course_id,
                config_text=(course / "nbgrader_config.py").read_text(encoding="utf-8"),
                ignore=list(cd.ignore),
                coursedir=cd,
                code_stub=ClearSolutions(config=app.config).code_stub.get("python", ""),
            )
            NbGrader.clear_instance()
    finally:
        sys.path[:] = path_before
        if saved_root is None:
            os.environ.pop("COURSE_ROOT", None)
        else:
            os.environ["COURSE_ROOT"] = saved_root
    return settings


def list_submissions(settings: CourseSettings, assignment: str) -> dict[str, Path]:
    """``{student: submission folder}`` for every ``submitted/<student>/<assignment>`` folder."""
    cd = settings.coursedir
    pattern = cd.format_path(cd.submitted_directory, "*", assignment)
    regexp = re.compile(cd.format_path(cd.submitted_directory, "(?P<student_id>[^/]+)", re.escape(assignment), escape=True))
    out = {}
    for folder in sorted(glob.glob(pattern)):
        m = regexp.fullmatch(folder)
        if m and os.path.isdir(folder):
            out[m.group("student_id")] = Path(folder)
    return out


def read_files(folder: Path, ignore: list[str], *, notebooks: bool = True) -> dict[str, bytes]:
    """``{relative path: content}`` of the files nbgrader would consider in ``folder``."""
    from nbgrader.utils import find_all_files

    exclude = list(ignore) + ([] if notebooks else ["*.ipynb"])
    return {
        Path(path).relative_to(folder).as_posix(): Path(path).read_bytes()
        for path in sorted(find_all_files(str(folder), exclude))
        if not Path(path).is_symlink()
    }


@dataclass
class SubmissionReport:
    """One submission of a run: graded now, skipped as unchanged, or not graded."""

    student: str
    status: str  # graded | incomplete | failed | skipped
    reason: str | None = None
    duration_s: float = 0.0
    cell_time_s: float = 0.0
    worker: str = ""


@dataclass
class GradingReport:
    """What :func:`grade` did."""

    assignment: str
    cluster: str
    notebooks: list[str]
    submissions: dict[str, SubmissionReport] = field(default_factory=dict)
    wall_s: float = 0.0
    db_url: str = ""

    def count(self, status: str) -> int:
        return sum(1 for s in self.submissions.values() if s.status == status)

    @property
    def ok(self) -> bool:
        return all(s.status in ("graded", "skipped") for s in self.submissions.values())


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class Progress:
    """One plain-text line per graded notebook, with the rate so far and an ETA.

    The ETA weighs what is left by what each submission is expected to cost (its last grading's
    duration in the ledger, else the typical one): submissions are handed out longest first,
    so a count-based estimate would start high and only fall. ``expected`` gives one weight per
    notebook to grade, in any order; without it every notebook weighs the same.
    """

    def __init__(self, total: int, say: Callable[[str], None], expected: Iterable[float] = ()) -> None:
        self.total, self.done, self.say = total, 0, say
        self.start = time.monotonic()
        self.width = len(str(total))
        weights = [max(0.0, float(w)) for w in expected]
        self.weight_total = sum(weights) if len(weights) == total and sum(weights) > 0 else float(total)
        self.weight_done = 0.0

    def notebook(self, student: str, notebook: str, result: str, weight: float | None = None) -> None:
        self.done += 1
        self.weight_done += 1.0 if weight is None or self.weight_total == self.total else max(0.0, weight)
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        share = min(1.0, self.weight_done / self.weight_total) if self.weight_total else 1.0
        if left == 0:
            eta = "done"
        elif share <= 0:
            eta = "ETA …"
        else:
            eta = f"ETA {_eta(elapsed * (1 - share) / share)}"
        pct = 100 * self.done // self.total
        self.say(f"[{self.done:>{self.width}}/{self.total} {pct:3d}%] {student}  {notebook}  {result}  {eta}")


#: Dask settings of the embedded cluster. Its monitors serve a dashboard it does not have, and
#: each wakes every process many times a second: the statistical profiler samples the grading
#: thread every 10 ms (~0.3 CPU-s per notebook measured here); the event-loop tick (20 ms), memory
#: monitors (100 ms) and system monitor (500 ms) kept an idle 2-worker cluster at 7-14 % of a core,
#: 1.6-2.2 % with these values (``course bench cluster``): CPU the cells being graded do not get.
#: Work stealing stays on: the scheduler places a task beside the data it reads (the run's setup,
#: held at first by one worker). Without stealing, and before :func:`_run` named a free worker
#: for each task, the other worker waited for the first one's queue (1.4x serial instead of 1.7x).
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, *, retries: int = RETRIES,
                quiet: bool = True) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client`` on an embedded LocalCluster or on ``scheduler``; yields (client, description).

    ``quiet``: the embedded cluster runs with :data:`QUIET_CLUSTER` (off: Dask's defaults, for
    ``course bench cluster``).
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler, timeout="60s")
        try:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            yield client, f"Dask scheduler {scheduler} ({n} workers)"
        finally:
            client.close()
        return
    workers = workers or len(os.sched_getaffinity(0))
    with dask.config.set({"distributed.scheduler.allowed-failures": retries, **(QUIET_CLUSTER if quiet else {})}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        try:
            client = Client(cluster)
            try:
                yield client, f"LocalCluster, {workers} worker process{'es' if workers > 1 else ''}"
            finally:
                client.close()
        finally:
            cluster.close()


@contextlib.contextmanager
def _course_lock(root: Path) -> Iterator[None]:
    path = root / ".course" / "grade.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GradingError(f"another `course grade` is running on {root} ({path} is locked)") from None
        yield  # released by the kernel even on kill -9


def _write_autograded(dest: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Replace ``dest`` by ``files`` (nbgrader --force semantics: no stale file survives)."""
    for stale in dest.parent.glob(f".{dest.name}.course-grade-*"):  # left by a killed driver
        shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.parent / f".{dest.name}.course-grade-{uuid.uuid4().hex[:8]}"
    if files:
        for rel, (content, mode) in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            os.chmod(path, mode)
    if dest.exists():
        shutil.rmtree(dest)
    if files:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)


def _notebook_summary(state: dict[str, Any] | None, definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for nb in definition["notebooks"]:
        max_score = sum(c["max_score"] for c in nb["grade_cells"]) + sum(c["max_score"] for c in nb["task_cells"])
        grades = ((state or {}).get("notebooks", {}).get(nb["name"]) or {}).get("grades", {})
        cells = {name: row["auto_score"] for name, row in sorted(grades.items())}
        scores = list(cells.values())
        score = None if not scores or None in scores else float(sum(scores))
        out[nb["name"]] = {"score": score, "max_score": max_score, "cells": cells}
    return out


def grade(course: Path, assignment: str, **kwargs: Any) -> GradingReport:
    """Grade ``assignment``'s submissions of the course folder ``course`` on Dask.

    :func:`grade_many` for one assignment (same arguments); its report.
    """
    return grade_many(course, [assignment], **kwargs)[0]


@dataclass
class _Plan:
    """One assignment of a run: what its workers need and what its submissions gave."""

    setup: GradingSetup
    definition: dict[str, Any]
    report: GradingReport
    jobs: list[Job]


def grade_many(
    course: Path,
    assignments: list[str],
    *,
    students: list[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    retries: int = RETRIES,
    in_process: bool = True,
    env: dict[str, str] | None = None,
    say: Callable[[str], None] = lambda line: None,
    task: Callable[[Job, GradingSetup], Outcome] = grade_submission,
) -> list[GradingReport]:
    """Grade the submissions of ``assignments`` in ``course`` in one run on one Dask cluster.

    Submissions of every assignment are handed out together, longest first (:func:`longest_first`
    over the whole class), with one progress display whose ETA weighs what is left.

    Args:
        students: grade only these (default: every submission); each must have submitted at
            least one of ``assignments``.
        workers: LocalCluster size (default: the CPUs this process may use).
        scheduler: address of an existing Dask scheduler (``tcp://host:port``) instead.
        force: grade again submissions already graded and unchanged.
        retries: retries of a task after an exception or a worker death.
        in_process: run nbgrader inside the worker process (fast) or as a subprocess.
        env: environment variables for every nbgrader run, on any worker (``COURSE_UNSAFE``).
        say: receives progress lines.
        task: the Dask task (tests inject faults through it).

    Returns:
        One report per assignment, in the order given.

    Raises:
        GradingError: the run cannot start (nothing is graded then).
    """
    from nbgrader.api import Gradebook, MissingEntry

    started = time.monotonic()
    settings = course_settings(course)
    root = settings.root
    ledger = Ledger.for_course(root)
    assignments = list(dict.fromkeys(assignments))
    if not assignments:
        raise GradingError("no assignment to grade")
    found = {a: list_submissions(settings, a) for a in assignments}
    if students:
        missing = sorted(set(students) - {s for subs in found.values() for s in subs})
        if missing:
            raise GradingError(f"no submission of {', '.join(assignments)} for: {', '.join(missing)}")
        found = {a: {s: subs[s] for s in sorted(set(students)) if s in subs} for a, subs in found.items()}

    with _course_lock(root), Gradebook(settings.db_url, settings.course_id) as gb:
        env = {**kernel_threads_env(workers, scheduler), **(env or {})}
        version = gradebook_sync.alembic_version(gb)
        plans: dict[str, _Plan] = {}
        latest: dict[str, dict[str, dict[str, Any]]] = {}
        for assignment in assignments:
            try:
                definition = gradebook_sync.assignment_definition(gb, assignment)
            except MissingEntry:
                raise GradingError(
                    f"{assignment} is not in the gradebook ({_safe_url(settings.db_url)}): run "
                    f"`course release {assignment}` (nbgrader generate_assignment) first"
                ) from None
            notebooks = [nb["name"] for nb in definition["notebooks"]]
            setup = _setup(settings, assignment, definition, version, in_process, env)
            latest[assignment] = ledger.latest(assignment)
            report = GradingReport(assignment=assignment, cluster="", notebooks=notebooks, db_url=settings.db_url)
            jobs: list[Job] = []
            for student, folder in found[assignment].items():
                files = read_files(folder, settings.ignore)
                digest = digest_files(files)
                prior = gradebook_sync.submission_state(gb, assignment, student, manual=True)
                dest = settings.folder("autograded", student, assignment)
                rec = latest[assignment].get(student)
                if (
                    not force and rec is not None and rec.get("status") == "graded"
                    and rec.get("submission") == digest and rec.get("setup") == setup.digest
                    and prior is not None and dest.is_dir()
                ):
                    report.submissions[student] = SubmissionReport(student, "skipped", "already graded, unchanged")
                    continue
                jobs.append(Job(student, files, settings.rel(folder), settings.rel(dest), prior, digest,
                                assignment=assignment))
            plans[assignment] = _Plan(setup, definition, report, jobs)

        gb.db.commit()  # end the read transaction: nothing stays locked while workers grade
        everything = [job for plan in plans.values() for job in plan.jobs]
        expected = expected_seconds(everything, latest)
        jobs = longest_first(everything, latest, settings.code_stub, expected=expected)
        for assignment, plan in plans.items():
            skipped = len(plan.report.submissions)
            if not plan.jobs:
                say(f"{assignment}: nothing to grade ({skipped} submission(s) already graded and unchanged; "
                    "--force grades them again)")
                continue
            say(
                f"{assignment}: {len(plan.jobs)} submission(s) × {len(plan.report.notebooks)} notebook(s) to grade"
                + (f", {skipped} skipped (already graded, unchanged)" if skipped else "")
                + f"; gradebook {_safe_url(settings.db_url)}"
            )
        if not jobs:
            for plan in plans.values():
                plan.report.cluster = "none (nothing to grade)"
                plan.report.wall_s = time.monotonic() - started
            return [plans[a].report for a in assignments]

        weights = [expected[_key(job)] / len(plans[job.assignment].report.notebooks)
                   for job in jobs for _ in plans[job.assignment].report.notebooks]
        run_id = uuid.uuid4().hex[:12]
        several = len([p for p in plans.values() if p.jobs]) > 1
        with dask_client(workers, scheduler, retries=retries) as (client, description):
            for plan in plans.values():
                plan.report.cluster = description if plan.jobs else "none (nothing to grade)"
            say(f"grading on {description}")
            progress = Progress(len(weights), say, weights)

            def record(job: Job, outcome: Outcome) -> None:
                plan = plans[job.assignment]
                _record(gb, settings, ledger, plan.setup, plan.definition, run_id, job, outcome, plan.report,
                        progress, weight=expected[_key(job)], label=f"{job.assignment}  " if several else "")

            _run(client, jobs, {a: p.setup for a, p in plans.items() if p.jobs}, task, retries, record)
    for plan in plans.values():
        plan.report.wall_s = time.monotonic() - started
    return [plans[a].report for a in assignments]


def expected_seconds(jobs: list[Job], latest: dict[str, dict[str, dict[str, Any]]]) -> dict[tuple[str, str], float]:
    """``{(assignment, student): seconds}``: each job's last graded duration (ledger), else a typical one.

    Typical: the median known duration of the job's assignment, else of the whole run, else 0.
    """
    def known(job: Job) -> float | None:
        rec = latest.get(job.assignment, {}).get(job.student)
        if isinstance(rec, dict) and rec.get("status") == "graded" and isinstance(rec.get("duration_s"), int | float):
            return float(rec["duration_s"])
        return None

    seen = {_key(job): d for job in jobs if (d := known(job)) is not None}
    by_assignment: dict[str, list[float]] = collections.defaultdict(list)
    for (assignment, _), seconds in seen.items():
        by_assignment[assignment].append(seconds)
    overall = statistics.median(seen.values()) if seen else 0.0
    typical = {a: statistics.median(v) for a, v in by_assignment.items()}
    return {_key(job): seen.get(_key(job), typical.get(job.assignment, overall)) for job in jobs}


def _key(job: Job) -> tuple[str, str]:
    return job.assignment, job.student


def longest_first(jobs: list[Job], latest: dict[str, Any], code_stub: str = "",
                  expected: dict[tuple[str, str], float] | None = None) -> list[Job]:
    """``jobs`` with the longest to grade first (longest-processing-time-first), ties in order.

    The long submissions start first and the short ones fill the gaps at the end, so no worker
    idles long while the last submission runs. How long: the last grading's duration in the
    ledger; a submission never graded counts as the median known duration. Among equals (all of
    them on a first grading), those with fewer answers left as the release's ``code_stub``
    (:func:`untouched_answers`) come first: a stub raises at once, its tests fail fast.
    """
    if expected is None:  # ``latest`` is one assignment's ``{student: record}``
        expected = expected_seconds(jobs, {job.assignment: latest for job in jobs})
    untouched = {_key(job): untouched_answers(job.files, code_stub) for job in jobs} if code_stub else {}
    return sorted(jobs, key=lambda job: (-expected[_key(job)], untouched.get(_key(job), 0)))


def untouched_answers(files: dict[str, bytes], code_stub: str) -> int:
    """Code cells of the notebooks in ``files`` that still hold every code line of ``code_stub``.

    nbgrader's ClearSolutions puts the stub (``raise NotImplementedError()`` and a comment) in
    place of each solution; its comment lines are ignored (students delete them). An unreadable
    notebook counts 0 (it is graded fast anyway).
    """
    lines = {ln.strip() for ln in code_stub.splitlines()} - {""}
    lines = {ln for ln in lines if not ln.startswith("#")}
    if not lines:
        return 0
    count = 0
    for rel, content in files.items():
        if not rel.endswith(".ipynb"):
            continue
        try:
            cells = json.loads(content).get("cells", [])
        except (ValueError, AttributeError, UnicodeDecodeError):
            continue
        for cell in cells if isinstance(cells, list) else []:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            if lines <= {ln.strip() for ln in source.splitlines()}:
                count += 1
    return count


def _safe_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


#: Thread-pool sizes of the numerical libraries a grading kernel may load (NumPy's BLAS, PyTorch,
#: TensorFlow): with one worker per core, a kernel using every core would only fight the others.
THREAD_VARS = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
)


def kernel_threads_env(workers: int | None, scheduler: str | None) -> dict[str, str]:
    """Threads per grading kernel: the cores a local worker has to itself (1 on a cluster).

    A value set in the driver's environment wins. Either way every variable is sent: a Dask
    worker has its own values (the nanny sets ``OMP_NUM_THREADS=1`` and the like), which the
    kernel would inherit otherwise.
    """
    cores = len(os.sched_getaffinity(0))
    threads = 1 if scheduler else max(1, cores // (workers or cores))
    return {var: os.environ.get(var, str(threads)) for var in THREAD_VARS}


def _setup(settings: CourseSettings, assignment: str, definition: dict, version: str, in_process: bool,
           env: dict[str, str]) -> GradingSetup:
    from nbgrader.api import Gradebook

    source = settings.folder("source", ".", assignment)
    source_files = read_files(source, settings.ignore, notebooks=False) if source.is_dir() else {}
    release = settings.folder("release", ".", assignment)
    release_files = {
        rel: data for rel, data in (read_files(release, settings.ignore) if release.is_dir() else {}).items()
        if rel.endswith(".ipynb") and "/" not in rel
    }
    with tempfile.TemporaryDirectory(prefix="course-template-") as tmp:
        path = Path(tmp) / "gradebook.db"
        gradebook_sync.create_gradebook(str(path), version)
        with Gradebook(f"sqlite:///{path}", settings.course_id) as template:
            gradebook_sync.build_template(template, definition)
        template_db = path.read_bytes()
    from autograder.grading.worker import code_digest

    code = code_digest()
    digest = digest_files(
        {
            "code": code.encode(),
            "nbgrader_config.py": settings.config_text.encode(),
            "definition.json": gradebook_sync.definition_json(definition).encode(),
            **{f"source/{rel}": data for rel, data in source_files.items()},
            **{f"release/{rel}": data for rel, data in release_files.items()},
        }
    )
    return GradingSetup(
        assignment=assignment,
        course_id=settings.course_id,
        config_text=settings.config_text,
        source_files=source_files,
        source_rel=settings.rel(source),
        template_db=template_db,
        digest=digest,
        code=code,
        in_process=in_process,
        env=dict(env),
        notebooks=tuple(nb["name"] for nb in definition["notebooks"]),
        release_files=release_files,
        release_rel=settings.rel(release) if release_files else "",
    )


def _identity(value: Any) -> Any:
    return value


def _run(client: Any, jobs: list[Job], setups: dict[str, GradingSetup] | GradingSetup, task: Callable, retries: int,
         record: Callable[[Job, Outcome], None]) -> None:
    """Keep every worker thread busy with one submission; record each result as it arrives.

    At most one task per worker thread is in flight: a task never waits on a worker behind
    another one, so when a worker dies only the submission it was grading is charged with the
    death (Dask counts every task assigned to a dead worker). The setup travels as a task
    result, not scattered data, so the scheduler can rebuild it if the workers holding it die.
    """
    from distributed import KilledWorker, as_completed

    if isinstance(setups, GradingSetup):  # one assignment's run
        setups = {job.assignment: setups for job in jobs}
    shared = {
        assignment: client.submit(_identity, setup, key=f"grading-setup-{assignment}-{uuid.uuid4().hex[:8]}", pure=False)
        for assignment, setup in setups.items()
    }
    pending = list(jobs)
    #: each task in flight: its job and the worker it was sent to (a preference: another worker
    #: takes it if that one dies).
    running: dict[Any, tuple[Job, str | None]] = {}
    stream = as_completed()

    def top_up() -> None:
        try:
            threads = client.nthreads()
        except Exception:  # scheduler briefly unreachable: keep what is in flight
            threads = {}
        capacity = max(1, sum(threads.values()))
        while pending and len(running) < capacity:
            job = pending.pop(0)
            if not pending:  # no submission after it: no kernel ahead after its notebooks
                job = dataclasses.replace(job, last=True)
            # Left to itself, the scheduler puts a task beside the setup it reads, i.e. on the
            # worker that holds it, and the others get theirs only by stealing (~0.7 s each at
            # the start). Name a free worker instead, loosely (any other may still run it).
            target = free_worker(threads, [sent for _, sent in running.values() if sent])
            fut = client.submit(task, job, shared[job.assignment], key=f"grade-{job.assignment}-{job.student}-{uuid.uuid4().hex[:8]}",
                                pure=False, retries=retries, workers=[target] if target else None,
                                allow_other_workers=True)
            running[fut] = (job, target)
            stream.add(fut)

    top_up()
    try:
        for fut in stream:
            job, _ = running.pop(fut)
            try:
                outcome = fut.result()
            except KilledWorker as exc:
                attempts = getattr(exc, "allowed_failures", retries) + 1
                last = getattr(getattr(exc, "last_worker", None), "address", "?")
                outcome = Outcome(
                    job.student, "failed",
                    f"the worker died while grading it, {attempts} attempt(s) on different workers (last: {last})",
                )
            except Exception as exc:  # the task raised after its retries: record it, go on
                outcome = Outcome(job.student, "failed", f"{type(exc).__name__}: {exc}"[:300])
            top_up()  # the next submission starts while this one is written
            record(job, outcome)
    finally:
        for fut in running:
            fut.cancel()
        for fut in shared.values():
            fut.cancel()


def free_worker(threads: dict[str, int], busy: Iterable[str]) -> str | None:
    """A worker of ``threads`` (address → threads) with a thread that no task in ``busy`` targets."""
    load = collections.Counter(busy)
    free = [address for address, n in threads.items() if load[address] < n]
    return min(free, key=lambda address: load[address]) if free else None


def _record(gb: Any, settings: CourseSettings, ledger: Ledger, setup: GradingSetup, definition: dict,
            run_id: str, job: Job, outcome: Outcome, report: GradingReport, progress: Progress,
            weight: float | None = None, label: str = "") -> None:
    """Gradebook, then autograded files, then ledger: a record always means the grades are stored."""
    assignment = setup.assignment
    if outcome.state is not None:
        gradebook_sync.apply_autograde_state(gb, assignment, job.student, outcome.state)
        _write_autograded(settings.root / job.autograded_rel, outcome.autograded)
    else:
        gradebook_sync.ensure_submission(gb, assignment, job.student)
    notebooks = _notebook_summary(outcome.state, definition)
    for name, nb in notebooks.items():
        nb["cell_time_s"] = round(outcome.cell_time.get(name, 0.0), 3)
    extra = {"log": outcome.log_tail} if outcome.status != "graded" and outcome.log_tail else {}
    ledger.append(
        {
            **extra,
            "run": run_id,
            "assignment": assignment,
            "student": job.student,
            "status": outcome.status,
            "reason": outcome.reason,
            "submission": job.digest,
            "setup": setup.digest,
            "notebooks": notebooks,
            "duration_s": round(outcome.duration_s, 3),
            "worker": outcome.worker,
            **({"flags": outcome.flags} if outcome.flags else {}),
        }
    )
    report.submissions[job.student] = SubmissionReport(
        job.student, outcome.status, outcome.reason, outcome.duration_s, sum(outcome.cell_time.values()), outcome.worker
    )
    for name, nb in notebooks.items():
        if nb["score"] is not None:
            text = f"{nb['score']:g}/{nb['max_score']:g}"
        else:
            text = "not graded"
        if outcome.status != "graded":
            text += f"  [{outcome.status}: {outcome.reason}]"
        if outcome.flags.get(name):
            text += f"  [{'; '.join(outcome.flags[name])}]"
        # Each notebook's own time: its cells as the kernel ran them; the whole submission's
        # when nothing ran (a task that failed, an unreadable file).
        own = outcome.cell_time.get(name)
        seconds = f"{own:.1f} s" if own else f"{outcome.duration_s:.1f} s for the submission"
        share = None if weight is None else weight / max(1, len(notebooks))
        progress.notebook(f"{label}{job.student}", name, f"{text}  ({seconds})", share)


def read_results(db_url: str, assignment: str, students: list[str] | None = None) -> dict[str, dict[str, NotebookResult]]:
    """``{student: {notebook: NotebookResult}}`` from any nbgrader gradebook (SQLite or PostgreSQL)."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, NotebookResult]] = {}
    with Gradebook(db_url) as gb:
        for submission in gb.find_assignment(assignment).submissions:
            student = submission.student.id
            if students is not None and student not in students:
                continue
            out[student] = {}
            for nb in submission.notebooks:
                cells = {g.name.removesuffix("-tests"): g.score for g in nb.grades if g.max_score}
                auto = {g.auto_score for g in nb.grades if g.max_score}
                score = None if None in auto else nb.score
                out[student][nb.name] = NotebookResult(score, nb.max_score, cells)
    return out
