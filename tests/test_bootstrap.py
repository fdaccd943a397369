"""The stdlib-only bootstrap: one environment per checkout, orphans removed."""

from __future__ import annotations

from pathlib import Path

from autograder import bootstrap


def _fake_venv(path: Path, checkout: str | None, legacy: bool = False) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    if checkout is not None:
        if legacy:
            site = path / "lib" / "python3.11" / "site-packages"
            site.mkdir(parents=True)
            (site / "cnn-course-root.pth").write_text(f"{checkout}\n")
        else:
            (path / bootstrap.CHECKOUT_MARK).write_text(f"{checkout}\n")
    return path


def test_default_venv_is_keyed_by_checkout():
    assert bootstrap.DEFAULT_VENV.name.startswith("venv-py3.11-")
    assert bootstrap.DEFAULT_VENV.parent.name == "cnn-course"


def test_orphan_venvs_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    mine = _fake_venv(cache / "venv-py3.11-mine", str(bootstrap.ROOT))
    monkeypatch.setattr(bootstrap, "DEFAULT_VENV", mine)
    other_checkout = tmp_path / "clone"
    (other_checkout / "autograder").mkdir(parents=True)
    (other_checkout / "autograder" / "bootstrap.py").write_text("")
    live = _fake_venv(cache / "venv-py3.11-live", str(other_checkout))
    gone = _fake_venv(cache / "venv-py3.11-gone", str(tmp_path / "deleted-clone"))
    legacy = _fake_venv(cache / "venv-py3.11", str(tmp_path / "deleted-ci-clone"), legacy=True)
    unknown = _fake_venv(cache / "venv-py3.11-unknown", None)  # not ours to judge: kept
    bootstrap.remove_orphan_venvs()
    assert mine.exists() and live.exists() and unknown.exists()
    assert not gone.exists() and not legacy.exists()


def test_install_is_skipped_only_while_its_stamp_matches(tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("")
    monkeypatch.delenv("COURSE_REINSTALL", raising=False)
    assert bootstrap.install_needed(python)  # never installed
    (venv / bootstrap.INSTALL_STAMP).write_text(bootstrap.install_digest(python) + "\n")
    assert not bootstrap.install_needed(python)
    monkeypatch.setenv("COURSE_REINSTALL", "1")
    assert bootstrap.install_needed(python)  # forced
    monkeypatch.delenv("COURSE_REINSTALL")
    (venv / bootstrap.INSTALL_STAMP).write_text("0" * 64 + "\n")  # pyproject.toml changed since
    assert bootstrap.install_needed(python)


def test_the_readme_test_command_runs_the_suite_ci_runs():
    """`bootstrap test` alone = CI's first step: not slow, one file per worker, on every core."""
    assert bootstrap.pytest_args([], cores=2) == [
        "-m", "not slow", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider"
    ]
    assert bootstrap.pytest_args(["--slow"], cores=1)[:4] == ["-m", "slow", "-n", "1"]
    assert bootstrap.pytest_args([], cores=64)[3] == "4"  # memory: each worker grades notebooks
    assert bootstrap.pytest_args(["tests/test_data.py", "-x"], cores=2) == ["tests/test_data.py", "-x"]
    ci = (bootstrap.ROOT / ".ci" / "run").read_text()
    assert "python3 -m autograder.bootstrap test\n" in ci and "python3 -m autograder.bootstrap test --slow" in ci
