"""`course doctor`: versions, device, data, nbgrader config and sandbox capability, in one screen.

Nothing is fetched or changed: the data status comes from ``stat`` calls and the verification
marker, the nbgrader config is only read. Exit status 0 whatever is missing, since a student
install legitimately lacks parts (one framework, no nbgrader config); the last line sums up.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NOT_INSTALLED = "not installed"
# torch and torchvision before tensorflow: the reverse order can crash the process (see
# autograder.data.fashion_mnist.avoid_triton_crash).
PACKAGES = ("numpy", "torch", "torchvision", "tensorflow", "keras", "nbgrader")
SANDBOX_TOOLS = ("bwrap", "unshare", "prlimit", "setpriv")
COURSE_ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Only --quiet: the report is cheap enough to be complete every time."""
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-level stderr (TensorFlow's import logs) while importing frameworks."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def module_version(name: str) -> tuple[str, Any]:
    """Import ``name`` and return (version or "not installed"/"broken: ...", module or None)."""
    try:
        if name == "torchvision":
            from autograder.data.fashion_mnist import avoid_triton_crash

            avoid_triton_crash()
        with _quiet_stderr():
            module = importlib.import_module(name)
    except ImportError:
        return NOT_INSTALLED, None
    except Exception as exc:  # an install that imports badly is worth reporting, not crashing on
        return (
            f"broken ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            None,
        )
    version = getattr(module, "__version__", None)
    if not isinstance(version, str):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown version"
    return version, module


def device_line(torch: Any, tf: Any) -> str:
    """CPU cores, and the accelerator each installed framework sees."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    parts = []
    if torch is not None:
        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            parts.append(f"torch: CUDA ({torch.cuda.get_device_name(0)}, {n} device(s))")
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            parts.append("torch: MPS (Apple GPU)")
        else:
            parts.append("torch: CPU")
    if tf is not None:
        try:
            gpus = tf.config.list_physical_devices("GPU")
            parts.append(f"tensorflow: {len(gpus)} GPU(s)" if gpus else "tensorflow: CPU")
        except Exception as exc:
            parts.append(f"tensorflow: cannot list devices ({type(exc).__name__})")
    accel = "; ".join(parts) if parts else "no framework installed"
    return f"{cores} CPU core(s); {accel}"


def data_lines() -> tuple[list[str], bool]:
    """Fashion-MNIST state without fetching anything; returns (lines, ready)."""
    from autograder.data import fashion_mnist as fm

    st = fm.status()
    yes = {True: "installed", False: "not installed"}
    if st.cache_verified:
        head = f"verified {st.verified_at} from {st.origin} ({st.cache_dir})"
    else:
        head = f"not verified (no valid files in {st.cache_dir})"
    lines = [
        f"Fashion-MNIST: {head}",
        f"  for Keras:       {yes[st.keras_installed]} ({st.keras_dir})",
        f"  for torchvision: {yes[st.torchvision_installed]} ({st.torchvision_root})",
        f"  Debian package {fm.APT_PACKAGE}: {yes[st.debian_installed]} ({fm.DEBIAN_DIR})",
    ]
    if not st.ready:
        lines.append("  -> run `course data` to verify and install it (offline)")
    return lines, st.ready


def find_nbgrader_config() -> Path | None:
    """``nbgrader_config.py`` in the current folder, else in the course root."""
    for folder in (Path.cwd(), COURSE_ROOT):
        candidate = folder / "nbgrader_config.py"
        if candidate.is_file():
            return candidate
    return None


def read_nbgrader_config(path: Path) -> dict[str, Any]:
    """Load the config as nbgrader would (traitlets) and pick course_id and the cell timeout."""
    from traitlets.config.loader import PyFileConfigLoader

    saved = dict(os.environ)  # the course config sets environment defaults for the kernel
    try:
        with _quiet_stderr():
            cfg = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    course_id = cfg.CourseDirectory.get("course_id", "(unset)")
    timeout = cfg.Execute.get("timeout", cfg.ExecutePreprocessor.get("timeout"))
    return {"course_id": course_id, "timeout": timeout}


def sandbox_lines() -> tuple[list[str], bool]:
    """Which sandbox tools are on PATH, and whether an unprivileged user+net namespace works."""
    found = {tool: shutil.which(tool) for tool in SANDBOX_TOOLS}
    on_path = ", ".join(f"{t} ({p})" if p else f"{t} (missing)" for t, p in found.items())
    works = False
    if found["unshare"]:
        try:
            got = subprocess.run(
                [found["unshare"], "-Urn", "true"], capture_output=True, text=True, timeout=10
            )
            works = got.returncode == 0
            why = (
                "works"
                if works
                else f"fails ({(got.stderr.strip().splitlines() or ['exit ' + str(got.returncode)])[-1]})"
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"fails ({type(exc).__name__})"
    else:
        why = "not tried (unshare missing)"
    return [f"tools: {on_path}", f"`unshare -Urn true`: {why}"], works


def gpu_line() -> str:
    """Whether grading kernels can see a GPU: the host's NVIDIA devices and COURSE_SANDBOX_GPU."""
    from autograder.grading.sandbox_kernel import gpu_devices, gpu_enabled

    devices = gpu_devices()
    if not devices:
        return "GPU for grading kernels: none (no NVIDIA device node on this host)"
    if gpu_enabled():
        return f"GPU for grading kernels: yes ({len(devices)} NVIDIA device node(s) bound, COURSE_SANDBOX_GPU=1)"
    return (f"GPU for grading kernels: no ({len(devices)} NVIDIA device node(s) here, not bound: "
            "set COURSE_SANDBOX_GPU=1)")


def _row(label: str, *lines: str) -> None:
    print(f"{label:<17}" + ("\n" + " " * 17).join(lines))


def run(args: argparse.Namespace) -> int:
    quiet = bool(getattr(args, "quiet", False))
    # --quiet: every check still runs, only the summary line is printed.
    row = _row if not quiet else (lambda *a: None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    issues: list[str] = []
    if not quiet:
        print("course doctor")

    row("Python", f"{platform.python_version()} ({sys.executable})")
    modules: dict[str, Any] = {}
    for name in PACKAGES:
        version, modules[name] = module_version(name)
        row(name, version)
    if modules["torch"] is None and modules["tensorflow"] is None:
        issues.append("neither torch nor tensorflow is installed")
    if modules["nbgrader"] is None:
        issues.append("nbgrader not installed")

    row("Device", device_line(modules["torch"], modules["tensorflow"]))

    try:
        lines, ready = data_lines()
    except Exception as exc:
        lines, ready = [f"cannot check ({type(exc).__name__}: {exc})"], False
    row("Data", *lines)
    if not ready:
        issues.append("data not installed (run `course data`)")

    config = find_nbgrader_config()
    if config is None:
        row("nbgrader config", "none (no nbgrader_config.py here or in the course root)")
        issues.append("no nbgrader_config.py")
    else:
        try:
            info = read_nbgrader_config(config)
            timeout = info["timeout"] if info["timeout"] is not None else "30 (nbgrader default)"
            row(
                "nbgrader config",
                f"{config}: course_id={info['course_id']}, cell timeout={timeout} s",
            )
        except Exception as exc:
            row("nbgrader config", f"{config}: cannot load ({type(exc).__name__}: {exc})")
            issues.append("nbgrader config does not load")

    lines, sandboxed = sandbox_lines()
    row("Sandbox", *lines, gpu_line())
    if not sandboxed:
        issues.append("no unprivileged namespaces (`unshare -Urn` fails): kernels run unsandboxed")

    tracks = [
        t for t, m in (("pytorch", "torch"), ("tensorflow", "tensorflow")) if modules[m] is not None
    ]
    if issues:
        print(f"Summary: {len(issues)} issue(s): " + "; ".join(issues))
    else:
        print(
            f"Summary: all good (tracks: {', '.join(tracks)}; data ready; nbgrader config loaded; sandbox available)"
        )
    return 0
