"""`course grade` on Dask against serial `nbgrader autograde`, on the same class.

The class (tests/grading_class.py): six m3-fundamentals/convolution submissions (full marks,
untouched, three mutants, half done), graded once by plain serial nbgrader. Every parallel run
must leave the gradebook equal to the serial one row by row (grades, comments, timestamps,
flags, penalties), the same feedback in the autograded notebooks and the same
`nbgrader export`. Also: the ledger (kill -9 safe), resume, a worker that dies, a driver that
is killed, and a real Dask scheduler with two workers started as separate processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import cloudpickle
import grading_class as gc
import psutil
import pytest

from autograder.grading import parallel
from autograder.grading.ledger import LEDGER_PATH, Ledger, digest_files
from autograder.grading.worker import GradingSetup, Job, failure_reason, grade_submission

pytestmark = [pytest.mark.notebook]


@pytest.fixture(scope="module")
def graded():
    return gc.serial_class()


def ledger_of(course: Path) -> list[dict]:
    return list(Ledger.for_course(course).records())


def assert_same_as_serial(course: Path, graded, students=gc.STUDENTS):
    assert gc.rows(gc.sqlite_url(course), students) == gc.rows(gc.sqlite_url(graded.serial), students)
    for student in students:
        assert gc.feedback(course, student) == gc.feedback(graded.serial, student), student
        path = course / "autograded" / student / gc.ASSIGNMENT / f"{gc.NOTEBOOK}.ipynb"
        assert oct(path.stat().st_mode & 0o777) == "0o444"  # nbgrader's permissions, kept


# ---- ledger -------------------------------------------------------------------------------


def test_digest_ignores_order_and_sees_content():
    assert digest_files({"a": b"1", "b": b"2"}) == digest_files({"b": b"2", "a": b"1"})
    assert digest_files({"a": b"1"}) != digest_files({"a": b"2"})
    assert digest_files({"a": b"12"}) != digest_files({"a1": b"2"})


def test_ledger_survives_a_torn_line(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append({"assignment": "m", "student": "s1", "status": "graded"})
    with open(ledger.path, "ab") as fh:  # a writer killed in the middle of a line
        fh.write(b'{"assignment": "m", "student": "s2", "sta')
    ledger.append({"assignment": "m", "student": "s3", "status": "failed", "reason": "x"})
    assert [r["student"] for r in ledger.records()] == ["s1", "s3"]
    ledger.append({"assignment": "m", "student": "s1", "status": "incomplete"})
    assert {s: r["status"] for s, r in ledger.latest("m").items()} == {"s1": "incomplete", "s3": "failed"}
    assert ledger.latest("other") == {}
    with pytest.raises(ValueError):
        ledger.append({"assignment": "m", "student": "s4", "status": "ok"})


def test_failure_reason_names_the_exception():
    log = "[AutogradeApp | ERROR] There was an error\nTraceback...\nDeadKernelError: Kernel died\n[ERROR] Please see"
    assert "DeadKernelError: Kernel died" in failure_reason(log, 1)
    assert "exited 1" in failure_reason("", 1)


def test_worker_with_other_course_code_refuses_to_grade():
    setup = GradingSetup("m", "c", "", {}, "source/m", b"", "digest", code="another-version")
    job = Job("s", {}, "submitted/s/m", "autograded/s/m", None, "digest")
    outcome = grade_submission(job, setup)
    assert outcome.status == "failed" and "another version of the course code" in outcome.reason
    assert outcome.state is None and not outcome.autograded


def test_worker_gradebook_holding_hidden_tests_is_removed_after_each_task(tmp_path):
    """The task's gradebook has a stable path (its SQL engine is reused): never left behind."""
    from autograder.grading.worker import _private_gradebook

    setup = GradingSetup("m", "c", "raise SystemExit('config refusée')\n", {}, "source/m", b"", "digest")
    job = Job("s", {"n.ipynb": b"{}"}, "submitted/s/m", "autograded/s/m", None, "digest")
    outcome = grade_submission(job, setup)
    assert outcome.status == "incomplete" and "config refusée" in outcome.reason
    db = _private_gradebook()
    assert db.parent.is_dir() and not db.exists()


