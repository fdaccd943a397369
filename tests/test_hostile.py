"""Hostile and broken submissions through real `nbgrader autograde` with the project config.

The corpus (tests/fixtures/hostile/, README.md there) targets m3-fundamentals/convolution. Two
course folders share one `generate_assignment`:

- *main*: every case with ``run == "main"``, graded in ONE `nbgrader autograde` run (nbgrader
  exits 1 when a submission fails: expected, the assertions read the gradebook and the
  autograded notebooks, never the exit code);
- *isolated*: an honest ``victim`` and the two infinite loops, graded with a short cell timeout
  (``COURSE_CELL_TIMEOUT``); then ``gradebook-attacker`` graded alone, with the whole course tree
  and the gradebook snapshotted right before and compared right after.

"The gradebook is byte-identical" cannot hold for the file itself: nbgrader must write the
attacker's own grades into it. What is asserted instead: every file of the course folder but
``gradebook.db`` and the attacker's working copy (``autograded/<attacker>/<assignment>/``) is
byte-identical (SHA-256); every gradebook row that existed before is still there, unchanged;
the only new rows belong to the attacker's submission and hold exactly its expected grades; the
database passes SQLite's integrity check.

"No file outside the sandbox changes": attacks name what they write with a per-run token; no
file with that token may exist afterwards under /tmp (and the grader's IPC folders there),
/dev/shm, $HOME, the repository (``git status``), ``solutions/``, ``autograder/`` or
site-packages, and the files they open for writing keep their SHA-256. The machine is shared
with other engineers, so whole-directory diffs of /tmp or of the working tree would be flaky:
the token makes the check exact instead.

The main run's submissions are graded a second time by ``course grade --workers 2`` (Dask,
nbgrader inside the workers): same grades as serial nbgrader (but where a recovery choice
decides, ``unasserted``), the same reasons and review flags, and the ledger names why each
unreadable file scored 0.

Defenses that do not hold are marked ``xfail(strict=True)`` in ``GAPS`` with what happens (none
today); remove an entry when the grader is fixed (strict: a fixed gap fails the run until
removed). Run time on the 2-core machine, unloaded: about 7 minutes (``slow``): the main
autograde run ~3 min for 34 submissions, ``course grade`` ~2 min, the isolated runs the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

_spec = importlib.util.spec_from_file_location(
    "hostile_corpus", Path(__file__).parent / "fixtures" / "hostile" / "corpus.py"
)
corpus = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = corpus
_spec.loader.exec_module(corpus)

A, NB = corpus.ASSIGNMENT, corpus.NOTEBOOK
FLAG_PREFIX = "⚠ Signalé pour relecture"
RESTORED_PREFIX = "⚠ Cellule de test restaurée"
#: Memory cgroup of the grading kernels in these runs (default 6 GiB): the memory bomb fills
#: it, and the machine is shared.
SANDBOX_MEMORY = 3 << 30
#: Seconds per cell for the infinite loops (the cheap cells take ~3 s on a loaded machine).
CELL_TIMEOUT = 30
PIDS_LIMIT = 256
FSIZE_LIMIT = 512 << 20

MAIN = [c for c in corpus.CASES if c.run == "main"]
TIMED = [c for c in corpus.CASES if c.run == "timeout"]
ALL = [*corpus.CASES, corpus.ATTACKER]

# ---- Defenses that do not hold yet ------------------------------------------------------------
# (kind, case[, cell]) -> what happens. Kinds: recorded, scores, codes, flags, reasons, reason,
# outside (files outside the sandbox), and single tests named after their case.
GAPS: dict[tuple[str, ...], str] = {}


def gap(*key: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=GAPS[key])] if key in GAPS else []


def params(kind: str, names: list[str]) -> list[Any]:
    return [pytest.param(n, marks=gap(kind, n), id=n) for n in names]


def cell_params(kind: str, attr: str) -> list[Any]:
    return [
        pytest.param(c.name, cell, values, marks=gap(kind, c.name, cell), id=f"{c.name}:{cell}")
        for c in ALL
        for cell, values in getattr(c, attr).items()
    ]


# ---- Helpers ------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(course: Path, skip: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file of ``course`` whose relative path starts with none of ``skip``."""
    out = {}
    for path in sorted(course.rglob("*")):
        rel = path.relative_to(course).as_posix()
        if path.is_file() and not rel.startswith(skip):
            out[rel] = sha256(path)
    return out


