"""Fashion-MNIST, offline, for the real loaders of Keras and torchvision.

The four IDX files are looked for, in this order (the first complete and valid set wins):

1. an explicit folder (``ensure_fashion_mnist(path)``, ``course data --path DIR``): when given,
   it is the only place tried, so that a wrong folder is reported rather than bypassed;
2. the folder named by ``$COURSE_FASHION_MNIST``;
3. the user cache ``~/.cache/cnn-course/fashion-mnist/`` (filled by every successful run);
4. the Debian package folder ``/usr/share/datasets/fashion-mnist/`` (``dataset-fashion-mnist``);
5. the same package fetched unprivileged with ``apt-get download`` + ``dpkg -x``;
6. the official mirror, unless ``$COURSE_OFFLINE`` is set (the graders set it).

Every file is checked by the SHA-256 of its *decoded* content (Debian recompressed the ``.gz``
files, so checksums of the archives differ from upstream's). Verified files are copied to the
user cache, then installed where the loaders look, so that they never download:

* ``keras.datasets.fashion_mnist.load_data()`` reads ``<keras home>/datasets/fashion-mnist/
  <name>.gz`` (``keras.utils.get_file`` downloads only when that file is absent);
* ``torchvision.datasets.FashionMNIST(root, download=False)`` reads the un-gzipped files in
  ``<root>/FashionMNIST/raw/``.

No framework is imported at module level.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.backends import avoid_triton_crash  # noqa: F401 - re-exported

# name -> (SHA-256 of the decoded content, decoded size in bytes)
FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        47040016,
    ),
    "train-labels-idx1-ubyte": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        60008,
    ),
    "t10k-images-idx3-ubyte": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        7840016,
    ),
    "t10k-labels-idx1-ubyte": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        10008,
    ),
}

#: Class names in label order (0-9), in French for the notebooks.
CLASS_NAMES: list[str] = [
    "T-shirt/haut",
    "Pantalon",
    "Pull",
    "Robe",
    "Manteau",
    "Sandale",
    "Chemise",
    "Basket",
    "Sac",
    "Bottine",
]

# Places and names; module attributes (read at call time) so that tests can point them elsewhere.
USER_CACHE = Path("~/.cache/cnn-course/fashion-mnist")
DEFAULT_TORCHVISION_ROOT = Path("~/.cache/cnn-course/torchvision")
DEB_DATA_PATH = "usr/share/datasets/fashion-mnist"  # where the package puts the files
DEBIAN_DIR = Path("/") / DEB_DATA_PATH
APT_PACKAGE = "dataset-fashion-mnist"
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MARKER = "verified.json"
ENV_DIR = "COURSE_FASHION_MNIST"
ENV_OFFLINE = "COURSE_OFFLINE"
ENV_TORCHVISION_ROOT = "COURSE_TORCHVISION_ROOT"

#: Sources tried in order when no explicit path is given (keys of ``_SOURCE_FUNCS``).
SOURCES: tuple[str, ...] = ("env", "cache", "debian", "apt", "mirror")


class DataError(RuntimeError):
    """The data set is missing or corrupt; the message lists every place tried and the fix."""


class _Rejected(Exception):
    """A source that was tried and did not give four valid files (the message says why)."""


# ------------------------------------------------------------------------------------ places


def user_cache_dir() -> Path:
    """Folder of the verified ``.gz`` files shared by every install on this account."""
    return Path(USER_CACHE).expanduser()


def torchvision_root() -> Path:
    """The ``root`` to give ``torchvision.datasets.FashionMNIST`` (``$COURSE_TORCHVISION_ROOT``)."""
    env = os.environ.get(ENV_TORCHVISION_ROOT)
    return Path(env).expanduser() if env else Path(DEFAULT_TORCHVISION_ROOT).expanduser()


def torchvision_raw_dir() -> Path:
    """Where torchvision's ``FashionMNIST`` looks for the raw IDX files."""
    return torchvision_root() / "FashionMNIST" / "raw"


