"""End to end: real `nbgrader generate_assignment` + `autograde` of m4-tensorflow/cnn_keras.

One course folder, one autograde run for the whole class: the source notebook (full marks, no
stderr in any graded cell), the untouched release (exactly 0, "Non tenté" everywhere) and mutant
submissions built from the release by filling the solution cells with one plausible bug each —
mostly training-loop and compile bugs. Each mutant must lose the cell its bug concerns, with the
expected failure code in the feedback, and keep every other cell (the notebook's own training
runs on `fit`, and `train_epoch` is graded with a correct `train_step`, so bugs do not cascade).
"""

from __future__ import annotations

import json
import time

import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook, pytest.mark.tf]

ASSIGNMENT = "m4-tensorflow"
NOTEBOOK = "cnn_keras"
MAX_SCORE = 22.0

EVAL_TRAINS = """
        opt = keras.optimizers.SGD(0.01)
        with tf.GradientTape() as tape:
            logits = model(x, training=False)
            batch_loss = loss_fn(y, logits)
        grads = tape.gradient(batch_loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
"""

# name: (grade_id of the solution cell, old text, new text, graded cell that must lose points, code)
MUTANTS = {
    "forward-outside-tape": (
        "train_step",
        "    with tf.GradientTape() as tape:\n        logits = model(x, training=True)\n",
        "    logits = model(x, training=True)\n    with tf.GradientTape() as tape:\n",
        "train-step",
        "train.tape",
    ),
    "training-flag-missing": (
        "train_step",
        "model(x, training=True)",
        "model(x)",
        "train-step",
        "train.mode",
    ),
    "apply-to-model-weights": (
        "train_step",
        "zip(grads, model.trainable_variables)",
        "zip(grads, model.weights)",
        "train-step",
        "train.apply",
    ),
    "manual-sgd": (
        "train_step",
        "    optimizer.apply_gradients(zip(grads, model.trainable_variables))",
        "    for g, v in zip(grads, model.trainable_variables):\n        v.assign_sub(1e-3 * g)",
        "train-step",
        "train.optimizer",
    ),
    "epoch-mean-of-batch-means": (
        "train_epoch",
        "total += float(loss) * n",
        "total += float(loss)\n        n = 1",
        "train-epoch",
        "train.loss_average",
    ),
    "epoch-return-in-loop": (
        "train_epoch",
        "        count += n\n    return total / count",
        "        count += n\n        return total / count",
        "train-epoch",
        "train.epoch_incomplete",
    ),
    "eval-training-mode": (
        "evaluate_epoch",
        "training=False",
        "training=True",
        "evaluate-epoch",
        "eval.mode",
    ),
    "eval-trains": (
        "evaluate_epoch",
        "        logits = model(x, training=False)\n",
        EVAL_TRAINS.lstrip("\n"),
        "evaluate-epoch",
        "eval.updates_weights",
    ),
    "compile-ignores-from-logits": (
        "compile_model",
        "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)",
        "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False)",
        "compile",
        "compile.from_logits",
    ),
    "compile-no-metric": (
        "compile_model",
        '        metrics=["accuracy"],\n',
        "",
        "compile",
        "compile.metrics",
    ),
    "predict-axis-0": ("predict_classes", "axis=-1", "axis=0", "predict", "predict.axis"),
    "conv-ignores-padding": (
        "my_conv2d",
        "padding=self.padding.upper()",
        'padding="VALID"',
        "custom-conv-layer",
        "custom_conv.padding",
    ),
}
#: Mutants whose bug also breaks the notebook's final training, hence the trained-model cell.
CASCADE = {"compile-ignores-from-logits": {"trained-model"}}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = pipeline.make_course(
        tmp_path_factory.mktemp("m4") / "course", [ASSIGNMENT], notebooks=[NOTEBOOK]
    )
    release = pipeline.generate(course, ASSIGNMENT) / f"{NOTEBOOK}.ipynb"
    source = course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    solutions = pipeline.solution_sources(source)
    pipeline.submit(course, ASSIGNMENT, "solution", {NOTEBOOK: source})
    pipeline.submit(course, ASSIGNMENT, "untouched", {NOTEBOOK: release})
    for name, (grade_id, old, new, _, _) in MUTANTS.items():
        answers = dict(solutions)
        assert old in answers[grade_id], f"mutant {name}: pattern not found in the solution"
        answers[grade_id] = answers[grade_id].replace(old, new)
        pipeline.submit(
            course, ASSIGNMENT, name, {NOTEBOOK: pipeline.fill_solutions(release, answers)}
        )
    start = time.perf_counter()
    pipeline.autograde(course, ASSIGNMENT)
    elapsed = time.perf_counter() - start
    print(f"\nautograde of {len(MUTANTS) + 2} submissions: {elapsed:.0f} s")
    return course


@pytest.fixture(scope="module")
def graded(course):
    return {student: nbs[NOTEBOOK] for student, nbs in pipeline.results(course, ASSIGNMENT).items()}


def test_solution_scores_full_marks(graded):
    res = graded["solution"]
    assert res.max_score == MAX_SCORE
    assert res.score == MAX_SCORE, res.feedback
    assert all(not codes for codes in res.codes.values())


def test_no_stderr_reaches_a_graded_cell(course):
    """TensorFlow's chatter stays out of test cells (any stderr would zero the cell)."""
    for student in ("solution", *MUTANTS):
        path = course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                streams = [o for o in cell.get("outputs", []) if o.get("name") == "stderr"]
                assert not streams, (student, cell["metadata"]["nbgrader"]["grade_id"], streams)


def test_untouched_release_scores_exactly_zero(graded):
    res = graded["untouched"]
    assert res.score == 0.0
    assert all(score == 0.0 for score in res.cells.values()), res.cells
    assert all("Non tenté" in text for text in res.feedback.values()), res.feedback


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_loses_the_check_its_bug_concerns(graded, name):
    _, _, _, cell, code = MUTANTS[name]
    res = graded[name]
    full = graded["solution"].cells
    assert 0 < res.score < MAX_SCORE, (res.score, res.feedback)
    for grade_id, score in res.cells.items():
        if grade_id == cell:
            assert score < full[grade_id], res.feedback[grade_id]
            assert code in res.codes[grade_id], res.feedback[grade_id]
        elif grade_id not in CASCADE.get(name, ()):
            assert score == full[grade_id], (grade_id, res.feedback[grade_id])


def test_feedback_names_the_bug_in_french(graded):
    text = graded["epoch-mean-of-batch-means"].feedback["train-epoch"]
    assert "[train.loss_average]" in text and "dernier lot est plus petit" in text
    text = graded["forward-outside-tape"].feedback["train-step"]
    assert "[train.tape]" in text and "GradientTape" in text
