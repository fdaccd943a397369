"""`course doctor`: one real run as a subprocess, and its parts on real inputs (no mocks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import doctor
from autograder.data import fashion_mnist as fm

ROOT = Path(__file__).resolve().parents[1]


def test_course_doctor_reports_everything(tmp_path: Path) -> None:
    """Data installed into temporary homes by `course data`, then the full report."""
    env = {
        **os.environ,
        "KERAS_HOME": str(tmp_path / "keras"),
        fm.ENV_TORCHVISION_ROOT: str(tmp_path / "tv"),
        fm.ENV_OFFLINE: "1",
    }
    env.pop(fm.ENV_DIR, None)
    run = [sys.executable, "-m", "autograder.cli"]
    got = subprocess.run(
        [*run, "data", "--quiet"], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert got.returncode == 0, got.stderr
    got = subprocess.run(
        [*run, "doctor"], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    print("\n" + got.stdout)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "course doctor"
    assert lines[1].startswith(f"Python           {sys.version.split()[0]}")
    rows = {line[:17].strip(): line[17:] for line in lines if line[:1].strip()}
    for package in doctor.PACKAGES:
        assert rows[package], package  # a version or "not installed"
    import numpy

    assert rows["numpy"] == numpy.__version__
    assert "CPU core(s)" in rows["Device"]
    assert rows["Data"].startswith("Fashion-MNIST: verified ")
    assert (
        f"  for Keras:       installed ({tmp_path / 'keras' / 'datasets' / 'fashion-mnist'})"
        in got.stdout
    )
    assert f"  for torchvision: installed ({tmp_path / 'tv'})" in got.stdout
    assert (
        rows["nbgrader config"]
        == f"{ROOT / 'nbgrader_config.py'}: course_id=cnn-course, cell timeout=300 s"
    )
    assert rows["Sandbox"].startswith("tools: bwrap (")
    assert "`unshare -Urn true`: " in got.stdout
    assert lines[-1].startswith("Summary: ")
    assert "data not installed" not in lines[-1]


def test_data_status_without_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(fm.ENV_TORCHVISION_ROOT, str(tmp_path / "tv"))
    config = sys.modules.get("keras.src.backend.config")
    if config is not None:
        monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras"))
    lines, ready = doctor.data_lines()
    assert not ready
    assert (
        f"  for Keras:       not installed ({tmp_path / 'keras' / 'datasets' / 'fashion-mnist'})"
        in lines
    )
    assert f"  for torchvision: not installed ({tmp_path / 'tv'})" in lines
    assert lines[-1] == "  -> run `course data` to verify and install it (offline)"
    assert list(tmp_path.iterdir()) == []  # nothing fetched, nothing created


def test_nbgrader_config_in_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nbgrader_config.py").write_text(
        "import os\n"
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'demo-course'\n"
        "c.ExecutePreprocessor.timeout = 42\n"
        "os.environ['DOCTOR_TEST_SIDE_EFFECT'] = '1'\n"
    )
    monkeypatch.chdir(tmp_path)
    found = doctor.find_nbgrader_config()
    assert found == tmp_path / "nbgrader_config.py"
    assert doctor.read_nbgrader_config(found) == {"course_id": "demo-course", "timeout": 42}
    assert "DOCTOR_TEST_SIDE_EFFECT" not in os.environ  # the config's env defaults are undone


def test_course_config_is_found_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert doctor.find_nbgrader_config() == ROOT / "nbgrader_config.py"
    assert doctor.read_nbgrader_config(ROOT / "nbgrader_config.py") == {
        "course_id": "cnn-course",
        "timeout": 300,
    }


def test_module_versions() -> None:
    import numpy

    version, module = doctor.module_version("numpy")
    assert version == numpy.__version__ and module is numpy
    assert doctor.module_version("no_such_module_for_course_doctor") == (doctor.NOT_INSTALLED, None)


def test_sandbox_capability_matches_the_machine() -> None:
    lines, works = doctor.sandbox_lines()
    for tool in doctor.SANDBOX_TOOLS:
        where = shutil.which(tool)
        assert (f"{tool} ({where})" if where else f"{tool} (missing)") in lines[0]
    if shutil.which("unshare"):
        real = (
            subprocess.run(["unshare", "-Urn", "true"], capture_output=True, timeout=10).returncode
            == 0
        )
        assert works == real
        if real:
            assert lines[1] == "`unshare -Urn true`: works"
        else:
            assert lines[1].startswith("`unshare -Urn true`: fails (")
    else:
        assert not works