def test_kernel_threads_are_always_sent_the_driver_value_winning(monkeypatch):
    for var in parallel.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    cores = len(os.sched_getaffinity(0))
    env = parallel.kernel_threads_env(1, None)
    assert env == {var: str(cores) for var in parallel.THREAD_VARS}
    assert set(parallel.kernel_threads_env(None, "tcp://127.0.0.1:8786").values()) == {"1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a Dask worker has its own (1): the driver's wins
    assert parallel.kernel_threads_env(cores, None)["OMP_NUM_THREADS"] == "3"


def test_nbgrader_run_drops_the_worker_only_environment(monkeypatch, tmp_path):
    """What a kernel inherits in a worker is what it would in serial nbgrader: no Dask tuning."""
    from autograder.grading.worker import DASK_ENV, PRIVATE_ENV, _process_state

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # set by Dask's nanny in every worker
    monkeypatch.setenv("COURSE_DB_URL", "postgresql://grader:secret@db/course")
    assert "MALLOC_TRIM_THRESHOLD_" in DASK_ENV and "COURSE_DB_URL" in PRIVATE_ENV
    with _process_state(tmp_path, [], {"OMP_NUM_THREADS": "2"}):
        assert "MALLOC_TRIM_THRESHOLD_" not in os.environ and "COURSE_DB_URL" not in os.environ
        assert os.environ["OMP_NUM_THREADS"] == "2" and os.environ["COURSE_ROOT"] == str(tmp_path)
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # the worker's own is restored
    with _process_state(tmp_path, [], {"MALLOC_TRIM_THRESHOLD_": "131072"}):  # asked for: kept
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "131072"


# ---- LocalCluster -------------------------------------------------------------------------


def _config_values(keys):
    import dask

    return {key: dask.config.get(key) for key in keys}


def test_embedded_cluster_runs_without_dashboard_monitors():
    """The workers and the scheduler run with QUIET_CLUSTER; Dask's defaults differ on each key."""
    keys = list(parallel.QUIET_CLUSTER)
    with parallel.dask_client(1) as (client, _):
        (worker,) = client.run(_config_values, keys).values()
        scheduler = client.run_on_scheduler(_config_values, keys)
        # Stealing stays: without it the second worker's first submission waits behind the first's.
        assert client.run_on_scheduler(lambda dask_scheduler: "stealing" in dask_scheduler.extensions)
    assert worker == scheduler == parallel.QUIET_CLUSTER
    with parallel.dask_client(1, quiet=False) as (client, _):
        (worker,) = client.run(_config_values, keys).values()
    assert all(worker[key] != value for key, value in parallel.QUIET_CLUSTER.items()), worker


def test_regrade_starts_the_longest_submissions_first():
    jobs = [Job(s, {}, f"submitted/{s}/m", f"autograded/{s}/m", None, "d") for s in ("a", "b", "c", "d", "e")]
    latest = {
        "a": {"status": "graded", "duration_s": 2.0},
        "b": {"status": "graded", "duration_s": 9.5},
        "c": {"status": "failed", "duration_s": 99.0},  # a failure's duration says nothing
        "e": {"status": "graded", "duration_s": 7},
    }
    # known: b 9.5, e 7, a 2 (median 7); c and d count as 7, after e (ties keep their order)
    assert [j.student for j in parallel.longest_first(jobs, latest)] == ["b", "c", "d", "e", "a"]
    assert parallel.longest_first(jobs, {}) == jobs  # first grading: the order is kept
    assert parallel.longest_first(jobs, {"a": {"status": "graded", "duration_s": "?"}}) == jobs


def _which_is_last(job, setup):
    from autograder.grading.worker import Outcome

    return Outcome(job.student, "failed", f"last={job.last}")


def test_free_worker_is_one_with_a_thread_no_task_was_sent_to():
    threads = {"tcp://a": 1, "tcp://b": 2}
    assert parallel.free_worker(threads, []) == "tcp://a"
    assert parallel.free_worker(threads, ["tcp://a"]) == "tcp://b"
    assert parallel.free_worker(threads, ["tcp://b"]) == "tcp://a"  # the least loaded first
    assert parallel.free_worker(threads, ["tcp://a", "tcp://b"]) == "tcp://b"
    assert parallel.free_worker({"tcp://a": 2, "tcp://b": 2}, ["tcp://a"]) == "tcp://b"  # not just the first free
    assert parallel.free_worker(threads, ["tcp://a", "tcp://b", "tcp://b"]) is None
    assert parallel.free_worker({}, []) is None  # scheduler unreachable: no preference
    assert parallel.free_worker(threads, ["tcp://gone"]) == "tcp://a"  # a task sent to a dead worker


def _notebook(*sources, cell_type="code"):
    return json.dumps({"cells": [{"cell_type": cell_type, "source": src, "metadata": {}} for src in sources]}).encode()


STUB = "# VOTRE CODE ICI\nraise NotImplementedError()"


def test_untouched_answers_counts_code_cells_still_holding_the_stub():
    files = {
        "a.ipynb": _notebook(
            ["def f(x):\n", "    # VOTRE CODE ICI\n", "    raise NotImplementedError()"],  # indented, as a list
            "def g(x):\n    raise NotImplementedError()",  # comment deleted: still untouched
            "def h(x):\n    return x  # raise NotImplementedError() was here",  # answered
            "raise NotImplementedError('not mine')",  # another line
        ),
        "b.ipynb": _notebook(STUB, cell_type="markdown"),  # not code
        "c.ipynb": b"{not json",  # unreadable: counts 0
        "data/stub.py": STUB.encode(),  # not a notebook
        "d.ipynb": _notebook(STUB),
    }
    assert parallel.untouched_answers(files, STUB) == 3
    assert parallel.untouched_answers(files, "# only a comment") == 0
    assert parallel.untouched_answers({"e.ipynb": b'{"cells": 3}'}, STUB) == 0


def test_first_grading_hands_out_untouched_answers_last():
    def job(student, untouched, answered):
        files = {"m.ipynb": _notebook(*[STUB] * untouched, *["x = 1"] * answered)}
        return Job(student, files, f"submitted/{student}/m", f"autograded/{student}/m", None, "d")

    jobs = [job("blank", 5, 0), job("done", 0, 5), job("half", 3, 2), job("done2", 0, 5)]
    order = [j.student for j in parallel.longest_first(jobs, {}, STUB)]
    assert order == ["done", "done2", "half", "blank"]
    assert parallel.longest_first(jobs, {}, "") == jobs  # no stub known: the order is kept
    # a known duration wins over the stub count; done2 counts as the median (10), like half: the
    # stub count breaks that tie
    latest = {"blank": {"status": "graded", "duration_s": 30.0}, "done": {"status": "graded", "duration_s": 1.0},
              "half": {"status": "graded", "duration_s": 10.0}}
    assert [j.student for j in parallel.longest_first(jobs, latest, STUB)] == ["blank", "done2", "half", "done"]


def test_only_the_final_submission_handed_out_is_marked_last():
    """The driver marks the submission after which none is left (no kernel ahead after it)."""
    jobs = [Job(f"s{i}", {}, f"submitted/s{i}/m", f"autograded/s{i}/m", None, "d") for i in range(5)]
    setup = GradingSetup("m", "c", "", {}, "source/m", b"", "digest")
    seen: dict[str, str] = {}
    with parallel.dask_client(workers=2) as (client, _):
        parallel._run(client, jobs, setup, _which_is_last, 0, lambda job, out: seen.__setitem__(job.student, out.reason))
    assert seen == {f"s{i}": f"last={i == 4}" for i in range(5)}


def test_last_submission_starts_no_kernel_after_its_notebooks(graded, tmp_path):
    """In a worker: a kernel ahead after an ordinary submission, none after the last one."""
    from nbgrader.api import Gradebook

    from autograder.grading import gradebook_sync, kernel_pool

    course = gc.fresh_copy(graded, tmp_path / "course")
    settings = parallel.course_settings(course)
    with Gradebook(settings.db_url, settings.course_id) as gb:
        definition = gradebook_sync.assignment_definition(gb, gc.ASSIGNMENT)
        setup = parallel._setup(settings, gc.ASSIGNMENT, definition, gradebook_sync.alembic_version(gb), True,
                                parallel.kernel_threads_env(1, None))
    assert setup.notebooks == (gc.NOTEBOOK,)

    def job(student: str, last: bool) -> Job:
        folder = settings.folder("submitted", student, gc.ASSIGNMENT)
        files = parallel.read_files(folder, settings.ignore)
        dest = settings.folder("autograded", student, gc.ASSIGNMENT)
        return Job(student, files, settings.rel(folder), settings.rel(dest), None, digest_files(files), last=last)

    try:
        first = grade_submission(job("ada", last=False), setup)
        assert first.status == "graded" and kernel_pool._ahead is not None
        last = grade_submission(job("ben", last=True), setup)
        assert last.status == "graded" and kernel_pool._ahead is None
        assert kernel_pool._budget is None  # the limit ends with the submission
        again = grade_submission(job("ada", last=False), setup)
        assert again.state == first.state and kernel_pool._ahead is not None
    finally:
        kernel_pool.discard_ahead()


def test_two_local_workers_equal_serial_nbgrader(graded, tmp_path):
    course = gc.fresh_copy(graded, tmp_path / "course")
    proc = gc.course_cli("grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_as_serial(course, graded)
    assert gc.export_csv(course) == gc.export_csv(graded.serial)
    # progress: one line per notebook with an ETA, then the table and the summary
    lines = proc.stdout.splitlines()
    progress = [ln for ln in lines if ln.startswith("[")]
    assert len(progress) == len(gc.STUDENTS) and "ETA" in progress[0] and progress[-1].endswith("done")
    assert "LocalCluster, 2 worker processes" in proc.stdout
    assert f"{len(gc.STUDENTS)} graded, 0 incomplete, 0 failed" in proc.stdout
    # the ledger: one "graded" record per submission, with per-notebook scores and timings
    records = ledger_of(course)
    assert sorted(r["student"] for r in records) == sorted(gc.STUDENTS)
    ada = next(r for r in records if r["student"] == "ada")
    assert ada["status"] == "graded" and ada["notebooks"][gc.NOTEBOOK]["score"] == 12.0
    assert ada["notebooks"][gc.NOTEBOOK]["cell_time_s"] > 0
    assert len({r["worker"] for r in records}) == 2  # both workers took submissions
    # ... from the start: the first two submissions ran on different workers (each task names a
    # free worker; left to itself the scheduler queues both beside the setup, on one worker).
    first, second = sorted(records, key=lambda r: datetime.fromisoformat(r["time"]).timestamp() - r["duration_s"])[:2]
    assert first["worker"] != second["worker"], records

    # re-run: nothing to do
    again = gc.course_cli("grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "2")
    assert again.returncode == 0 and "nothing to grade" in again.stdout, again.stdout + again.stderr
    assert len(ledger_of(course)) == len(gc.STUDENTS)

    # a changed submission is graded again, and only it (--quiet: nothing on stdout)
    sub = course / "submitted" / "ben" / gc.ASSIGNMENT
    (sub / f"{gc.NOTEBOOK}.ipynb").write_bytes(
        (course / "submitted" / "ada" / gc.ASSIGNMENT / f"{gc.NOTEBOOK}.ipynb").read_bytes()
    )
    third = gc.course_cli("grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "1", "--quiet")
    assert third.returncode == 0 and third.stdout == "", third.stdout + third.stderr
    records = ledger_of(course)
    assert [r["student"] for r in records[len(gc.STUDENTS):]] == ["ben"]
    assert records[-1]["notebooks"][gc.NOTEBOOK]["score"] == 12.0
    assert gc.rows(gc.sqlite_url(course), ["eve"]) == gc.rows(gc.sqlite_url(graded.serial), ["eve"])


def _flaky_task(job, setup):
    """Kills its worker: always for `ben`, on the first attempt only for `eve`."""
    marker = Path(os.environ["FLAKY_DIR"]) / job.student
    if job.student == "ben" or not marker.exists():
        marker.touch()
        os._exit(17)
    return grade_submission(job, setup)


def test_dead_worker_is_retried_then_recorded_failed(graded, tmp_path, monkeypatch):
    course = gc.fresh_copy(graded, tmp_path / "course")
    monkeypatch.setenv("FLAKY_DIR", str(tmp_path))  # inherited by the worker processes
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    lines = []
    # eve's worker dies on the first attempt: Dask gives the task to another worker, it is graded
    report = parallel.grade(course, gc.ASSIGNMENT, students=["eve"], workers=2, say=lines.append, task=_flaky_task)
    assert report.submissions["eve"].status == "graded"
    assert (tmp_path / "eve").exists()  # it did die once
    assert gc.rows(gc.sqlite_url(course), ["eve"]) == gc.rows(gc.sqlite_url(graded.serial), ["eve"])
    # ben's task kills every worker it runs on: after 1 retry it is recorded failed, with why
    report = parallel.grade(course, gc.ASSIGNMENT, students=["ben"], workers=2, say=lines.append, task=_flaky_task)
    ben = report.submissions["ben"]
    assert ben.status == "failed" and "worker died" in ben.reason and "2 attempt" in ben.reason
    assert not report.ok
    # nothing lost: the failure is in the ledger with its reason, the submission in the gradebook
    last = Ledger.for_course(course).latest(gc.ASSIGNMENT)
    assert last["ben"]["status"] == "failed" and "worker died" in last["ben"]["reason"]
    ben_grades = gc.rows(gc.sqlite_url(course), ["ben"])["grade"]
    assert ben_grades and all(g[3] is None and g[6] for g in ben_grades)  # listed as needing grading
    assert any("failed: the worker died" in ln for ln in lines)
    # a later run grades the failed submission again (eve is skipped), as serial nbgrader would
    report = parallel.grade(course, gc.ASSIGNMENT, students=["ben", "eve"], workers=1)
    assert report.submissions["eve"].status == "skipped" and report.submissions["ben"].status == "graded"
    assert_same_as_serial(course, graded, ["ben", "eve"])


# ---- separate processes: a real scheduler and workers, a killed driver ---------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` + two `dask worker` processes on loopback; yields (address, workers)."""
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
    env.pop("COURSE_DB_URL", None)
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"),
        )
    ]
    from distributed import Client

    try:
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                     "--no-dashboard", "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}")],
                    env=env, stdout=subprocess.DEVNULL, stderr=open(logs / f"worker{i}.log", "w"),
                )
            )
        with Client(address, timeout="120s") as client:
            client.wait_for_workers(2, timeout=180)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_real_scheduler_and_two_worker_processes_equal_serial(graded, tmp_path, dask_cluster):
    address, workers = dask_cluster
    course = gc.fresh_copy(graded, tmp_path / "course")
    students = ["ada", "cleo"]
    args = ["grade", gc.ASSIGNMENT, "--course", str(course), "--scheduler", address]
    for s in students:
        args += ["--student", s]
    proc = gc.course_cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Dask scheduler {address} (2 workers)" in proc.stdout
    assert_same_as_serial(course, graded, students)
    assert len({r["worker"] for r in ledger_of(course)}) == 2
    assert not (course / "autograded" / "ben").exists()  # --student: only those


