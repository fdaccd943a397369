"""`course demo [--all]`: the course's main job on a generated class.

Builds a course folder, releases the module (``--all``: every module ``release/`` holds) with
nbgrader, writes submissions for a small class (complete, partial with classic misconceptions,
untouched, buggy, hostile) with their submission times, grades them in parallel with
`course grade`'s engine (real nbgrader autograde with the project's config, on Dask), writes
each student's feedback (no hidden test) and the class report, and prints the grade table and
where everything is.

The misconceptions (:data:`MISCONCEPTIONS`) are the bugs students really write: a kernel
flipped in a convolution, padding forgotten, a softmax without the max subtracted, the biased
variance in batch norm's running statistics, a training loop without ``zero_grad`` (module 5's
come from ``tests/fixtures/m5_mutants/``)… so that the report's failure codes name notions to
teach again, not only exceptions.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autograder.commands.grade import format_table
from autograder.grading import pipeline

#: student id -> how their notebooks are filled (French descriptions for the table legend).
CLASS = {
    "alice": "toutes les fonctions écrites (solution)",
    "bruno": "la première moitié des fonctions écrites, avec des erreurs classiques",
    "chloe": "notebook rendu sans modification (Non tenté)",
    "david": "toutes les fonctions écrites avec des erreurs classiques ; la dernière sans erreur classique "
             "lève une NameError",
    "eve": "rien d'écrit, mais cellules de test réécrites (« 4.0 »), supprimées ou marquées skip-execution",
}
#: Hours before the demo's run at which each student submitted (nbgrader's ``timestamp.txt``).
SUBMITTED_HOURS_AGO = {"alice": 50, "bruno": 26, "chloe": 3, "david": 27.5, "eve": 1}

#: Where module 5's mutants live (one solution cell per file, see their README).
M5_MUTANTS = pipeline.COURSE_ROOT / "tests" / "fixtures" / "m5_mutants"


@dataclass(frozen=True)
class Misconception:
    """A classic bug some demo students write into one solution cell.

    Either ``edits`` (``(old, new)`` replacements applied to the reference solution; every
    ``old`` must occur in it) or ``fixture`` (the whole cell, a file of :data:`M5_MUTANTS`).
    """

    grade_id: str  # the solution cell
    label: str  # French, for the legend
    edits: tuple[tuple[str, str], ...] = ()
    fixture: str = ""
    students: tuple[str, ...] = ("bruno", "david")
    expect: str = ""  # the failure code the checks report (documentation; tests assert on it)

    def apply(self, solution: str) -> str:
        """The student's buggy cell, from the reference ``solution`` of the cell."""
        if self.fixture:
            lines = (M5_MUTANTS / f"{self.fixture}.py").read_text(encoding="utf-8").splitlines()
            return "\n".join(ln for ln in lines if not ln.startswith(("# cell:", "# expect:"))).strip() + "\n"
        for old, new in self.edits:
            if old not in solution:
                raise ValueError(f"misconception {self.label!r}: {old!r} is not in the solution of {self.grade_id}")
            solution = solution.replace(old, new)
        return solution


_NO_PAD_CONV = (("xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))", "xp = x"),
                ("+ 2 * padding ", ""))
_NO_PAD_POOL = (("xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=-np.inf)",
                 "xp = x"), ("+ 2 * padding ", ""))

