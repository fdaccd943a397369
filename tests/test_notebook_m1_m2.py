"""End to end: real `nbgrader generate_assignment` + `autograde` of m1-intro and m2-setup.

One course folder and ONE autograde run per assignment for the whole class: the source notebook
(full marks), the untouched release (exactly 0) and three mutant students. Each mutant student
carries one plausible bug in EVERY graded function (functions are independent: `compare_models`
mutants count by themselves instead of calling the other mutated helpers), so three students
give three mutants per graded function. Every mutated cell must score partial credit (more
than 0, less than full) and name its bug's failure code in the feedback.
"""

from __future__ import annotations

import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook]

M1, M1_NB, M1_MAX = "m1-intro", "cnn_vs_dense", 15.0
M2, M2_NB, M2_MAX = "m2-setup", "environment", 10.0

COMPARE_TEMPLATE = """
def compare_models(h, w, c):
    {c_line}
    dense = (h * w * c + 1) * 128 + 129 * 10
    hh, ww = {pooled}
    cnn = 16 * c * 9 + 16 + 32 * 16 * 9 + 32 + 32 * hh * ww * 10 + 10
    return {{"dense": dense, "cnn": cnn}}
"""

EQUIVARIANCE_AXES_SWAPPED = """
def equivariance_error(layer, image, dy, dx):
    moved_then_layer = layer(translate(image, dx, dy))
    layer_then_moved = translate(layer(image), dx, dy)
    return float(np.max(np.abs(moved_then_layer - layer_then_moved)))
"""

# student: {solution grade_id: (old text or None for a whole new cell, new text)}
M1_MUTANTS = {
    "mutant-a": {
        "dense_params": ("return n_in * n_out + (n_out if bias else 0)", "return n_in * n_out"),
        "conv_params": ("return c_out * c_in * kh * kw", "return c_out * kh * kw"),
        "conv_output_shape": ("2 * padding", "padding"),
        "compare_models": (
            None,
            COMPARE_TEMPLATE.format(
                c_line="c = 1  # images en niveaux de gris", pooled="h // 4, w // 4"
            ),
        ),
        "equivariance_error": (
            "layer_then_moved = translate(layer(image), dy, dx)",
            "layer_then_moved = layer(image)",
        ),
        "q1": ('q1 = "c"', 'q1 = "a"'),
        "q2": ('q2 = "a"', 'q2 = " A "'),
    },
    "mutant-b": {
        "dense_params": (
            "return n_in * n_out + (n_out if bias else 0)",
            "return n_in * n_out + n_out",
        ),
        "conv_params": ("kh, kw = (k, k) if isinstance(k, int) else k", "kh, kw = k, k"),
        "conv_output_shape": (
            "return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1",
            "return -(-(h + 2 * padding - kh) // stride) + 1, -(-(w + 2 * padding - kw) // stride) + 1",
        ),
        "compare_models": (
            None,
            COMPARE_TEMPLATE.format(
                c_line="pass", pooled="((h + 1) // 2 + 1) // 2, ((w + 1) // 2 + 1) // 2"
            ),
        ),
        "equivariance_error": ("np.max(np.abs(", "np.mean(np.abs("),
        "q3": ('q3 = "d"', 'q3 = "e"'),
    },
    "mutant-c": {
        "dense_params": (
            "def dense_params(n_in, n_out, bias=True):",
            "def dense_params(n_in, n_out, bias=False):",
        ),
        "conv_params": (" + (c_out if bias else 0)", ""),
        "conv_output_shape": (
            "return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1",
            "return (w + 2 * padding - kw) // stride + 1, (h + 2 * padding - kh) // stride + 1",
        ),
        "compare_models": (
            None,
            COMPARE_TEMPLATE.format(
                c_line="w_cnn = h  # images carrées", pooled="h // 4, w_cnn // 4"
            ),
        ),
        "equivariance_error": (None, EQUIVARIANCE_AXES_SWAPPED),
        "q4": ('q4 = "b"', "q4 = 2"),
    },
}