def gradebook_rows(course: Path) -> dict[str, set[tuple]]:
    con = sqlite3.connect(f"file:{course / 'gradebook.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {t: set(con.execute(f"select * from {t}")) for t in tables}
    finally:
        con.close()


def submission_rows(course: Path, student: str) -> dict[str, set[tuple]]:
    """The gradebook rows that belong to ``student``'s submissions (and the student row)."""
    con = sqlite3.connect(f"file:{course / 'gradebook.db'}?mode=ro", uri=True)
    try:
        sa = set(con.execute("select * from submitted_assignment where student_id = ?", (student,)))
        sa_ids = [r[0] for r in sa]
        marks = ",".join("?" * len(sa_ids))
        sn = set(
            con.execute(
                f"select * from submitted_notebook where assignment_id in ({marks})", sa_ids
            )
        )
        sn_ids = [r[0] for r in sn]
        marks = ",".join("?" * len(sn_ids))
        return {
            "student": set(con.execute("select * from student where id = ?", (student,))),
            "submitted_assignment": sa,
            "submitted_notebook": sn,
            "grade": set(
                con.execute(f"select * from grade where notebook_id in ({marks})", sn_ids)
            ),
            "comment": set(
                con.execute(f"select * from comment where notebook_id in ({marks})", sn_ids)
            ),
        }
    finally:
        con.close()


def autograded(course: Path, student: str) -> Path:
    return course / "autograded" / student / A / f"{NB}.ipynb"


def auto_scores(course: Path, student: str) -> dict[str, float | None] | None:
    """``{graded cell: auto_score}`` from the gradebook; None if the submission is not there."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            nb = gb.find_submission_notebook(NB, A, student)
        except MissingEntry:
            return None
        return {g.name.removesuffix("-tests"): g.auto_score for g in nb.grades if g.max_score}


def cells_of(course: Path, student: str) -> dict[str, dict]:
    """The autograded notebook's code cells by grade_id (``""`` keys dropped)."""
    path = autograded(course, student)
    if not path.exists():
        return {}
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            out[gid] = cell
    return out


def _text(out: dict) -> str:
    text = out.get("text", "")
    return "".join(text) if isinstance(text, list) else text


def errors_of(cell: dict) -> list[str]:
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for o in cell.get("outputs", [])
        if o["output_type"] == "error"
    ]


def flag_of(cell: dict) -> str:
    return "".join(_text(o) for o in cell.get("outputs", []) if FLAG_PREFIX in _text(o))


def recorded_reasons(course: Path, student: str) -> list[str]:
    """Every reason the grader left for a submission: error outputs of the autograded
    notebook, gradebook comments (nbgrader's own "No response." excluded), ledger reasons."""
    reasons = []
    for cell in cells_of(course, student).values():
        reasons += errors_of(cell)
    con = sqlite3.connect(f"file:{course / 'gradebook.db'}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select cm.auto_comment from comment cm join submitted_notebook sn on cm.notebook_id = sn.id "
            "join submitted_assignment sa on sn.assignment_id = sa.id where sa.student_id = ?",
            (student,),
        )
        reasons += [r[0] for r in rows if r[0] and r[0] != "No response."]
    finally:
        con.close()
    ledger = course / ".course" / "ledger.jsonl"
    if ledger.exists():
        for line in ledger.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if rec.get("student") == student and rec.get("reason"):
                    reasons.append(rec["reason"])
    return [r for r in reasons if r.strip()]


def reports(course: Path, student: str) -> list[dict]:
    path = autograded(course, student)
    return corpus.hostile_reports(path) if path.exists() else []


class TcpServer:
    """Listens on every address of the host and counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[Any] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.connections.append(addr)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def host_ip() -> str:
    """An address of this host other than loopback (a UDP connect sends nothing)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        return s.getsockname()[0]
    return "127.0.0.1"