#: ``assignment/notebook`` -> its misconceptions. A module without an entry gets the profiles
#: of :data:`CLASS` without them (later modules join ``--all`` by themselves).
MISCONCEPTIONS: dict[str, list[Misconception]] = {
    "m1-intro/cnn_vs_dense": [
        Misconception("dense_params", "biais oubliés dans le compte d'une couche dense",
                      (("n_in * n_out + (n_out if bias else 0)", "n_in * n_out"),), expect="count.dense_bias"),
        Misconception("conv_output_shape", "padding oublié dans la taille de sortie",
                      (("+ 2 * padding ", ""),), students=("david",), expect="conv_shape.padding"),
        Misconception("q2", "mauvaise réponse au quiz 2", (('q2 = "a"', 'q2 = "b"'),), students=("bruno",),
                      expect="quiz.wrong"),
    ],
    "m2-setup/environment": [
        Misconception("seed_everything", "graine de PyTorch oubliée",
                      (("torch.manual_seed(seed)", "pass"),), expect="seed.torch"),
        Misconception("to_device", "dictionnaires non parcourus",
                      (("    if isinstance(x, dict):\n        return {key: to_device(value, device) for key, value in x.items()}\n", ""),),
                      students=("david",), expect="to_device.nested"),
    ],
    "m3-fundamentals/convolution": [
        Misconception("convolve1d", "noyau non retourné (corrélation au lieu de convolution)",
                      (("correlate1d(x, np.asarray(k)[::-1])", "correlate1d(x, k)"),), expect="conv1d.flip"),
        Misconception("conv2d_forward", "noyau retourné dans conv2d (une convolution au lieu de la corrélation)",
                      (("np.tensordot(patch, w, axes", "np.tensordot(patch, w[:, :, ::-1, ::-1], axes"),),
                      students=("david",), expect="conv.flip"),
        Misconception("conv2d_forward", "padding oublié dans conv2d", _NO_PAD_CONV, students=("bruno",),
                      expect="conv.padding"),
    ],
    "m3-fundamentals/activations_pooling": [
        Misconception("softmax", "softmax sans soustraire le maximum (instable)",
                      (("np.exp(x - np.max(x, axis=axis, keepdims=True))", "np.exp(x)"),), expect="softmax.unstable"),
        Misconception("leaky_relu_backward", "pente négative oubliée dans le gradient",
                      (("np.where(x > 0, 1.0, negative_slope)", "(x > 0)"),), students=("bruno",),
                      expect="leaky_relu_backward.slope"),
        Misconception("max_pool2d_forward", "padding oublié dans le max pooling", _NO_PAD_POOL, students=("david",),
                      expect="maxpool.shape"),
    ],
    "m3-fundamentals/normalization": [
        Misconception("batchnorm_forward", "variance biaisée dans la moyenne mobile",
                      (("momentum * var * m / (m - 1)", "momentum * var"),), expect="batchnorm.running_var_biased"),
        Misconception("batchnorm_backward", "termes de moyenne oubliés dans le gradient",
                      (("dx = inv_std * (dx_hat - dx_hat.mean(axis=axes, keepdims=True) - x_hat * (dx_hat * x_hat).mean(axis=axes, keepdims=True))",
                        "dx = inv_std * dx_hat"),), students=("david",), expect="batchnorm_backward.mean_terms"),
    ],
    "m4-tensorflow/cnn_keras": [
        Misconception("compile_model", "from_logits toujours False",
                      (("from_logits=from_logits)", "from_logits=False)"),), expect="compile.from_logits"),
        Misconception("preprocess", "pixels non ramenés dans [0, 1]", (("/ 255.0", ""),), students=("david",),
                      expect="preprocess.range"),
    ],
    "m5-pytorch/cnn_torch": [
        Misconception("train_one_epoch", "optimizer.zero_grad() oublié", fixture="train_no_zero_grad",
                      expect="train.zero_grad"),
        Misconception("my_conv2d", "noyau retourné dans la convolution maison", fixture="conv_flipped",
                      students=("david",), expect="custom_conv.values"),
        Misconception("cnn", "padding oublié dans le CNN", fixture="cnn_no_padding", students=("bruno",),
                      expect="cnn.layers"),
        Misconception("evaluate", "model.eval() oublié", fixture="eval_no_eval_mode", students=("david",),
                      expect="eval.mode"),
    ],
}


def misconceptions_of(assignment: str, notebook: str, student: str) -> list[Misconception]:
    """The misconceptions ``student`` writes into ``assignment/notebook`` (one per cell, the first)."""
    chosen: dict[str, Misconception] = {}
    for m in MISCONCEPTIONS.get(f"{assignment}/{notebook}", []):
        if student in m.students:
            chosen.setdefault(m.grade_id, m)
    return list(chosen.values())


def _tamper(nb):
    """Eve's notebook: claims full marks in the test cells instead of writing code."""
    tests = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    for cell in tests:
        cell.source = repr(float(cell.metadata["nbgrader"].get("points", 1)))
    if tests:
        tests[0].metadata.setdefault("tags", []).append("skip-execution")
        nb.cells.remove(tests[-1])
    return nb