def keras_home() -> Path:
    """Keras' cache folder, resolved exactly as keras 3 does.

    keras reads ``$KERAS_HOME`` once, when ``keras.src.backend.config`` is imported (else
    ``~/.keras``, or ``/tmp/.keras`` when the home folder is not writable); if keras is already
    imported in this process, its own value wins since that is where ``load_data`` will look.
    """
    config = sys.modules.get("keras.src.backend.config")
    if config is not None and hasattr(config, "keras_home"):
        base = str(config.keras_home())
    elif "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return Path(os.path.expanduser(base))


def keras_dataset_dir() -> Path:
    """``<keras home>/datasets/fashion-mnist``: what ``keras.utils.get_file`` resolves for it.

    ``get_file`` falls back to ``/tmp/.keras`` when the keras home is not writable; a home that
    does not exist yet counts as writable here because installing creates it first.
    """
    base = keras_home()
    probe = base
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        base = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"
    return base / "datasets" / "fashion-mnist"


def offline() -> bool:
    """True when ``$COURSE_OFFLINE`` is set (to anything non-empty): no mirror download."""
    return bool(os.environ.get(ENV_OFFLINE))


# ------------------------------------------------------------------------------ verification


@dataclass
class _Verified:
    name: str
    path: Path  # the file it was read from
    decoded: bytes
    gz: bytes | None  # the original gzip bytes when the file was gzipped


def _candidates(folder: Path, name: str) -> list[Path]:
    # The folder itself, or a torchvision root / keras home given by mistake: all hold the files.
    layouts = (folder, folder / "FashionMNIST" / "raw", folder / "datasets" / "fashion-mnist")
    return [d / f for d in layouts for f in (f"{name}.gz", name)]


def _check_file(path: Path, name: str) -> _Verified:
    """Read one file (gzip detected by its magic bytes) and check its decoded content."""
    sha, size = FILES[name]
    data = path.read_bytes()
    gz = None
    if data[:2] == b"\x1f\x8b":
        try:
            gz, data = data, gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise _Rejected(f"{path}: not a valid gzip file ({exc})") from None
    if len(data) != size:
        raise _Rejected(f"{path}: decoded content is {len(data)} bytes, expected {size}")
    if hashlib.sha256(data).hexdigest() != sha:
        raise _Rejected(
            f"{path}: SHA-256 of the decoded content differs (corrupt or modified file)"
        )
    return _Verified(name, path, data, gz)


