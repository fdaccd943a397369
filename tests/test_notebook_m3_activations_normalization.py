"""End to end: real `nbgrader generate_assignment` + `autograde` of m3-fundamentals'
`activations_pooling` and `normalization` notebooks.

One course folder, ONE autograde run for the whole class: the source notebooks (full marks), the
untouched releases (exactly 0) and mutant submissions built from the releases by editing the
solution cells. Each mutant student carries one bug per graded function (three students, so
three mutants per function), each bug must cost the cell(s)
it concerns with the expected failure code in the feedback, and every other cell must keep its
full marks.
"""

from __future__ import annotations

import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook, pytest.mark.torch, pytest.mark.tf]

ASSIGNMENT = "m3-fundamentals"
ACT, NORM = "activations_pooling", "normalization"
MAX_SCORE = {ACT: 20.0, NORM: 8.0}

# A mutant: (solution cell grade_id, text in the solution, replacement). Expected: {graded cell: code}.
# Cells that depend on another solution (tanh uses sigmoid…) are listed where a bug reaches them.
STUDENTS: dict[str, dict[str, tuple[list[tuple[str, str, str]], dict[str, str]]]] = {
    "mutants-a": {
        ACT: (
            [
                ("relu", "np.maximum(x, 0.0)", "np.abs(x)"),
                ("relu_backward", "dout * (x > 0)", "(x > 0) * 1.0"),
                ("leaky_relu", "negative_slope * x)", "0.01 * x)"),
                ("leaky_relu_backward", "np.where(x > 0, 1.0, negative_slope)", "(x > 0)"),
                ("sigmoid", "z = np.exp(-np.abs(x))\n    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))", "return np.exp(x) / (1.0 + np.exp(x))"),
                ("sigmoid_backward", "s = sigmoid(x)\n    return dout * s * (1.0 - s)", "return dout * x * (1.0 - x)"),
                ("tanh", "2.0 * sigmoid(2.0 * x) - 1.0", "np.tanh(x)"),
                ("tanh_backward", "t = tanh(x)\n    return dout * (1.0 - t * t)", "return dout * (1.0 - x * x)"),
                ("softmax", "np.exp(x - np.max(x, axis=axis, keepdims=True))", "np.exp(x)"),
                ("softmax_backward", "y * (dout - np.sum(dout * y, axis=axis, keepdims=True))", "dout * y * (1 - y)"),
                ("max_pool2d_forward", "constant_values=-np.inf", "constant_values=0.0"),
                ("max_pool2d_backward", "mask * dout", "dout"),
                ("avg_pool2d_forward", ".mean(axis=(2, 3))", ".sum(axis=(2, 3)) / np.pad(np.ones((h, w)), padding)[i * stride : i * stride + k, j * stride : j * stride + k].sum()"),
                ("avg_pool2d_backward", " / (k * k)", ""),
            ],
            {
                "relu": "relu.values",
                "relu-backward": "relu_backward.dout",
                "leaky-relu": "leaky_relu.slope",
                "leaky-relu-backward": "leaky_relu_backward.slope",
                "sigmoid": "sigmoid.unstable",
                "sigmoid-backward": "sigmoid_backward.output_formula",
                "tanh": "tanh.framework_used",
                "tanh-backward": "tanh_backward.output_formula",
                "softmax": "softmax.unstable",
                "softmax-backward": "softmax_backward.jacobian",
                "maxpool-forward": "maxpool.padding",
                "maxpool-backward": "maxpool_backward.routing",
                "avgpool-forward": "avgpool.padding",
                "avgpool-backward": "avgpool_backward.scale",
            },
        ),
        NORM: (
            [
                # training path: normalises with the unbiased variance; eval path: updates the stats.
                ("batchnorm_forward", "var = x.var(axis=(0, 2, 3))", "var = x.var(axis=(0, 2, 3), ddof=1)"),
                ("batchnorm_forward", "running_mean.copy(), running_var.copy()", "0.9 * running_mean + 0.1 * x.mean(axis=(0, 2, 3)), running_var.copy()"),
                ("batchnorm_backward", "dx = inv_std * (dx_hat - dx_hat.mean(axis=axes, keepdims=True) - x_hat * (dx_hat * x_hat).mean(axis=axes, keepdims=True))", "dx = inv_std * dx_hat"),
            ],
            {
                "batchnorm-train": "batchnorm.variance",
                "batchnorm-eval": "batchnorm.eval_updates_running",
                "batchnorm-backward": "batchnorm_backward.mean_terms",
            },
        ),
    },
    "mutants-b": {
        ACT: (
            [
                ("relu", "np.maximum(x, 0.0)", "np.clip(x, 0.0, 1.0)"),
                ("relu_backward", "dout * (x > 0)", "dout * (dout > 0)"),
                ("leaky_relu", "np.where(x > 0, x, negative_slope * x)", "np.maximum(x, 0.0)"),
                ("leaky_relu_backward", "dout * np.where", "np.where"),
                # sign error: σ(−x) breaks sigmoid; sigmoid_backward (symmetric) hides it.
                ("sigmoid", "np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))", "np.where(x >= 0, z / (1.0 + z), 1.0 / (1.0 + z))"),
                ("sigmoid_backward", "dout * s * (1.0 - s)", "s * (1.0 - s)"),
                ("tanh", "2.0 * sigmoid(2.0 * x) - 1.0", "(np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))"),
                ("tanh_backward", "dout * (1.0 - t * t)", "1.0 - t * t"),
                ("softmax", "axis=axis", "axis=-1"),
                ("softmax_backward", "axis=axis", "axis=-1"),
                ("max_pool2d_forward", "ho = (h + 2 * padding - k) // stride + 1", "ho = (h - k) // stride + 1"),
                ("max_pool2d_backward", "dxp[:, :, hs : hs + k, ws : ws + k] += mask", "dxp[:, :, hs : hs + k, ws : ws + k] = mask"),
                ("avg_pool2d_forward", ".mean(axis=(2, 3))", ".sum(axis=(2, 3))"),
                ("avg_pool2d_backward", "j * stride + k] += dout", "j * stride + k] = dout"),
            ],
            {
                "relu": "relu.values",
                "relu-backward": "relu_backward.values",
                "leaky-relu": "leaky_relu.slope",
                "leaky-relu-backward": "leaky_relu_backward.dout",
                "sigmoid": "sigmoid.values",
                "sigmoid-backward": "sigmoid_backward.dout",
                "tanh": "tanh.unstable",
                "tanh-backward": "tanh_backward.dout",
                "softmax": "softmax.axis",
                "softmax-backward": "softmax_backward.axis",
                "maxpool-forward": "maxpool.shape",
                "maxpool-backward": "maxpool_backward.overlap",
                "avgpool-forward": "avgpool.scale",
                "avgpool-backward": "avgpool_backward.overlap",
            },
        ),
        NORM: (
            [
                ("batchnorm_forward", "new_running_mean = (1 - momentum) * running_mean + momentum * mean", "new_running_mean = momentum * running_mean + (1 - momentum) * mean"),
                ("batchnorm_forward", "new_running_var = (1 - momentum) * running_var + momentum * var", "new_running_var = momentum * running_var + (1 - momentum) * var"),
                ("batchnorm_forward", "mean, var = running_mean, running_var", "mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))"),
                ("batchnorm_backward", "(dout * x_hat).sum", "(dout * x).sum"),
            ],
            {
                "batchnorm-train": "batchnorm.momentum",
                "batchnorm-eval": "batchnorm.eval_batch_stats",
                "batchnorm-backward": "batchnorm_backward.dgamma",
            },
        ),
    },
    "mutants-c": {
        ACT: (
            [
                ("relu", "np.maximum(x, 0.0)", "np.maximum(x, 0.0).astype(int)"),
                ("relu_backward", "dout * (x > 0)", "dout * (x < 0)"),
                ("leaky_relu", "np.where(x > 0, x, negative_slope * x)", "np.where(x > 0, negative_slope * x, x)"),
                ("leaky_relu_backward", "dout * np.where(x > 0, 1.0, negative_slope)", "np.where(x > 0, dout, negative_slope * x)"),
                ("sigmoid", "z = np.exp(-np.abs(x))\n    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))", "from scipy.special import expit\n    return expit(x)"),
                ("sigmoid_backward", "s = sigmoid(x)\n    return dout * s * (1.0 - s)", "return dout / (1.0 + np.exp(-x))"),
                ("tanh", "sigmoid(2.0 * x)", "sigmoid(x)"),
                ("tanh_backward", "dout * (1.0 - t * t)", "dout * (1.0 - t)"),
                ("softmax", "np.max(x, axis=axis, keepdims=True)", "np.max(x, axis=axis)"),
                ("softmax_backward", "y * (dout - np.sum(dout * y, axis=axis, keepdims=True))", "y - dout"),
                ("max_pool2d_forward", "ho = (h + 2 * padding - k) // stride + 1\n    wo = (w + 2 * padding - k) // stride + 1", "ho = -(-(h + 2 * padding - k) // stride) + 1\n    wo = -(-(w + 2 * padding - k) // stride) + 1"),
                ("max_pool2d_backward", "return dxp[:, :, padding : padding + h, padding : padding + w]", "return dxp"),
                ("avg_pool2d_forward", ".mean(axis=(2, 3))", ".max(axis=(2, 3))"),
                ("avg_pool2d_backward", "return dxp[:, :, padding : padding + h, padding : padding + w]", "return dxp"),
            ],
            {
                "relu": "relu.dtype",
                "relu-backward": "relu_backward.values",
                "leaky-relu": "leaky_relu.values",
                "leaky-relu-backward": "leaky_relu_backward.values",
                "sigmoid": "sigmoid.framework_used",
                "sigmoid-backward": "sigmoid_backward.values",
                "tanh": "tanh.values",
                "tanh-backward": "tanh_backward.values",
                "softmax": "softmax.exception",
                "softmax-backward": "softmax_backward.values",
                "maxpool-forward": "maxpool.shape",
                "maxpool-backward": "maxpool_backward.shape",
                "avgpool-forward": "avgpool.values",
                "avgpool-backward": "avgpool_backward.shape",
            },
        ),
        NORM: (
            [
                # `training` ignored (batch statistics in eval too) and running stats never updated.
                ("batchnorm_forward", "if training:", "if True:"),
                ("batchnorm_forward", "new_running_mean = (1 - momentum) * running_mean + momentum * mean", "new_running_mean = running_mean.copy()"),
                ("batchnorm_forward", "new_running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)", "new_running_var = running_var.copy()"),
                ("batchnorm_backward", "np.sqrt(x.var(axis=axes, keepdims=True) + eps)", "np.sqrt(x.var(axis=axes, keepdims=True))"),
            ],
            {
                "batchnorm-train": "batchnorm.running_not_updated",
                "batchnorm-eval": "batchnorm.eval_batch_stats",
                "batchnorm-backward": "batchnorm_backward.eps",
            },
        ),
    },
}


