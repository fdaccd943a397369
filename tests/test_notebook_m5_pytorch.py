"""End to end: real `nbgrader generate_assignment` + `autograde` of m5-pytorch/cnn_torch.

One course folder, one autograde run for the whole class: the source notebook (full marks),
the untouched release (exactly 0) and six mutant submissions built from the release by filling
solution cells with the buggy cells of tests/fixtures/m5_mutants/. Bugs in *different* cells
are packed into the same notebook (each function is checked on its own, with its own probes),
which keeps the run to seven notebooks while grading eleven training-loop mutants
(train_one_epoch, evaluate and the test loader's shuffling) plus six others. The other
mutants are graded by the unit tests (tests/test_checks_*torch*.py).

Each mutated cell must report exactly the codes its fixture names — for the loop mutants one
lost check, the one that names the bug — and every other cell keeps full marks, except the
trained-model bar for the bugs that stop the model from learning.
"""

from __future__ import annotations

import pytest
from fixtures.m5_mutants.submissions import load

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook, pytest.mark.torch]

ASSIGNMENT = "m5-pytorch"
NOTEBOOK = "cnn_torch"
POINTS = {
    "data-pipeline": 3,
    "cnn-spec": 3,
    "custom-conv": 3,
    "train-one-epoch": 4,
    "evaluate": 3,
    "predict": 1,
    "trained-model": 2,
}
MAX_SCORE = float(sum(POINTS.values()))
TEST_CELL = {
    "make_loaders": "data-pipeline",
    "cnn": "cnn-spec",
    "my_conv2d": "custom-conv",
    "train_one_epoch": "train-one-epoch",
    "evaluate": "evaluate",
    "predict": "predict",
}

#: student -> mutant cells (fixture names), at most one per solution cell.
STUDENTS = {
    "mutant-a": [
        "train_no_zero_grad",
        "eval_no_eval_mode",
        "loaders_shuffle_test",
        "conv_detached_weight",
    ],
    "mutant-b": [
        "train_step_before_backward",
        "eval_no_no_grad",
        "predict_no_eval",
        "cnn_unused_layer",
    ],
    "mutant-c": [
        "train_no_train_mode",
        "eval_updates_weights",
        "predict_no_device",
        "conv_ignores_padding",
    ],
    "mutant-d": ["train_no_device", "eval_mean_of_batch_means", "loaders_no_shuffle"],
    "mutant-e": ["train_mean_of_batch_means", "eval_no_device", "predict_probabilities"],
}
#: Students whose model cannot reach the accuracy bar (measured ~0.10-0.11 test accuracy): the
#: weights never move (step before backward) or the gradients pile up over the epoch (no zero_grad).
NOT_LEARNING = {"mutant-a", "mutant-b"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = pipeline.make_course(
        tmp_path_factory.mktemp("m5") / "course", [ASSIGNMENT], notebooks=[NOTEBOOK]
    )
    release = pipeline.generate(course, ASSIGNMENT) / f"{NOTEBOOK}.ipynb"
    source = course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    solutions = pipeline.solution_sources(source)
    pipeline.submit(course, ASSIGNMENT, "solution", {NOTEBOOK: source})
    pipeline.submit(course, ASSIGNMENT, "untouched", {NOTEBOOK: release})
    for student, names in STUDENTS.items():
        answers = dict(solutions)
        for name in names:
            sub = load(name)
            assert sub.cell in answers and not sub.valid
            answers[sub.cell] = sub.source
        pipeline.submit(
            course, ASSIGNMENT, student, {NOTEBOOK: pipeline.fill_solutions(release, answers)}
        )
    pipeline.autograde(course, ASSIGNMENT)
    return {student: nbs[NOTEBOOK] for student, nbs in pipeline.results(course, ASSIGNMENT).items()}


def test_solution_scores_full_marks(graded):
    res = graded["solution"]
    assert res.max_score == MAX_SCORE
    assert res.score == MAX_SCORE, res.feedback
    assert res.cells == {k: float(v) for k, v in POINTS.items()}
    assert all(not codes for codes in res.codes.values())


def test_untouched_release_scores_exactly_zero(graded):
    res = graded["untouched"]
    assert res.score == 0.0
    assert all(score == 0.0 for score in res.cells.values()), res.cells
    for grade_id, text in res.feedback.items():
        expected = "trained.missing" if grade_id == "trained-model" else "Non tenté"
        assert expected in text, (grade_id, text)


@pytest.mark.parametrize("student", list(STUDENTS))
def test_each_mutant_loses_exactly_the_check_naming_its_bug(graded, student):
    res = graded[student]
    mutated = {TEST_CELL[load(name).cell]: load(name) for name in STUDENTS[student]}
    for grade_id, points in POINTS.items():
        codes, score, text = res.codes[grade_id], res.cells[grade_id], res.feedback[grade_id]
        if grade_id in mutated:
            sub = mutated[grade_id]
            assert set(codes) == sub.expect, (sub.name, text)
            if len(sub.expect) == 1:
                assert len(codes) == 1, (sub.name, text)
            assert 0 < score < points, (sub.name, text)
        elif grade_id == "trained-model" and student in NOT_LEARNING:
            assert codes == ["trained.accuracy"] and score == 0.0, text
        else:
            assert not codes and score == points, (grade_id, text)


def test_loop_mutants_cover_the_issue_list(graded):
    named = {
        code
        for s in STUDENTS.values()
        for n in s
        for code in load(n).expect
        if load(n).cell in ("train_one_epoch", "evaluate", "make_loaders")
    }
    assert {
        "train.zero_grad",
        "train.step_order",
        "train.mode",
        "train.device",
        "train.loss_average",
        "eval.mode",
        "eval.no_grad",
        "eval.updates_weights",
        "eval.shuffle",
    } <= named
    loops = [
        n for s in STUDENTS.values() for n in s if load(n).cell in ("train_one_epoch", "evaluate")
    ]
    assert len(loops) >= 8


def test_feedback_names_the_bug_in_french(graded):
    text = graded["mutant-a"].feedback["train-one-epoch"]
    assert (
        "[train.zero_grad]" in text and "optimizer.zero_grad()" in text and "lot précédent" in text
    )
    text = graded["mutant-b"].feedback["evaluate"]
    assert "[eval.no_grad]" in text and "torch.no_grad()" in text