def site_dirs() -> list[Path]:
    import site

    return [Path(p) for p in [*site.getsitepackages(), site.getusersitepackages()]]


def outside_hits(token: str) -> list[str]:
    """Files named with ``token`` outside every sandbox (course folders excluded)."""
    import autograder
    import solutions

    hits: list[Path] = []
    bases = [Path("/tmp"), Path("/dev/shm"), Path.home(), pipeline.COURSE_ROOT, *site_dirs()]
    bases += [Path(autograder.__file__).parent, Path(solutions.__file__).parent]
    for base in bases:
        with contextlib.suppress(OSError):
            hits += [p for p in base.iterdir() if token in p.name]
    for ipc in Path("/tmp").glob("course-ipc-*"):
        with contextlib.suppress(OSError):
            hits += [p for p in ipc.iterdir() if token in p.name]
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=pipeline.COURSE_ROOT,
        capture_output=True,
        text=True,
    ).stdout
    return sorted({str(p) for p in hits} | {line for line in status.splitlines() if token in line})


def guarded_files() -> dict[str, str]:
    """Files the attacks open for writing: their content must not change."""
    import numpy

    import autograder
    import solutions

    files = [
        Path(solutions.__file__).parent / "conv.py",
        Path(autograder.__file__).parent / "feedback.py",
        Path(numpy.__file__),
        pipeline.COURSE_ROOT / "nbgrader_config.py",
        pipeline.COURSE_ROOT / "source" / A / f"{NB}.ipynb",
    ]
    return {str(p): sha256(p) for p in files}


def submit(course: Path, case: corpus.Case, ctx: corpus.Context) -> None:
    folder = course / "submitted" / case.name / A
    files = case.build(ctx)
    for name, content in files.items():
        target = folder / (name if name.endswith(".ipynb") else f"{name}.ipynb")
        if isinstance(content, Path) and content.resolve() == target.resolve():
            continue  # written in place (the huge notebook)
        pipeline.submit(course, A, case.name, {name: content})