def _mutated(solutions: dict[str, str], edits: list[tuple[str, str, str]]) -> dict[str, str]:
    answers = dict(solutions)
    for grade_id, old, new in edits:
        assert old in answers[grade_id], f"{grade_id}: pattern not found in the solution: {old!r}"
        answers[grade_id] = answers[grade_id].replace(old, new)
    return answers


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = pipeline.make_course(tmp_path_factory.mktemp("m3an") / "course", [ASSIGNMENT], notebooks=[ACT, NORM])
    release_dir = pipeline.generate(course, ASSIGNMENT)
    source_dir = course / "source" / ASSIGNMENT
    pipeline.submit(course, ASSIGNMENT, "solution", {nb: source_dir / f"{nb}.ipynb" for nb in (ACT, NORM)})
    pipeline.submit(course, ASSIGNMENT, "untouched", {nb: release_dir / f"{nb}.ipynb" for nb in (ACT, NORM)})
    for student, notebooks in STUDENTS.items():
        submission = {}
        for nb, (edits, _) in notebooks.items():
            answers = _mutated(pipeline.solution_sources(source_dir / f"{nb}.ipynb"), edits)
            submission[nb] = pipeline.fill_solutions(release_dir / f"{nb}.ipynb", answers)
        pipeline.submit(course, ASSIGNMENT, student, submission)
    pipeline.autograde(course, ASSIGNMENT)
    return pipeline.results(course, ASSIGNMENT)


