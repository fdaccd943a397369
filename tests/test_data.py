"""autograder.data.fashion_mnist: real files, real loaders, no mocks.

The session fixture installs Fashion-MNIST from the Debian package: the installed folder
``/usr/share/datasets/fashion-mnist`` when present, else the package fetched unprivileged with
``apt-get download`` + ``dpkg -x``. Every test points ``KERAS_HOME`` and the torchvision root at
temporary folders, so the only shared state written is the verified user cache
(``~/.cache/cnn-course/fashion-mnist``), which holds the same verified bytes whatever the run.
``COURSE_OFFLINE=1`` everywhere: no test may reach the official mirror.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.data import CLASS_NAMES, DataError, ensure_fashion_mnist, torchvision_root
from autograder.data import fashion_mnist as fm

ROOT = Path(__file__).resolve().parents[1]


def point_installs_at(mp: pytest.MonkeyPatch, keras_home: Path, tv_root: Path) -> None:
    """Send both installs to temporary folders, as ``KERAS_HOME=... COURSE_TORCHVISION_ROOT=...``.

    keras reads ``KERAS_HOME`` once, at import: when another test already imported keras in
    this process, its recorded home is pointed there too, exactly as the variable would have.
    """
    mp.setenv("KERAS_HOME", str(keras_home))
    mp.setenv(fm.ENV_TORCHVISION_ROOT, str(tv_root))
    mp.setenv(fm.ENV_OFFLINE, "1")
    mp.delenv(fm.ENV_DIR, raising=False)
    config = sys.modules.get("keras.src.backend.config")
    if config is not None:
        mp.setattr(config, "_KERAS_DIR", str(keras_home))


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> fm.Report:
    """Fashion-MNIST installed from the Debian package into temporary Keras/torchvision homes."""
    base = tmp_path_factory.mktemp("fashion-mnist-install")
    with pytest.MonkeyPatch.context() as mp:
        point_installs_at(mp, base / "keras", base / "torchvision")
        key = "debian" if fm.DEBIAN_DIR.is_dir() else "apt"
        mp.setattr(fm, "SOURCES", (key,))
        start = time.perf_counter()
        report = fm.ensure(verify=True)
        print(f"\ninstalled from {report.source} in {time.perf_counter() - start:.2f} s")
    return report


@pytest.fixture
def installed_env(installed: fm.Report, monkeypatch: pytest.MonkeyPatch) -> fm.Report:
    """The environment of a process that uses the session's install."""
    point_installs_at(monkeypatch, installed.keras_dir.parents[1], installed.torchvision_root)
    return installed


def good_decoded(name: str) -> bytes:
    """A verified file's decoded bytes, from the user cache filled by the session fixture."""
    return gzip.decompress((fm.user_cache_dir() / f"{name}.gz").read_bytes())


# ------------------------------------------------------------------------------ install


def test_ensure_from_debian_package(installed: fm.Report) -> None:
    expected = "debian" if fm.DEBIAN_DIR.is_dir() else "apt"
    label = fm._sources()[expected].label
    assert installed.source == label
    assert installed.attempts == [(label, installed.attempts[0][1], "ok")]
    assert not installed.already_installed
    for name, (_, size) in fm.FILES.items():
        keras_file = installed.keras_dir / f"{name}.gz"
        assert len(gzip.decompress(keras_file.read_bytes())) == size
        assert (installed.torchvision_root / "FashionMNIST" / "raw" / name).stat().st_size == size
    # The verified cache passes a full checksum verification on its own.
    assert set(fm.verify_folder(fm.user_cache_dir())) == set(fm.FILES)


def test_second_call_is_fast_and_reinstalls_what_is_missing(installed_env: fm.Report) -> None:
    start = time.perf_counter()
    report = fm.ensure()
    fast = time.perf_counter() - start
    print(f"\nensure when installed: {fast * 1000:.1f} ms")
    assert report.already_installed
    assert report.keras_dir == installed_env.keras_dir
    assert ensure_fashion_mnist() == fm.user_cache_dir()
    assert torchvision_root() == installed_env.torchvision_root
    assert fm.status().ready

    # A torchvision file deleted by hand comes back from the verified user cache.
    victim = installed_env.torchvision_root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    victim.unlink()
    assert not fm.status().ready
    report = fm.ensure()
    assert not report.already_installed
    assert report.source == "user cache"
    assert victim.stat().st_size == fm.FILES["t10k-labels-idx1-ubyte"][1]
    assert fm.status().ready


