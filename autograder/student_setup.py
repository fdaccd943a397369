"""The set-up cell at the top of every notebook: install on Colab, check everywhere else.

Each release notebook starts with a locked cell (:func:`setup_cell_source`) that, on Google
Colab, installs the course package from :data:`COURSE_PACKAGE` (Colab already has NumPy,
PyTorch and TensorFlow: nothing of theirs is reinstalled) and then calls :func:`prepare`.
:func:`prepare` checks what the notebook needs (Python, NumPy & co., the framework of its
track, the data set) and says in French what is missing and the one command that installs it
while keeping what the machine already has (:func:`install_command` pins every package already
installed in range, so that pip never swaps Colab's or a laptop's PyTorch for another one).
On Colab it runs that command itself and fetches Fashion-MNIST from the official mirror,
verified by checksum (``course data``).

From a terminal: ``python -m autograder.student_setup [numpy|torch|tf] [--install]``.

Standard library only (no ``packaging``): this runs before anything else is known to be there.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Where students install the course from: the one setting of the student install (README,
#: "Student install"). Any pip requirement works: ``cnn-course @ git+https://…`` (the course
#: repository), ``cnn-course @ https://…/cnn_course-0.1.0-py3-none-any.whl`` (a published
#: wheel) or ``cnn-course`` (an index). Changing it: edit it here, then run
#: ``python -m autograder.student_setup --write-cells`` and ``course release --all``.
COURSE_PACKAGE = "cnn-course @ git+https://github.com/cnn-course/cnn-course.git"

#: Supported Python versions (pyproject.toml's ``requires-python``).
PYTHON_MIN, PYTHON_MAX = (3, 10), (3, 13)


@dataclass(frozen=True)
class Component:
    """One package a notebook needs: the names pip knows it by, and the oldest version that works."""

    label: str
    dists: tuple[str, ...]
    minimum: str
    #: what pip installs when it is missing (defaults to ``dists[0]``).
    install: str | None = None


def _tensorflow_dist() -> str:
    """``tensorflow-cpu`` has no macOS arm64 wheel: there the package is ``tensorflow``."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "tensorflow"
    return "tensorflow-cpu"


#: The student install's ranges, as pyproject.toml declares them (a test keeps both in step).
BASE = (
    Component("numpy", ("numpy",), "1.26"),
    Component("scipy", ("scipy",), "1.11"),
    Component("scikit-image", ("scikit-image",), "0.22"),
    Component("matplotlib", ("matplotlib",), "3.8"),
)
TORCH = (
    Component("torch", ("torch",), "2.2"),
    Component("torchvision", ("torchvision",), "0.17"),
)
TF = (
    # The module is always `tensorflow`; pip knows it under several names.
    Component(
        "tensorflow",
        ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly"),
        "2.16",
    ),
    Component("keras", ("keras",), "3.0"),
)
TRACKS: dict[str, tuple[str, tuple[Component, ...]]] = {
    "numpy": ("NumPy", BASE),
    "torch": ("PyTorch", BASE + TORCH),
    "tf": ("TensorFlow", BASE + TF),
}
#: Tracks whose notebooks read Fashion-MNIST.
DATA_TRACKS = ("torch", "tf")


def in_colab() -> bool:
    """Whether this kernel runs on Google Colab (its kernel imports ``google.colab``)."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def installed(component: Component) -> tuple[str, str] | None:
    """``(distribution, version)`` of the first of ``component.dists`` installed, else None."""
    for name in component.dists:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` → ``(2, 13, 0)``: the release numbers, enough to compare with a minimum."""
    match = re.match(r"\d+(\.\d+)*", version.strip())
    return tuple(int(x) for x in match.group(0).split(".")) if match else ()


def _at_least(version: str, minimum: str) -> bool:
    have, need = version_tuple(version), version_tuple(minimum)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


@dataclass(frozen=True)
class Finding:
    """A component and what this machine has of it (``dist``/``version`` None: absent)."""

    component: Component
    dist: str | None
    version: str | None

    @property
    def ok(self) -> bool:
        return self.version is not None and _at_least(self.version, self.component.minimum)

    def line(self) -> str:
        c = self.component
        if self.ok:
            return f"✓ {c.label} {self.version}"
        if self.version is None:
            return f"✗ {c.label} : absent (il faut {c.label} ≥ {c.minimum})"
        return f"✗ {c.label} {self.version} : trop ancien (il faut {c.label} ≥ {c.minimum})"


Lookup = Callable[[Component], "tuple[str, str] | None"]


def check(track: str, lookup: Lookup = installed) -> list[Finding]:
    """What the notebooks of ``track`` need, each with what is installed of it."""
    return [Finding(c, *(lookup(c) or (None, None))) for c in TRACKS[track][1]]


