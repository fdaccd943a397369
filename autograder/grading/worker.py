"""What runs on a Dask worker: real ``nbgrader autograde`` of one submission in a private folder.

A task receives the submission's files and a :class:`GradingSetup` (the course's
``nbgrader_config.py``, the assignment's source files and a template gradebook holding only the
assignment definition), so a worker needs neither the course folder nor the course database.
It lays out a private course folder, runs ``nbgrader autograde ASSIGNMENT --student ID
--force`` there with the course config (so every preprocessor and the kernel the config
registers apply, exactly as for a serial run), and sends back the autograded files and the
submission's rows of the private gradebook. The driver is the only writer of the real
gradebook.

nbgrader runs in the worker process itself (a worker has it imported after its first task,
which saves ~2 s per submission) or, with ``GradingSetup.in_process = False``, as a
``nbgrader`` subprocess. In-process runs are serialised by a lock: start workers with one
thread each (``threads_per_worker=1``, ``dask worker --nthreads 1``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autograder.grading.speedups import defer_iri_parser

# A Dask worker imports this module to run its first task, before nbgrader: nbgrader's
# jsonschema would otherwise build an unused IRI parser there (~1.3 s; speedups).
defer_iri_parser()

#: Environment variables a grading kernel must not inherit from the worker (DB credentials).
PRIVATE_ENV = ("COURSE_DB_URL",)
#: Set by Dask's nanny in every worker (``distributed.nanny.pre-spawn-environ``) for its own
#: memory trimming. Inherited by a kernel, it turns off glibc's dynamic mmap threshold: importing
#: PyTorch and TensorFlow and running a few convolutions then costs ~0.8 CPU-s more (+20 % page
#: faults, measured here). A kernel gets it only when the grading run asks for it (``env``).
DASK_ENV = ("MALLOC_TRIM_THRESHOLD_",)
#: What an nbgrader run in a worker drops from the worker's environment (unless ``env`` sets it).
DROPPED_ENV = PRIVATE_ENV + DASK_ENV

#: Separates nbgrader's log from what kernels printed, in :attr:`Outcome.log_tail`.
OUTPUT_MARK = "[kernel and worker output]"

_RUN_LOCK = threading.Lock()
#: Private course folders are ``<tmp>/course-grade-<worker pid>-*``.
_PREFIX = "course-grade-"
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$")


@dataclass(frozen=True)
class GradingSetup:
    """Everything a worker needs besides the submission; the same for every task of a run."""

    assignment: str
    course_id: str
    config_text: str
    #: ``{path relative to the assignment's source folder: content}``.
    source_files: dict[str, bytes]
    #: where the source folder sits relative to the course root (``source/<assignment>``).
    source_rel: str
    #: a SQLite gradebook holding only the assignment definition.
    template_db: bytes
    #: :func:`autograder.grading.ledger.digest_files`-style digest of all of the above.
    digest: str
    #: :func:`code_digest` on the driver; a worker running other code refuses the task.
    code: str = ""
    in_process: bool = True
    #: environment variables set for the nbgrader run (e.g. ``COURSE_UNSAFE``), on any worker.
    env: dict[str, str] = field(default_factory=dict)
    #: the assignment's notebooks (how many kernels a submission uses).
    notebooks: tuple[str, ...] = ()
    #: ``{notebook file name: content}`` of the release and its folder relative to the course
    #: root: where deleted or moved test cells go back (grading.cell_order).
    release_files: dict[str, bytes] = field(default_factory=dict)
    release_rel: str = ""


@dataclass(frozen=True)
class Job:
    """One submission to grade."""

    student: str
    #: ``{path relative to the submission folder: content}``.
    files: dict[str, bytes]
    #: course-relative folders of the submission and of its autograded copy.
    submitted_rel: str
    autograded_rel: str
    #: the submission's rows already in the gradebook (``submission_state(manual=True)``).
    prior: dict[str, Any] | None
    digest: str
    #: no submission is left to hand out after this one: the worker starts no kernel ahead
    #: beyond this submission's notebooks (:func:`autograder.grading.kernel_pool.limit_ahead`).
    last: bool = False
    #: the assignment submitted (a run may grade several; its setup says the same).
    assignment: str = ""


@dataclass
class Outcome:
    """What a task sends back (also built by the driver for a task that never returned)."""

    student: str
    #: ``graded``, ``incomplete`` (nbgrader reported an error) or ``failed`` (no result).
    status: str
    reason: str | None = None
    #: the submission's rows after autograding (``submission_state``); ``None`` when failed.
    state: dict[str, Any] | None = None
    #: ``{path relative to the autograded folder: (content, mode)}``.
    autograded: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    #: seconds spent executing cells, per notebook (from nbclient's execution metadata).
    cell_time: dict[str, float] = field(default_factory=dict)
    #: ``{notebook: [French flag, …]}`` for a TA to look at (e.g. test cells put back in place).
    flags: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float = 0.0
    worker: str = ""
    log_tail: str = ""


def grade_submission(job: Job, setup: GradingSetup) -> Outcome:
    """Autograde ``job`` with real nbgrader in a private course folder (the Dask task)."""
    start = time.monotonic()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if setup.code and setup.code != code_digest():
        return Outcome(
            job.student, "failed",
            "this worker runs another version of the course code (autograder, solutions) than the "
            "driver: install the same version on every worker",
            worker=worker,
        )
    from autograder.grading.sandbox_kernel import sweep_stale_private_folders

    sweep_stale_private_folders(_PREFIX)  # copies left by workers killed mid-task (gradebooks)
    prefix = f"{_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        (root / "nbgrader_config.py").write_text(setup.config_text, encoding="utf-8")
        _write_tree(root / setup.source_rel, setup.source_files)
        if setup.release_rel:
            _write_tree(root / setup.release_rel, setup.release_files)
        _write_tree(root / job.submitted_rel, job.files)
        from nbgrader.api import Gradebook

        from autograder.grading.gradebook_sync import restore_submission, submission_state

        db = _private_gradebook()
        try:
            db.write_bytes(setup.template_db)
            db_url = f"sqlite:///{db}"
            if job.prior is not None:
                with Gradebook(db_url, setup.course_id) as gb:
                    restore_submission(gb, setup.assignment, job.student, job.prior)

            argv = [
                setup.assignment, "--student", job.student, "--force",
                f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url={db_url}",
            ]
            runner = _autograde_in_process if setup.in_process else _autograde_subprocess
            ahead = len(setup.notebooks) - 1 if job.last and setup.notebooks else None
            code, log = runner(root, argv, setup.env, ahead)
            with Gradebook(db_url, setup.course_id) as gb:
                state = submission_state(gb, setup.assignment, job.student)
            autograded = _read_tree(root / job.autograded_rel)
        finally:
            db.unlink(missing_ok=True)  # it holds the hidden tests: never left between tasks

    cell_time = {
        Path(rel).stem: _cell_seconds(content)
        for rel, (content, _) in autograded.items()
        if rel.endswith(".ipynb") and "/" not in rel
    }
    status, reason = ("graded", None) if code == 0 else ("incomplete", failure_reason(log, code))
    unreadable = _unreadable_notebooks(autograded)
    if unreadable and status == "graded":  # graded 0 on purpose: say why in the ledger
        reason = "; ".join(f"{name}: unreadable submission ({why})" for name, why in unreadable.items())
    if state is None and status == "graded":  # nbgrader said OK but wrote nothing: never trust that
        status, reason = "incomplete", "nbgrader wrote no submission to the gradebook"
    return Outcome(
        student=job.student,
        status=status,
        reason=reason,
        state=state,
        autograded=autograded,
        cell_time=cell_time,
        flags=_restored_cells(autograded),
        duration_s=time.monotonic() - start,
        worker=worker,
        log_tail="\n".join(log.splitlines()[-60:]),
    )


def _private_gradebook() -> Path:
    """The task's gradebook file: one path per worker thread, the same for each of its tasks.

    A stable path means a stable database URL, so nbgrader's engine (and its compiled SQL,
    :mod:`autograder.grading.speedups`) is reused from task to task. The folder is private
    (mode 700) and named like the task folders, so a killed worker's is swept.
    """
    folder = Path(tempfile.gettempdir()) / f"{_PREFIX}{os.getpid()}-db-{threading.get_ident()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / "gradebook.db"


@functools.cache
def code_digest() -> str:
    """Digest of the course code that grades depend on: the ``autograder`` and ``solutions`` packages."""
    from autograder.grading.ledger import digest_files

    files: dict[str, bytes] = {}
    for name in ("autograder", "solutions"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # `solutions` is absent from student installs
            continue
        for folder in getattr(module, "__path__", []):
            for path in sorted(Path(folder).rglob("*.py")):
                files[f"{name}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    return digest_files(files)


def failure_reason(log: str, code: int | None) -> str:
    """One line saying why nbgrader failed: the last exception line of its log, else its last error."""
    log = log.split(OUTPUT_MARK)[0]
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for line in reversed(lines):
        m = _EXC_LINE.match(line)
        if m and not line.startswith("NbGraderException"):
            return f"nbgrader autograde exited {code}: {m.group(1)[:300]}"
    errors = [ln for ln in lines if "ERROR" in ln]
    last = errors[-1] if errors else (lines[-1] if lines else "no log")
    return f"nbgrader autograde exited {code}: {last[:300]}"


@contextlib.contextmanager
def _process_state(root: Path, argv: list[str], env: dict[str, str]) -> Iterator[None]:
    """Environment, argv, cwd and sys.path of an nbgrader run, restored afterwards.

    The course config may change ``os.environ`` (``JUPYTER_PATH``, ``COURSE_ROOT``) and reads
    ``sys.argv``; in a long-lived worker, each run must start from the same state as a fresh
    ``nbgrader autograde`` process would.
    """
    saved_env, saved_argv, saved_path = dict(os.environ), list(sys.argv), list(sys.path)
    try:
        for key in DROPPED_ENV:
            os.environ.pop(key, None)
        os.environ.update(env)
        os.environ["COURSE_ROOT"] = str(root)
        sys.argv[:] = [str(Path(sys.executable).parent / "nbgrader"), "autograde", *argv]
        with contextlib.chdir(root):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path


@contextlib.contextmanager
def _captured_fds(sink: io.StringIO) -> Iterator[None]:
    """Send what this process and its children (the kernels) write on fds 1 and 2 to ``sink``.

    Kernels inherit the worker's stdout/stderr, which on a LocalCluster are the terminal of
    ``course grade``: their banners and warnings would break ``--quiet``. They join the log.
    """
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            if text.strip():
                sink.write(f"\n{OUTPUT_MARK}\n" + text[-20000:])


def _autograde_in_process(root: Path, argv: list[str], env: dict[str, str], ahead: int | None = None) -> tuple[int, str]:
    """``nbgrader autograde ARGV`` inside this process, its log captured; returns (exit code, log).

    ``ahead``: kernels it may start ahead for notebooks after the first (None: no limit).
    """
    from nbgrader.apps.autogradeapp import AutogradeApp

    from autograder.grading import kernel_pool

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s] %(message)s"))
    handler.setLevel(logging.INFO)
    with _RUN_LOCK, _process_state(root, argv, env), _captured_fds(buf), kernel_pool.ahead_limit(ahead):
        app = AutogradeApp.instance()  # the singleton, as `nbgrader autograde` has (hooks look it up)
        saved = (list(app.log.handlers), app.log.propagate)
        app.log.handlers[:] = [handler]
        app.log.propagate = False
        code = 0
        try:
            app.initialize(argv)
            app.log.handlers[:] = [handler]  # initialize may reconfigure logging
            handler.setLevel(app.log_level)
            app.start()
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                code = exc.code or 0
            else:  # sys.exit("message"), e.g. the config refusing an unsafe host
                code = 1
                buf.write(f"[AutogradeApp | ERROR] {exc.code}\n")
        except Exception:  # nbgrader's own bug or a broken config: report, never crash the worker
            code = 1
            buf.write(traceback.format_exc())
        finally:
            app.log.handlers[:], app.log.propagate = saved
            AutogradeApp.clear_instance()
    return code, buf.getvalue()


def _autograde_subprocess(root: Path, argv: list[str], extra_env: dict[str, str], ahead: int | None = None) -> tuple[int, str]:
    """``nbgrader autograde ARGV`` as a child process (full isolation, slower start; ``ahead`` unused)."""
    env = dict(os.environ)
    for key in DROPPED_ENV:
        env.pop(key, None)
    env.update(extra_env)
    env["COURSE_ROOT"] = str(root)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        [str(Path(bindir) / "nbgrader"), "autograde", *argv], cwd=root, env=env, capture_output=True, text=True
    )
    return proc.returncode, proc.stdout + proc.stderr


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = folder / rel
        if not path.resolve().is_relative_to(folder.resolve()):
            raise ValueError(f"file outside its folder: {rel!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _read_tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(folder).as_posix()] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def _unreadable_notebooks(autograded: dict[str, tuple[bytes, int]]) -> dict[str, str]:
    """``{notebook: reason}`` for the autograded notebooks that are unreadable-file placeholders."""
    import nbformat

    from autograder.grading.submissions import UNREADABLE_MARK, unreadable_reason

    out = {}
    for rel, (content, _) in autograded.items():
        if rel.endswith(".ipynb") and "/" not in rel and UNREADABLE_MARK.encode() in content:
            try:
                why = unreadable_reason(nbformat.reads(content.decode("utf-8"), as_version=4))
            except Exception:  # noqa: BLE001 - our own output; never fail the task over it
                why = None
            if why:
                out[Path(rel).stem] = why
    return out


def _restored_cells(autograded: dict[str, tuple[bytes, int]]) -> dict[str, list[str]]:
    """``{notebook: ["cellule de test restaurée : <grade_id>", …]}`` from the cells' notes."""
    import json

    from autograder.grading.preprocessors import RESTORED_PREFIX

    out: dict[str, list[str]] = {}
    for rel, (content, _) in sorted(autograded.items()):
        if not rel.endswith(".ipynb") or "/" in rel or RESTORED_PREFIX.encode() not in content:
            continue
        try:
            cells = json.loads(content).get("cells", [])
        except ValueError:
            continue
        for cell in cells:
            texts = ["".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
            if any(text.startswith(RESTORED_PREFIX) for text in texts):
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "?")
                out.setdefault(Path(rel).stem, []).append(f"cellule de test restaurée : {gid}")
    return out


def _cell_seconds(content: bytes) -> float:
    """Sum over code cells of kernel-side execution time (nbclient's ``metadata.execution``)."""
    import json

    try:
        nb = json.loads(content)
    except ValueError:
        return 0.0
    total = 0.0
    for cell in nb.get("cells", []):
        ex = cell.get("metadata", {}).get("execution", {})
        begin, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if begin and end:
            try:
                total += (_ts(end) - _ts(begin)).total_seconds()
            except ValueError:
                pass
    return total


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
