"""One grading kernel started ahead: the next notebook's kernel boots while this one runs.

Starting a sandboxed kernel costs ~0.6 s (Python, ipykernel, the guard's snapshot), paid per
notebook. :class:`~autograder.grading.preprocessors.GuardedExecute` instead takes the kernel
started for it while the previous notebook ran, and launches the next one before running its
own cells: the launch itself is a process spawn (milliseconds); the kernel boots in its own
process, on a core the grading client leaves idle. Used by ``nbgrader autograde`` (one process
grades every submission) and by ``course grade`` workers (a worker lives across tasks).

A kernel started ahead cannot know which folder it will grade, so each kernel gets a fresh
private working folder (its cwd, the only writable place bubblewrap gives it) and a private IPC
socket folder, both under the grading process's private folder (mode 700). Before the notebook
runs, the files of its autograded folder (the notebook and the assignment's data files) are
copied into the working folder; what the kernel writes there is discarded with the folder.

Safety: a kernel started ahead holds nothing of any submission until it is handed one; each is
used for exactly one notebook, then killed and its folders removed. The environment it inherits
is the grading process's at launch (a ``course grade`` worker's is the same for every task but
for ``COURSE_ROOT``, whose private copies all live in the temporary folder the sandbox hides).
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import secrets
import shutil
import signal
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

from jupyter_core.utils import run_sync


def _sync(method: t.Callable, *args: t.Any, **kwargs: t.Any) -> t.Any:
    """Call a kernel manager method, async (AsyncKernelManager, as nbgrader uses) or not."""
    if inspect.iscoroutinefunction(method):
        return run_sync(method)(*args, **kwargs)
    return method(*args, **kwargs)


@dataclass
class Kernel:
    """A started kernel, its working folder and its IPC folder (removed with it)."""

    km: t.Any
    workdir: Path
    ipc: Path | None
    key: tuple

    def alive(self) -> bool:
        try:
            return bool(_sync(self.km.is_alive))
        except Exception:  # noqa: BLE001 - a broken manager is a dead kernel
            return False

    def discard(self) -> None:
        """Kill the kernel (no graceful shutdown: nothing to save) and remove its folders.

        The process is killed first and its end awaited (not reaped: jupyter_client still
        signals its group, which a zombie keeps reserved): ``shutdown_kernel`` then finds it
        dead at once, instead of polling it every 0.1 s until it is (~0.1 s per notebook).
        """
        self._kill_process()
        self._await_exit(timeout=2.0)
        with contextlib.suppress(Exception):
            _sync(self.km.shutdown_kernel, now=True)
        self._kill_process()
        for folder in (self.workdir, self.ipc):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _await_exit(self, timeout: float) -> None:
        """Wait until the kernel process has exited, leaving it for jupyter_client to reap."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or process.returncode is not None:
            return
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return
            except (OSError, AttributeError):  # not our child, or no waitid (not Linux)
                return
            time.sleep(0.002)

    def _kill_process(self) -> None:
        """SIGKILL the kernel's process group (bwrap and the sandbox), unless already reaped.

        A reaped process's pid (and group id) may name another process by now: never signal it.
        """
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        try:
            if process is None or process.poll() is not None:
                return
            pgid = getattr(provisioner, "pgid", None)
            if pgid and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            else:
                process.kill()
        except OSError:
            pass


_ahead: Kernel | None = None
#: How many more kernels may be started ahead; None: no limit (see :func:`limit_ahead`).
_budget: int | None = None


def _discard_at_exit() -> None:
    global _ahead
    if _ahead is not None:
        _ahead._kill_process()  # the event loop may be gone already: kill, then clean
        for folder in (_ahead.workdir, _ahead.ipc):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        _ahead = None


atexit.register(_discard_at_exit)


def _private_base(km: t.Any) -> Path:
    """The grading process's private folder: that of the configured IPC path, else a new one."""
    if getattr(km, "transport", "tcp") == "ipc" and os.path.isabs(str(km.ip)):
        base = Path(str(km.ip)).parent
    else:
        import tempfile

        base = Path(tempfile.gettempdir()) / f"course-kernels-{os.getpid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def launch(make_km: t.Callable[[], t.Any], extra_arguments: list[str], key: tuple) -> Kernel:
    """Spawn a kernel with its own working and IPC folders; returns without waiting for it."""
    km = make_km()
    base = _private_base(km)
    token = secrets.token_hex(6)
    workdir = base / f"work-{token}"
    workdir.mkdir(mode=0o700)
    ipc = None
    if getattr(km, "transport", "tcp") == "ipc":
        ipc = base / f"ipc-{token}"
        ipc.mkdir(mode=0o700)
        km.ip = str(ipc / "kernel")
    try:
        _sync(km.start_kernel, cwd=str(workdir), extra_arguments=list(extra_arguments))
    except BaseException:
        for folder in (workdir, ipc):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        raise
    return Kernel(km, workdir, ipc, key)


def launch_key(kernel_name: str, extra_arguments: list[str], manager_class: type) -> tuple:
    """What a kernel started ahead must share with the notebook it is handed to.

    The kernel inherits the grading process's environment at launch, and the sandbox reads its
    settings from there (``COURSE_UNSAFE``, limits, thread counts): a long-lived worker may run
    a ``course grade --unsafe`` and then a sandboxed one, so the environment is part of the key.
    ``COURSE_ROOT`` is not: it names each task's private copy, all of which the sandbox hides
    (they live in the temporary folder).
    """
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k != "COURSE_ROOT"))
    return (kernel_name, tuple(extra_arguments), manager_class, env)


def take(make_km: t.Callable[[], t.Any], extra_arguments: list[str], key: tuple) -> Kernel:
    """The kernel started ahead for ``key`` if alive, else a new one; then start the next."""
    global _ahead, _budget
    kernel, _ahead = _ahead, None
    if kernel is not None and (kernel.key != key or not kernel.alive()):
        kernel.discard()
        kernel = None
    if kernel is None:
        kernel = launch(make_km, extra_arguments, key)
    if _budget is None or _budget > 0:
        try:
            _ahead = launch(make_km, extra_arguments, key)
        except Exception:  # noqa: BLE001 - no kernel ahead: the next notebook starts its own
            _ahead = None
        else:
            if _budget is not None:
                _budget -= 1
    return kernel


def limit_ahead(count: int | None) -> None:
    """Start at most ``count`` more kernels ahead from now on (None: no limit).

    A ``course grade`` worker given its last submission of a run sets the number of notebooks
    left after the first one: a kernel started after the last notebook would never be used, and
    its boot (~0.6 CPU-s) would slow the submissions still running on the other cores. A wrong
    count costs time, never a grade: a notebook without a kernel ahead starts its own.
    """
    global _budget
    _budget = None if count is None else max(0, count)


@contextlib.contextmanager
def ahead_limit(count: int | None) -> t.Iterator[None]:
    """:func:`limit_ahead` for the duration of the block; no limit afterwards, whatever happens."""
    limit_ahead(count)
    try:
        yield
    finally:
        limit_ahead(None)


def discard_ahead() -> None:
    """Kill the kernel started ahead, if any (tests, end of a run)."""
    global _ahead
    if _ahead is not None:
        _ahead.discard()
        _ahead = None


def stage(source: Path, workdir: Path) -> None:
    """Copy the regular files below ``source`` (the autograded folder) into ``workdir``."""
    if not source.is_dir():
        return
    for path in source.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        target = workdir / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
