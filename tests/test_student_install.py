"""Students anywhere: the student install, the notebooks' setup cell, French `course validate`.

- the setup cell: in every notebook, after the title, as :func:`student_setup.setup_cell_source`
  writes it; its Colab branch with Colab simulated (the install command is checked, never run);
  the non-Colab branch in a real Jupyter kernel;
- the student install resolves, wheels only, for Python 3.10 / 3.12 / 3.13 on manylinux x86_64,
  macOS arm64 and Windows amd64 with each framework extra (``index`` and ``slow``: skipped when
  the package index cannot be reached);
- a machine that already has another PyTorch in range keeps it, and the visible checks of m3 and
  m5 pass with it (``slow``: builds a virtual environment);
- no English in what `course validate` prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
import urllib.request
from pathlib import Path

import nbformat
import pytest
import tomllib

from autograder import student_setup
from autograder.grading import pipeline

ROOT = pipeline.COURSE_ROOT
SOURCES = sorted((ROOT / "source").glob("*/*.ipynb"))
NOTEBOOKS = [f"{p.parent.name}/{p.stem}" for p in SOURCES]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


# ---- the setup cell in every notebook -------------------------------------------------------


@pytest.mark.parametrize("key", NOTEBOOKS)
@pytest.mark.parametrize("tree", ["source", "release"])
def test_every_notebook_starts_with_the_setup_cell(tree, key):
    nb = nbformat.read(str(ROOT / tree / f"{key}.ipynb"), as_version=4)
    intro, setup = nb.cells[0], nb.cells[1]
    assert intro.cell_type == "markdown" and intro.source.startswith("# ")
    assert "### Comment vérifier et rendre votre travail" in intro.source
    assert f"`course validate {Path(key).name}.ipynb`" in intro.source and "Submit" in intro.source
    assert setup.cell_type == "code" and setup.id == student_setup.SETUP_CELL_ID
    assert setup.source == student_setup.setup_cell_source(student_setup.track_of(key))
    meta = setup.metadata["nbgrader"]
    # Locked (nbgrader restores it at grading), neither graded nor an answer.
    assert meta["locked"] and not meta["grade"] and not meta["solution"]
    assert meta["grade_id"] == student_setup.SETUP_CELL_ID
    assert not setup.outputs


def test_the_setup_cells_are_written_from_the_one_setting(tmp_path):
    """`--write-cells` is idempotent on the committed sources (the setting is the one they hold)."""
    copy = tmp_path / "source"
    shutil.copytree(ROOT / "source", copy)
    assert student_setup.write_setup_cells(str(copy)) == []
    assert f'COURSE_PACKAGE = "{student_setup.COURSE_PACKAGE}"' in student_setup.setup_cell_source("torch")
    readme = (ROOT / "README.md").read_text()
    assert student_setup.COURSE_PACKAGE in readme  # README names the published location


def test_the_tracks_minimums_are_pyprojects():
    """student_setup's minimums are the lower bounds pyproject.toml declares (one list kept in step)."""
    from packaging.requirements import Requirement

    declared = {}
    for line in PYPROJECT["dependencies"] + [r for e in ("torch", "tf") for r in PYPROJECT["optional-dependencies"][e]]:
        req = Requirement(line)
        low = [s.version for s in req.specifier if s.operator == ">="]
        if low:
            declared[req.name] = low[0]
    for component in student_setup.BASE + student_setup.TORCH + student_setup.TF:
        name = "tensorflow-cpu" if component.label == "tensorflow" else component.label
        assert declared[name] == component.minimum, component
    assert declared["tensorflow"] == declared["tensorflow-cpu"]
    low = PYPROJECT["requires-python"]
    assert low == f">={student_setup.PYTHON_MIN[0]}.{student_setup.PYTHON_MIN[1]},<3.{student_setup.PYTHON_MAX[1] + 1}"


# ---- the Colab branch, Colab simulated --------------------------------------------------------


def _colab_machine(have: dict[str, tuple[str, str]]):
    """A lookup that answers as a machine with ``have`` = {label: (dist, version)} installed."""
    return lambda component: have.get(component.label)