@contextlib.contextmanager
def env(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Run:
    course: Path
    seconds: float
    returncode: int
    log: str


@dataclass
class Graded:
    pristine: Path
    pristine_timed: Path
    main: Run
    timed: Run
    attack: Run
    token: str
    server: TcpServer
    hits_before: list[str]
    hits_after_main: list[str]
    hits_after_attack: list[str]
    guarded_before: dict[str, str]
    guarded_after: dict[str, str]
    tree_before: dict[str, str]
    tree_after: dict[str, str]
    rows_before: dict[str, set[tuple]]
    rows_after: dict[str, set[tuple]]
    victim_scores_before: dict[str, float | None] | None

    def course_of(self, name: str) -> Path:
        case = corpus.BY_NAME[name]
        return (
            self.main.course
            if case.run == "main" and case is not corpus.ATTACKER
            else self.timed.course
        )


def _autograde(course: Path, *students: str) -> Run:
    start = time.monotonic()
    proc = pipeline.autograde(course, A, *students, check=False)
    return Run(course, time.monotonic() - start, proc.returncode, proc.stdout + proc.stderr)


ATTACKER_COPY = f"autograded/{corpus.ATTACKER.name}/{A}/"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    main = pipeline.make_course(root / "main", [A], notebooks=[NB])
    release = pipeline.generate(main, A) / f"{NB}.ipynb"
    isolated = root / "isolated"
    shutil.copytree(main, isolated)  # same gradebook definition, one generate for both
    token = f"HOSTILE-{uuid.uuid4().hex[:12]}"
    server = TcpServer()
    huge = main / "submitted" / "huge-notebook" / A / f"{NB}.ipynb"
    pristine = root / "course-grade"
    pristine_timed = root / "course-grade-timed"
    ctx = corpus.Context(
        release,
        pipeline.solution_sources(main / "source" / A / f"{NB}.ipynb"),
        token=token,
        port=server.port,
        host_ip=host_ip(),
        huge_path=huge,
    )
    hits_before, guarded_before = outside_hits(token), guarded_files()
    try:
        with env(COURSE_SANDBOX_MEMORY=str(SANDBOX_MEMORY)):
            for case in MAIN:
                submit(main, case, ctx)
            shutil.copytree(main, pristine)  # the same submissions, for `course grade`
            main_run = _autograde(main)
            huge.unlink()
            hits_after_main = outside_hits(token)

            for case in [corpus.VICTIM, *TIMED]:
                submit(isolated, case, ctx)
            shutil.copytree(isolated, pristine_timed)  # loops and attacker, for `course grade`
            submit(pristine_timed, corpus.ATTACKER, ctx)
            with env(COURSE_CELL_TIMEOUT=str(CELL_TIMEOUT)):
                timed_run = _autograde(isolated)
            submit(isolated, corpus.ATTACKER, ctx)
            skip = (ATTACKER_COPY, "gradebook.db")
            tree_before, rows_before = tree(isolated, skip), gradebook_rows(isolated)
            victim_before = auto_scores(isolated, corpus.VICTIM.name)
            attack_run = _autograde(isolated, corpus.ATTACKER.name)
            tree_after, rows_after = tree(isolated, skip), gradebook_rows(isolated)
        print(
            f"\nhostile corpus: main autograde {main_run.seconds:.0f} s ({len(MAIN)} submissions), "
            f"timeouts {timed_run.seconds:.0f} s, attacker {attack_run.seconds:.0f} s"
        )
        for case in [*ALL, corpus.VICTIM]:  # observed vs expected, for whoever runs with -s
            course = main if case in MAIN else isolated
            got = auto_scores(course, case.name)
            print(f"  {case.name}: expected {case.expected_score:g}, got {got}")
        yield Graded(
            pristine,
            pristine_timed,
            main_run,
            timed_run,
            attack_run,
            token,
            server,
            hits_before,
            hits_after_main,
            outside_hits(token),
            guarded_before,
            guarded_files(),
            tree_before,
            tree_after,
            rows_before,
            rows_after,
            victim_before,
        )
    finally:
        server.close()
        huge.unlink(missing_ok=True)
        (pristine / huge.relative_to(main)).unlink(missing_ok=True)
        for bomb in [*main.glob(f"autograded/*/{A}/hostile_disk_bomb.bin"), *pristine.glob(f"autograded/*/{A}/hostile_disk_bomb.bin")]:
            bomb.unlink()
        for bomb in main.glob(f"autograded/*/{A}/hostile_disk_bomb.bin"):
            bomb.unlink()
        for hit in outside_hits(token):  # what escaped a sandbox: clean up after reporting it
            path = Path(hit)
            if path.is_absolute() and path.is_file():
                path.unlink()


# ---- Every submission: a number, the honest one -------------------------------------------------


@pytest.mark.parametrize("name", params("recorded", [c.name for c in ALL]))
def test_every_submission_is_graded_with_a_number(graded, name):
    scores = auto_scores(graded.course_of(name), name)
    assert scores is not None, f"{name}: not in the gradebook"
    assert set(scores) == set(corpus.POINTS)
    assert None not in scores.values(), f"{name}: ungraded cells {scores}"


@pytest.mark.parametrize("name", params("scores", [c.name for c in ALL]))
def test_honest_score_per_cell(graded, name):
    case = corpus.BY_NAME[name]
    course = graded.course_of(name)
    scores = auto_scores(course, name)
    scores = {gid: s for gid, s in (scores or {}).items() if gid not in case.unasserted} or scores
    feedback = {
        gid: flag_of(c) + "".join(errors_of(c)) for gid, c in cells_of(course, name).items()
    }
    assert scores == case.expected_cells(), feedback


@pytest.mark.parametrize("name", params("reason", [c.name for c in ALL if c.broken]))
def test_broken_file_is_recorded_with_a_reason(graded, name):
    assert recorded_reasons(graded.main.course, name), f"{name}: no reason recorded anywhere"


@pytest.mark.parametrize(("name", "cell", "codes"), cell_params("codes", "codes"))
def test_failure_code(graded, name, cell, codes):
    course = graded.course_of(name)
    _, found = pipeline.read_feedback(autograded(course, name))
    for code in codes:
        assert code in found.get(cell, []), found.get(cell)


@pytest.mark.parametrize(("name", "cell", "needles"), cell_params("flags", "flags"))
def test_tampering_is_flagged_for_review(graded, name, cell, needles):
    flag = flag_of(cells_of(graded.course_of(name), name).get(f"{cell}-tests", {}))
    assert flag.startswith(FLAG_PREFIX), f"{name}: no review flag on {cell}"
    for needle in needles:
        assert any(alt in flag for alt in needle.split("|")), (needle, flag)


@pytest.mark.parametrize(("name", "cell", "needles"), cell_params("reasons", "reasons"))
def test_lost_points_are_explained(graded, name, cell, needles):
    cells = cells_of(graded.course_of(name), name)
    errors = errors_of(cells.get(cell) or cells.get(f"{cell}-tests") or {})
    assert any(n in e for n in needles for e in errors), (cell, errors)


def restored_cells(course: Path, student: str) -> set[str]:
    """Graded cells of the autograded notebook that carry the « restored » note."""
    return {
        gid.removesuffix("-tests")
        for gid, cell in cells_of(course, student).items()
        if any(_text(o).startswith(RESTORED_PREFIX) for o in cell.get("outputs", []))
    }


@pytest.mark.parametrize("name", params("restored", [c.name for c in MAIN]))
def test_deleted_or_moved_test_cells_are_graded_in_place_and_noted(graded, name):
    """Scores are asserted by test_honest_score_per_cell; here: the note, and only where due."""
    assert restored_cells(graded.main.course, name) == set(corpus.BY_NAME[name].restored)


@pytest.mark.parametrize("name", ["test-cells-all-deleted", "test-cells-moved"])
def test_restored_test_cells_run_at_their_release_position(graded, name):
    order = [gid for gid in (cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                             for cell in json.loads(autograded(graded.main.course, name).read_text())["cells"]) if gid]
    release_nb = nbformat.read(str(graded.main.course / "release" / A / f"{NB}.ipynb"), as_version=4)
    release = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release_nb.cells]
    assert order == [gid for gid in release if gid], order


