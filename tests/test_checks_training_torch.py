"""Unit tests of autograder.checks.training on PyTorch loops: train_one_epoch, evaluate, predict.

Every mutant in tests/fixtures/m5_mutants/ (a plausible student bug) must fail with exactly the
codes its header names — for the training loop, exactly one check, the one that names the bug;
every valid alternative (other call order, `enumerate`, `reduction='sum'`, inference mode…) and
the course's reference must pass every check, hidden ones included.
"""

from __future__ import annotations

import copy

import pytest
import torch
from fixtures.m5_mutants.submissions import all_submissions, notebook_solutions

from autograder.checks import training
from autograder.feedback import FAILED, NOT_ATTEMPTED, PASSED, CheckResult, Grader
from solutions import torch_cnn as ref

pytestmark = [pytest.mark.torch]

SEED = 2026
CELLS = {
    "train_one_epoch": (training.public_train_one_epoch, training.hidden_train_one_epoch),
    "evaluate": (training.public_evaluate, training.hidden_evaluate),
    "predict": (training.public_predict, training.hidden_predict),
}


def grade(cell: str, fn) -> Grader:
    public, hidden = CELLS[cell]
    g = public(fn, points=1)
    hidden(g, fn, SEED)
    return g


def failed_codes(g: Grader) -> list[str]:
    return [r.code for r in g.results if not r.passed]


SUBMISSIONS = [s for cell in CELLS for s in all_submissions(cell)] + [
    s for s in notebook_solutions() if s.cell in CELLS
]


@pytest.mark.parametrize("sub", SUBMISSIONS, ids=lambda s: s.name)
def test_submission_gets_exactly_its_codes(sub):
    g = grade(sub.cell, sub.build())
    codes = failed_codes(g)
    if sub.valid:
        assert codes == [], g.report()
        assert g.score() == 1.0
    else:
        assert set(codes) == sub.expect, g.report()
        if sub.cell == "train_one_epoch" or len(sub.expect) == 1:
            # One bug, one lost check: the check whose code names the bug.
            assert len(codes) == 1, g.report()


def test_enough_training_loop_mutants():
    loops = [s for s in SUBMISSIONS if s.cell in ("train_one_epoch", "evaluate") and not s.valid]
    named = set().union(*(s.expect for s in loops))
    assert len(loops) >= 8
    for code in (
        "train.zero_grad",
        "train.mode",
        "eval.mode",
        "eval.no_grad",
        "eval.updates_weights",
        "train.loss_average",
        "train.device",
        "train.step_order",
    ):
        assert code in named


@pytest.mark.parametrize(
    "cell,fn,code",
    [
        ("train_one_epoch", ref.ref_train_one_epoch, "train.framework_used"),
        ("evaluate", ref.ref_evaluate, "eval.framework_used"),
        ("predict", ref.ref_predict, "predict.framework_used"),
    ],
)
def test_calling_the_course_reference_earns_nothing(cell, fn, code):
    """`solutions` is importable in the grading kernel: handing in the reference scores 0."""
    g = grade(cell, lambda *args: fn(*args))
    assert {r.code for r in g.results} == {code}, g.report()
    assert "solutions" in g.report()


@pytest.mark.parametrize("cell", list(CELLS))
def test_stub_is_not_attempted_and_scores_zero(cell):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    g = grade(cell, stub)
    assert all(r.status == NOT_ATTEMPTED for r in g.results)
    assert g.score() == 0.0
    assert "Non tenté" in g.report()


def test_student_exception_is_reported_with_its_line():
    def train_one_epoch(model, loader, optimizer, loss_fn, device):
        for X, y in loader:
            loss = loss_fn(model(X), y.float())  # wrong label dtype
        return loss.item()

    g = grade("train_one_epoch", train_one_epoch)
    assert set(failed_codes(g)) == {"train.exception"}
    assert "loss = loss_fn(model(X), y.float())" in g.report()


def test_do_nothing_loop_fails_every_check():
    g = grade("train_one_epoch", lambda model, loader, optimizer, loss_fn, device: 0.0)
    assert failed_codes(g) == [
        "train.loss_average",
        "train.no_step",
        "train.no_forward",
        "train.no_forward",
    ]


def test_checks_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    grade("train_one_epoch", ref.ref_train_one_epoch)
    grade("predict", ref.ref_predict)
    assert torch.equal(state, torch.get_rng_state())


def test_mean_of_batch_means_differs_clearly_from_per_sample_mean():
    """The loss-average case must separate the two averages by far more than the tolerance."""
    X, y = training._mini_data(0)
    model = training._tiny_cnn(0)
    with torch.no_grad():
        means = [
            torch.nn.functional.cross_entropy(model(X[i : i + 4]), y[i : i + 4]).item()
            for i in (0, 4, 8)
        ]
    good = training.per_sample_mean(means, [4, 4, 2])
    assert abs(training.mean_of_batch_means(means) - good) > 1e-3 * abs(good)


