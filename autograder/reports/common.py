"""Helpers shared by the staff commands: course folders, progress lines, all-or-nothing writes.

Every command that writes files builds them in a hidden sibling folder first and moves them
into place with ``os.replace`` at the end, so an interrupted or failed run never leaves a
half-written feedback, report or export behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def usage_error(message: str) -> Exception:
    """The CLI's one-line error (imported lazily: the CLI imports the commands)."""
    from autograder.cli import UsageError

    return UsageError(message)


def course_folder(path: Path) -> Path:
    """``path`` resolved, checked to be an nbgrader course folder (it holds nbgrader_config.py)."""
    course = Path(path).expanduser().resolve()
    if not course.is_dir():
        raise usage_error(f"course folder {course} does not exist")
    if not (course / "nbgrader_config.py").is_file():
        raise usage_error(f"{course} is not a course folder (no nbgrader_config.py)")
    return course


def load_course_config(course: Path):
    """The course's ``nbgrader_config.py`` as a traitlets Config, root pinned to ``course``."""
    from traitlets.config.loader import PyFileConfigLoader

    # The config file sets environment variables for nbgrader's grading kernels: none of them
    # concerns the reading commands, so the environment is restored exactly afterwards.
    saved = dict(os.environ)
    os.environ["COURSE_ROOT"] = str(course)
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    config.CourseDirectory.root = str(course)
    return config


def db_url(course: Path) -> str:
    """The gradebook URL nbgrader uses for ``course``; a missing SQLite file is a usage error.

    Opening nbgrader's ``Gradebook`` on a missing SQLite file would create an empty one: the
    commands that only read grades check first, so they never write into a course by accident.
    """
    from nbgrader.coursedir import CourseDirectory

    url = CourseDirectory(config=load_course_config(course)).db_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise usage_error(f"no gradebook at {path}: run `nbgrader generate_assignment` and autograde first")
    return url


def fr_number(x: float | int | None, digits: int = 2) -> str:
    """A number as the French read it: decimal comma, no trailing zeros (« 2,25 », « 3 »); « — » for None."""
    if x is None:
        return "—"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    text = f"{float(x):.{digits}f}".rstrip("0").rstrip(".")
    return ("0" if text in ("-0", "") else text).replace(".", ",")


def fr_percent(fraction: float | None) -> str:
    """A share as a French percentage, « 83 % » (no-break space before the sign); « — » for None."""
    return "—" if fraction is None else f"{round(100 * fraction)}\u00a0%"


def printer(quiet: bool) -> Callable[..., None]:
    """``print`` to stdout (flushed) unless ``quiet``: progress lines of long commands."""
    if quiet:
        return lambda *args, **kwargs: None
    return lambda *args, **kwargs: print(*args, **kwargs, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


#: Modes of what the staff commands write: the course group (the teaching team) reads it all.
SHARED_DIR_MODE = 0o755
SHARED_FILE_MODE = 0o644


def share_tree(root: Path) -> None:
    """Make ``root`` and everything under it readable by the group and others (0755 / 0644).

    ``tempfile.mkdtemp`` creates its folder 0700 and ``mkstemp`` its files 0600 whatever the
    umask: a report staged there would be readable by its author only once moved into place.
    """
    os.chmod(root, SHARED_DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), SHARED_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(folder, name), SHARED_FILE_MODE)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``target`` (a folder) only on success.

    What ends in ``target`` is readable by the course group (:func:`share_tree`), and so is
    its parent folder when this creates it (``reports/``).
    """
    if not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(target.parent, SHARED_DIR_MODE)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        share_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_dir(staging, target)


def replace_dir(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``, replacing it; the old folder is removed only afterwards."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_files(*targets: Path) -> Iterator[list[Path]]:
    """Yield temporary paths, one per target; all are renamed onto their targets on success."""
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            temps.append(Path(name))
        yield temps
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in zip(temps, targets, strict=True):
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, target)
