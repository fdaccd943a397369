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


# ---- two installs: the staff environment pinned, the student install in ranges ---------------


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((bootstrap.ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in bootstrap.CONSTRAINTS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # one `==` pin per line, nothing else
        assert spec.operator == "==" and not req.marker and not req.extras, line
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_the_bootstrap_installs_within_the_staff_pins(tmp_path, monkeypatch):
    args = bootstrap.pip_install_args()
    assert args[:2] == ["-c", str(bootstrap.CONSTRAINTS)] and args[-1].endswith("[dev]")
    # The install stamp covers the pins: moving one reinstalls.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("")
    before = bootstrap.install_digest(python)
    pins = tmp_path / "constraints.txt"
    pins.write_text(bootstrap.CONSTRAINTS.read_text() + "extra-package==1.0\n")
    monkeypatch.setattr(bootstrap, "CONSTRAINTS", pins)
    assert bootstrap.install_digest(python) != before


def test_every_declared_dependency_is_pinned_inside_its_range():
    """Each requirement of every extra the staff installs (Linux, Python 3.11) has one pin in
    constraints.txt, and the pin satisfies the range pyproject.toml declares."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = _pyproject()["project"]
    pins = _pins()
    env = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11",
           "python_full_version": "3.11.7", "platform_system": "Linux", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    declared = list(project["dependencies"])
    for extra in ("torch", "tf", "student", "staff", "dev"):
        declared += project["optional-dependencies"][extra]
    for line in declared:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name == "cnn-course" or (req.marker and not req.marker.evaluate(env)):
            continue
        assert name in pins, f"{line}: not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{line}: pinned {pins[name]}"


def test_the_student_install_declares_ranges_not_pins():
    """Colab's and a laptop's own NumPy / PyTorch / TensorFlow must be kept: no `==` in what a
    student installs, Python 3.10 to 3.13, `tensorflow` where `tensorflow-cpu` has no wheel."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    project = _pyproject()["project"]
    supported = SpecifierSet(project["requires-python"])
    assert all(supported.contains(f"3.{minor}") for minor in (10, 11, 12, 13))
    assert not supported.contains("3.9") and not supported.contains("3.14")
    student = list(project["dependencies"])
    for extra in ("torch", "tf", "student"):
        student += project["optional-dependencies"][extra]
    for line in student:
        req = Requirement(line)
        assert all(s.operator in (">=", "<") for s in req.specifier), line
    tf = {Requirement(x).name: Requirement(x).marker for x in project["optional-dependencies"]["tf"]}
    mac_arm = {"sys_platform": "darwin", "platform_machine": "arm64"}
    assert tf["tensorflow"].evaluate(mac_arm) and not tf["tensorflow-cpu"].evaluate(mac_arm)
    for other in ({"sys_platform": "linux", "platform_machine": "x86_64"},
                  {"sys_platform": "win32", "platform_machine": "AMD64"},
                  {"sys_platform": "darwin", "platform_machine": "x86_64"}):
        assert tf["tensorflow-cpu"].evaluate(other) and not tf["tensorflow"].evaluate(other)


def test_the_staff_environment_matches_its_pins():
    """The environment this suite runs in is the one constraints.txt describes."""
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in _pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # a pin of a package only another platform's install pulls in
        if installed.split("+")[0] != pinned:
            wrong[name] = (installed, pinned)
    assert not wrong, f"installed vs constraints.txt: {wrong} (rerun the bootstrap)"