# ---- What the attacks saw and did ---------------------------------------------------------------


def test_execution_controls_and_kernelspec_do_not_escape_the_sandbox(graded):
    (rep,) = reports(graded.main.course, "exec-controls")
    assert rep["sandboxed"] == "1"
    assert "gradebook.db" not in (rep["root_listing"] or [])


def test_network_is_unreachable(graded):
    (rep,) = reports(graded.main.course, "network")
    assert (
        rep["loopback"] != "connected"
        and rep["host"] != "connected"
        and rep["internet"] != "connected"
    ), rep
    assert rep["dns"] != "resolved" and rep["http"] != "connected", rep
    assert graded.server.connections == []


def test_fork_bomb_stops_at_the_pids_limit(graded):
    (rep,) = reports(graded.main.course, "fork-bomb")
    assert rep["error"] is not None and 0 < rep["forks"] <= PIDS_LIMIT + 8, rep


def test_disk_bomb_stops_at_the_file_size_limit(graded):
    (rep,) = reports(graded.main.course, "disk-bomb")
    assert rep["size"] <= FSIZE_LIMIT and rep["error"] and "errno=27" in rep["error"], rep


def test_output_bomb_leaves_a_small_notebook(graded):
    assert autograded(graded.main.course, "output-bomb").stat().st_size < 5_000_000