def test_weight_check_sees_a_mode_free_model():
    """The weights case uses a model without dropout or batch-norm: mode bugs cannot leak into it."""
    model = training._tiny_cnn(1)
    assert not any(isinstance(m, torch.nn.Dropout | torch.nn.BatchNorm2d) for m in model.modules())


def test_oracle_matches_the_reference_loop():
    X, y = training._mini_data(5)
    model = training._tiny_cnn(5)
    batches = [(X[i : i + 4], y[i : i + 4]) for i in range(0, 10, 4)]
    expected = training._oracle_sgd(model, batches, 0.1, 0.9)
    trained = copy.deepcopy(model)
    ref.ref_train_one_epoch(
        trained, training._loader(X, y), training._sgd(trained), torch.nn.CrossEntropyLoss(), "cpu"
    )
    assert training.compare_parameters(training._params(trained), expected) is None


def test_marker_tensor_becomes_plain_only_through_to():
    marker = training._marker_class()
    x = torch.randn(3, 2).as_subclass(marker)
    assert isinstance(x.float() * 2, marker)
    assert type(x.to("cpu")) is torch.Tensor
    assert type(x.to(device="cpu", non_blocking=True)) is torch.Tensor
    assert type(x.float().to(torch.device("cpu"))) is torch.Tensor


# ---------------------------------------------------------------------------------------------
# Framework-neutral helpers
# ---------------------------------------------------------------------------------------------


def log_of(*events: str) -> training.LoopLog:
    """F: forward with grad, f: forward without grad, G: fresh gradient, A: gradient added to a
    leftover one, S: step with gradients, s: step without."""
    log = training.LoopLog()
    for e in events:
        {
            "F": lambda: log.forward(True),
            "f": lambda: log.forward(False),
            "G": lambda: log.grad(False),
            "A": lambda: log.grad(True),
            "S": lambda: log.step(True),
            "s": lambda: log.step(False),
        }[e]()
    return log


@pytest.mark.parametrize("events", ["FGS" * 3, "FGSfFGS", "FGSFGS", "FGGSFGGS"])
def test_diagnose_loop_accepts_correct_loops(events):
    training.diagnose_loop(log_of(*events))


@pytest.mark.parametrize(
    "events,code",
    [
        ("FGSFAS", "train.zero_grad"),
        ("FsGFsG", "train.step_order"),
        ("FGsFGs", "train.step_order"),
        ("FGSFSG", "train.step_order"),
        ("FGFG", "train.no_step"),
        ("", "train.no_step"),
    ],
)
def test_diagnose_loop_names_the_bug(events, code):
    with pytest.raises(training.CheckFailure) as info:
        training.diagnose_loop(log_of(*events))
    assert info.value.code == code


def test_per_sample_mean_weights_batches_by_size():
    assert training.per_sample_mean([1.0, 1.0, 4.0], [4, 4, 2]) == pytest.approx(1.6)
    assert training.mean_of_batch_means([1.0, 1.0, 4.0]) == pytest.approx(2.0)


def _grader_with(status: str) -> Grader:
    g = Grader("x", 2)
    g.results.append(CheckResult("aspect", status, weight=2.0))
    g.results.append(CheckResult("other", PASSED))
    return g


def _fails():
    training.fail("x.bad", "raté")


def test_deepen_replaces_a_passed_check_by_its_failing_hidden_cases():
    g = _grader_with(PASSED)
    g.deepen("aspect", _fails)
    assert [r.status for r in g.results] == [FAILED, PASSED]
    assert g.results[0].hidden and g.results[0].code == "x.bad" and g.results[0].weight == 2.0


def test_deepen_keeps_a_visible_failure_and_a_passing_check():
    g = _grader_with(FAILED)
    g.deepen("aspect", _fails)
    assert [r.status for r in g.results] == [FAILED, PASSED] and not g.results[0].hidden
    g = _grader_with(PASSED)
    g.deepen("aspect", lambda: None)
    assert [r.status for r in g.results] == [PASSED, PASSED]


def test_deepen_appends_an_unknown_check():
    g = _grader_with(PASSED)
    g.deepen("new", _fails)
    assert [r.name for r in g.results] == ["aspect", "other", "new"] and g.results[-1].hidden


def test_checks_run_single_threaded_and_restore_the_setting():
    seen = []

    def train_one_epoch(model, loader, optimizer, loss_fn, device):
        seen.append(torch.get_num_threads())
        return 0.0

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grade("train_one_epoch", train_one_epoch)
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
