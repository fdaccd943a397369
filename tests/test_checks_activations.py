"""Unit tests of autograder.checks.activations: every check fails on its mutants, passes on valid code.

Mutants are plausible student bugs; each must fail with the code that names its bug. Valid
alternatives (other formulas, loops, explicit Jacobians) must pass every check, hidden ones
included (which compare to both PyTorch and TensorFlow).
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import activations as act

pytestmark = [pytest.mark.torch, pytest.mark.tf]

SEED = 4242


def codes_of(name: str, fn) -> list[str]:
    """Codes of every check (visible then hidden) of the graded cell for ``name``; "ok" if passed."""
    g = getattr(act, f"public_{name}")(fn, points=1)
    getattr(act, f"hidden_{name}")(g, fn, SEED)
    return [r.code if not r.passed else "ok" for r in g.results]


def _stable_sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def _move(fn, x, axis):
    """Apply a last-axis function ``fn`` along ``axis``."""
    return np.moveaxis(fn(np.moveaxis(x, axis, -1)), -1, axis)


# ------------------------------------------------------------------------------ valid code

VALID = {
    "relu": [
        lambda x: np.maximum(x, 0),
        lambda x: np.where(x > 0, x, 0.0),
        lambda x: x * (x > 0),
    ],
    "relu_backward": [
        lambda dout, x: dout * (x > 0),
        lambda dout, x: np.where(x > 0, dout, 0.0),
    ],
    "leaky_relu": [
        lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
        lambda x, negative_slope=0.01: np.maximum(x, negative_slope * x),  # valid for slopes < 1
        lambda x, negative_slope=0.01: np.maximum(x, 0) + negative_slope * np.minimum(x, 0),
    ],
    "leaky_relu_backward": [
        lambda dout, x, negative_slope=0.01: dout * np.where(x > 0, 1.0, negative_slope),
        lambda dout, x, negative_slope=0.01: np.where(x > 0, dout, negative_slope * dout),
    ],
    "sigmoid": [
        _stable_sigmoid,
        lambda x: 1 / (1 + np.exp(-x)),  # overflows to inf for x ≪ 0, but 1 / inf = 0 is right
        lambda x: 0.5 * (1 + np.tanh(x / 2)),
    ],
    "sigmoid_backward": [
        lambda dout, x: dout * _stable_sigmoid(x) * (1 - _stable_sigmoid(x)),
        lambda dout, x: dout * np.exp(-x) / (1 + np.exp(-x)) ** 2,
    ],
    "tanh": [
        lambda x: 2 * _stable_sigmoid(2 * x) - 1,
        lambda x: np.sign(x) * (1 - np.exp(-2 * np.abs(x))) / (1 + np.exp(-2 * np.abs(x))),
    ],
    "tanh_backward": [
        lambda dout, x: dout * (1 - np.tanh(x) ** 2),
        lambda dout, x: dout / np.cosh(x) ** 2,
    ],
}


def softmax_shift(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_logsumexp(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return np.exp(x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)))


def softmax_loop(x, axis=-1):
    def last(a):
        out = np.empty_like(a)
        for idx in np.ndindex(a.shape[:-1]):
            row = a[idx]
            e = np.exp(row - row.max())
            out[idx] = e / e.sum()
        return out

    return _move(last, x, axis)


def softmax_backward_jvp(dout, y, axis=-1):
    return y * (dout - np.sum(dout * y, axis=axis, keepdims=True))


def softmax_backward_jacobian(dout, y, axis=-1):
    """Builds the full Jacobian diag(y) − y yᵀ of each slice, then multiplies."""
    yl, dl = np.moveaxis(y, axis, -1), np.moveaxis(dout, axis, -1)
    jac = np.einsum("...i,ij->...ij", yl, np.eye(yl.shape[-1])) - yl[..., :, None] * yl[..., None, :]
    return np.moveaxis(np.einsum("...ij,...i->...j", jac, dl), -1, axis)


VALID["softmax"] = [softmax_shift, softmax_logsumexp, softmax_loop]
VALID["softmax_backward"] = [softmax_backward_jvp, softmax_backward_jacobian]


@pytest.mark.parametrize(
    ("name", "index"), [(name, i) for name, fns in VALID.items() for i in range(len(fns))]
)
def test_valid_implementations_pass_every_check(name, index):
    codes = codes_of(name, VALID[name][index])
    assert set(codes) == {"ok"}, codes


# ------------------------------------------------------------------------------ mutants


def _torch_relu(x):
    import torch

    return torch.relu(torch.from_numpy(x)).numpy()


def _torch_sigmoid_backward(dout, x):
    import torch

    t = torch.tensor(x, requires_grad=True)
    torch.sigmoid(t).backward(torch.tensor(dout))
    return t.grad.numpy()


def _scipy_expit(x):
    from scipy.special import expit

    return expit(x)


def _tf_softmax(x, axis=-1):
    import tensorflow as tf

    return tf.nn.softmax(x, axis=axis).numpy()


def _sm(x, axis):
    return softmax_shift(x, axis)


# name: {mutant: (implementation, expected codes [visible…, hidden…])}
MUTANTS = {
    "relu": {
        "absolute value": (lambda x: np.abs(x), ["relu.values", "relu.values"]),
        "clipped to [0, 1]": (lambda x: np.clip(x, 0, 1), ["relu.values", "relu.values"]),
        "integer output": (lambda x: np.maximum(x, 0).astype(int), ["relu.dtype", "relu.dtype"]),
        "float32 output": (lambda x: np.maximum(x, 0).astype(np.float32), ["relu.dtype", "relu.dtype"]),
        "torch inside": (_torch_relu, ["relu.framework_used", "relu.framework_used"]),
    },
    "relu_backward": {
        "forgets dout": (lambda dout, x: (x > 0).astype(float), ["relu_backward.dout"] * 2),
        "mask from dout": (lambda dout, x: dout * (dout > 0), ["relu_backward.values"] * 2),
        "reversed mask": (lambda dout, x: dout * (x < 0), ["relu_backward.values"] * 2),
        "multiplies by relu(x)": (lambda dout, x: dout * np.maximum(x, 0), ["relu_backward.values"] * 2),
    },
    "leaky_relu": {
        "slope ignored (0.01 hard-coded)": (
            lambda x, negative_slope=0.01: np.where(x > 0, x, 0.01 * x),
            ["ok", "leaky_relu.slope", "leaky_relu.slope"],
        ),
        "plain ReLU": (lambda x, negative_slope=0.01: np.maximum(x, 0), ["leaky_relu.slope"] * 3),
        "TensorFlow's default slope 0.2": (
            lambda x, negative_slope=0.2: np.where(x > 0, x, negative_slope * x),
            ["leaky_relu.slope", "ok", "ok"],
        ),
        "slope on the positive side": (
            lambda x, negative_slope=0.01: np.where(x > 0, negative_slope * x, x),
            ["leaky_relu.values"] * 3,
        ),
    },
    "leaky_relu_backward": {
        "slope ignored (ReLU derivative)": (
            lambda dout, x, negative_slope=0.01: dout * (x > 0),
            ["leaky_relu_backward.slope"] * 2,
        ),
        "0.01 hard-coded": (
            lambda dout, x, negative_slope=0.01: dout * np.where(x > 0, 1.0, 0.01),
            ["ok", "leaky_relu_backward.slope"],
        ),
        "forgets dout": (
            lambda dout, x, negative_slope=0.01: np.where(x > 0, 1.0, negative_slope),
            ["leaky_relu_backward.dout"] * 2,
        ),
        "slope times x": (
            lambda dout, x, negative_slope=0.01: np.where(x > 0, dout, negative_slope * x),
            ["leaky_relu_backward.values"] * 2,
        ),
    },
    "sigmoid": {
        "exp(x) / (1 + exp(x)) overflows": (lambda x: np.exp(x) / (1 + np.exp(x)), ["ok", "ok", "sigmoid.unstable"]),
        "sign error": (lambda x: 1 / (1 + np.exp(x)), ["sigmoid.values"] * 3),
        "missing 1 +": (lambda x: 1 / np.exp(-x), ["sigmoid.values"] * 3),
        "scipy expit": (_scipy_expit, ["sigmoid.framework_used"] * 3),
    },
    "sigmoid_backward": {
        "x(1 − x) on the input": (lambda dout, x: dout * x * (1 - x), ["sigmoid_backward.output_formula"] * 2),
        "forgets dout": (lambda dout, x: _stable_sigmoid(x) * (1 - _stable_sigmoid(x)), ["sigmoid_backward.dout"] * 2),
        "missing (1 − σ)": (lambda dout, x: dout * _stable_sigmoid(x), ["sigmoid_backward.values"] * 2),
        "torch autograd": (_torch_sigmoid_backward, ["sigmoid_backward.framework_used"] * 2),
    },
    "tanh": {
        "exponential formula overflows": (
            lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
            ["ok", "ok", "tanh.unstable"],
        ),
        "sinh / cosh overflows": (lambda x: np.sinh(x) / np.cosh(x), ["ok", "ok", "tanh.unstable"]),
        "2σ(x) − 1": (lambda x: 2 * _stable_sigmoid(x) - 1, ["tanh.values"] * 3),
        "np.tanh": (lambda x: np.tanh(x), ["tanh.framework_used"] * 3),
    },
    "tanh_backward": {
        "1 − x² on the input": (lambda dout, x: dout * (1 - x**2), ["tanh_backward.output_formula"] * 2),
        "forgets dout": (lambda dout, x: 1 - np.tanh(x) ** 2, ["tanh_backward.dout"] * 2),
        "missing square": (lambda dout, x: dout * (1 - np.tanh(x)), ["tanh_backward.values"] * 2),
    },
    "softmax": {
        "no max shift": (
            lambda x, axis=-1: np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True),
            ["ok", "ok", "ok", "softmax.unstable"],
        ),
        "global max shift": (
            lambda x, axis=-1: np.exp(x - x.max()) / np.exp(x - x.max()).sum(axis=axis, keepdims=True),
            ["ok", "ok", "ok", "softmax.unstable"],
        ),
        "axis ignored": (lambda x, axis=-1: _sm(x, -1), ["ok", "softmax.axis", "softmax.axis", "ok"]),
        "sum over the whole array": (
            lambda x, axis=-1: np.exp(x - x.max(axis=axis, keepdims=True)) / np.exp(x - x.max(axis=axis, keepdims=True)).sum(),
            ["softmax.axis"] * 4,
        ),
        "keepdims forgotten": (
            lambda x, axis=-1: np.exp(x - x.max(axis=axis)) / np.exp(x - x.max(axis=axis)).sum(axis=axis),
            ["softmax.exception", "ok", "softmax.exception", "softmax.exception"],
        ),
        "tf.nn.softmax": (_tf_softmax, ["softmax.framework_used"] * 4),
    },
    "softmax_backward": {
        "diagonal of the Jacobian only": (
            lambda dout, y, axis=-1: dout * y * (1 - y),
            ["softmax_backward.jacobian"] * 3,
        ),
        "axis ignored": (
            lambda dout, y, axis=-1: softmax_backward_jvp(dout, y, -1),
            ["ok", "softmax_backward.axis", "softmax_backward.axis"],
        ),
        "sum over the whole array": (
            lambda dout, y, axis=-1: y * (dout - np.sum(dout * y)),
            ["softmax_backward.axis"] * 3,
        ),
        "cross-entropy gradient y − dout": (
            lambda dout, y, axis=-1: y - dout,
            ["softmax_backward.values"] * 3,
        ),
    },
}


@pytest.mark.parametrize(
    ("name", "mutant"), [(name, m) for name, muts in MUTANTS.items() for m in muts]
)
def test_mutant_fails_with_its_code(name, mutant):
    impl, expected = MUTANTS[name][mutant]
    assert codes_of(name, impl) == expected


def test_every_graded_function_has_three_mutants():
    assert set(MUTANTS) == set(VALID)
    assert all(len(m) >= 3 for m in MUTANTS.values())


def test_stub_is_not_attempted_and_scores_zero():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for name in MUTANTS:
        g = getattr(act, f"public_{name}")(stub, points=2)
        getattr(act, f"hidden_{name}")(g, stub, SEED)
        score = g.score()
        assert score == 0.0 and type(score) is float
        assert set(g.codes) == {"not_attempted"}


def test_partial_score_is_a_plain_float():
    impl = MUTANTS["softmax"]["no max shift"][0]
    g = act.public_softmax(impl, points=2)
    act.hidden_softmax(g, impl, SEED)
    score = g.score()
    assert type(score) is float and score == pytest.approx(2 * 3 / 4)


def test_unstable_softmax_message_explains_the_max_shift():
    impl = MUTANTS["softmax"]["no max shift"][0]
    g = act.public_softmax(impl, points=2)
    act.hidden_softmax(g, impl, SEED)
    text = g.report()
    assert "[softmax.unstable]" in text and "maximum" in text and "NaN" in text


def test_visible_checks_run_without_solutions(monkeypatch):
    """Students have no `solutions` package: visible checks must not need it."""
    import builtins

    real_import = builtins.__import__

    def no_solutions(name, *args, **kwargs):
        if name.startswith("solutions"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_solutions)
    monkeypatch.setattr(act, "_solutions", lambda: None)
    g = act.public_softmax_backward(softmax_backward_jvp, points=2)
    assert g.codes == []


def test_hidden_messages_never_show_expected_values():
    impl = MUTANTS["sigmoid"]["sign error"][0]
    g = act.public_sigmoid(impl, points=1)
    act.hidden_sigmoid(g, impl, SEED)
    text = g.report()
    x, _ = act._random_pairs(SEED)[1]
    for v in _stable_sigmoid(x).ravel():
        assert f"{v:.4f}" not in text and f"{v:.3f}" not in text


def test_direct_reference_to_a_framework_op_is_caught():
    """`from scipy.special import softmax` bound before the call: the profiler still sees it."""
    from scipy.special import softmax as scipy_softmax

    assert codes_of("softmax", lambda x, axis=-1: scipy_softmax(x, axis=axis)) == ["softmax.framework_used"] * 4


def test_visible_checks_with_tensorflow_only(monkeypatch):
    """A TensorFlow-track student without PyTorch: visible checks use tf.nn and still diagnose."""
    monkeypatch.setattr(act, "available", lambda framework: framework == "tf")
    assert act.public_softmax_backward(softmax_backward_jacobian, points=2).codes == []
    assert act.public_leaky_relu(VALID["leaky_relu"][0], points=1).codes == []
    bad = MUTANTS["sigmoid_backward"]["x(1 − x) on the input"][0]
    assert act.public_sigmoid_backward(bad, points=1).codes == ["sigmoid_backward.output_formula"]
