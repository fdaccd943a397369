"""The gradebook on PostgreSQL (several graders or machines): nbgrader's ``db_url``.

The test starts a real PostgreSQL server on 127.0.0.1 (Debian's ``postgresql`` binaries, a
throw-away cluster owned by an unprivileged user), points the course config at it through
``COURSE_DB_URL``, releases the assignment into it with real ``nbgrader generate_assignment``,
grades part of the class with ``course grade --workers 2`` and compares, row by row and through
``nbgrader export``, with serial ``nbgrader autograde`` on SQLite. It is skipped, with the
reason, only where no server can be started.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import grading_class as gc
import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook]


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server on loopback for this module; yields a SQLAlchemy URL to a fresh database."""
    try:
        import psycopg2  # noqa: F401  (nbgrader's db_url driver)
    except ImportError:
        pytest.skip("psycopg2 is not installed (staff dependency psycopg2-binary)")
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:  # the server refuses to run as root: use the packaged account
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            pytest.skip("running as root and no unprivileged `postgres` account to run the server")
    base = Path(tempfile.mkdtemp(prefix="course-pg-"))
    os.chmod(base, 0o777)
    data = base / "data"
    port = _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, user=user, capture_output=True, text=True, timeout=180, cwd=base)

    init = run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "grader", "-E", "UTF8", "--locale=C", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL cannot be initialised here: {init.stderr.strip()[-300:]}")
    start = run(
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "120",
        "-o", f"-h 127.0.0.1 -p {port} -k {base} -F", "start",
    )
    if start.returncode != 0:
        log = (base / "server.log").read_text(errors="replace")[-300:] if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL cannot be started here: {start.stderr.strip()[-300:]} {log}")
    try:
        created = run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook")
        assert created.returncode == 0, created.stderr
        yield f"postgresql+psycopg2://grader@127.0.0.1:{port}/gradebook"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _generate_into(course: Path, url: str) -> None:
    """Real `nbgrader generate_assignment` through the course config, gradebook at ``url``."""
    old = os.environ.get("COURSE_DB_URL")
    os.environ["COURSE_DB_URL"] = url
    try:
        pipeline.generate(course, gc.ASSIGNMENT)
    finally:
        if old is None:
            os.environ.pop("COURSE_DB_URL")
        else:
            os.environ["COURSE_DB_URL"] = old


def _csv_rows(lines: list[str], students: list[str]) -> list[str]:
    return [lines[0]] + [ln for ln in lines[1:] if any(f",{s}," in ln for s in students)]


def test_parallel_grades_on_postgresql_equal_serial_on_sqlite(postgres_url, tmp_path):
    graded = gc.serial_class()
    course = gc.fresh_copy(graded, tmp_path / "course")
    (course / "gradebook.db").unlink()  # nothing may fall back to SQLite silently
    env = {"COURSE_DB_URL": postgres_url}
    _generate_into(course, postgres_url)

    students = ["ada", "ben", "dan"]
    args = ["grade", gc.ASSIGNMENT, "--course", str(course), "--workers", "2"]
    for s in students:
        args += ["--student", s]
    proc = gc.course_cli(*args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gradebook postgresql+psycopg2://grader@127.0.0.1" in proc.stdout
    assert not (course / "gradebook.db").exists()

    assert gc.rows(postgres_url) == gc.rows(gc.sqlite_url(graded.serial), students)
    for student in students:
        assert gc.feedback(course, student) == gc.feedback(graded.serial, student)
    assert _csv_rows(gc.export_csv(course, env), students) == _csv_rows(gc.export_csv(graded.serial), students)



@pytest.mark.slow
def test_two_graders_share_one_postgresql_gradebook(postgres_url, tmp_path):
    """Two course folders (two graders' machines) grade different students into one gradebook."""
    graded = gc.serial_class()
    env = {"COURSE_DB_URL": postgres_url}
    first = gc.fresh_copy(graded, tmp_path / "first")
    second = gc.fresh_copy(graded, tmp_path / "second")
    _generate_into(first, postgres_url)
    procs = [
        gc.course_popen("grade", gc.ASSIGNMENT, "--course", str(first), "--workers", "1", "--student", "cleo", env=env),
        gc.course_popen("grade", gc.ASSIGNMENT, "--course", str(second), "--workers", "1", "--student", "finn", env=env),
    ]
    for proc in procs:  # at the same time: PostgreSQL takes concurrent writers
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, out + err
    rows = gc.rows(postgres_url, ["cleo", "finn"])
    assert rows == gc.rows(gc.sqlite_url(graded.serial), ["cleo", "finn"])