@pytest.mark.parametrize("nb", [ACT, NORM])
def test_solution_scores_full_marks(graded, nb):
    res = graded["solution"][nb]
    assert res.max_score == MAX_SCORE[nb]
    assert res.score == MAX_SCORE[nb], res.feedback
    assert all(not codes for codes in res.codes.values()), res.codes


@pytest.mark.parametrize("nb", [ACT, NORM])
def test_untouched_release_scores_exactly_zero(graded, nb):
    res = graded["untouched"][nb]
    assert res.score == 0.0
    assert all(score == 0.0 for score in res.cells.values()), res.cells
    assert all("Non tenté" in text for text in res.feedback.values())


@pytest.mark.parametrize(
    ("student", "nb"), [(s, nb) for s, notebooks in STUDENTS.items() for nb in notebooks]
)
def test_mutants_lose_exactly_the_cells_their_bugs_concern(graded, student, nb):
    _, expected = STUDENTS[student][nb]
    res = graded[student][nb]
    full = graded["solution"][nb].cells
    assert 0 < res.score < MAX_SCORE[nb], (res.score, res.feedback)
    for grade_id, score in res.cells.items():
        if grade_id in expected:
            assert 0 <= score < full[grade_id], res.feedback[grade_id]
            assert expected[grade_id] in res.codes[grade_id], res.feedback[grade_id]
            assert "internal.error" not in res.codes[grade_id], res.feedback[grade_id]
        else:
            assert score == full[grade_id], (grade_id, res.feedback[grade_id])


def test_three_mutants_per_graded_function():
    """Each graded cell is hit by at least three different mutant students."""
    for nb in (ACT, NORM):
        hits: dict[str, int] = {}
        for notebooks in STUDENTS.values():
            for cell in notebooks.get(nb, ([], {}))[1]:
                hits[cell] = hits.get(cell, 0) + 1
        if nb == ACT:
            assert len(hits) == 14 and min(hits.values()) >= 3, hits
        else:
            assert len(hits) == 3 and min(hits.values()) >= 3, hits
    assert len(STUDENTS) == 3  # one autograde run of 5 students × 2 notebooks: keep it that small


def test_partial_cells_print_french_feedback(graded):
    text = graded["mutants-a"][ACT].feedback["softmax"]
    assert "[softmax.unstable]" in text and "test caché" in text and "Score : 1,5 / 2" in text
