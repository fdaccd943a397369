"""`course release`: regenerate ``release/`` with nbgrader and audit it for leaks.

The audit is what an admin needs before publishing: no solution region, no hidden test, no
output, no file over nbgrader's size limit, and every release notebook identical to what
``nbgrader generate_assignment`` produces from ``source/``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import tempfile
from pathlib import Path

from autograder.grading import pipeline

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME")
MAX_FILE_BYTES = 100 * 1024 * 1024  # nbgrader's CourseDirectory.max_file_size default


def assignments(root: Path = pipeline.COURSE_ROOT) -> list[str]:
    return sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def hidden_lines(source_nb: Path) -> list[str]:
    """Non-trivial lines of the hidden-test and solution regions of a source notebook."""
    nb = json.loads(source_nb.read_text(encoding="utf-8"))
    lines: list[str] = []
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
            if inside and len(stripped) > 12 and not stripped.startswith("#"):
                lines.append(stripped)
    return lines


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("modules", nargs="*", help="assignment ids (e.g. m3-fundamentals)")
    parser.add_argument("--all", action="store_true", help="every assignment in source/")
    parser.add_argument("--check", action="store_true", help="only compare with the committed release/, write nothing")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    known = assignments()
    names = known if args.all else list(args.modules)
    if not names:
        raise UsageError("name a module (e.g. m3-fundamentals) or use --all")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(known)}")
    status = 0
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        fresh = regenerate(names, Path(tmp))
        for name in names:
            problems = audit_release(fresh / name, pipeline.COURSE_ROOT / "source" / name)
            changes = diff_trees(fresh / name, pipeline.COURSE_ROOT / "release" / name)
            if problems:
                status = 1
                print(f"{name}: AUDIT FAILED, release not written")
                for p in problems:
                    print(f"  - {p}")
                continue
            if args.check:
                if changes:
                    status = 1
                print(f"{name}: {'up to date' if not changes else 'OUT OF DATE: ' + ', '.join(changes)}")
                continue
            target = pipeline.COURSE_ROOT / "release" / name
            staging = target.with_name(f".{name}.new")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(fresh / name, staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)  # all or nothing: never a half-written release
            if not args.quiet:
                print(f"{name}: audited, {'unchanged' if not changes else 'changed: ' + ', '.join(changes)}")
    return status