def test_explicit_folder_of_raw_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Un-gzipped files in an explicit folder are accepted, and cached as .gz."""
    src = tmp_path / "raw-files"
    src.mkdir()
    for name in fm.FILES:
        (src / name).write_bytes(good_decoded(name))
    point_installs_at(monkeypatch, tmp_path / "keras", tmp_path / "tv")
    monkeypatch.setattr(fm, "USER_CACHE", tmp_path / "cache")  # keep the shared cache as it is
    report = fm.ensure(src)
    assert report.source == "explicit path" and report.origin == str(src.resolve())
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.gz")) == sorted(
        f"{n}.gz" for n in fm.FILES
    )
    assert set(fm.verify_folder(tmp_path / "cache")) == set(fm.FILES)
    assert fm.status().ready


# ---------------------------------------------------------------------------- loaders


LOADERS_SCRIPT = r"""
import json, sys, time
import numpy as np
from autograder.data import fashion_mnist as fm, load_keras, load_torchvision

home_before = str(fm.keras_dataset_dir())
t0 = time.perf_counter()
import tensorflow  # imports are not part of the load time
t1 = time.perf_counter()
(x, y), (xt, yt) = load_keras()
t2 = time.perf_counter()
from keras.src.backend import config
fm.avoid_triton_crash()  # TensorFlow first, then torchvision: the order that used to crash
import torchvision
t3 = time.perf_counter()
train, test = load_torchvision(True), load_torchvision(False)
img0, label0 = train[0]
t4 = time.perf_counter()
print(json.dumps({
    "keras": [list(x.shape), list(y.shape), list(xt.shape), list(yt.shape)],
    "keras_dtype": str(x.dtype),
    "torchvision": [len(train), len(test)],
    "first_labels": [int(y[0]), int(label0), int(yt[0]), int(test[0][1])],
    "same_first_image": bool((np.asarray(img0) == x[0]).all()),
    "same_train_labels": bool((train.targets.numpy() == y).all()),
    "same_test_images": bool((test.data.numpy() == xt).all()),
    "keras_home": [home_before, str(fm.keras_dataset_dir()), config.keras_home()],
    "load_s": (t2 - t1) + (t4 - t3),
    "import_s": (t1 - t0) + (t3 - t2),
}))
"""


@pytest.mark.tf
@pytest.mark.torch
def test_keras_and_torchvision_load_the_same_data(installed_env: fm.Report) -> None:
    """Real ``load_data()`` and ``FashionMNIST(download=False)`` in a fresh process, offline."""
    for module in ("tensorflow", "torchvision"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} not installed")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    got = subprocess.run(
        [sys.executable, "-c", LOADERS_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    out = json.loads(got.stdout.strip().splitlines()[-1])
    print(
        f"\nload after install: {out['load_s']:.2f} s (framework imports {out['import_s']:.1f} s)"
    )
    assert out["keras"] == [[60000, 28, 28], [60000], [10000, 28, 28], [10000]]
    assert out["keras_dtype"] == "uint8"
    assert out["torchvision"] == [60000, 10000]
    assert out["first_labels"][0] == out["first_labels"][1] == 9  # an ankle boot
    assert out["first_labels"][2] == out["first_labels"][3]
    assert out["same_first_image"] and out["same_train_labels"] and out["same_test_images"]
    keras_dir = str(installed_env.keras_dir)
    assert out["keras_home"][:2] == [keras_dir, keras_dir]
    assert out["keras_home"][2] == str(installed_env.keras_dir.parents[1])
    assert out["load_s"] < 30  # target < 5 s; generous bound for a loaded 2-core machine
    assert CLASS_NAMES[9] == "Bottine" and len(CLASS_NAMES) == 10


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("how", ["raw-byte-flipped", "gz-content-byte-flipped", "gz-truncated"])
def test_corrupt_file_is_rejected_naming_it(
    how: str, installed: fm.Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "copy"
    src.mkdir()
    for name in fm.FILES:
        (src / f"{name}.gz").write_bytes((fm.user_cache_dir() / f"{name}.gz").read_bytes())
    victim = "t10k-labels-idx1-ubyte"
    data = bytearray(good_decoded(victim))
    data[100] ^= 0x01  # one label changes: same size, different content
    (src / f"{victim}.gz").unlink()
    if how == "raw-byte-flipped":
        bad = src / victim
        bad.write_bytes(bytes(data))
        why = "SHA-256 of the decoded content differs"
    elif how == "gz-content-byte-flipped":
        bad = src / f"{victim}.gz"
        bad.write_bytes(gzip.compress(bytes(data)))
        why = "SHA-256 of the decoded content differs"
    else:
        bad = src / f"{victim}.gz"
        gz = (fm.user_cache_dir() / f"{victim}.gz").read_bytes()
        bad.write_bytes(gz[: len(gz) // 2])
        why = "not a valid gzip file"
    point_installs_at(monkeypatch, tmp_path / "keras", tmp_path / "tv")
    with pytest.raises(DataError) as info:
        ensure_fashion_mnist(src)
    message = str(info.value)
    assert str(bad) in message and why in message
    assert (
        message.count("\n  1. explicit path") == 1 and "\n  2." not in message
    )  # nothing else tried
    assert "course data --path DIR" in message
    assert not (tmp_path / "keras").exists() and not (tmp_path / "tv").exists()  # nothing installed


def test_nothing_found_offline_gives_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty folder everywhere, offline. apt is left out of the sources (it would fetch the real
    package and succeed on a Debian machine): the test must not depend on the machine."""
    empty = tmp_path / "empty"
    empty.mkdir()
    point_installs_at(monkeypatch, tmp_path / "keras", tmp_path / "tv")
    monkeypatch.setenv(fm.ENV_DIR, str(empty))
    monkeypatch.setattr(fm, "USER_CACHE", tmp_path / "no-cache")
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fm, "SOURCES", ("env", "cache", "debian", "mirror"))
    with pytest.raises(DataError) as info:
        ensure_fashion_mnist()
    message = str(info.value)
    print("\n" + message)
    assert info.value.__cause__ is None and info.value.__suppress_context__ is False
    lines = message.splitlines()
    assert lines[0] == "Fashion-MNIST data not found or corrupt. Places tried, in order:"
    assert lines[1].startswith(
        f"  1. $COURSE_FASHION_MNIST [{empty}]: none of the 4 files is there"
    )
    assert lines[2] == f"  2. user cache [{tmp_path / 'no-cache'}]: folder does not exist"
    assert lines[3].startswith(
        f"  3. Debian package dataset-fashion-mnist [{tmp_path / 'no-debian'}]: folder does not exist"
    )
    assert lines[4] == f"  4. official mirror [{fm.MIRROR}]: skipped: $COURSE_OFFLINE is set"
    fix = lines[5]
    assert fix.startswith("How to fix:") and len(lines) == 6
    for hint in (
        "course data --path DIR",
        "COURSE_FASHION_MNIST=DIR",
        "apt-get download dataset-fashion-mnist",
        "dpkg -x",
    ):
        assert hint in fix


