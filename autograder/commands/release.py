"""`course release`: regenerate ``release/`` with nbgrader, audit it, publish it.

The audit is what an admin needs before publishing: no solution region, no hidden test, no
output, no file over nbgrader's size limit, every release notebook identical to what
``nbgrader generate_assignment`` produces from ``source/``, and every notebook executing as a
student would start it: in a fresh kernel, from its own folder, without the staff-only
``solutions`` package. There, nbgrader's stubs raise ``NotImplementedError`` (in the cells that
call them too); any other error, any error or stderr output in a graded cell, or a graded cell
that does not score exactly 0 fails the audit.

``--exchange`` then releases the audited assignments to nbgrader's exchange
(``nbgrader release_assignment``); each run prints what changed since the committed release,
cell by cell (by ``grade_id``) with the points.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from autograder.grading import pipeline

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME")
MAX_FILE_BYTES = 100 * 1024 * 1024  # nbgrader's CourseDirectory.max_file_size default


def assignments(root: Path = pipeline.COURSE_ROOT) -> list[str]:
    return sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def hidden_lines(source_nb: Path) -> list[str]:
    """Non-trivial lines of the hidden-test and solution regions of a source notebook.

    A line that students can read elsewhere in the source anyway (e.g. a call quoted in the
    text of a markdown cell) is not a secret, and is left out.
    """
    nb = json.loads(source_nb.read_text(encoding="utf-8"))
    lines: list[str] = []
    visible: list[str] = []
    for cell in nb["cells"]:
        inside = False
        for line in "".join(cell["source"]).splitlines():
            if "BEGIN HIDDEN TESTS" in line or "BEGIN SOLUTION" in line:
                inside = True
                continue
            if "END HIDDEN TESTS" in line or "END SOLUTION" in line:
                inside = False
                continue
            stripped = line.strip()
            if not inside:
                visible.append(line)
            elif len(stripped) > 12 and not stripped.startswith("#"):
                lines.append(stripped)
    shown = "\n".join(visible)
    return [line for line in lines if line not in shown]


def audit_release(release_dir: Path, source_dir: Path | None = None) -> list[str]:
    """Problems found in a release folder (empty list: safe to publish)."""
    problems: list[str] = []
    for path in sorted(release_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(release_dir)
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{rel}: larger than nbgrader's 100 MB limit")
        if path.suffix != ".ipynb":
            continue
        text = path.read_text(encoding="utf-8")
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{rel}: contains '{marker}'")
        nb = json.loads(text)
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count")):
                problems.append(f"{rel}: cell {i} has outputs")
        if source_dir is not None and (source_dir / rel).exists():
            for line in hidden_lines(source_dir / rel):
                if line in text:
                    problems.append(f"{rel}: holds a hidden line of the source: {line[:60]!r}")
                    break
    return problems


def regenerate(names: list[str], workdir: Path) -> Path:
    """Run ``nbgrader generate_assignment`` for ``names`` in a scratch course; its release dir."""
    course = pipeline.make_course(workdir / "course", names)
    for name in names:
        pipeline.generate(course, name)
    return course / "release"


def diff_trees(a: Path, b: Path) -> list[str]:
    """Files that differ between two release trees (relative paths)."""
    out: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: Path) -> None:
        out.extend(str(prefix / n) + " (only in new)" for n in cmp.left_only)
        out.extend(str(prefix / n) + " (removed)" for n in cmp.right_only)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        out.extend(str(prefix / n) + " (changed)" for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, prefix / name)

    if b.exists():
        walk(filecmp.dircmp(a, b, ignore=[".ipynb_checkpoints", "__pycache__"]), Path())
    else:
        out.append(f"{b.name} (new)")
    return out


#: Stands in for ``solutions`` in the audit's kernel, as on a student's machine.
_SHADOW_SOLUTIONS = (
    "raise ImportError('solutions/ is staff-only and absent from student installs: '\n"
    "                  'a release notebook and its visible checks must not need it')\n"
)


def execute_release(release_dir: Path, timeout: int = 300) -> list[str]:
    """Run each release notebook as a student would start it; the problems found.

    Each notebook runs in a fresh ``python3`` kernel, in a scratch copy of the release folder
    (the kernel's working directory), with a stand-in ``solutions`` package that cannot be
    imported. Expected: ``NotImplementedError`` from the stubs (also in example cells that call
    them), graded cells without error nor stderr and scoring exactly 0.
    """
    import nbformat
    from nbclient import NotebookClient

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="course-release-exec-") as tmp:
        shadow = Path(tmp) / "shadow" / "solutions"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text(_SHADOW_SOLUTIONS, encoding="utf-8")
        work = Path(tmp) / "student"
        shutil.copytree(release_dir, work)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow.parent), env.get("PYTHONPATH")]))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for path in sorted(work.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            rel = path.relative_to(work)
            nb = nbformat.read(str(path), as_version=4)
            client = NotebookClient(
                nb,
                timeout=timeout,
                interrupt_on_timeout=True,
                allow_errors=True,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            try:
                client.execute(env=env, stderr=subprocess.DEVNULL)
            except Exception as exc:  # noqa: BLE001 - a dead kernel is an audit finding
                problems.append(f"{rel}: execution stopped ({type(exc).__name__}: {str(exc).strip()[:120]})")
                continue
            problems += _execution_problems(rel, nb)
    return problems


def _execution_problems(rel: Path, nb) -> list[str]:
    problems: list[str] = []
    stub_seen = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        where = f"{rel}: cell {i} ({meta.get('grade_id', 'no grade_id')})"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if meta.get("grade"):
            for o in errors:
                problems.append(f"{where}: graded cell raises {o.ename}: {o.evalue}"[:200])
            if any(o.output_type == "stream" and o.name == "stderr" and o.text.strip() for o in cell.outputs):
                problems.append(f"{where}: graded cell writes to stderr (nbgrader would score it 0)")
            results = [o for o in cell.outputs if o.output_type == "execute_result"]
            text = results[0].data.get("text/plain", "") if results else ""
            if not errors and text.strip() not in ("0", "0.0"):
                problems.append(f"{where}: an untouched notebook must score 0 here, got {text.strip()[:40] or 'no result'!r}")
        else:
            for o in errors:
                if o.ename == "NotImplementedError":
                    continue
                hint = ""
                if stub_seen and o.ename == "NameError":
                    hint = " (a value a stub above never produced? the cell must run on an untouched notebook)"
                problems.append(f"{where}: raises {o.ename}: {o.evalue}"[:200] + hint)
        stub_seen = stub_seen or any(o.ename == "NotImplementedError" for o in errors)
    return problems


def _cells_by_id(nb: dict) -> dict[str, dict]:
    out = {}
    for i, cell in enumerate(nb.get("cells", [])):
        key = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"{cell.get('cell_type')} cell {i}"
        out[key] = cell
    return out


def describe_changes(new: Path, old: Path) -> list[str]:
    """What changed from the release ``old`` to ``new``, in words, notebook cell by cell."""
    if not old.exists():
        return [f"new assignment: {', '.join(sorted(p.name for p in new.rglob('*') if p.is_file())) or 'empty'}"]
    lines: list[str] = []
    for entry in diff_trees(new, old):
        name, _, status = entry.rpartition(" (")
        status = status.rstrip(")")
        if not name.endswith(".ipynb") or status != "changed":
            lines.append(f"{name}: {'added' if status == 'only in new' else status}")
            continue
        a = json.loads((old / name).read_text(encoding="utf-8"))
        b = json.loads((new / name).read_text(encoding="utf-8"))
        ca, cb = _cells_by_id(a), _cells_by_id(b)
        details = []
        for key in cb:
            if key not in ca:
                details.append(f"+{key}")
        for key in ca:
            if key not in cb:
                details.append(f"-{key}")
        for key in cb:
            if key in ca and "".join(ca[key].get("source", "")) != "".join(cb[key].get("source", "")):
                details.append(f"~{key}")
        pa = sum(float(c.get("metadata", {}).get("nbgrader", {}).get("points", 0) or 0) for c in ca.values())
        pb = sum(float(c.get("metadata", {}).get("nbgrader", {}).get("points", 0) or 0) for c in cb.values())
        points = f"; points {pa:g} → {pb:g}" if pa != pb else ""
        lines.append(f"{name}: {' '.join(details) or 'metadata only'}{points}")
    return lines


def release_to_exchange(name: str, exchange_root: Path | None = None, course: Path = pipeline.COURSE_ROOT) -> str:
    """``nbgrader release_assignment NAME --force`` from ``course``; where it was released."""
    args = ["release_assignment", name, "--force"]
    if exchange_root is not None:
        args.append(f"--Exchange.root={exchange_root}")
    proc = pipeline.nbgrader(course, *args, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"nbgrader release_assignment {name} failed: {tail[0]}")
    dest = [ln.split("Destination:", 1)[1].strip() for ln in (proc.stdout + proc.stderr).splitlines() if "Destination:" in ln]
    return dest[-1] if dest else "the exchange"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("modules", nargs="*", help="assignment ids (e.g. m3-fundamentals)")
    parser.add_argument("--all", action="store_true", help="every assignment in source/")
    parser.add_argument("--check", action="store_true", help="only compare with the committed release/, write nothing")
    parser.add_argument("--no-execute", action="store_true", help="skip running the release notebooks (faster audit)")
    parser.add_argument("--exchange", action="store_true",
                        help="after the audit, release to nbgrader's exchange (nbgrader release_assignment)")
    parser.add_argument("--exchange-root", type=Path, default=None,
                        help="exchange folder (default: nbgrader's Exchange.root, /srv/nbgrader/exchange)")
    parser.add_argument("--quiet", action="store_true", help="print only problems and the final status per module")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    known = assignments()
    names = known if args.all else list(args.modules)
    if not names:
        raise UsageError("name a module (e.g. m3-fundamentals) or use --all")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if args.check and args.exchange:
        raise UsageError("--check writes nothing: it cannot be combined with --exchange")
    if args.exchange_root is not None and not args.exchange:
        raise UsageError("--exchange-root needs --exchange")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    status = 0
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        say(f"[1/3] nbgrader generate_assignment {' '.join(names)} (scratch course) …")
        fresh = regenerate(names, Path(tmp))
        for name in names:
            problems = audit_release(fresh / name, pipeline.COURSE_ROOT / "source" / name)
            if not problems and not args.no_execute:
                say(f"[2/3] {name}: running each release notebook as a student would …")
                problems = execute_release(fresh / name)
            changes = describe_changes(fresh / name, pipeline.COURSE_ROOT / "release" / name)
            if problems:
                status = 1
                print(f"{name}: AUDIT FAILED, release not written")
                for p in problems:
                    print(f"  - {p}")
                continue
            if args.check:
                if changes:
                    status = 1
                print(f"{name}: {'up to date' if not changes else 'OUT OF DATE'}")
                for line in changes:
                    print(f"  {line}")
                continue
            target = pipeline.COURSE_ROOT / "release" / name
            staging = target.with_name(f".{name}.new")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(fresh / name, staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)  # all or nothing: never a half-written release
            print(f"{name}: audited, {'unchanged since the last release' if not changes else 'changed since the last release:'}")
            for line in changes:
                print(f"  {line}")
            if args.exchange:
                say(f"[3/3] {name}: nbgrader release_assignment …")
                try:
                    where = release_to_exchange(name, args.exchange_root)
                except RuntimeError as exc:
                    print(f"{name}: {exc}")
                    status = 1
                    continue
                print(f"{name}: released to {where}")
    return status