def _kernel_host(nanny_pids: list[int]) -> psutil.Process | None:
    """The worker process (child of a `dask worker` nanny) running a grading kernel right now."""
    for pid in nanny_pids:
        try:
            for worker in psutil.Process(pid).children():
                for child in worker.children(recursive=True):
                    cmd = " ".join(child.cmdline())
                    if "ipykernel" in cmd or "sandbox_kernel" in cmd:
                        return worker
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
def test_worker_killed_mid_run_loses_nothing(graded, tmp_path, dask_cluster):
    address, workers = dask_cluster
    course = gc.fresh_copy(graded, tmp_path / "course")
    driver = gc.course_popen("grade", gc.ASSIGNMENT, "--course", str(course), "--scheduler", address)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline and driver.poll() is None:
        victim = _kernel_host([p.pid for p in workers])
        time.sleep(0.2)
    assert victim is not None, "no worker ever ran a kernel"
    victim.kill()  # kill -9 the worker process in the middle of a notebook
    out, err = driver.communicate(timeout=900)
    assert driver.returncode == 0, out + err
    assert_same_as_serial(course, graded)
    records = ledger_of(course)
    assert sorted(r["student"] for r in records) == sorted(gc.STUDENTS)
    assert all(r["status"] == "graded" for r in records)