def test_apt_failure_reason_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package apt does not know: its own error is reported, and nothing else is attempted."""
    monkeypatch.setattr(fm, "APT_PACKAGE", "dataset-fashion-mnist-no-such-package")
    if fm.shutil.which("apt-get") is None:
        with pytest.raises(fm._Rejected, match="apt-get not found"):
            fm.fetch_debian_package(tmp_path)
        return
    with pytest.raises(fm._Rejected) as info:
        fm.fetch_debian_package(tmp_path)
    assert "`apt-get download dataset-fashion-mnist-no-such-package` failed: E:" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- CLI


def course(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_course_data_command(installed_env: fm.Report, tmp_path: Path) -> None:
    env = dict(os.environ)
    got = course("data", env=env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[0].startswith("Fashion-MNIST: already installed")
    assert f"  Keras:          {installed_env.keras_dir}" in got.stdout
    assert f"  torchvision:    {installed_env.torchvision_root}" in got.stdout

    got = course("data", "--verify", env=env)
    assert got.returncode == 0, got.stderr
    assert "Fashion-MNIST: verified from user cache" in got.stdout

    (tmp_path / "empty").mkdir()
    got = course("data", "--path", str(tmp_path / "empty"), env=env)
    assert got.returncode == 1
    assert got.stderr.startswith("course data: Fashion-MNIST data not found or corrupt.")
    assert "none of the 4 files is there" in got.stderr and "How to fix:" in got.stderr


def test_course_data_quiet_and_usage_error(
    installed_env: fm.Report, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through ``autograder.cli.main`` in this process (each `course` process costs seconds)."""
    from autograder.cli import main

    assert main(["data", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    # A folder that does not exist is a usage error: exit 2, one line on stderr.
    assert main(["data", "--path", str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"course data: --path {tmp_path / 'missing'}: no such folder\n"


def test_no_framework_imported_at_module_level() -> None:
    code = (
        "import sys, autograder.data, autograder.data.cli, autograder.doctor; "
        "print([m for m in ('torch', 'torchvision', 'tensorflow', 'keras') if m in sys.modules])"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert got.stdout.strip() == "[]", got.stderr