def install_command(
    findings: Sequence[Finding], python: str = sys.executable
) -> list[str] | None:
    """The pip command that installs what ``findings`` lack, keeping what is there (None: nothing).

    Every package already installed in range is pinned to its version (``torch==2.13.0``):
    pip then picks the torchvision built for that torch instead of upgrading torch to match
    the newest torchvision (a multi-GB download, and another CUDA build than Colab's).
    """
    missing = [f for f in findings if not f.ok]
    if not missing:
        return None
    wanted = []
    for f in missing:
        # An old TensorFlow is upgraded under its own name (never a second one beside it).
        name = f.dist or (_tensorflow_dist() if f.component.label == "tensorflow" else f.component.dists[0])
        wanted.append(f"{name}>={f.component.minimum}")
    kept = [f"{f.dist}=={f.version}" for f in findings if f.ok]
    return [python, "-m", "pip", "install", *wanted, *kept]


def _python_line() -> tuple[bool, str]:
    v = sys.version_info
    ok = PYTHON_MIN <= (v.major, v.minor) <= PYTHON_MAX
    where = f"Python {v.major}.{v.minor}.{v.micro}"
    if ok:
        return True, f"✓ {where}"
    return False, (
        f"✗ {where} : le cours demande Python {PYTHON_MIN[0]}.{PYTHON_MIN[1]} à "
        f"{PYTHON_MAX[0]}.{PYTHON_MAX[1]}"
    )


def _shell(cmd: Sequence[str]) -> str:
    """``cmd`` as a student types it in a notebook cell (``%pip``) — quoted where needed."""
    args = [a if re.fullmatch(r"[\w.+\-=/]+", a) else f'"{a}"' for a in cmd[3:]]
    return "%pip install " + " ".join(args[1:])


def _data_line(fetch: bool) -> tuple[bool, str]:
    """The data set: fetched (Colab) or only looked at (elsewhere: `stat` calls, no network)."""
    from autograder.data import fashion_mnist

    if fetch:
        try:
            fashion_mnist.ensure()
        except Exception as exc:  # noqa: BLE001 - DataError, network: one line for the student
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return False, f"✗ Fashion-MNIST : téléchargement impossible ({first})"
        return True, "✓ Fashion-MNIST (miroir officiel, sommes de contrôle vérifiées)"
    if fashion_mnist.status().ready:
        return True, "✓ Fashion-MNIST installé"
    return True, (
        "· Fashion-MNIST pas encore installé : il sera téléchargé depuis le miroir officiel "
        "(sommes de contrôle vérifiées) au premier chargement ; ou lancez `course data` "
        "dans un terminal dès maintenant."
    )


def prepare(
    track: str,
    *,
    colab: bool | None = None,
    run: Callable[..., object] = subprocess.run,
    lookup: Lookup = installed,
    data: bool | None = None,
) -> bool:
    """Check (and on Colab, install) what a notebook of ``track`` needs; print it in French.

    Args:
        track: ``"numpy"``, ``"torch"`` or ``"tf"``.
        colab: force the Colab branch on or off (default: :func:`in_colab`).
        run: runs the install command on Colab (tests give a recorder).
        lookup: finds what is installed of a component (tests simulate machines).
        data: check the data set (default: the tracks that read Fashion-MNIST).

    Returns:
        True when everything the notebook needs is there.
    """
    colab = in_colab() if colab is None else colab
    data = track in DATA_TRACKS if data is None else data
    name = TRACKS[track][0]
    print(f"Vérification de l'installation (notebook {name}{', Google Colab' if colab else ''}) :")
    ready, line = _python_line()
    print(f"  {line}")
    findings = check(track, lookup)
    command = install_command(findings)
    if command is not None and colab:
        print("  Installation de ce qui manque (les paquets déjà présents sont gardés) :")
        print(f"    {_shell(command)}")
        run([*command[:4], "-q", *command[4:]], check=False)
        importlib.invalidate_caches()
        findings = check(track, lookup)
        command = install_command(findings)
    for f in findings:
        print(f"  {f.line()}")
    try:
        course = importlib.metadata.version("cnn-course")
    except importlib.metadata.PackageNotFoundError:
        course = None
    print(f"  ✓ paquet du cours{f' (cnn-course {course})' if course else ''}")
    if data:
        data_ok, line = _data_line(fetch=colab)
        ready = ready and data_ok
        print(f"  {line}")
    ready = ready and command is None
    if ready:
        print("Tout est prêt.")
    elif command is not None:
        print(
            "Il manque des paquets. Installez-les (les versions déjà installées sont gardées), "
            "dans une cellule :\n"
            f"    {_shell(command)}\n"
            "puis redémarrez le noyau (menu Kernel → Restart Kernel) et relancez cette cellule."
        )
    else:
        print("L'installation n'est pas complète : voyez les lignes marquées ✗ ci-dessus.")
    return ready