def verify_folder(folder: Path) -> dict[str, _Verified]:
    """Find and verify the four files in ``folder``; raise ``_Rejected`` naming each bad file."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise _Rejected("folder does not exist" if not folder.exists() else "not a folder")
    found: dict[str, _Verified] = {}
    problems: list[str] = []
    missing = 0
    for name in FILES:
        existing = [p for p in _candidates(folder, name) if p.is_file()]
        if not existing:
            problems.append(f"{name}(.gz) missing")
            missing += 1
            continue
        reasons = []
        for candidate in existing:
            try:
                found[name] = _check_file(candidate, name)
                break
            except _Rejected as exc:
                reasons.append(str(exc))
            except OSError as exc:
                reasons.append(f"{candidate}: cannot read ({exc.strerror or exc})")
        else:
            problems.extend(reasons)
    if missing == len(FILES):
        raise _Rejected(
            "none of the 4 files is there (" + ", ".join(f"{n}.gz" for n in FILES) + ")"
        )
    if problems:
        raise _Rejected("; ".join(problems))
    return found


# ----------------------------------------------------------------------------------- sources


@dataclass
class _Source:
    label: str  # what is shown to the user
    where: str  # the place, for the report
    fetch: Callable[[Path], Path]  # scratch folder -> folder holding the files (or _Rejected)


def fetch_debian_package(dest: Path) -> Path:
    """``apt-get download`` the Debian package into ``dest`` and ``dpkg -x`` it; return its folder.

    Needs no privileges once apt's package lists exist. Raises ``_Rejected`` with the reason.
    """
    apt = shutil.which("apt-get")
    if apt is None:
        raise _Rejected("apt-get not found (not a Debian/Ubuntu system)")
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        raise _Rejected("dpkg not found")
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LC_ALL": "C"}
    try:
        got = subprocess.run(
            [apt, "download", APT_PACKAGE],
            cwd=dest,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise _Rejected(f"`apt-get download {APT_PACKAGE}` timed out") from None
    if got.returncode != 0:
        lines = [ln for ln in (got.stderr + got.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("E:")] or lines[-1:]
        why = " ".join(errors) or f"exit status {got.returncode}"
        if "Unable to locate package" in why:
            why += " (apt's package lists may be missing: `sudo apt-get update`)"
        raise _Rejected(f"`apt-get download {APT_PACKAGE}` failed: {why}")
    debs = sorted(dest.glob(f"{APT_PACKAGE}_*.deb"))
    if not debs:
        raise _Rejected(f"`apt-get download {APT_PACKAGE}` left no .deb file")
    tree = dest / "tree"
    try:
        got = subprocess.run(
            [dpkg, "-x", str(debs[-1]), str(tree)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise _Rejected(f"`dpkg -x {debs[-1].name}` timed out") from None
    if got.returncode != 0:
        raise _Rejected(f"`dpkg -x {debs[-1].name}` failed: {got.stderr.strip()}")
    return tree / DEB_DATA_PATH


def _from_env(_: Path) -> Path:
    value = os.environ.get(ENV_DIR)
    if not value:
        raise _Rejected("not set")
    return Path(value).expanduser()


def _from_debian(_: Path) -> Path:
    if not Path(DEBIAN_DIR).is_dir():
        raise _Rejected(f"folder does not exist (package {APT_PACKAGE} not installed)")
    return Path(DEBIAN_DIR)


def _from_mirror(scratch: Path) -> Path:
    if offline():
        raise _Rejected(f"skipped: ${ENV_OFFLINE} is set")
    for name in FILES:
        url = f"{MIRROR}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                (scratch / f"{name}.gz").write_bytes(response.read())
        except OSError as exc:
            raise _Rejected(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    return scratch


def _sources() -> dict[str, _Source]:
    return {
        "env": _Source(f"${ENV_DIR}", os.environ.get(ENV_DIR, "(unset)"), _from_env),
        "cache": _Source("user cache", str(user_cache_dir()), lambda _: user_cache_dir()),
        "debian": _Source(f"Debian package {APT_PACKAGE}", str(DEBIAN_DIR), _from_debian),
        "apt": _Source(
            f"apt-get download {APT_PACKAGE}", "(temporary folder)", fetch_debian_package
        ),
        "mirror": _Source("official mirror", MIRROR, _from_mirror),
    }


# ------------------------------------------------------------------------------ installation


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _atomic_copy(src: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if os.path.samefile(src, target):
            return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)  # same file system: no second copy of 30 MB
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, target)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # rename() is a no-op when both names are links to one file


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_marker(cache: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((cache / MARKER).read_text())
        for name in FILES:
            if marker["files"][f"{name}.gz"] != _stat_key(cache / f"{name}.gz"):
                return None
        return marker
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _installed(cache: Path, keras_dir: Path, raw_dir: Path) -> dict[str, bool]:
    """Stat-only checks: cache verified (marker), Keras copies and torchvision files in place."""
    marker = _read_marker(cache)

    def same_size(path: Path, size: int) -> bool:
        try:
            return path.stat().st_size == size
        except OSError:
            return False

    keras_ok = marker is not None and all(
        same_size(keras_dir / f"{n}.gz", marker["files"][f"{n}.gz"][0]) for n in FILES
    )
    return {
        "cache": marker is not None,
        "keras": keras_ok,
        "torchvision": all(same_size(raw_dir / n, size) for n, (_, size) in FILES.items()),
    }


def _install(files: dict[str, _Verified], origin: str) -> None:
    cache = user_cache_dir()
    previous = _read_marker(cache)
    if previous and Path(origin) == cache:  # re-verified in place: keep where it first came from
        origin = str(previous.get("origin", origin))
    for name, v in files.items():
        target = cache / f"{name}.gz"
        if target.exists() and v.path.resolve() == target.resolve():
            continue  # read from the cache itself
        # Keep the source's own gzip bytes; a raw source is compressed once (mtime 0: stable).
        gz = v.gz if v.gz is not None else gzip.compress(v.decoded, compresslevel=6, mtime=0)
        with contextlib.suppress(OSError):
            if target.stat().st_size == len(gz) and target.read_bytes() == gz:
                continue  # same bytes already cached: keep the file (and links to it) as is
        _atomic_write(target, gz)
    marker = {
        "files": {f"{n}.gz": _stat_key(cache / f"{n}.gz") for n in FILES},
        "sha256_decoded": {n: sha for n, (sha, _) in FILES.items()},
        "origin": origin,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _atomic_write(cache / MARKER, json.dumps(marker, indent=1).encode())
    keras_dir = keras_dataset_dir()
    for name in FILES:
        _atomic_copy(cache / f"{name}.gz", keras_dir / f"{name}.gz")
    raw_dir = torchvision_raw_dir()
    for name, v in files.items():
        _atomic_write(raw_dir / name, v.decoded)


# ----------------------------------------------------------------------------------- ensure


@dataclass
class Report:
    """What ``ensure`` did: where the data came from and where it was installed."""

    source: str  # label of the source used ("already installed" on the fast path)
    origin: str  # the folder or URL the verified files were read from
    cache_dir: Path
    keras_dir: Path
    torchvision_root: Path
    already_installed: bool
    attempts: list[tuple[str, str, str]] = field(default_factory=list)  # (label, where, outcome)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fashion-mnist-") as tmp:
        yield Path(tmp)


def _fix_hint() -> str:
    names = ", ".join(f"{n}.gz" for n in FILES)
    return (
        "How to fix: put the four files (" + names + ", gzipped or not) in a folder DIR and run "
        "`course data --path DIR` (or set COURSE_FASHION_MNIST=DIR); on Debian/Ubuntu, "
        f"`sudo apt-get install {APT_PACKAGE}`, or without privileges `apt-get download "
        f"{APT_PACKAGE} && dpkg -x {APT_PACKAGE}_*.deb DIR` then `course data --path "
        f"DIR/{DEB_DATA_PATH}`; with internet access, unset {ENV_OFFLINE} and run `course data` "
        "to fetch them from the official mirror."
    )


def _error(attempts: list[tuple[str, str, str]]) -> DataError:
    lines = ["Fashion-MNIST data not found or corrupt. Places tried, in order:"]
    lines += [
        f"  {i}. {label} [{where}]: {outcome}"
        for i, (label, where, outcome) in enumerate(attempts, 1)
    ]
    lines.append(_fix_hint())
    return DataError("\n".join(lines))


def ensure(path: str | os.PathLike[str] | None = None, *, verify: bool = False) -> Report:
    """Find, verify and install the data set; see the module docstring. Raises ``DataError``.

    Args:
        path: a folder holding the four files; when given it is the only place tried.
        verify: re-verify by checksum even when everything is already installed.
    """
    cache, raw_dir = user_cache_dir(), torchvision_raw_dir()
    if path is None and not verify:
        state = _installed(cache, keras_dataset_dir(), raw_dir)
        if all(state.values()):
            marker = _read_marker(cache) or {}
            return Report(
                "already installed",
                str(marker.get("origin", cache)),
                cache,
                keras_dataset_dir(),
                torchvision_root(),
                True,
            )

    if path is not None:
        folder = Path(path).expanduser().resolve()
        chosen = [_Source("explicit path", str(folder), lambda _: folder)]
    else:
        table = _sources()
        chosen = [table[key] for key in SOURCES]

    attempts: list[tuple[str, str, str]] = []
    for source in chosen:
        with _scratch() as scratch:
            try:
                folder = source.fetch(scratch)
                files = verify_folder(folder)
            except _Rejected as exc:
                attempts.append((source.label, source.where, str(exc)))
                continue
            except OSError as exc:  # unreadable folder, full scratch disk...
                attempts.append((source.label, source.where, f"cannot read ({exc})"))
                continue
            origin = str(folder) if source.fetch is not _from_mirror else MIRROR
            if source.fetch is fetch_debian_package:
                origin = f"{APT_PACKAGE} .deb fetched by apt-get download"
            attempts.append((source.label, source.where, "ok"))
            try:
                _install(files, origin)
            except OSError as exc:
                raise DataError(
                    f"Fashion-MNIST verified from {source.label} [{origin}] but could not be "
                    f"installed: {exc}. Check that {cache}, {keras_home()} and "
                    f"{torchvision_root()} are writable (or set KERAS_HOME / "
                    f"{ENV_TORCHVISION_ROOT} to writable folders)."
                ) from None
            return Report(
                source.label,
                origin,
                cache,
                keras_dataset_dir(),
                torchvision_root(),
                False,
                attempts,
            )
    raise _error(attempts)


def ensure_fashion_mnist(
    path: str | os.PathLike[str] | None = None, *, quiet: bool = True, verify: bool = False
) -> Path:
    """Make Fashion-MNIST available offline to Keras and torchvision; return the verified folder.

    Idempotent and fast once installed (a few ``stat`` calls, no hashing unless ``verify``).
    Raises ``DataError`` with every place tried and how to fix it.
    """
    report = ensure(path, verify=verify)
    if not quiet:
        print(describe(report))
    return report.cache_dir


def describe(report: Report) -> str:
    """Human-readable lines for a ``Report`` (English: tooling output)."""
    head = (
        f"Fashion-MNIST: already installed (verified from {report.origin})"
        if report.already_installed
        else f"Fashion-MNIST: verified from {report.source} ({report.origin})"
    )
    return "\n".join(
        [
            head,
            f"  verified cache: {report.cache_dir}",
            f"  Keras:          {report.keras_dir}",
            f"  torchvision:    {report.torchvision_root} (root=, download=False)",
        ]
    )


@dataclass
class Status:
    """Data state as seen without fetching or hashing anything (for ``course doctor``)."""

    cache_dir: Path
    cache_verified: bool
    verified_at: str | None
    origin: str | None
    keras_dir: Path
    keras_installed: bool
    torchvision_root: Path
    torchvision_installed: bool
    debian_installed: bool

    @property
    def ready(self) -> bool:
        return self.cache_verified and self.keras_installed and self.torchvision_installed


def status() -> Status:
    """Where the data is, from ``stat`` calls and the verification marker only."""
    cache = user_cache_dir()
    state = _installed(cache, keras_dataset_dir(), torchvision_raw_dir())
    marker = _read_marker(cache) or {}
    return Status(
        cache,
        state["cache"],
        marker.get("verified_at"),
        marker.get("origin"),
        keras_dataset_dir(),
        state["keras"],
        torchvision_root(),
        state["torchvision"],
        Path(DEBIAN_DIR).is_dir(),
    )


# ------------------------------------------------------------------------------------ loaders


def load_keras():
    """``tf.keras.datasets.fashion_mnist.load_data()`` after making sure it reads local files.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays (60000, 28, 28), (60000,),
        (10000, 28, 28), (10000,).
    """
    ensure_fashion_mnist()
    try:
        import tensorflow as tf

        datasets = tf.keras.datasets
    except ImportError:  # keras 3 on another backend
        import keras

        datasets = keras.datasets
    return datasets.fashion_mnist.load_data()


def load_torchvision(train: bool, transform=None):
    """``torchvision.datasets.FashionMNIST(torchvision_root(), train=train, download=False)``."""
    ensure_fashion_mnist()
    avoid_triton_crash()
    from torchvision.datasets import FashionMNIST

    return FashionMNIST(str(torchvision_root()), train=train, download=False, transform=transform)


