"""The kernel started ahead (autograder/grading/kernel_pool.py), with real ipykernel kernels.

End to end through nbgrader: every test_notebook_* and tests/test_hostile.py grade with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_client.manager import KernelManager

from autograder.grading import kernel_pool

KEY = ("python3", (), KernelManager)


def _km() -> KernelManager:
    return KernelManager(kernel_name="python3", transport="ipc", ip=str(_km.base / "kernel"))


def _cwd_of(kernel: kernel_pool.Kernel) -> str:
    kc = kernel.km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("", user_expressions={"cwd": "__import__('os').getcwd()"})
        while True:
            reply = kc.get_shell_msg(timeout=30)
            if reply["parent_header"]["msg_id"] == msg_id:
                return reply["content"]["user_expressions"]["cwd"]["data"]["text/plain"].strip("'")
    finally:
        kc.stop_channels()


def test_next_kernel_is_started_ahead_in_its_own_folders(tmp_path):
    _km.base = tmp_path / "private"
    first = kernel_pool.take(_km, [], KEY)
    try:
        ahead = kernel_pool._ahead
        assert ahead is not None and ahead is not first
        assert first.workdir != ahead.workdir and first.ipc != ahead.ipc
        assert first.workdir.parent == tmp_path / "private"
        assert oct(first.workdir.stat().st_mode & 0o777) == "0o700"
        assert _cwd_of(first) == str(first.workdir)
        first.discard()
        assert not first.workdir.exists() and not first.alive()
        second = kernel_pool.take(_km, [], KEY)
        assert second is ahead  # the one started while the first notebook ran
        assert _cwd_of(second) == str(second.workdir)
        second.discard()
    finally:
        first.discard()
        kernel_pool.discard_ahead()


def test_kernel_of_another_setting_or_dead_is_not_used(tmp_path):
    _km.base = tmp_path / "private"
    first = kernel_pool.take(_km, [], KEY)
    first.discard()
    ahead = kernel_pool._ahead
    other = kernel_pool.take(_km, ["--KernelApp.log_level=40"], ("python3", ("x",), KernelManager))
    try:
        assert other is not ahead and not ahead.alive() and not ahead.workdir.exists()
        nxt = kernel_pool._ahead
        os.kill(nxt.km.provisioner.pid, 9)
        nxt.km.provisioner.process.wait()
        replaced = kernel_pool.take(_km, ["--KernelApp.log_level=40"], ("python3", ("x",), KernelManager))
        assert replaced is not nxt
        replaced.discard()
    finally:
        other.discard()
        kernel_pool.discard_ahead()


def test_limit_ahead_counts_the_kernels_still_wanted(tmp_path):
    """A worker's last submission: kernels ahead for its own notebooks only, none after."""
    _km.base = tmp_path / "private"
    taken = []
    try:
        kernel_pool.limit_ahead(1)  # a last submission of 2 notebooks
        taken.append(kernel_pool.take(_km, [], KEY))
        ahead = kernel_pool._ahead
        assert ahead is not None  # for its second notebook
        taken.append(kernel_pool.take(_km, [], KEY))
        assert taken[-1] is ahead and kernel_pool._ahead is None  # none after its last notebook
        taken.append(kernel_pool.take(_km, [], KEY))  # a wrong count: still a kernel, started now
        assert taken[-1].alive() and kernel_pool._ahead is None
        kernel_pool.limit_ahead(0)
        taken.append(kernel_pool.take(_km, [], KEY))
        assert kernel_pool._ahead is None
        kernel_pool.limit_ahead(None)  # the next run: ahead again
        taken.append(kernel_pool.take(_km, [], KEY))
        assert kernel_pool._ahead is not None
    finally:
        kernel_pool.limit_ahead(None)
        for kernel in taken:
            kernel.discard()
        kernel_pool.discard_ahead()


def test_stage_copies_regular_files_only(tmp_path):
    src, dst = tmp_path / "autograded", tmp_path / "work"
    (src / "data").mkdir(parents=True)
    dst.mkdir()
    (src / "nb.ipynb").write_text("{}")
    (src / "data" / "x.csv").write_text("1,2")
    (src / "link").symlink_to("/etc/passwd")
    kernel_pool.stage(src, dst)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == ["data", "data/x.csv", "nb.ipynb"]
    assert not Path(dst / "link").exists()


def test_launch_key_follows_the_environment_but_not_the_course_root(monkeypatch):
    base = kernel_pool.launch_key("course-sandbox", [], KernelManager)
    monkeypatch.setenv("COURSE_ROOT", "/tmp/course-grade-1-other")
    assert kernel_pool.launch_key("course-sandbox", [], KernelManager) == base
    monkeypatch.setenv("COURSE_UNSAFE", "1")  # an --unsafe run must not hand its kernel on
    assert kernel_pool.launch_key("course-sandbox", [], KernelManager) != base