#: Colab's runtime (its own versions; any in range would do).
COLAB = {
    "numpy": ("numpy", "2.0.2"), "scipy": ("scipy", "1.16.1"), "scikit-image": ("scikit-image", "0.25.2"),
    "matplotlib": ("matplotlib", "3.10.0"), "torch": ("torch", "2.8.0+cu126"),
    "torchvision": ("torchvision", "0.23.0+cu126"), "tensorflow": ("tensorflow", "2.19.0"),
    "keras": ("keras", "3.10.0"),
}


def test_the_setup_cell_installs_the_course_on_colab_and_only_there(monkeypatch, capsys):
    """The cell itself, run with Colab simulated: `google.colab` imported, no `autograder` yet."""
    import importlib.util

    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "autograder" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    prepared = []
    monkeypatch.setattr(student_setup, "prepare", lambda track: prepared.append(track))
    exec(student_setup.setup_cell_source("torch"), {})
    assert calls == [([sys.executable, "-m", "pip", "install", "-q", student_setup.COURSE_PACKAGE], {"check": True})]
    assert prepared == ["torch"]
    # Not Colab: nothing is installed, the install is only checked.
    monkeypatch.delitem(sys.modules, "google.colab")
    calls.clear()
    exec(student_setup.setup_cell_source("tf"), {})
    assert calls == [] and prepared == ["torch", "tf"]


def test_without_the_course_package_the_cell_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "autograder.student_setup", None)  # import fails
    exec(student_setup.setup_cell_source("numpy"), {})
    out = capsys.readouterr().out
    assert "Le paquet du cours n'est pas installé" in out
    assert f'%pip install "{student_setup.COURSE_PACKAGE}"' in out


@pytest.mark.parametrize("track", ["torch", "tf"])
def test_on_colab_prepare_keeps_colabs_frameworks_and_fetches_the_data(track, monkeypatch, capsys):
    """Colab has every framework in range: nothing to install, the data set is fetched."""
    from autograder.data import fashion_mnist

    fetched, calls = [], []
    monkeypatch.setattr(fashion_mnist, "ensure", lambda *a, **k: fetched.append(True))
    ok = student_setup.prepare(track, colab=True, run=lambda *a, **k: calls.append(a),
                               lookup=_colab_machine(COLAB))
    out = capsys.readouterr().out
    assert ok and calls == [] and fetched == [True]
    assert "Google Colab" in out and "Tout est prêt." in out and "sommes de contrôle vérifiées" in out


def test_on_colab_what_is_missing_is_installed_pinned_to_what_is_there(monkeypatch, capsys):
    """torchvision missing beside Colab's torch: pip is asked for torchvision and told to keep
    torch (and NumPy & co.) at their versions; the command is recorded, not run."""
    from autograder.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "ensure", lambda *a, **k: None)
    have = {k: v for k, v in COLAB.items() if k != "torchvision"}
    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        have["torchvision"] = ("torchvision", "0.23.0+cu126")  # what pip would have done

    ok = student_setup.prepare("torch", colab=True, run=run, lookup=_colab_machine(have))
    assert ok
    (cmd,) = calls
    assert cmd[:5] == [sys.executable, "-m", "pip", "install", "-q"]
    assert "torchvision>=0.17" in cmd and "torch==2.8.0+cu126" in cmd and "numpy==2.0.2" in cmd
    assert not any(a.startswith(("tensorflow", "keras")) for a in cmd)  # another track's: untouched
    assert "%pip install" in capsys.readouterr().out


def test_elsewhere_prepare_installs_nothing_and_says_what_is_missing(monkeypatch, capsys):
    have = {k: v for k, v in COLAB.items() if k not in ("keras",)}
    have["tensorflow"] = ("tensorflow-macos", "2.15.0")  # too old, under another pip name
    calls = []
    ok = student_setup.prepare("tf", colab=False, run=lambda *a, **k: calls.append(a),
                               lookup=_colab_machine(have), data=False)
    out = capsys.readouterr().out
    assert not ok and calls == []
    assert "✗ tensorflow 2.15.0 : trop ancien (il faut tensorflow ≥ 2.16)" in out
    assert "✗ keras : absent (il faut keras ≥ 3.0)" in out
    # Upgraded under its own name, never a second TensorFlow beside it; the rest kept.
    assert '%pip install "tensorflow-macos>=2.16" "keras>=3.0" numpy==2.0.2' in out
    assert "redémarrez le noyau" in out


