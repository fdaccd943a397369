"""End to end: real `nbgrader generate_assignment` + `autograde` of m3-fundamentals/convolution.

One course folder, one autograde run for the whole class: the source notebook (full marks),
the untouched release (exactly 0) and mutant submissions built from the release by filling the
solution cells with buggy code. Each mutant must lose the cell its bug concerns, with the
expected failure code in the feedback, and keep every other cell.
"""

from __future__ import annotations

import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook]

ASSIGNMENT = "m3-fundamentals"
NOTEBOOK = "convolution"
MAX_SCORE = 12.0

TORCH_INSIDE = '''
def conv2d_forward(x, w, b, stride=1, padding=0):
    import torch
    import torch.nn.functional as F
    out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=padding)
    return out.numpy()
'''

# The right convolution, but the caller's kernel is left flipped (a classic in-place bug).
FLIP_IN_PLACE = '''
def convolve1d(x, k):
    k = np.asarray(k)
    k[:] = k[::-1].copy()
    return correlate1d(x, k)
'''

# name: (grade_id of the solution cell, old text, new text, graded cell that must lose points, code)
MUTANTS = {
    "flipped-kernel": ("conv2d_forward", "np.tensordot(patch, w, axes", "np.tensordot(patch, w[:, :, ::-1, ::-1], axes", "conv2d-forward", "conv.flip"),
    "padding-counted-once": ("conv2d_forward", "ho = (h + 2 * padding - kh)", "ho = (h + padding - kh)", "conv2d-forward", "conv.padding"),
    "stride-ignored": ("conv2d_forward", "xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]", "xp[:, :, i : i + kh, j : j + kw]", "conv2d-forward", "conv.stride"),
    "missing-bias": ("conv2d_forward", "return out + b[None, :, None, None]", "return out", "conv2d-forward", "conv.bias"),
    "nhwc-output": ("conv2d_forward", "return out + b[None, :, None, None]", "return (out + b[None, :, None, None]).transpose(0, 2, 3, 1)", "conv2d-forward", "conv.layout"),
    "torch-inside": ("conv2d_forward", None, TORCH_INSIDE, "conv2d-forward", "conv.framework_used"),
    "convolve-without-flip": ("convolve1d", "correlate1d(x, np.asarray(k)[::-1])", "correlate1d(x, k)", "conv1d-convolve", "conv1d.flip"),
    "kernel-flipped-in-place": ("convolve1d", None, FLIP_IN_PLACE, "conv1d-convolve", "conv1d.input_modified"),
    "db-averaged": ("conv2d_backward", "db = dout.sum(axis=(0, 2, 3))", "db = dout.mean(axis=(0, 2, 3))", "conv2d-backward", "conv_backward.db"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = pipeline.make_course(tmp_path_factory.mktemp("m3") / "course", [ASSIGNMENT], notebooks=[NOTEBOOK])
    release = pipeline.generate(course, ASSIGNMENT) / f"{NOTEBOOK}.ipynb"
    source = course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    solutions = pipeline.solution_sources(source)
    pipeline.submit(course, ASSIGNMENT, "solution", {NOTEBOOK: source})
    pipeline.submit(course, ASSIGNMENT, "untouched", {NOTEBOOK: release})
    for name, (grade_id, old, new, _, _) in MUTANTS.items():
        answers = dict(solutions)
        if old is None:
            answers[grade_id] = new
        else:
            assert old in answers[grade_id], f"mutant {name}: pattern not found in the solution"
            answers[grade_id] = answers[grade_id].replace(old, new)
        pipeline.submit(course, ASSIGNMENT, name, {NOTEBOOK: pipeline.fill_solutions(release, answers)})
    pipeline.autograde(course, ASSIGNMENT)
    return {student: nbs[NOTEBOOK] for student, nbs in pipeline.results(course, ASSIGNMENT).items()}


def test_solution_scores_full_marks(graded):
    res = graded["solution"]
    assert res.max_score == MAX_SCORE
    assert res.score == MAX_SCORE, res.feedback
    assert all(not codes for codes in res.codes.values())


def test_untouched_release_scores_exactly_zero(graded):
    res = graded["untouched"]
    assert res.score == 0.0
    assert all(score == 0.0 for score in res.cells.values()), res.cells
    assert all("Non tenté" in text for text in res.feedback.values())


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_loses_the_check_its_bug_concerns(graded, name):
    _, _, _, cell, code = MUTANTS[name]
    res = graded[name]
    assert 0 < res.score < MAX_SCORE, (res.score, res.feedback)
    full = graded["solution"].cells
    for grade_id, score in res.cells.items():
        if grade_id == cell:
            assert score < full[grade_id], res.feedback[grade_id]
            assert code in res.codes[grade_id], res.feedback[grade_id]
        else:
            assert score == full[grade_id], (grade_id, res.feedback[grade_id])


def test_feedback_is_french_and_names_the_code(graded):
    text = graded["padding-counted-once"].feedback["conv2d-forward"]
    assert "padding" in text and "attendu" in text and "[conv.padding]" in text