def test_tampered_points_and_extra_cells_change_nothing(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded.main.course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(NB, A, "test-cells-tampered")
        assert nb.max_score == corpus.MAX_SCORE
        assert {g.name for g in nb.grades if g.max_score} == {
            f"{gid}-tests" for gid in corpus.POINTS
        }


def test_no_solution_or_hidden_test_in_student_outputs(graded):
    outputs = "".join(
        _text(o) + json.dumps(o.get("data", {}))
        for c in json.loads(autograded(graded.main.course, "leak-through-outputs").read_text())[
            "cells"
        ]
        for o in c.get("outputs", [])
    )
    assert not [m for m in corpus.LEAK_MARKERS if m in outputs]


def test_attacker_sees_nothing_of_the_course(graded):
    (rep,) = reports(graded.timed.course, corpus.ATTACKER.name)
    for key in ("ls_root", "ls_autograded", "ls_up2", "ls_up3"):
        seen = rep[key] if isinstance(rep[key], list) else []
        assert not {
            "gradebook.db",
            "source",
            "release",
            "submitted",
            "victim",
            "nbgrader_config.py",
        } & set(seen), (key, seen)
    for key in ("ls_submitted", "ls_source", "ls_release", "gradebook", "source_nb", "victim_nb"):
        assert isinstance(rep[key], str) and rep[key].endswith("Error"), (key, rep[key])
    assert rep["victim_glob"] == [] and not isinstance(rep["gradebook_sql"], list), rep
    assert set(rep["ls_repo"]) <= {"autograder", "solutions"}, rep["ls_repo"]
    for key in (
        "home",
        "solutions_pkg",
        "autograder_pkg",
        "site_packages",
        "user_site",
        "solutions_conv",
        "autograder_feedback",
        "site_numpy",
    ):
        assert rep["writes"][key] != "written" and rep["writes"][key] != "writable", (
            key,
            rep["writes"],
        )


def test_attacker_changes_no_file_of_the_course(graded):
    assert graded.tree_after == graded.tree_before
    extra = [
        p
        for p in (graded.timed.course / "autograded" / corpus.ATTACKER.name).iterdir()
        if p.name != A
    ]
    assert extra == []


def test_gradebook_keeps_every_row_and_gains_only_the_attackers(graded):
    course = graded.timed.course
    con = sqlite3.connect(course / "gradebook.db")
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    con.close()
    mine = submission_rows(course, corpus.ATTACKER.name)
    for table, rows in graded.rows_after.items():
        before = graded.rows_before[table]
        assert before <= rows, f"{table}: rows changed or deleted: {before - rows}"
        assert rows - before <= mine.get(table, set()), (
            f"{table}: new rows not of the attacker: {rows - before - mine.get(table, set())}"
        )
    assert len(mine["submitted_notebook"]) == 1 and len(mine["grade"]) == len(corpus.POINTS)
    assert auto_scores(course, corpus.ATTACKER.name) == corpus.ATTACKER.expected_cells()
    assert (
        auto_scores(course, corpus.VICTIM.name)
        == graded.victim_scores_before
        == corpus.VICTIM.expected_cells()
    )


@pytest.mark.parametrize(
    "when", [pytest.param(w, marks=gap("outside", w)) for w in ("main", "isolated")]
)
def test_no_file_outside_the_sandboxes_changes(graded, when):
    after = graded.hits_after_main if when == "main" else graded.hits_after_attack
    assert graded.hits_before == []
    assert after == [], after
    assert graded.guarded_after == graded.guarded_before


# ---- The same corpus through `course grade` (Dask workers, in-process nbgrader) --------------


@pytest.fixture(scope="module")
def course_graded(graded):
    """``course grade`` with 2 workers on a copy of the main run's submissions."""
    from grading_class import course_cli

    start = time.monotonic()
    proc = course_cli(
        "grade", A, "--course", str(graded.pristine), "--workers", "2", "--quiet",
        env={"COURSE_SANDBOX_MEMORY": str(SANDBOX_MEMORY)},
    )
    print(f"\nhostile corpus through course grade: {time.monotonic() - start:.0f} s")
    return Run(graded.pristine, time.monotonic() - start, proc.returncode, proc.stdout + proc.stderr)


@pytest.mark.parametrize("name", [c.name for c in MAIN if c is not corpus.ATTACKER])
def test_course_grade_gives_the_serial_grades(graded, course_graded, name):
    """Same grades as serial nbgrader, but where a recovery choice decides (``unasserted``)."""
    skip = corpus.BY_NAME[name].unasserted
    got = auto_scores(course_graded.course, name) or {}
    assert None not in got.values(), course_graded.log[-3000:]
    want = auto_scores(graded.main.course, name) or {}
    assert {k: v for k, v in got.items() if k not in skip} == {
        k: v for k, v in want.items() if k not in skip
    }, course_graded.log[-3000:]


@pytest.mark.parametrize("name", [c.name for c in MAIN])
def test_course_grade_notes_and_records_restored_test_cells(course_graded, name):
    want = set(corpus.BY_NAME[name].restored)
    assert restored_cells(course_graded.course, name) == want
    ledger = [
        json.loads(line)
        for line in (course_graded.course / ".course" / "ledger.jsonl").read_text().splitlines()
    ]
    (record,) = [r for r in ledger if r["student"] == name]
    flags = record.get("flags", {}).get(NB, [])
    assert flags == [f"cellule de test restaurée : {gid}-tests" for gid in corpus.POINTS if gid in want], record


@pytest.mark.parametrize("name", [c.name for c in MAIN if c.broken])
def test_course_grade_records_why_a_file_is_unreadable(course_graded, name):
    ledger = [
        json.loads(line)
        for line in (course_graded.course / ".course" / "ledger.jsonl").read_text().splitlines()
    ]
    (record,) = [r for r in ledger if r["student"] == name]
    assert record["status"] == "graded" and "unreadable submission" in (record["reason"] or ""), record
    assert recorded_reasons(course_graded.course, name)


@pytest.mark.parametrize(
    ("name", "cell", "needles"),
    [p for p in cell_params("reasons", "reasons") if corpus.BY_NAME[p.values[0]] in MAIN],
)
def test_course_grade_explains_lost_points(course_graded, name, cell, needles):
    cells = cells_of(course_graded.course, name)
    errors = errors_of(cells.get(cell) or cells.get(f"{cell}-tests") or {})
    assert any(n in e for n in needles for e in errors), (cell, errors)


@pytest.mark.parametrize(
    ("name", "cell", "needles"),
    [p for p in cell_params("flags", "flags") if corpus.BY_NAME[p.values[0]] in MAIN],
)
def test_course_grade_flags_tampering(course_graded, name, cell, needles):
    flag = flag_of(cells_of(course_graded.course, name).get(f"{cell}-tests", {}))
    assert flag.startswith(FLAG_PREFIX), f"{name}: no review flag on {cell}"
    for needle in needles:
        assert any(alt in flag for alt in needle.split("|")), (needle, flag)


@pytest.fixture(scope="module")
def course_graded_timed(graded):
    """``course grade`` of the infinite loops (short cell timeout), the victim and the attacker."""
    from grading_class import course_cli

    start = time.monotonic()
    proc = course_cli(
        "grade", A, "--course", str(graded.pristine_timed), "--workers", "2", "--quiet",
        env={"COURSE_SANDBOX_MEMORY": str(SANDBOX_MEMORY), "COURSE_CELL_TIMEOUT": str(CELL_TIMEOUT)},
    )
    return Run(graded.pristine_timed, time.monotonic() - start, proc.returncode, proc.stdout + proc.stderr)


@pytest.mark.parametrize("name", [c.name for c in [*TIMED, corpus.ATTACKER, corpus.VICTIM]])
def test_course_grade_gives_honest_scores_to_loops_and_attacker(course_graded_timed, name):
    case = corpus.BY_NAME[name]
    got = auto_scores(course_graded_timed.course, name) or {}
    assert {k: v for k, v in got.items() if k not in case.unasserted} == case.expected_cells(), (
        course_graded_timed.log[-3000:]
    )


@pytest.mark.parametrize(
    ("name", "cell", "needles"),
    [p for p in cell_params("reasons", "reasons") if corpus.BY_NAME[p.values[0]] in TIMED],
)
def test_course_grade_explains_timeouts(course_graded_timed, name, cell, needles):
    cells = cells_of(course_graded_timed.course, name)
    errors = errors_of(cells.get(cell) or cells.get(f"{cell}-tests") or {})
    assert any(n in e for n in needles for e in errors), (cell, errors)


def test_course_grade_attacker_sees_nothing(course_graded_timed):
    (rep,) = reports(course_graded_timed.course, corpus.ATTACKER.name)
    for key in ("ls_submitted", "ls_source", "ls_release", "gradebook", "source_nb", "victim_nb"):
        assert isinstance(rep[key], str) and rep[key].endswith("Error"), (key, rep[key])
    assert rep["victim_glob"] == [] and not isinstance(rep["gradebook_sql"], list), rep