# ---------------------------------------------------------------------------------------------
# The cell itself (written into every source notebook; release/ is generated from them).
# ---------------------------------------------------------------------------------------------

#: The setup cell's nbgrader identity: a locked cell, neither graded nor an answer.
SETUP_CELL_ID = "setup"


def setup_cell_source(track: str) -> str:
    """The source of the first code cell of a notebook of ``track``."""
    if track not in TRACKS:
        raise ValueError(f"unknown track {track!r}")
    return (
        _CELL.replace("COURSE_PACKAGE_VALUE", COURSE_PACKAGE).replace("TRACK", track).rstrip("\n")
    )


_CELL = """\
# Préparation : exécutez cette cellule en premier. Sur Google Colab, elle installe le paquet
# du cours ; ailleurs, elle vérifie votre installation et dit ce qui manque.
import importlib.util
import subprocess
import sys

COURSE_PACKAGE = "COURSE_PACKAGE_VALUE"
if "google.colab" in sys.modules and importlib.util.find_spec("autograder") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", COURSE_PACKAGE], check=True)
    importlib.invalidate_caches()
try:
    from autograder.student_setup import prepare
except ImportError:
    print(f"Le paquet du cours n'est pas installé pour ce noyau ({sys.executable}). Installez-le :")
    print(f'    %pip install "{COURSE_PACKAGE}"')
    print("puis redémarrez le noyau (Kernel → Restart Kernel) et relancez cette cellule.")
else:
    prepare("TRACK")
"""


#: The track of each notebook (source/<assignment>/<notebook>.ipynb).
NOTEBOOK_TRACKS = {
    "m1-intro/cnn_vs_dense": "numpy",
    "m2-setup/environment": "numpy",
    "m3-fundamentals/convolution": "numpy",
    "m3-fundamentals/activations_pooling": "numpy",
    "m3-fundamentals/normalization": "numpy",
    "m4-tensorflow/cnn_keras": "tf",
    "m5-pytorch/cnn_torch": "torch",
}


def track_of(notebook: str) -> str:
    """The track of ``<assignment>/<notebook>`` (``numpy`` for modules without a framework)."""
    key = notebook.removesuffix(".ipynb")
    if key in NOTEBOOK_TRACKS:
        return NOTEBOOK_TRACKS[key]
    return "tf" if "tensorflow" in key else "torch" if "pytorch" in key else "numpy"


def write_setup_cells(source_root: str) -> list[str]:
    """Put the setup cell (after the title) in every source notebook; the notebooks changed."""
    import json
    from pathlib import Path

    changed = []
    for path in sorted(Path(source_root).glob("*/*.ipynb")):
        key = f"{path.parent.name}/{path.stem}"
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        lines = setup_cell_source(track_of(key)).splitlines(keepends=True)
        cell = {
            "cell_type": "code",
            "execution_count": None,
            "id": SETUP_CELL_ID,
            "metadata": {"nbgrader": {"grade": False, "grade_id": SETUP_CELL_ID, "locked": True,
                                      "schema_version": 3, "solution": False}},
            "outputs": [],
            "source": lines,
        }
        cells = nb["cells"]
        at = next((i for i, c in enumerate(cells) if c.get("id") == SETUP_CELL_ID), None)
        if at is None:
            cells.insert(1 if cells and cells[0]["cell_type"] == "markdown" else 0, cell)
        else:
            cells[at] = cell
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(key)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.student_setup",
        description="Vérifie l'installation du cours (et installe ce qui manque avec --install).",
    )
    parser.add_argument("track", nargs="?", default="numpy", choices=sorted(TRACKS),
                        help="le framework de vos notebooks : torch, tf ou numpy (défaut)")
    parser.add_argument("--install", action="store_true",
                        help="installer ce qui manque en gardant les versions déjà installées")
    parser.add_argument("--write-cells", metavar="SOURCE", nargs="?", const="source",
                        help=argparse.SUPPRESS)  # staff: rewrite the notebooks' setup cells
    args = parser.parse_args(argv)
    if args.write_cells:
        for key in write_setup_cells(args.write_cells):
            print(f"setup cell written: {key}")
        return 0
    if args.install:
        command = install_command(check(args.track))
        if command is not None:
            print("Installation : " + " ".join(command[3:]), flush=True)
            if subprocess.run(command, check=False).returncode != 0:
                return 1
            importlib.invalidate_caches()
    return 0 if prepare(args.track, colab=False) else 1


if __name__ == "__main__":
    raise SystemExit(main())