# student: {graded cell: expected failure code, or None for a cell that keeps full marks}
M1_EXPECTED = {
    "mutant-a": {
        "count-dense": "count.dense_bias",
        "count-conv": "count.conv_channels",
        "conv-output-shape": "conv_shape.padding",
        "compare-models": "compare.dense",
        "equivariance": "equivariance.invariance",
        "quiz-1": "quiz.wrong",
        "quiz-2": None,
        "quiz-3": None,
        "quiz-4": None,
    },
    "mutant-b": {
        "count-dense": "count.dense_bias",
        "count-conv": "count.conv_kernel",
        "conv-output-shape": "conv_shape.stride",
        "compare-models": "compare.cnn",
        "equivariance": "equivariance.reduction",
        "quiz-1": None,
        "quiz-2": None,
        "quiz-3": "quiz.format",
        "quiz-4": None,
    },
    "mutant-c": {
        "count-dense": "count.dense_bias",
        "count-conv": "count.conv_bias",
        "conv-output-shape": "conv_shape.order",
        "compare-models": "compare.cnn",
        "equivariance": "equivariance.shift",
        "quiz-1": None,
        "quiz-2": None,
        "quiz-3": None,
        "quiz-4": "quiz.format",
    },
}

TO_DEVICE_TOP_LEVEL_ONLY = """
def to_device(x, device):
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device)
    return x
"""

TO_DEVICE_EVERY_LEAF = """
def to_device(x, device):
    if isinstance(x, dict):
        return {key: to_device(value, device) for key, value in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(value, device) for value in x)
    return x.to(device)
"""

VERSIONS_WITHOUT_TRY = """
def framework_versions():
    import tensorflow as tf
    import torch

    return {"numpy": np.__version__, "torch": torch.__version__, "tensorflow": tf.__version__}
"""

M2_MUTANTS = {
    "mutant-a": {
        "framework_versions": (None, VERSIONS_WITHOUT_TRY),
        "detect_device": (None, 'def detect_device():\n    return "cpu"'),
        "seed_everything": ("    random.seed(seed)\n", ""),
        "to_device": (None, TO_DEVICE_TOP_LEVEL_ONLY),
    },
    "mutant-b": {
        "framework_versions": ('"numpy": np.__version__', '"numpy": "1.26.4"'),
        "detect_device": (
            '        if torch.backends.mps.is_available():\n            return "mps"\n',
            "",
        ),
        "seed_everything": ("np.random.seed(seed)", "np.random.default_rng(seed)"),
        "to_device": (
            "return type(x)(to_device(value, device) for value in x)",
            "return [to_device(value, device) for value in x]",
        ),
    },
    "mutant-c": {
        "framework_versions": (
            'versions["tensorflow"] = tf.__version__',
            'import importlib.metadata\n\n        versions["tensorflow"] = importlib.metadata.version("tensorflow")',
        ),
        "detect_device": (
            'if torch.cuda.is_available():\n            return "cuda"\n        if torch.backends.mps.is_available():\n            return "mps"',
            'if torch.backends.mps.is_available():\n            return "mps"\n        if torch.cuda.is_available():\n            return "cuda"',
        ),
        "seed_everything": ("torch.manual_seed(seed)", "torch.cuda.manual_seed_all(seed)"),
        "to_device": (None, TO_DEVICE_EVERY_LEAF),
    },
}

M2_EXPECTED = {
    "mutant-a": {
        "framework-versions": "versions.missing",
        "detect-device": "device.cuda",
        "seed-everything": "seed.python",
        "to-device": "to_device.nested",
    },
    "mutant-b": {
        "framework-versions": "versions.numpy",
        "detect-device": "device.mps",
        "seed-everything": "seed.numpy",
        "to-device": "to_device.container",
    },
    "mutant-c": {
        "framework-versions": "versions.tf",
        "detect-device": "device.priority",
        "seed-everything": "seed.torch",
        "to-device": "to_device.leaves",
    },
}


def _submit_class(course, assignment: str, notebook: str, mutants: dict) -> None:
    """The source notebook, the untouched release and the mutant students of one assignment."""
    release = course / "release" / assignment / f"{notebook}.ipynb"
    source = course / "source" / assignment / f"{notebook}.ipynb"
    solutions = pipeline.solution_sources(source)
    pipeline.submit(course, assignment, "solution", {notebook: source})
    pipeline.submit(course, assignment, "untouched", {notebook: release})
    for student, changes in mutants.items():
        answers = dict(solutions)
        for grade_id, (old, new) in changes.items():
            if old is None:
                answers[grade_id] = new.strip("\n")
            else:
                assert old in answers[grade_id], (
                    f"{student}: {old!r} not in the solution of {grade_id}"
                )
                answers[grade_id] = answers[grade_id].replace(old, new)
        pipeline.submit(
            course, assignment, student, {notebook: pipeline.fill_solutions(release, answers)}
        )