def test_a_new_tensorflow_is_tensorflow_where_tensorflow_cpu_has_no_wheel(monkeypatch):
    findings = student_setup.check("tf", _colab_machine({}))
    for platform_, machine, name in [("darwin", "arm64", "tensorflow"), ("darwin", "x86_64", "tensorflow-cpu"),
                                     ("linux", "x86_64", "tensorflow-cpu"), ("win32", "AMD64", "tensorflow-cpu")]:
        monkeypatch.setattr(sys, "platform", platform_)
        monkeypatch.setattr(student_setup.platform, "machine", lambda m=machine: m)
        assert f"{name}>=2.16" in student_setup.install_command(findings), (platform_, machine)


def test_the_setup_cell_runs_in_a_real_kernel_and_says_all_is_ready(tmp_path):
    """The non-Colab branch, in a plain Jupyter kernel of this environment: one cell per track."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(student_setup.setup_cell_source(t)) for t in ("numpy", "torch", "tf")]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell, name in zip(nb.cells, ("NumPy", "PyTorch", "TensorFlow"), strict=True):
        out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
        assert not [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"], cell.outputs
        assert f"Vérification de l'installation (notebook {name}) :" in out
        assert out.rstrip().endswith("Tout est prêt."), out
        assert "Colab" not in out and "✗" not in out


# ---- the student install resolves everywhere (package index) ----------------------------------

#: pip evaluates environment markers for the interpreter that runs it, even with --platform; this
#: runs pip with the target's marker environment (``tensorflow`` on macOS arm64, torch's CUDA
#: wheels on Linux only…), so that the dry run resolves what that machine would install.
PIP_FOR = """\
import json, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv[1])
default = markers.default_environment
markers.default_environment = lambda: {**default(), **target}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""

PLATFORMS = {
    "manylinux_x86_64": (["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
                         {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                          "os_name": "posix"}),
    "macos_arm64": (["macosx_14_0_arm64"],
                    {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                     "os_name": "posix"}),
    "windows_amd64": (["win_amd64"],
                      {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                       "os_name": "nt"}),
}


def _index_reachable() -> str | None:
    """None when the package index answers, else why not."""
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/") + "/pip/"
    try:
        with urllib.request.urlopen(url, timeout=15) as reply:  # noqa: S310 - the index's own URL
            reply.read(1)
    except Exception as exc:  # noqa: BLE001 - offline, proxy, DNS: all mean "cannot resolve here"
        return f"package index unreachable ({url}: {type(exc).__name__})"
    return None


def _index_only_env() -> dict[str, str]:
    """pip as on a student's machine: the package index only, none of this host's pip settings
    (local wheel folders, extra local indexes, version caps), which also keeps pip from copying
    multi-GB local CUDA wheels to read their metadata. The index URL and certificates stay."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _build_wheel(dest: Path) -> Path:
    """The course's wheel, built from a copy of the package (what a student's pip would build)."""
    src = dest / "cnn-course"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "autograder", src / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dest / "dist"), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = (dest / "dist").glob("cnn_course-*.whl")
    return wheel


@pytest.fixture(scope="module")
def course_wheel(tmp_path_factory):
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def index():
    why = _index_reachable()
    if why:
        pytest.skip(why)


def test_the_wheel_ships_the_check_library_and_never_the_solutions(course_wheel):
    import zipfile

    names = zipfile.ZipFile(course_wheel).namelist()
    assert "autograder/student_setup.py" in names and "autograder/checks/conv.py" in names
    assert not [n for n in names if n.startswith("solutions/")]
    meta = zipfile.ZipFile(course_wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Python: <3.14,>=3.10" in meta


@pytest.mark.index
@pytest.mark.slow  # the registry may serve no PEP 658 metadata: pip then downloads GBs of wheels
@pytest.mark.parametrize("extra", ["torch", "tf"])
@pytest.mark.parametrize("where", sorted(PLATFORMS))
@pytest.mark.parametrize("python", ["3.10", "3.12", "3.13"])
def test_the_student_install_resolves_wheels_only(index, course_wheel, tmp_path, python, where, extra):
    tags, marker_env = PLATFORMS[where]
    runner = tmp_path / "pip_for.py"
    runner.write_text(PIP_FOR)
    env = {**marker_env, "python_version": python, "python_full_version": f"{python}.0",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    report = tmp_path / "report.json"
    cmd = [sys.executable, str(runner), json.dumps(env), "install", "--dry-run", "--ignore-installed",
           "--only-binary=:all:", "--python-version", python, *[a for t in tags for a in ("--platform", t)],
           "--target", str(tmp_path / "target"), "--report", str(report), "-q",
           f"cnn-course[{extra},student] @ {course_wheel.as_uri()}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_index_only_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
                 for i in json.loads(report.read_text())["install"]}
    assert {"numpy", "scipy", "scikit-image", "matplotlib", "jupyterlab", "nbgrader"} <= set(installed)
    if extra == "torch":
        assert {"torch", "torchvision"} <= set(installed)
    else:
        tf = "tensorflow" if where == "macos_arm64" else "tensorflow-cpu"
        assert tf in installed and "keras" in installed, installed
        assert ("tensorflow-cpu" if tf == "tensorflow" else "tensorflow") not in installed


# ---- a machine that already has another PyTorch keeps it --------------------------------------


def _local_torch_213() -> Path | None:
    """A torch 2.13.0 wheel for this interpreter in pip's find-links (this machine: /opt/wheels)."""
    links = os.environ.get("PIP_FIND_LINKS", "")
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    links += " " + " ".join(re.findall(r"find-links='([^']*)'", proc.stdout))
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    for folder in links.split():
        for wheel in Path(folder.removeprefix("file://")).glob(f"torch-2.13.0*-{tag}-*.whl"):
            return wheel
    return None


