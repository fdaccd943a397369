"""Shared fixtures. Tests run inside the course environment (see README: the test command)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# nbgrader shells out to `alembic`: the environment's bin must be on PATH for every test.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Test modules import TensorFlow and PyTorch in any order; TensorFlow then torch's Triton (LLVM)
# crashes the process (see autograder.backends.avoid_triton_crash). Triton only serves
# torch.compile on GPUs, which no test uses: tell torch it is absent.
sys.modules.setdefault("triton", None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def _sandbox_status() -> str:
    """Grade in the bubblewrap sandbox when the host can; otherwise say so and run unsandboxed."""
    from autograder.grading.sandbox_kernel import probe

    host = probe()
    if host["works"]:
        return "grading kernels sandboxed (bubblewrap)"
    os.environ["COURSE_UNSAFE"] = "1"
    return f"grading kernels NOT sandboxed: {host['reason']} (sandbox tests fail, e2e tests run unsandboxed)"


SANDBOX_STATUS = _sandbox_status()


def pytest_report_header(config):
    return [f"course: {SANDBOX_STATUS}"]
