"""Unit tests of autograder.checks.normalization: each check fails on its mutants, passes on valid code.

The forward function is graded by two cells (training and evaluation); mutants name the cell
and the codes they must produce there. Valid alternatives: a vectorised version with keepdims
and a per-channel loop; for the backward pass, the compact formula and the step-by-step
computational graph (CS231n style).
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import normalization as norm

pytestmark = [pytest.mark.torch, pytest.mark.tf]

SEED = 99
AXES = (0, 2, 3)


def codes_of(cell: str, fn) -> list[str]:
    """``cell``: ``train``, ``eval`` or ``backward``."""
    g = getattr(norm, f"public_batchnorm_{cell}")(fn, points=3)
    getattr(norm, f"hidden_batchnorm_{cell}")(g, fn, SEED)
    return [r.code if not r.passed else "ok" for r in g.results]


# ------------------------------------------------------------------------------ implementations


def bn_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True, *,
               norm_ddof=0, running_ddof=1, update=True, keras_momentum=False, eval_batch=False,
               eval_update=False, eps_mode="inside", axes=AXES):
    """Vectorised batch norm with one switch per classic bug."""
    use_batch = training or eval_batch
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=norm_ddof)
    if not use_batch:
        mean, var = running_mean[None, :, None, None], running_var[None, :, None, None]
    std = {"inside": np.sqrt(var + eps), "none": np.sqrt(var), "outside": np.sqrt(var) + eps}[eps_mode]
    out = gamma[None, :, None, None] * (x - mean) / std + beta[None, :, None, None]
    new_mean, new_var = running_mean.copy(), running_var.copy()
    if (training and update) or (not training and eval_update):
        bm = x.mean(axis=AXES)
        bv = x.var(axis=AXES, ddof=running_ddof)
        a = (1 - momentum) if not keras_momentum else momentum
        new_mean = a * running_mean + (1 - a) * bm
        new_var = a * running_var + (1 - a) * bv
    return out, new_mean, new_var


def bn_forward_loop(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    """One channel at a time, statistics by explicit sums."""
    out = np.empty_like(x)
    new_mean, new_var = running_mean.copy(), running_var.copy()
    for c in range(x.shape[1]):
        values = x[:, c].ravel()
        m = values.size
        if training:
            mu = values.sum() / m
            var = ((values - mu) ** 2).sum() / m
            new_mean[c] = (1 - momentum) * running_mean[c] + momentum * mu
            new_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        else:
            mu, var = running_mean[c], running_var[c]
        out[:, c] = gamma[c] * (x[:, c] - mu) / np.sqrt(var + eps) + beta[c]
    return out, new_mean, new_var


def bn_backward(dout, x, gamma, eps=1e-5, *, mean_terms="both", dgamma_on_x=False, dbeta_mean=False, use_eps=True):
    """Compact formula, with switches for classic bugs."""
    mean = x.mean(axis=AXES, keepdims=True)
    inv = 1 / np.sqrt(x.var(axis=AXES, keepdims=True) + (eps if use_eps else 0.0))
    xhat = (x - mean) * inv
    dbeta = dout.mean(axis=AXES) if dbeta_mean else dout.sum(axis=AXES)
    dgamma = (dout * (x if dgamma_on_x else xhat)).sum(axis=AXES)
    dxhat = dout * gamma[None, :, None, None]
    dx = dxhat.copy()
    if mean_terms in ("both", "mean"):
        dx = dx - dxhat.mean(axis=AXES, keepdims=True)
    if mean_terms in ("both", "var"):
        dx = dx - xhat * (dxhat * xhat).mean(axis=AXES, keepdims=True)
    return dx * inv, dgamma, dbeta


def bn_backward_graph(dout, x, gamma, eps=1e-5):
    """Step by step through the computational graph x → μ → σ² → x̂ → out."""
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=AXES, keepdims=True)
    xc = x - mu
    var = (xc**2).mean(axis=AXES, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = xc / std
    dbeta = dout.sum(axis=AXES)
    dgamma = (dout * xhat).sum(axis=AXES)
    dxhat = dout * gamma[None, :, None, None]
    dxc = dxhat / std
    dstd = -(dxhat * xc).sum(axis=AXES, keepdims=True) / std**2
    dvar = dstd / (2 * std)
    dxc = dxc + 2 * xc * dvar / m
    dmu = -dxc.sum(axis=AXES, keepdims=True)
    return dxc + dmu / m, dgamma, dbeta


VALID_FORWARD = [bn_forward, bn_forward_loop]
VALID_BACKWARD = [bn_backward, bn_backward_graph]


@pytest.mark.parametrize("fn", VALID_FORWARD, ids=["vectorised", "loop"])
@pytest.mark.parametrize("cell", ["train", "eval"])
def test_valid_forward_passes(cell, fn):
    assert set(codes_of(cell, fn)) == {"ok"}


@pytest.mark.parametrize("fn", VALID_BACKWARD, ids=["formula", "graph"])
def test_valid_backward_passes(fn):
    assert set(codes_of("backward", fn)) == {"ok"}


# ------------------------------------------------------------------------------ mutants


def _fwd(**switches):
    def student(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
        return bn_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training, **switches)

    return student


def _bwd(**switches):
    def student(dout, x, gamma, eps=1e-5):
        return bn_backward(dout, x, gamma, eps, **switches)

    return student


def _torch_inside(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
    import torch
    import torch.nn.functional as F

    rm, rv = torch.tensor(running_mean), torch.tensor(running_var)
    out = F.batch_norm(torch.tensor(x), rm, rv, torch.tensor(gamma), torch.tensor(beta), training, momentum, eps)
    return out.numpy(), rm.numpy(), rv.numpy()


# Cells: train = [output, running, custom, hidden output, hidden running];
#        eval = [output, running unchanged, hidden]; backward = [default eps, eps=0.1, hidden, numerical].
FORWARD_MUTANTS = {
    "normalises with the unbiased variance": (
        _fwd(norm_ddof=1),
        {"train": ["batchnorm.variance", "ok", "batchnorm.variance", "batchnorm.variance", "ok"], "eval": ["ok"] * 3},
    ),
    "running_var updated with the biased variance": (
        _fwd(running_ddof=0),
        {"train": ["ok", "batchnorm.running_var_biased", "batchnorm.running_var_biased", "ok", "batchnorm.running_var_biased"], "eval": ["ok"] * 3},
    ),
    "running stats not updated": (
        _fwd(update=False),
        {"train": ["ok", "batchnorm.running_not_updated", "batchnorm.running_not_updated", "ok", "batchnorm.running_not_updated"], "eval": ["ok"] * 3},
    ),
    "Keras momentum convention": (
        _fwd(keras_momentum=True),
        {"train": ["ok", "batchnorm.momentum", "batchnorm.momentum", "ok", "batchnorm.momentum"], "eval": ["ok"] * 3},
    ),
    "eval mode uses batch statistics": (
        _fwd(eval_batch=True),
        {"train": ["ok"] * 5, "eval": ["batchnorm.eval_batch_stats", "ok", "batchnorm.eval_batch_stats"]},
    ),
    "training flag ignored": (
        _fwd(eval_batch=True, eval_update=True),
        {"train": ["ok"] * 5, "eval": ["batchnorm.eval_batch_stats", "batchnorm.eval_updates_running", "batchnorm.eval_batch_stats"]},
    ),
    "eval mode updates the running stats": (
        _fwd(eval_update=True),
        {"train": ["ok"] * 5, "eval": ["ok", "batchnorm.eval_updates_running", "batchnorm.eval_updates_running"]},
    ),
    "eps forgotten": (
        _fwd(eps_mode="none"),
        {"train": ["batchnorm.eps", "ok", "batchnorm.eps", "batchnorm.eps", "ok"], "eval": ["batchnorm.eps", "ok", "batchnorm.eps"]},
    ),
    "eps outside the square root": (
        _fwd(eps_mode="outside"),
        {"train": ["batchnorm.eps", "ok", "batchnorm.eps", "batchnorm.eps", "ok"], "eval": ["batchnorm.eps", "ok", "batchnorm.eps"]},
    ),
    "statistics over the batch axis only": (
        _fwd(axes=0),
        {"train": ["batchnorm.axes", "ok", "batchnorm.axes", "batchnorm.axes", "ok"], "eval": ["ok"] * 3},
    ),
    "torch inside": (
        _torch_inside,
        {"train": ["batchnorm.framework_used"] * 5, "eval": ["batchnorm.framework_used"] * 3},
    ),
}


@pytest.mark.parametrize("mutant", list(FORWARD_MUTANTS))
def test_forward_mutant_fails_with_its_code(mutant):
    impl, expected = FORWARD_MUTANTS[mutant]
    for cell, codes in expected.items():
        assert codes_of(cell, impl) == codes, cell


BACKWARD_MUTANTS = {
    "missing both mean terms": (_bwd(mean_terms="none"), ["batchnorm_backward.mean_terms"] * 3 + ["batchnorm_backward.dx"]),
    "missing the variance term": (_bwd(mean_terms="mean"), ["batchnorm_backward.mean_terms"] * 3 + ["batchnorm_backward.dx"]),
    "missing the mean term": (_bwd(mean_terms="var"), ["batchnorm_backward.mean_terms"] * 3 + ["batchnorm_backward.dx"]),
    "dgamma with x instead of x̂": (_bwd(dgamma_on_x=True), ["batchnorm_backward.dgamma"] * 4),
    "dbeta averaged": (_bwd(dbeta_mean=True), ["batchnorm_backward.dbeta"] * 3 + ["ok"]),
    "eps ignored in the backward pass": (_bwd(use_eps=False), ["batchnorm_backward.eps"] * 3 + ["batchnorm_backward.dgamma"]),
}


@pytest.mark.parametrize("mutant", list(BACKWARD_MUTANTS))
def test_backward_mutant_fails_with_its_code(mutant):
    impl, expected = BACKWARD_MUTANTS[mutant]
    assert codes_of("backward", impl) == expected


def test_three_mutants_per_graded_function():
    assert len(FORWARD_MUTANTS) >= 3 and len(BACKWARD_MUTANTS) >= 3


def test_returning_a_single_array_is_a_type_failure():
    g = norm.public_batchnorm_train(lambda *a, **k: bn_forward(*a, **k)[0], points=3)
    assert g.codes == ["batchnorm.type"] * 3
    assert "triplet" in g.results[0].message


def test_stub_is_not_attempted_and_scores_zero():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for cell in ("train", "eval", "backward"):
        g = getattr(norm, f"public_batchnorm_{cell}")(stub, points=3)
        getattr(norm, f"hidden_batchnorm_{cell}")(g, stub, SEED)
        assert g.score() == 0.0 and set(g.codes) == {"not_attempted"}


def test_keras_oracle_agrees_with_torch_after_conversion():
    """The Keras oracle maps momentum (1 − m) and its biased moving variance to PyTorch's."""
    case = norm.BNCase(3, 2, 3, 4, momentum=0.25, eps=1e-3)
    arrays = case.arrays(5)
    t = norm.torch_batchnorm(*arrays, case.momentum, case.eps, True)
    k = norm.keras_batchnorm(*arrays, case.momentum, case.eps, True)
    for a, b in zip(t, k, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_visible_checks_run_without_solutions(monkeypatch):
    monkeypatch.setattr(norm, "_solutions", lambda: None)
    assert norm.public_batchnorm_train(bn_forward_loop, points=3).codes == []
    assert norm.public_batchnorm_backward(bn_backward_graph, points=3).codes == []


def test_visible_checks_with_keras_only(monkeypatch):
    """Without PyTorch, visible checks compare to keras.layers.BatchNormalization (converted)."""
    monkeypatch.setattr(norm, "available", lambda framework: framework == "tf")
    assert norm.public_batchnorm_train(bn_forward_loop, points=3).codes == []
    assert norm.public_batchnorm_eval(bn_forward, points=2).codes == []
    assert norm.public_batchnorm_backward(bn_backward_graph, points=3).codes == []
    keras_style = FORWARD_MUTANTS["Keras momentum convention"][0]
    assert norm.public_batchnorm_train(keras_style, points=3).codes == ["batchnorm.momentum"] * 2