@pytest.fixture(scope="module")
def course_results(tmp_path_factory):
    """Both assignments in one course folder: ONE generate and ONE autograde for the class.

    nbgrader accepts a glob as assignment id; starting it costs seconds on a loaded machine,
    so the two assignments share each command.
    """
    course = pipeline.make_course(tmp_path_factory.mktemp("m1m2") / "course", [M1, M2])
    pipeline.nbgrader(course, "generate_assignment", "*", "--force")
    _submit_class(course, M1, M1_NB, M1_MUTANTS)
    _submit_class(course, M2, M2_NB, M2_MUTANTS)
    pipeline.autograde(course, "*")
    return {
        "m1": {student: nbs[M1_NB] for student, nbs in pipeline.results(course, M1).items()},
        "m2": {student: nbs[M2_NB] for student, nbs in pipeline.results(course, M2).items()},
    }


@pytest.fixture
def m1(course_results):
    return course_results["m1"]


@pytest.fixture
def m2(course_results):
    return course_results["m2"]


@pytest.fixture
def graded(request, course_results):
    return course_results[request.param]


CASES = [("m1", M1_MAX, M1_EXPECTED), ("m2", M2_MAX, M2_EXPECTED)]


@pytest.mark.parametrize(
    ("graded", "max_score", "expected"), CASES, indirect=["graded"], ids=["m1", "m2"]
)
def test_solution_scores_full_marks(graded, max_score, expected):
    res = graded["solution"]
    assert res.max_score == max_score
    assert res.score == max_score, res.feedback
    assert set(res.cells) == set(expected["mutant-a"])
    assert all(not codes for codes in res.codes.values()), res.codes


@pytest.mark.parametrize(
    ("graded", "max_score", "expected"), CASES, indirect=["graded"], ids=["m1", "m2"]
)
def test_untouched_release_scores_exactly_zero(graded, max_score, expected):
    res = graded["untouched"]
    assert res.score == 0.0
    assert all(score == 0.0 for score in res.cells.values()), res.cells
    assert all("Non tenté" in text for text in res.feedback.values()), res.feedback


def _mutant_cases():
    for fixture, expected in (("m1", M1_EXPECTED), ("m2", M2_EXPECTED)):
        for student, cells in expected.items():
            for cell, code in cells.items():
                yield pytest.param(fixture, student, cell, code, id=f"{fixture}-{student}-{cell}")


@pytest.mark.parametrize(
    ("graded", "student", "cell", "code"), list(_mutant_cases()), indirect=["graded"]
)
def test_mutant_cell_scores_as_expected(graded, student, cell, code):
    res = graded[student]
    full = graded["solution"].cells[cell]
    score, feedback = res.cells[cell], res.feedback[cell]
    if code is None:
        assert score == full, feedback
    elif cell.startswith("quiz-"):
        # A quiz answer is right or wrong: no partial credit, but the reason is named.
        assert score == 0.0 and code in res.codes[cell], feedback
    else:
        assert 0.0 < score < full, (score, feedback)
        assert code in res.codes[cell], feedback


@pytest.mark.parametrize(
    ("graded", "max_score", "expected"), CASES, indirect=["graded"], ids=["m1", "m2"]
)
def test_mutant_notebooks_score_partial(graded, max_score, expected):
    for student in expected:
        assert 0.0 < graded[student].score < max_score, (student, graded[student].cells)


def test_quiz_feedback_reveals_no_answer(m1):
    """A wrong answer is named wrong, never corrected; the right one is not printed."""
    text = m1["mutant-a"].feedback["quiz-1"]
    assert "[quiz.wrong]" in text and "ce n'est pas la bonne réponse" in text
    assert '"c"' not in text and "digest" not in text


def test_device_feedback_is_french_and_actionable(m2):
    text = m2["mutant-b"].feedback["detect-device"]
    assert "[device.mps]" in text and "torch.backends.mps.is_available()" in text
    text = m2["mutant-a"].feedback["seed-everything"]
    assert "[seed.python]" in text and "random.seed(seed)" in text