def test_private_folders_of_dead_graders_are_swept(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    from autograder.grading.sandbox_kernel import sweep_stale_private_folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"course-ipc-{dead.stdout.strip()}-ab12"
    mine = tmp_path / f"course-ipc-{os.getpid()}-cd34"
    alive = tmp_path / f"course-grade-{os.getppid()}-ef56"
    other = tmp_path / "course-ipc-notapid"
    for folder in (gone, mine, alive, other):
        folder.mkdir()
    sweep_stale_private_folders()
    sweep_stale_private_folders("course-grade-")
    assert not gone.exists() and mine.exists() and alive.exists() and other.exists()


def _processes_naming(needle: str) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(needle in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def test_sandbox_kernel_of_a_grader_killed_while_starting_it_does_not_survive(tmp_path):
    """A grader killed right after spawning a kernel (a ``course grade`` driver killed while a
    worker starts its next kernel ahead): the kernel must not outlive it, although bwrap's own
    ``--die-with-parent`` is armed only after its launcher already died."""
    import subprocess
    import sys
    import time

    import psutil
    from jupyter_client.connect import write_connection_file

    (tmp_path / "ipc").mkdir(mode=0o700)
    connection_file, _ = write_connection_file(
        str(tmp_path / "kernel-orphan-test.json"), transport="ipc", ip=str(tmp_path / "ipc" / "kernel")
    )
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-m', 'autograder.grading.sandbox_kernel', '-f', sys.argv[1]],"
        " env=dict(os.environ, JPY_PARENT_PID=str(os.getpid())), start_new_session=True, cwd=sys.argv[2],"
        " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"  # the grader dies before the kernel's Python has even started
    )
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-c", launcher, connection_file, str(workdir)], capture_output=True, text=True, env=env, check=True
    )
    kernel_pid = int(done.stdout.strip())
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (psutil.pid_exists(kernel_pid) or _processes_naming(connection_file)):
            time.sleep(0.1)
        survivors = [p.info["cmdline"][:3] for p in _processes_naming(connection_file)]
        assert not survivors, f"orphaned kernel processes: {survivors}"
    finally:
        for proc in _processes_naming(connection_file):
            proc.kill()


FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>/usr/share/fonts</dir>
  <cachedir>/var/cache/course-test-no-such-fontconfig-cache</cachedir>
  <cachedir prefix="xdg">fontconfig</cachedir>
</fontconfig>
"""

DRAW = """\
import os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.imshow([[0, 1], [1, 0]], cmap="gray")
ax.set_title("Filtre de Sobel : |∇I|")
fig.canvas.draw()
print(os.environ.get("COURSE_SANDBOXED"))
"""


def test_sandbox_kernel_drawing_a_figure_writes_nothing_to_stderr(tmp_path, monkeypatch):
    """matplotlib in the sandboxed kernel, on a host whose system font cache is stale (fonts
    installed after the last fc-cache; here a fontconfig file naming a cache folder that does
    not exist): fontconfig must write a cache, and finds the private /tmp writable. Without it,
    "Fontconfig error: No writable cache directories" reaches stderr: shown in every feedback
    page, and a test cell that draws would score 0."""
    import shutil

    import pytest

    import autograder.grading as grading

    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig is not installed (matplotlib then never calls it)")
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    (work / "fonts.conf").write_text(FONTS_CONF)  # in the kernel's folder: /tmp is hidden from it
    monkeypatch.setenv("JUPYTER_PATH", str(Path(grading.__file__).parent / "jupyter"))
    monkeypatch.setenv("FONTCONFIG_FILE", str(work / "fonts.conf"))
    km = KernelManager(kernel_name="course-sandbox", transport="ipc", ip=str(tmp_path / "ipc" / "kernel"))
    km.start_kernel(cwd=str(work))
    kc = km.client()
    kc.start_channels()
    streams: dict[str, str] = {"stdout": "", "stderr": ""}

    def collect(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            streams[msg["content"]["name"]] += msg["content"]["text"]
        elif msg["msg_type"] == "error":
            streams["stderr"] += "\n".join(msg["content"]["traceback"])

    try:
        kc.wait_for_ready(timeout=120)
        reply = kc.execute_interactive(DRAW, output_hook=collect, timeout=120)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", streams
    assert streams["stdout"].strip() == "1"  # it ran in the sandbox
    assert streams["stderr"] == ""


def test_nvidia_devices_are_bound_only_when_the_config_allows(monkeypatch, tmp_path):
    """COURSE_SANDBOX_GPU=1 binds each device node (a GPU grader); otherwise /dev stays minimal."""
    from autograder import doctor
    from autograder.grading import sandbox_kernel

    nodes = ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    monkeypatch.setattr(sandbox_kernel, "gpu_devices", lambda: nodes)
    conn = tmp_path / "kernel.json"
    conn.write_text("{}")

    def binds(cmd):
        return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--dev-bind"]

    monkeypatch.delenv("COURSE_SANDBOX_GPU", raising=False)
    assert binds(sandbox_kernel.bwrap_command(tmp_path, conn, ["true"])) == []
    assert "not bound: set COURSE_SANDBOX_GPU=1" in doctor.gpu_line()
    monkeypatch.setenv("COURSE_SANDBOX_GPU", "1")
    cmd = sandbox_kernel.bwrap_command(tmp_path, conn, ["true"])
    assert binds(cmd) == nodes and cmd.index("--dev-bind") < cmd.index("--")
    assert "yes (4 NVIDIA device node(s) bound" in doctor.gpu_line()
    monkeypatch.setattr(sandbox_kernel, "gpu_devices", lambda: [])
    assert "none (no NVIDIA device node" in doctor.gpu_line()


def test_gpu_devices_lists_nvidia_nodes_only():
    from autograder.grading import sandbox_kernel

    assert all(d.startswith("/dev/nvidia") for d in sandbox_kernel.gpu_devices())