@pytest.mark.slow
def test_driver_killed_then_rerun_gives_identical_grades(graded, tmp_path):
    course = gc.fresh_copy(graded, tmp_path / "course")
    driver = gc.course_popen("grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "2")
    ledger = course / LEDGER_PATH
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and driver.poll() is None:
        if ledger.exists() and len(ledger_of(course)) >= 2:
            break
        time.sleep(0.2)
    assert driver.poll() is None, "the driver finished before it could be killed"
    children = psutil.Process(driver.pid).children(recursive=True)
    os.kill(driver.pid, signal.SIGKILL)
    driver.communicate()
    done = {r["student"] for r in ledger_of(course)}
    assert 2 <= len(done) < len(gc.STUDENTS)
    _, alive = psutil.wait_procs(children, timeout=60)  # its workers and kernels go too
    assert not alive, [p.cmdline() for p in alive]

    proc = gc.course_cli("grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(done)} skipped" in proc.stdout
    assert_same_as_serial(course, graded)
    assert gc.export_csv(course) == gc.export_csv(graded.serial)
    per_student = {}
    for r in ledger_of(course):
        per_student.setdefault(r["student"], []).append(r["status"])
    assert all(per_student[s] == ["graded"] for s in gc.STUDENTS), per_student  # none graded twice


def test_grade_refuses_unknown_student_and_ungenerated_assignment(graded, tmp_path, capsys):
    from autograder.cli import main

    course = gc.fresh_copy(graded, tmp_path / "course")
    assert main(["grade", gc.ASSIGNMENT, "--course", str(course), "--student", "nobody"]) == 2
    assert "no submission of m3-fundamentals for: nobody" in capsys.readouterr().err
    (course / "submitted" / "ada" / "m9-missing").mkdir(parents=True)
    assert main(["grade", "m9-missing", "--course", str(course)]) == 2
    assert "not in the gradebook" in capsys.readouterr().err
    assert not (course / LEDGER_PATH).exists()  # nothing was graded or recorded


@pytest.mark.slow
def test_force_regrade_keeps_manual_grades_like_nbgrader(graded, tmp_path):
    """A TA's manual score survives a regrade and marks the cell for review, as in serial nbgrader."""
    import shutil

    from nbgrader.api import Gradebook

    from autograder.grading import pipeline

    serial = tmp_path / "serial"
    shutil.copytree(graded.serial, serial)
    course = gc.fresh_copy(graded, tmp_path / "course")
    first = gc.course_cli("grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "1", "--student", "dan")
    assert first.returncode == 0, first.stdout + first.stderr
    for folder in (serial, course):
        with Gradebook(gc.sqlite_url(folder)) as gb:
            grade = gb.find_grade("conv2d-forward-tests", gc.NOTEBOOK, gc.ASSIGNMENT, "dan")
            grade.manual_score = 3.5
            comment = gb.find_comment("conv2d_forward", gc.NOTEBOOK, gc.ASSIGNMENT, "dan")
            comment.manual_comment = "Biais oublié, sinon correct."
            gb.db.commit()
    pipeline.autograde(serial, gc.ASSIGNMENT, "dan")
    again = gc.course_cli(
        "grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "1", "--student", "dan", "--force"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    rows = gc.rows(gc.sqlite_url(course), ["dan"])
    assert rows == gc.rows(gc.sqlite_url(serial), ["dan"])
    forward = next(r for r in rows["grade"] if r[2] == "conv2d-forward-tests")
    assert forward[4] == 3.5 and forward[6] is True  # kept, and flagged for review
