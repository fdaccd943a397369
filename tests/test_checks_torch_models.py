"""Unit tests of autograder.checks.torch_models: make_loaders, CNN to a spec, MyConv2d, the
trained-model bar.

Every mutant of tests/fixtures/m5_mutants/ for these cells must fail with exactly the codes its
header names; valid alternatives (another sampler, functional style, pooling before ReLU,
batch-norm and dropout, convolution by loops or by kernel shifts) and the notebook's own
solution cells must pass every check, hidden ones included.
"""

from __future__ import annotations

import pytest
import torch
from fixtures.m5_mutants.submissions import all_submissions, notebook_solutions
from torch import nn

from autograder.checks import torch_models as tm
from autograder.feedback import NOT_ATTEMPTED, Grader
from solutions import torch_cnn as ref

pytestmark = [pytest.mark.torch]

SEED = 2027
CELLS = {
    "make_loaders": (tm.public_make_loaders, tm.hidden_make_loaders),
    "cnn": (tm.public_cnn, tm.hidden_cnn),
    "my_conv2d": (tm.public_my_conv2d, tm.hidden_my_conv2d),
}
SUBMISSIONS = [s for cell in CELLS for s in all_submissions(cell)] + [
    s for s in notebook_solutions() if s.cell in CELLS
]


def grade(cell: str, fn) -> Grader:
    public, hidden = CELLS[cell]
    g = public(fn, points=1)
    hidden(g, fn, SEED)
    return g


@pytest.mark.parametrize("sub", SUBMISSIONS, ids=lambda s: s.name)
def test_submission_gets_exactly_its_codes(sub):
    g = grade(sub.cell, sub.build())
    codes = [r.code for r in g.results if not r.passed]
    if sub.valid:
        assert codes == [], g.report()
        assert g.score() == 1.0
    else:
        assert set(codes) == sub.expect, g.report()
        if len(sub.expect) == 1 and sub.cell == "make_loaders":
            assert len(codes) == 1, g.report()


@pytest.mark.parametrize("cell", list(CELLS))
def test_stub_is_not_attempted(cell):
    class Stub(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError()

    def stub(*args, **kwargs):
        raise NotImplementedError()

    g = grade(cell, Stub if cell != "make_loaders" else stub)
    assert all(r.status == NOT_ATTEMPTED for r in g.results)
    assert g.score() == 0.0


def test_spec_constants_match_the_reference_cnn():
    model = ref.RefCNN()
    assert sum(p.numel() for p in model.parameters()) == tm.CNN_PARAMS == 9098
    layers, out = tm.trace_layers(model, torch.zeros(3, 1, 28, 28))
    assert layers == tm.CNN_SPEC and out.shape == (3, 10)


def test_layer_message_names_what_the_model_computes():
    sub = next(s for s in all_submissions("cnn") if s.name == "cnn_missing_relu")
    g = tm.public_cnn(sub.build(), points=1)
    text = g.report()
    assert "conv(8→16, 3×3, padding 1) → maxpool 2×2 → linear(784→10)" in text
    assert "[cnn.layers]" in text


def test_forbidden_convolution_reached_through_torch_ops_is_caught():
    class Sneaky(nn.Module):
        def __init__(self, cin, cout, k, stride=1, padding=0):
            super().__init__()
            self.s, self.p = stride, padding
            self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
            self.bias = nn.Parameter(torch.zeros(cout))

        def forward(self, x):
            return torch.ops.aten.convolution.default(
                x, self.weight, self.bias, [self.s] * 2, [self.p] * 2, [1, 1], False, [0, 0], 1
            )

    g = grade("my_conv2d", Sneaky)
    assert {r.code for r in g.results} == {"custom_conv.framework_used"}, g.report()


# ---------------------------------------------------------------------------------------------
# The trained-model bar
# ---------------------------------------------------------------------------------------------


def bar_codes(model) -> list[str]:
    g = tm.public_trained_model(model, points=2)
    return [r.code for r in g.results if not r.passed]


def test_missing_model_scores_zero():
    g = tm.public_trained_model(None, points=2)
    assert [r.code for r in g.results] == ["trained.missing"] and g.score() == 0.0


def test_untrained_cnn_is_below_the_bar():
    torch.manual_seed(0)
    assert bar_codes(ref.RefCNN()) == ["trained.accuracy"]


def test_model_that_crashes_is_reported():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 10)

        def forward(self, x):
            return self.fc(x)  # forgot to flatten

    assert bar_codes(Broken()) == ["trained.exception"]


def test_trained_model_passes_and_keeps_its_mode():
    """A softmax regression trained 2 epochs on normalised pixels (~0.83) clears the bar."""
    x = torch.from_numpy(tm._normalised(tm._raw(True))).unsqueeze(1)
    from autograder.data import load_torchvision

    y = load_torchvision(train=True).targets
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(2):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 500):
                idx = perm[i : i + 500]
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    model.train()
    assert tm.test_accuracy(model) >= tm.ACCURACY_BAR
    assert bar_codes(model) == []
    assert model.training
