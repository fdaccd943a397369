"""One-command setup: ``python3 -m autograder.bootstrap demo|test|shell [ARGS...]``.

Standard library only, so it runs on a fresh machine with nothing but Python 3.11:

1. creates (or reuses) a virtual environment — ``$COURSE_VENV``, else
   ``~/.cache/cnn-course/venv-py3.11-<checkout digest>`` (one per checkout: the environment
   points at its checkout, so two clones must not share one) — and installs the course with its staff and test
   dependencies, every package pinned by ``constraints.txt`` (pyproject.toml declares the
   student install's ranges); later runs skip pip while pyproject.toml, constraints.txt, the
   checkout and the interpreter are those of the last successful install (an install stamp in
   the environment; ``COURSE_REINSTALL=1`` forces pip);
2. puts the course root on that environment's ``sys.path`` (a ``.pth`` file) so that the
   reference ``solutions`` package is importable for grading, while the wheel never ships it;
3. fetches Fashion-MNIST offline (``course data``);
4. runs ``course demo`` (``demo``), the test suite (``test``: the default suite as CI runs it,
   ``test --slow`` the slow one, ``test ARGS`` pytest with ARGS) or any command inside the
   environment (``shell CMD...``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The staff environment's pins (every package, transitive ones included): pip installs with it.
CONSTRAINTS = ROOT / "constraints.txt"
#: One environment per checkout: its .pth files point at this checkout's `autograder` and
#: `solutions`, so a clone elsewhere (CI's clean clone) must not re-point a shared one.
DEFAULT_VENV = (
    Path.home() / ".cache" / "cnn-course"
    / f"venv-py{sys.version_info[0]}.{sys.version_info[1]}-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}"
)


def log(msg: str) -> None:
    print(f"[bootstrap] {msg}", flush=True)


def venv_dir() -> Path:
    return Path(os.environ.get("COURSE_VENV", DEFAULT_VENV)).expanduser()


#: Written in each default environment: the checkout it serves.
CHECKOUT_MARK = "cnn-course-checkout.txt"


def ensure_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        log(f"creating virtual environment {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    if path == DEFAULT_VENV:
        (path / CHECKOUT_MARK).write_text(f"{ROOT}\n")
    return python


def remove_orphan_venvs() -> None:
    """Remove default environments whose checkout is gone (each holds ~8 GB of frameworks).

    Environments created by an older bootstrap (no mark) are recognised by the course root
    their ``cnn-course-root.pth`` points at.
    """
    import shutil

    for path in DEFAULT_VENV.parent.glob("venv-py*"):
        if path == DEFAULT_VENV or not (path / "bin" / "python").exists():
            continue
        marks = [path / CHECKOUT_MARK, *path.glob("lib/python*/site-packages/cnn-course-root.pth")]
        checkouts = [m.read_text().strip() for m in marks if m.is_file()]
        if checkouts and not any((Path(c) / "autograder" / "bootstrap.py").is_file() for c in checkouts):
            log(f"removing {path}: its checkout {checkouts[0]} is gone")
            shutil.rmtree(path, ignore_errors=True)


#: Written in the environment after a successful install: what it was installed from.
INSTALL_STAMP = "cnn-course-install.txt"


def install_digest(python: Path) -> str:
    """What an install depends on: pyproject.toml, constraints.txt, the checkout and the interpreter."""
    h = hashlib.sha256()
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(b"\0" + CONSTRAINTS.read_bytes())
    h.update(f"\0{ROOT}\0{python.resolve()}\0{sys.version}".encode())
    return h.hexdigest()


def _stamp(python: Path) -> Path:
    return python.parent.parent / INSTALL_STAMP


def install_needed(python: Path) -> bool:
    """False when the environment holds a stamp of an install from this very set-up."""
    if os.environ.get("COURSE_REINSTALL") == "1":
        return True
    try:
        return _stamp(python).read_text().strip() != install_digest(python)
    except OSError:
        return True


def install(python: Path) -> None:
    if not install_needed(python):
        return
    stamp = _stamp(python)
    stamp.unlink(missing_ok=True)  # a failed or interrupted install must be redone next time
    log("installing the course and its pinned dependencies (first run: several minutes)")
    quiet = [] if os.environ.get("COURSE_VERBOSE") else ["-q"]
    subprocess.run([python, "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", *quiet, "--disable-pip-version-check", *pip_install_args()],
        check=True,
        cwd=ROOT,
    )
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(purelib) / "cnn-course-root.pth").write_text(f"{ROOT}\n")
    stamp.write_text(install_digest(python) + "\n")


def pip_install_args() -> list[str]:
    """What the bootstrap asks pip for: the course in development mode, within the staff pins."""
    return ["-c", str(CONSTRAINTS), "-e", f"{ROOT}[dev]"]


def ensure_system_tools() -> None:
    """Grading kernels run in bubblewrap: install it when we can (root on Debian/Ubuntu)."""
    import shutil

    if shutil.which("bwrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing bubblewrap (sandbox for grading kernels)")
        if not list(Path("/var/lib/apt/lists").glob("*_Packages*")):
            subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "bubblewrap"], check=False,
                       stdout=subprocess.DEVNULL)
    if not shutil.which("bwrap"):
        log("bubblewrap is not installed: grading kernels cannot be sandboxed here; the demo and "
            "the tests will grade WITHOUT the sandbox (COURSE_UNSAFE=1). Install it with your "
            "package manager (Debian/Ubuntu: apt-get install bubblewrap).")
        os.environ["COURSE_UNSAFE"] = "1"


def run_in_env(python: Path, argv: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return subprocess.run(argv, env=env, cwd=ROOT).returncode


#: ``test`` with no pytest arguments runs what CI runs first: the default suite (everything but
#: ``slow``), one test file per worker (grading is CPU-bound; a file's nbgrader runs stay together).
#: ``test --slow`` runs the slow suite the same way. Any other arguments go to pytest as they are.
SUITES = {
    "": ["-m", "not slow"],
    "--slow": ["-m", "slow"],
}


def pytest_args(rest: list[str], cores: int | None = None) -> list[str]:
    """pytest's arguments for ``bootstrap test REST``: a suite on every core (at most 4), or REST."""
    key = rest[0] if rest else ""
    if key not in SUITES or len(rest) > 1:
        return rest
    workers = max(1, min(4, cores if cores is not None else len(os.sched_getaffinity(0))))
    return [*SUITES[key], "-n", str(workers), "--dist", "loadfile", "-p", "no:cacheprovider"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("demo", "test", "shell", "setup"):
        print(__doc__)
        return 2
    if sys.version_info[:2] != (3, 11):
        log(f"Python 3.11 is required (this is {sysconfig.get_python_version()}); run it with python3.11")
        return 2
    action, rest = argv[0], argv[1:]
    python = ensure_venv(venv_dir())
    remove_orphan_venvs()
    install(python)
    ensure_system_tools()
    bindir = python.parent
    if run_in_env(python, [str(bindir / "course"), "data"]) != 0:
        return 1
    if action == "setup":
        return 0
    if action == "demo":
        return run_in_env(python, [str(bindir / "course"), "demo", *rest])
    if action == "test":
        return run_in_env(python, [str(python), "-m", "pytest", *pytest_args(rest)])
    return run_in_env(python, rest)


if __name__ == "__main__":
    raise SystemExit(main())