def make_submission(release_nb: Path, source_nb: Path, profile: str, assignment: str | None = None):
    """A submission of ``profile`` (a key of :data:`CLASS`) built from the release notebook.

    ``assignment`` (default: the release notebook's folder name) selects the misconceptions.
    """
    assignment = assignment or Path(release_nb).parent.name
    solutions = pipeline.solution_sources(source_nb)
    ids = list(solutions)
    bugs = {m.grade_id: m for m in misconceptions_of(assignment, Path(release_nb).stem, profile)}
    if profile == "alice":
        answers = solutions
    elif profile == "bruno":
        answers = {gid: solutions[gid] for gid in ids[: max(1, len(ids) // 2)]}
    elif profile in ("chloe", "eve"):
        answers = {}
    elif profile == "david":
        answers = dict(solutions)
        last = ids[-1]
        if last not in bugs:
            # A typo in the last function: it raises NameError when the checks call it.
            answers[last] = solutions[last].replace("return ", "return variable_mal_nommee + ", 1)
    else:
        raise ValueError(profile)
    for gid, bug in bugs.items():  # a misconception's cell is written, with the bug
        answers[gid] = bug.apply(solutions[gid])
    nb = pipeline.fill_solutions(release_nb, answers)
    return _tamper(nb) if profile == "eve" else nb


def write_timestamp(folder: Path, when: datetime) -> None:
    """nbgrader's ``timestamp.txt`` (what ``nbgrader collect`` writes): autograde reads the
    submission time from it; without it the gradebook's timestamp stays empty."""
    (folder / "timestamp.txt").write_text(f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f} UTC\n", encoding="utf-8")


@dataclass
class Demo:
    """Where a demo course put things."""

    course: Path
    assignment: str  # the first (or only) module graded
    returncode: int
    results: dict = field(default_factory=dict)  # of ``assignment``: {student: {notebook: result}}
    feedback: list[Path] = field(default_factory=list)
    report: Path | None = None  # ``assignment``'s report (with several modules, see ``reports``)
    assignments: list[str] = field(default_factory=list)
    all_results: dict[str, dict] = field(default_factory=dict)  # assignment -> results
    reports: dict[str, Path] = field(default_factory=dict)  # assignment -> its report's index.html
    index: Path | None = None  # the reports' index page (several modules)


def released_modules(root: Path = pipeline.COURSE_ROOT) -> list[str]:
    """The modules ``release/`` holds (a module joins ``--all`` as soon as it is released)."""
    release = root / "release"
    return sorted(p.name for p in release.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if release.is_dir() else []


def build(course: Path, assignment: str | list[str], notebooks: list[str] | None = None, say=print) -> Demo:
    """Create, grade and report a demo class for ``assignment`` (or several) in ``course`` (replaced)."""
    from autograder.commands import feedback, report
    from autograder.grading import parallel

    names = [assignment] if isinstance(assignment, str) else list(assignment)
    if course.exists():
        shutil.rmtree(course)
    pipeline.make_course(course, names, notebooks=notebooks)
    now = datetime.now(UTC)
    demo = Demo(course, names[0], 0, assignments=names)
    count = 0
    for name in names:
        say(f"[1/5] nbgrader generate_assignment {name} → {course / 'release' / name}")
        release = pipeline.generate(course, name)
        nbs = sorted(release.glob("*.ipynb"))
        for student in CLASS:
            subs = {nb.stem: make_submission(nb, course / "source" / name / nb.name, student, name) for nb in nbs}
            folder = pipeline.submit(course, name, student, subs)
            write_timestamp(folder, now - timedelta(hours=SUBMITTED_HOURS_AGO.get(student, 0)))
        count += len(nbs)
    say(f"[2/5] {len(CLASS)} submissions × {count} notebook(s) written to {course / 'submitted'}")
    for student, what in CLASS.items():
        say(f"      {student}: {what}")
    say("[3/5] course grade: nbgrader autograde of each submission, in parallel on Dask …")
    # One cluster for every module (longest submissions first across them), as `course grade` does.
    reports = parallel.grade_many(course, names, say=lambda line: say(f"      {line}"))
    demo.returncode = 0 if all(r.ok for r in reports) else 1
    say("[4/5] feedback per student (hidden tests removed) …")
    for name in names:
        demo.all_results[name] = pipeline.results(course, name)
        graded = feedback.autograded_students(course, name)
        try:
            demo.feedback += feedback.generate(course, name, graded, say=lambda *a: None, quiet=True) if graded else []
        except RuntimeError as exc:  # shown, not fatal: the grades and the report still stand
            say(f"      {name}: feedback not written: {exc}")
    say("[5/5] class report …")
    written = report.build(course, names, course / "reports", say=lambda *a: None)
    demo.reports = dict(zip(names, written, strict=True))
    demo.results, demo.report = demo.all_results[names[0]], written[0]
    if len(names) > 1:
        demo.index = course / "reports" / "index.html"
    return demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="where to build the demo course (default: ./demo)")
    parser.add_argument("--assignment", default="m3-fundamentals", help="module to release and grade")
    parser.add_argument("--all", action="store_true",
                        help="every module release/ holds (slow: modules 4 and 5 train networks)")
    parser.add_argument("--notebook", action="append", default=None,
                        help="grade only this notebook of the module (repeatable; default: all)")
    parser.add_argument("--quiet", action="store_true", help="print only the final table and paths")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError
    from autograder.commands.release import assignments

    if args.all:
        names = released_modules()
        if not names:
            raise UsageError(f"no released module in {pipeline.COURSE_ROOT / 'release'}")
        if args.notebook:
            raise UsageError("--notebook names a notebook of one module: not with --all")
    else:
        if args.assignment not in assignments():
            raise UsageError(f"unknown module {args.assignment!r}; known: {', '.join(assignments())}")
        names = [args.assignment]
    if args.notebook:
        available = {p.stem for p in (pipeline.COURSE_ROOT / "source" / args.assignment).glob("*.ipynb")}
        unknown = [n for n in args.notebook if n not in available]
        if unknown:
            raise UsageError(f"no notebook {unknown[0]!r} in {args.assignment}; known: {', '.join(sorted(available))}")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    start = time.monotonic()
    demo = build(args.dir.resolve(), names if args.all else names[0], args.notebook, say)
    for name in demo.assignments:
        if len(demo.assignments) > 1:
            print(f"\n{name}")
        print(format_table(demo.all_results[name]))
    course = demo.course
    print(f"\ndone in {time.monotonic() - start:.0f} s")
    print(f"  gradebook:           {course / 'gradebook.db'}")
    print(f"  autograded:          {course / 'autograded'}")
    print(f"  feedback (HTML):     {course / 'feedback'}  ({len(demo.feedback)} files)")
    print(f"  class report:        {demo.index or demo.report}")
    return 0 if demo.returncode == 0 else 1