def _visible_scores(out: str) -> list[tuple[str, float, float]]:
    return [(m[1], float(m[2].replace(",", ".")), float(m[3].replace(",", ".")))
            for m in re.finditer(r"Question \d+ — cellule (\S+) : ([\d,]+) / ([\d,]+)", out)]


#: m5's questions whose visible checks need no torchvision (PyPI's torchvision is built against
#: PyPI's CUDA torch: beside the CPU torch 2.13.0 file it does not import, 'torchvision::nms').
M5_WITHOUT_TORCHVISION = ["cnn", "cnn-spec-tests", "my_conv2d", "custom-conv-tests", "train_one_epoch",
                          "train-one-epoch-tests", "evaluate", "evaluate-tests", "predict", "predict-tests"]


@pytest.mark.slow
@pytest.mark.torch
def test_a_machine_with_torch_2_13_keeps_it_and_passes_the_visible_checks(index, course_wheel, tmp_path):
    wheel = _local_torch_213()
    if wheel is None:
        pytest.skip("no torch 2.13.0 wheel for this Python in pip's find-links (this machine's /opt/wheels)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")

    def pip(*args: str) -> None:
        proc = subprocess.run([py, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def torch_version() -> str:
        return subprocess.run([py, "-c", "import torch; print(torch.__version__)"],
                              capture_output=True, text=True, check=True).stdout.strip()

    pip("--upgrade", "pip")
    pip(str(wheel))
    assert torch_version() == "2.13.0+cpu"
    # The student install, as README says: the course, then what the PyTorch track lacks.
    pip(f"cnn-course @ {course_wheel.as_uri()}", "nbclient", "ipykernel")
    proc = subprocess.run([py, "-m", "autograder.student_setup", "torch", "--install"],
                          capture_output=True, text=True, timeout=900)
    assert "torch==2.13.0+cpu" in proc.stdout, proc.stdout + proc.stderr
    assert torch_version() == "2.13.0+cpu"  # kept: pip chose the torchvision built for it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),
               TF_CPP_MIN_LOG_LEVEL="3")
    work = tmp_path / "work"
    work.mkdir()
    # m3: every notebook, solutions filled in, validated by the student's `course validate`.
    for source in sorted((ROOT / "source" / "m3-fundamentals").glob("*.ipynb")):
        nb = pipeline.fill_solutions(ROOT / "release" / "m3-fundamentals" / source.name,
                                     pipeline.solution_sources(source))
        path = work / source.name
        nbformat.write(nb, str(path))
        run = subprocess.run([py, "-m", "autograder.cli", "validate", str(path)], capture_output=True,
                             text=True, env=env, cwd=work, timeout=900)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        scores = _visible_scores(run.stdout)
        assert scores and all(got == full for _, got, full in scores), (source.name, scores)
        assert "internal.error" not in run.stdout and "Tout est prêt." in run.stdout
    # m5: the visible checks that need no torchvision, in the notebook's order.
    source = ROOT / "source" / "m5-pytorch" / "cnn_torch.ipynb"
    nb = pipeline.fill_solutions(ROOT / "release" / "m5-pytorch" / "cnn_torch.ipynb", pipeline.solution_sources(source))
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    imports = "\n".join(ln for ln in cells["imports"].splitlines() if "torchvision" not in ln and "autograder.data" not in ln)
    script = [imports]
    for grade_id in M5_WITHOUT_TORCHVISION:
        body = cells[grade_id]
        if grade_id.endswith("-tests"):
            *head, last = body.rstrip().splitlines()
            body = "\n".join([*head, f"print('SCORE', {grade_id!r}, {last}, g.points)"])
        script.append(body)
    run = subprocess.run([py, "-c", "\n\n".join(script)], capture_output=True, text=True, env=env,
                         cwd=work, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    scores = re.findall(r"^SCORE (\S+) (\S+) (\S+)$", run.stdout, re.M)
    assert len(scores) == 5 and all(float(got) == float(full) for _, got, full in scores), run.stdout[-3000:]
    assert torch_version() == "2.13.0+cpu"


# ---- `course validate` speaks French ------------------------------------------------------------

#: English a student could meet: nbgrader's feedback labels and our own command-line phrases.
ENGLISH = re.compile(
    r"Student's answer|Comments|No response|Traceback|\b(the|is|are|does|not|cannot|did you|mean|"
    r"exist|error|failed|missing|expected|found|should|must|please|with|without|and|of|to|"
    r"notebook cannot|needs|Question \d+ of|points? earned|score of)\b"
)


def _english(text: str) -> list[str]:
    """English words left once code in backticks is set aside."""
    text = re.sub(r"`[^`]*`", "", text)
    return [m.group(0) for m in ENGLISH.finditer(text)]


def test_course_validate_speaks_french_from_start_to_end(tmp_path):
    """A partly done notebook (one answer right, one wrong, stubs) and every error a student can
    meet: nothing English in what `course validate` prints, numbers with a decimal comma."""
    from graded_class import ASSIGNMENT, NOTEBOOK

    release = ROOT / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    answers = pipeline.solution_sources(ROOT / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    nb = pipeline.fill_solutions(release, {
        "correlate1d": answers["correlate1d"],
        "convolve1d": answers["convolve1d"].replace("np.asarray(k)[::-1]", "k"),
    })
    work = tmp_path / "travail"
    work.mkdir()
    good = work / "mon_notebook.ipynb"
    nbformat.write(nb, str(good))
    (work / "abime.ipynb").write_text("{ pas du json")
    (work / "notes.txt").write_text("x")
    env = pipeline.env_with_venv()
    outputs = []
    for target, rc in [(good, 0), (work / "abime.ipynb", 2), (work / "notes.txt", 2),
                       (work / "mon_notebok.ipynb", 2), (work / "absent.ipynb", 2)]:
        proc = subprocess.run([sys.executable, "-m", "autograder.cli", "validate", str(target)],
                              capture_output=True, text=True, env=env, cwd=work, timeout=600)
        assert proc.returncode == rc, (target, proc.stdout[-2000:], proc.stderr[-2000:])
        outputs.append(proc.stdout + proc.stderr)
    text = "\n".join(outputs)
    assert "Tout est prêt." in text and "Non tenté" in text and "[conv1d.flip]" in text
    assert "(vouliez-vous dire mon_notebook.ipynb ?)" in text
    assert "ne peut pas être lu comme un notebook" in text and "n'existe pas" in text
    assert _english(text.replace(str(work), "")) == [], text
