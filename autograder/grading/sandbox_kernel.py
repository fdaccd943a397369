"""The sandboxed grading kernel: an IPython kernel inside bubblewrap, with resource limits.

Started by jupyter_client from the ``course-sandbox`` kernelspec (``autograder/grading/kernels``,
put on ``JUPYTER_PATH`` by nbgrader_config.py) as
``python -m autograder.grading.sandbox_kernel -f CONNECTION_FILE``, in the folder of the notebook
being graded. Stage one (this process, outside) applies limits and ``exec``s bubblewrap; stage
two (``--inside``) snapshots the pristine state for :mod:`autograder.grading.guard` and runs the
kernel. What the kernel gets:

- **no network**: a fresh network namespace (only a loopback); the client talks to it over Unix
  sockets (``c.KernelManager.transport = "ipc"``), whose folder is bound into the sandbox;
- **files**: the whole system read-only; the notebook's folder (its private working copy) and a
  private ``/tmp`` writable; the course root (gradebook, sources, releases, every other
  submission), the repository's ``source/``/``release/`` and nbgrader's exchange hidden under
  empty tmpfs; the ``autograder`` package bound back read-only, and ``solutions`` as
  bytecode only (:func:`sourceless_copy`: hidden checks import it, no student can print its
  source into an output that the feedback would show);
- **no privileges**: a user namespace with every capability dropped, its own PID namespace
  (it cannot see or signal grader processes), ``--die-with-parent``;
- **limits**: CPU time, address space, file size, open files, no core dumps, processes (a pids
  cgroup when the host allows it, as RLIMIT_NPROC does not apply to root), memory (a memory
  cgroup when available).

Environment: ``COURSE_UNSAFE=1`` runs the kernel without bubblewrap (limits and guard still
apply) — only for hosts that cannot sandbox, after an explicit decision (``course grade
--unsafe``). Limits: ``COURSE_SANDBOX_MEMORY`` (bytes, default 6 GiB), ``COURSE_SANDBOX_CPU``
(CPU seconds for the whole kernel, default 1800), ``COURSE_SANDBOX_PIDS`` (default 256).
GPU: ``COURSE_SANDBOX_GPU=1`` binds the host's NVIDIA device nodes (:func:`gpu_devices`) into the
sandbox, so that a grader with a GPU runs the training notebooks on CUDA; off by default (the
kernel's ``/dev`` is bubblewrap's minimal one).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

GiB = 1 << 30
DEFAULTS = {"memory": 6 * GiB, "cpu": 1800, "pids": 256, "fsize": 512 << 20, "nofile": 4096}
CGROUP_PREFIX = "course-sandbox-"


class SandboxUnavailable(RuntimeError):
    """The host cannot sandbox kernels (no usable bubblewrap)."""


def limits() -> dict[str, int]:
    env = {"memory": "COURSE_SANDBOX_MEMORY", "cpu": "COURSE_SANDBOX_CPU", "pids": "COURSE_SANDBOX_PIDS"}
    out = dict(DEFAULTS)
    for key, var in env.items():
        if os.environ.get(var):
            out[key] = int(os.environ[var])
    return out


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


_PROBED: dict[str, object] | None = None


def probe() -> dict[str, object]:
    """What this host offers (used by `course doctor` and to refuse unsafe grading).

    A host that sandboxes stays able to: a positive answer is kept for the life of the process
    (a grading worker loads the config, hence probes, once per submission).
    """
    global _PROBED
    if _PROBED is not None:
        return dict(_PROBED)
    found = _probe()
    if found["works"]:
        _PROBED = found
    return dict(found)


def _probe() -> dict[str, object]:
    bwrap = bwrap_path()
    works = False
    reason = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if bwrap:
        proc = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--unshare-user", "--die-with-parent", "true"],
            capture_output=True, text=True,
        )
        works = proc.returncode == 0
        reason = "" if works else f"bwrap cannot create namespaces here: {proc.stderr.strip()[:200]}"
    return {
        "bwrap": bwrap,
        "works": works,
        "reason": reason,
        "cgroup_pids": _cgroup_root("pids") is not None,
        "cgroup_memory": _cgroup_root("memory") is not None,
    }


def _cgroup_root(controller: str) -> Path | None:
    """A writable cgroup v1 hierarchy for ``controller`` (v2 is used when delegated to us)."""
    v1 = Path("/sys/fs/cgroup") / controller
    if v1.is_dir() and os.access(v1, os.W_OK) and (v1 / "cgroup.procs").exists():
        return v1
    v2 = Path("/sys/fs/cgroup")
    controllers = v2 / "cgroup.controllers"
    if controllers.exists() and controller in controllers.read_text().split() and os.access(v2, os.W_OK):
        return v2
    return None


def _join_cgroups(lim: dict[str, int]) -> None:
    """Put this process (and so the kernel) in fresh pids/memory cgroups, when allowed."""
    for controller, files in (
        ("pids", {"pids.max": str(lim["pids"])}),
        ("memory", {"memory.limit_in_bytes": str(lim["memory"]), "memory.max": str(lim["memory"])}),
    ):
        root = _cgroup_root(controller)
        if root is None:
            continue
        for stale in root.glob(CGROUP_PREFIX + "*"):
            try:
                stale.rmdir()  # only succeeds for empty groups of finished kernels
            except OSError:
                pass
        group = root / f"{CGROUP_PREFIX}{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            for name, value in files.items():
                if (group / name).exists():
                    (group / name).write_text(value)
            (group / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            continue


def _set_rlimits(lim: dict[str, int], *, address_space: bool) -> None:
    def cap(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_CPU, lim["cpu"])
    cap(resource.RLIMIT_FSIZE, lim["fsize"])
    cap(resource.RLIMIT_NOFILE, lim["nofile"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NPROC, lim["pids"] * 4)  # effective for non-root users
    if address_space:
        # Without a memory cgroup: cap the address space (frameworks need a few GiB to import).
        cap(resource.RLIMIT_AS, max(lim["memory"], 4 * GiB) + 2 * GiB)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def sweep_stale_private_folders(prefix: str = "course-ipc-") -> None:
    """Remove the temporary folders ``<prefix><pid>-*`` whose grading process is dead.

    A grading process removes its private folders (IPC sockets and kernel working folders:
    ``course-ipc-``; a worker's private course copy: ``course-grade-``) when it ends; one that
    was killed (``kill -9``, out of memory) cannot.
    """
    import re
    import tempfile

    pattern = re.compile(rf"{re.escape(prefix)}(\d+)-")
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        m = pattern.match(path.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def sourceless_copy(package: Path) -> Path:
    """A bytecode-only copy of ``package`` (``name.pyc`` beside no ``name.py``), cached.

    Python imports such a package (its sourceless loader), so the hidden checks work, but
    ``inspect.getsource`` and ``open(...)`` find no source: a submission cannot print the reference
    solutions into its outputs. Docstrings are stripped too (``optimize=2``; the solutions hold no
    ``assert``). The copy lives in a folder private to this user, keyed by the sources' digest,
    and is built once (atomic rename: concurrent workers may race).
    """
    import hashlib
    import py_compile
    import tempfile

    sources = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    base = Path(tempfile.gettempdir()) / f"course-sourceless-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    target = base / f"{package.name}-{digest.hexdigest()[:16]}-py{sys.version_info[0]}{sys.version_info[1]}"
    if target.is_dir():
        return target
    building = Path(tempfile.mkdtemp(prefix="building-", dir=base))
    for path in sources:
        rel = path.relative_to(package)
        out = building / rel.with_suffix(".pyc")
        out.parent.mkdir(parents=True, exist_ok=True)
        py_compile.compile(str(path), cfile=str(out), dfile=f"<{package.name}/{rel.as_posix()}>", doraise=True, optimize=2)
    try:
        building.rename(target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(building, ignore_errors=True)
    return target


#: Device nodes a CUDA program opens (the driver's control and memory devices, one per GPU).
GPU_DEVICE_GLOBS = ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                    "/dev/nvidia-modeset", "/dev/nvidia-caps")


def gpu_devices() -> list[str]:
    """The host's NVIDIA device nodes (empty on a machine without an NVIDIA driver)."""
    import glob

    return sorted({path for pattern in GPU_DEVICE_GLOBS for path in glob.glob(pattern)})


def gpu_enabled() -> bool:
    """Whether grading kernels get the GPU (``COURSE_SANDBOX_GPU=1``)."""
    return os.environ.get("COURSE_SANDBOX_GPU", "0") == "1"


def _torch_home() -> str:
    """PyTorch's hub folder as seen outside the sandbox (torch.hub's own default rule)."""
    if os.environ.get("TORCH_HOME"):
        return os.environ["TORCH_HOME"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "torch")


def bwrap_command(workdir: Path, connection_file: Path, inner: list[str]) -> list[str]:
    """The bubblewrap command line that runs ``inner`` in the sandbox."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    cmd = [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
        "--die-with-parent",
        "--setenv", "HOME", os.environ.get("HOME", "/tmp"),
        "--setenv", "COURSE_SANDBOXED", "1",
        # Home is read-only: caches of matplotlib and IPython go to the private /tmp.
        "--setenv", "MPLCONFIGDIR", "/tmp/.matplotlib",
        "--setenv", "IPYTHONDIR", "/tmp/.ipython",
        # So do the XDG cache and config folders. Fontconfig (under matplotlib) writes its cache
        # there when the system's is older than the fonts (fonts installed since the last
        # fc-cache); with none writable it prints "Fontconfig error: No writable cache
        # directories" on the kernel's stderr, which shows in every feedback page and zeroes a
        # test cell that draws.
        "--setenv", "XDG_CACHE_HOME", "/tmp/.cache",
        "--setenv", "XDG_CONFIG_HOME", "/tmp/.config",
        # PyTorch's hub folder derives from XDG_CACHE_HOME: keep it where the host has it
        # (weights installed for the course stay found, read-only).
        "--setenv", "TORCH_HOME", _torch_home(),
    ]
    hidden: list[Path] = []
    packages = [p for p in (_package_dir("autograder"), _package_dir("solutions")) if p is not None]
    for var in ("COURSE_ROOT",):
        if os.environ.get(var):
            hidden.append(Path(os.environ[var]).resolve())
    repo = packages[0].parent if packages else None
    if repo is not None:
        hidden.append(repo)
    # The temporary folder holds other gradings' private course copies (`course grade`): when it
    # is not /tmp (TMPDIR), hide it too (this kernel's own folders are bound back below).
    import tempfile

    if Path(tempfile.gettempdir()).resolve() != Path("/tmp"):
        hidden.append(Path(tempfile.gettempdir()).resolve())
    exchange = Path(os.environ.get("COURSE_EXCHANGE_ROOT", "/srv/nbgrader/exchange"))
    if exchange.exists():
        hidden.append(exchange.resolve())
    for path in dict.fromkeys(hidden):
        cmd += ["--tmpfs", str(path)]
    # Bring back, read-only, what lives below a hidden folder and the kernel needs.
    needed = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    for path in needed:
        if any(h == path or h in path.parents for h in hidden):
            cmd += ["--ro-bind", str(path), str(path)]
    for pkg in packages:
        shown = sourceless_copy(pkg) if pkg.name == "solutions" else pkg
        cmd += ["--ro-bind", str(shown), str(pkg)]
    # The private working copy, writable; the IPC socket folder, writable.
    cmd += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    sockets = _ipc_dir(connection_file)
    if sockets is not None:
        if sockets in (Path("/tmp"), Path("/"), Path.home()) or len(sockets.parts) < 3:
            raise SandboxUnavailable(f"refusing to share {sockets} with the kernel: set c.KernelManager.ip to a private folder")
        cmd += ["--bind", str(sockets), str(sockets)]
    # Keras falls back to /tmp/.keras when its home is read-only: show it the data sets there.
    keras_datasets = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    if keras_datasets.is_dir():
        cmd += ["--ro-bind", str(keras_datasets), "/tmp/.keras/datasets"]
    cmd += ["--ro-bind", str(connection_file), str(connection_file)]
    if gpu_enabled():
        for device in gpu_devices():
            cmd += ["--dev-bind", device, device]
    return [*cmd, "--", *inner]


def _ipc_dir(connection_file: Path) -> Path | None:
    try:
        info = json.loads(connection_file.read_text())
    except (OSError, ValueError):
        return None
    if info.get("transport") != "ipc":
        return None
    ip = Path(info.get("ip", "kernel-ipc"))
    if not ip.is_absolute():
        ip = Path.cwd() / ip
    folder = ip.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The folder is shared by the kernels one grading process starts in turn: empty it so that
    # nothing a previous (student's) kernel left there reaches the next one.
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return folder.resolve()


def die_with_launcher() -> None:
    """Die (SIGKILL) with the grading process that launched this kernel, from now on.

    bwrap's ``--die-with-parent`` arms that only once bwrap runs, after this Python started:
    a grader killed in between (a ``course grade`` driver killed while a worker starts its next
    kernel ahead) would leave the sandbox orphaned, alive for good. Arm it here, then check the
    parent is still the launcher (``JPY_PARENT_PID``, set by jupyter_client): if it died before
    the signal was armed, this process was already adopted by another and exits now. The
    setting survives ``execv`` (bwrap is not set-user-ID here; when it is, it arms its own).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    launcher = os.environ.get("JPY_PARENT_PID", "")
    if launcher.isdigit() and os.getppid() != int(launcher):
        os._exit(1)


def outside(argv: list[str]) -> int:
    die_with_launcher()
    connection_file = Path(argv[argv.index("-f") + 1]).resolve()
    lim = limits()
    unsafe = os.environ.get("COURSE_UNSAFE") == "1"
    if os.geteuid() == 0:
        _join_cgroups(lim)
    _set_rlimits(lim, address_space=_cgroup_root("memory") is None or os.geteuid() != 0)
    inner = [sys.executable, "-m", "autograder.grading.sandbox_kernel", "--inside", "-f", str(connection_file)]
    if unsafe:
        os.execv(sys.executable, inner)
    cmd = bwrap_command(Path.cwd().resolve(), connection_file, inner)
    os.execv(cmd[0], cmd)
    return 1  # not reached


def inside(argv: list[str]) -> int:
    # The client's PID is invisible from the kernel's PID namespace: ipykernel would take its
    # parent for dead and exit. bwrap's --die-with-parent does that job instead.
    os.environ.pop("JPY_PARENT_PID", None)
    from ipykernel.kernelapp import IPKernelApp

    # No history database: it would keep every executed cell, hidden tests included, in a file
    # the student's code can read (the in-memory `In` is scrubbed by the guard).
    args = [a for a in argv if a != "--inside"] + ["--HistoryManager.enabled=False"]
    app = IPKernelApp.instance()
    app.initialize(args)
    # Libraries that parse sys.argv lazily (absl, under TensorFlow) must not see our flags.
    sys.argv = [sys.argv[0]]
    from autograder.grading import guard

    guard.install()
    app.start()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--inside" in argv:
        return inside(argv)
    return outside(argv)


if __name__ == "__main__":
    raise SystemExit(main())
