"""Checks for module 3, notebook `normalization`: batch normalisation of NCHW batches.

Student API (PyTorch's conventions)::

    batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                      training=True) -> (out, new_running_mean, new_running_var)
    batchnorm_backward(dout, x, gamma, eps=1e-5) -> (dx, dgamma, dbeta)   # training mode

Training: per-channel statistics over (N, H, W); the biased variance normalises; the running
statistics become ``(1 − momentum)·running + momentum·batch`` with the *unbiased* batch
variance for ``running_var`` (``torch.nn.BatchNorm2d``). Evaluation: the running statistics
normalise and come back unchanged. Expected values come at run time from
``torch.nn.BatchNorm2d`` and ``keras.layers.BatchNormalization`` (``momentum_keras = 1 −
momentum``; Keras keeps a *biased* moving variance, converted here), their autograd, the
course's ``solutions`` (hidden, staff side) and numerical gradients in float64.

Failure codes: ``batchnorm.*`` (forward) and ``batchnorm_backward.*``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.backends import available, backend
from autograder.checks._core import (
    call_student,
    close,
    expect_array,
    expect_close,
    expect_float,
    expect_shape,
    first_diagnosis,
    mismatch,
    reference,
    rng,
    tolerance,
)
from autograder.feedback import Grader, fail

AXES = (0, 2, 3)

FORBIDDEN = (
    "torch.nn.functional.batch_norm",
    "torch.batch_norm",
    "torch.nn.BatchNorm2d",
    "torch.nn.BatchNorm1d",
    "tensorflow.nn.batch_normalization",
    "tensorflow.nn.fused_batch_norm",
    "tensorflow.nn.moments",
    "keras.layers.BatchNormalization",
    "keras.ops.batch_normalization",
    "keras.ops.moments",
    "solutions.normalization.ref_batchnorm_forward",
    "solutions.normalization.ref_batchnorm_backward",
)
FORBIDDEN_BACKWARD = FORBIDDEN + (
    "torch.Tensor.backward",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.func.vjp",
    "tensorflow.GradientTape",
)

HINT_OUT = (
    "Pour chaque canal c : μ = moyenne et σ² = variance **biaisée** (`np.var`, ddof=0) sur les axes "
    "(0, 2, 3) ; x̂ = (x − μ) / √(σ² + eps) ; out = gamma[c]·x̂ + beta[c]."
)
HINT_RUNNING = (
    "Convention PyTorch : running = (1 − momentum)·running + momentum·statistique du lot, avec la "
    "variance **non biaisée** (÷ (m − 1), m = N·H·W) pour running_var."
)
HINT_EVAL = (
    "En évaluation, normalisez avec running_mean et running_var (pas les statistiques du lot) et "
    "renvoyez-les inchangées."
)


def _solutions() -> Any | None:
    return reference("normalization")


_rng = rng


def _c(v: np.ndarray) -> np.ndarray:
    return v[None, :, None, None]


@dataclass(frozen=True)
class BNCase:
    """Input (N, C, H, W), momentum, eps; ``defaults`` calls the student without them."""

    n: int
    c: int
    h: int
    w: int
    momentum: float = 0.1
    eps: float = 1e-5
    defaults: bool = False

    def arrays(self, seed: int) -> tuple[np.ndarray, ...]:
        rng = _rng(seed)
        offset = rng.normal(scale=3.0, size=self.c)
        scale = rng.uniform(0.5, 3.0, size=self.c)
        x = _c(offset) + _c(scale) * rng.normal(size=(self.n, self.c, self.h, self.w))
        gamma = rng.uniform(0.5, 2.0, size=self.c) * rng.choice([-1.0, 1.0], size=self.c)
        beta = rng.normal(size=self.c)
        running_mean = rng.normal(size=self.c)
        running_var = rng.uniform(0.5, 2.0, size=self.c)
        return x, gamma, beta, running_mean, running_var

    def kwargs(self, training: bool) -> dict:
        if self.defaults and training:
            return {}
        kw: dict = {} if self.defaults else {"momentum": self.momentum, "eps": self.eps}
        kw["training"] = training
        return kw

    def describe(self, training: bool) -> str:
        mode = "entraînement" if training else "évaluation"
        params = "momentum et eps par défaut" if self.defaults else f"momentum={self.momentum}, eps={self.eps}"
        return f"x de forme {(self.n, self.c, self.h, self.w)}, {params}, mode {mode}"


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------


def _frameworks(hidden: bool) -> list[str]:
    found = [f for f in ("torch", "tf") if available(f)]
    if not found:
        raise RuntimeError("ni PyTorch ni TensorFlow n'est installé : installez l'un des deux")
    return found if hidden else found[:1]


def torch_batchnorm(x, gamma, beta, rm, rv, momentum, eps, training) -> tuple[np.ndarray, ...]:
    """``torch.nn.BatchNorm2d`` (float64) with the given parameters and running statistics."""
    backend("torch")
    import torch

    layer = torch.nn.BatchNorm2d(x.shape[1], eps=eps, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
        layer.running_mean.copy_(torch.from_numpy(rm))
        layer.running_var.copy_(torch.from_numpy(rv))
        layer.train(training)
        out = layer(torch.from_numpy(np.ascontiguousarray(x)))
    return out.numpy(), layer.running_mean.numpy().copy(), layer.running_var.numpy().copy()


def keras_batchnorm(x, gamma, beta, rm, rv, momentum, eps, training) -> tuple[np.ndarray, ...]:
    """``keras.layers.BatchNormalization`` (float64, NCHW with axis=1), PyTorch's conventions.

    Keras' ``momentum`` is the weight of the *old* moving average: ``1 − momentum`` here.
    Keras updates ``moving_variance`` with the *biased* batch variance; PyTorch, whose
    convention the course follows, with the unbiased one: the result is converted.
    """
    backend("tf")
    import keras

    layer = keras.layers.BatchNormalization(axis=1, momentum=1.0 - momentum, epsilon=eps, dtype="float64")
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    layer.moving_mean.assign(rm)
    layer.moving_variance.assign(rv)
    out = np.asarray(layer(x, training=training))
    new_mean = np.asarray(layer.moving_mean.numpy())
    new_var = np.asarray(layer.moving_variance.numpy())
    if training:
        m = x.size // x.shape[1]
        biased = (new_var - (1.0 - momentum) * rv) / momentum  # the batch variance Keras used
        new_var = (1.0 - momentum) * rv + momentum * biased * m / (m - 1)
    return out, new_mean, new_var


def _agreed(outs: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    for other in outs[1:]:
        if not all(close(o, r, "float32") for o, r in zip(other, outs[0], strict=True)):
            raise RuntimeError("les références PyTorch / Keras / solutions ne concordent pas")
    return outs[0]


def expected_forward(x, gamma, beta, rm, rv, momentum, eps, training, *, hidden: bool) -> tuple[np.ndarray, ...]:
    oracles = {"torch": torch_batchnorm, "tf": keras_batchnorm}
    outs = [oracles[f](x, gamma, beta, rm, rv, momentum, eps, training) for f in _frameworks(hidden)]
    ref = _solutions() if hidden else None
    if ref is not None:
        outs.append(ref.ref_batchnorm_forward(x, gamma, beta, rm, rv, momentum, eps, training))
    return _agreed(outs)


def torch_batchnorm_grads(dout, x, gamma, eps) -> tuple[np.ndarray, ...]:
    backend("torch")
    import torch
    import torch.nn.functional as F

    xt, gt = torch.from_numpy(np.array(x)).requires_grad_(), torch.from_numpy(np.array(gamma)).requires_grad_()
    bt = torch.zeros_like(gt, requires_grad=True)
    F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps).backward(torch.from_numpy(np.ascontiguousarray(dout)))
    return xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def tf_batchnorm_grads(dout, x, gamma, eps) -> tuple[np.ndarray, ...]:
    backend("tf")
    import tensorflow as tf

    xv, gv = tf.Variable(x), tf.Variable(gamma.reshape(1, -1, 1, 1))
    bv = tf.Variable(np.zeros_like(gamma).reshape(1, -1, 1, 1))
    with tf.GradientTape() as tape:
        mean, var = tf.nn.moments(xv, axes=list(AXES), keepdims=True)
        out = tf.nn.batch_normalization(xv, mean, var, bv, gv, eps)
    dx, dg, db = tape.gradient(out, [xv, gv, bv], output_gradients=tf.constant(dout))
    return dx.numpy(), dg.numpy().ravel(), db.numpy().ravel()


def expected_grads(dout, x, gamma, eps, *, hidden: bool) -> tuple[np.ndarray, ...]:
    oracles = {"torch": torch_batchnorm_grads, "tf": tf_batchnorm_grads}
    outs = [oracles[f](dout, x, gamma, eps) for f in _frameworks(hidden)]
    ref = _solutions() if hidden else None
    if ref is not None:
        outs.append(ref.ref_batchnorm_backward(dout, x, gamma, eps))
    return _agreed(outs)


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------


def _normalise(x, gamma, beta, mean, var, eps, where: str = "inside") -> np.ndarray:
    if where == "none":
        std = np.sqrt(_c(var))
    elif where == "outside":
        std = np.sqrt(_c(var)) + eps
    else:
        std = np.sqrt(_c(var) + eps)
    return _c(gamma) * (x - _c(mean)) / std + _c(beta)


def _output_diagnoses(x, gamma, beta, rm, rv, eps, training: bool, what: str) -> list:
    if training:
        mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    else:
        mean, var = rm, rv
    m = x.size // x.shape[1]
    cands = []
    if training:
        cands.append(
            (
                lambda: _normalise(x, gamma, beta, mean, var * m / (m - 1), eps),
                "batchnorm.variance",
                f"{what} : vous normalisez avec la variance **non biaisée** (÷ (m − 1)). La sortie "
                "utilise la variance biaisée (÷ m, `np.var` par défaut) ; la version non biaisée ne "
                "sert qu'à mettre à jour running_var.",
            )
        )

        def per_sample() -> np.ndarray:
            mu, sd = x.mean(axis=(1, 2, 3), keepdims=True), np.sqrt(x.var(axis=(1, 2, 3), keepdims=True) + eps)
            return _c(gamma) * (x - mu) / sd + _c(beta)

        cands += [
            (
                lambda: _c(gamma) * (x - x.mean(axis=0, keepdims=True)) / np.sqrt(x.var(axis=0, keepdims=True) + eps) + _c(beta),
                "batchnorm.axes",
                f"{what} : vos statistiques portent sur l'axe 0 seulement. En NCHW, la moyenne et la "
                "variance d'un canal portent sur les axes (0, 2, 3) : le lot **et** les positions.",
            ),
            (
                per_sample,
                "batchnorm.axes",
                f"{what} : vous normalisez chaque image (axes 1, 2, 3). La batch norm normalise chaque "
                "**canal** sur les axes (0, 2, 3).",
            ),
        ]
    else:
        cands.append(
            (
                lambda: _normalise(x, gamma, beta, x.mean(axis=AXES), x.var(axis=AXES), eps),
                "batchnorm.eval_batch_stats",
                f"{what} : vous normalisez avec les statistiques du lot. {HINT_EVAL}",
            )
        )
    cands += [
        (
            lambda: _normalise(x, gamma, beta, mean, var, eps, "none"),
            "batchnorm.eps",
            f"{what} : `eps` est oublié. Divisez par √(σ² + eps).",
        ),
        (
            lambda: _normalise(x, gamma, beta, mean, var, eps, "outside"),
            "batchnorm.eps",
            f"{what} : `eps` est ajouté hors de la racine. Divisez par √(σ² + eps), pas par √σ² + eps.",
        ),
        (
            lambda: _normalise(x, beta, gamma, mean, var, eps),
            "batchnorm.gamma_beta",
            f"{what} : gamma et beta sont inversés : out = gamma·x̂ + beta.",
        ),
        (
            lambda: _normalise(x, np.ones_like(gamma), np.zeros_like(beta), mean, var, eps),
            "batchnorm.gamma_beta",
            f"{what} : gamma et beta ne sont pas appliqués : out = gamma·x̂ + beta.",
        ),
    ]
    return cands


def _running_diagnoses(x, rm, rv, momentum, what: str) -> list:
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    m = x.size // x.shape[1]
    unbiased = var * m / (m - 1)
    mo = momentum
    return [
        (
            lambda: np.concatenate([rm, rv]),
            "batchnorm.running_not_updated",
            f"{what} : running_mean et running_var sont renvoyées inchangées. En entraînement, "
            f"mettez-les à jour. {HINT_RUNNING}",
        ),
        (
            lambda: np.concatenate([mo * rm + (1 - mo) * mean, mo * rv + (1 - mo) * unbiased]),
            "batchnorm.momentum",
            f"{what} : vous suivez la convention de Keras (momentum = poids de l'ancienne valeur). "
            f"{HINT_RUNNING}",
        ),
        (
            lambda: np.concatenate([mo * rm + (1 - mo) * mean, mo * rv + (1 - mo) * var]),
            "batchnorm.momentum",
            f"{what} : vous suivez la convention de Keras (momentum = poids de l'ancienne valeur). "
            f"{HINT_RUNNING}",
        ),
        (
            lambda: np.concatenate([(1 - mo) * rm + mo * mean, (1 - mo) * rv + mo * var]),
            "batchnorm.running_var_biased",
            f"{what} : running_var est mise à jour avec la variance **biaisée**. PyTorch y met la "
            "variance non biaisée : σ² · m / (m − 1), avec m = N·H·W valeurs par canal.",
        ),
        (
            lambda: np.concatenate([mean, unbiased]),
            "batchnorm.momentum",
            f"{what} : les statistiques courantes sont remplacées par celles du lot, sans moyenne "
            f"glissante. {HINT_RUNNING}",
        ),
    ]


def _student_forward(fn: Callable, case: BNCase, arrays: tuple, training: bool, what: str) -> tuple[np.ndarray, ...]:
    # running_mean / running_var may be updated in place, as PyTorch's own batch norm does.
    got = call_student(fn, *arrays, what="batchnorm_forward", code="batchnorm", forbidden=FORBIDDEN,
                       mutable=(3, 4, "running_mean", "running_var"), **case.kwargs(training))
    if not isinstance(got, tuple | list) or len(got) != 3:
        fail(
            "batchnorm.type",
            "`batchnorm_forward` doit renvoyer un triplet `(out, running_mean, running_var)` ; reçu "
            f"`{type(got).__name__}`" + (f" de longueur {len(got)}" if isinstance(got, tuple | list) else "") + ".",
        )
    names = ("out", "running_mean", "running_var")
    out = [expect_array(a, what=f"`{n}`", code="batchnorm") for a, n in zip(got, names, strict=True)]
    x = arrays[0]
    for arr, shape, name in zip(out, (x.shape, (x.shape[1],), (x.shape[1],)), names, strict=True):
        expect_shape(arr, shape, what=f"{what} : `{name}`", code="batchnorm.shape", hint="Une statistique par canal : forme (C,).")
        expect_float(arr, "float64", what=f"`{name}`", code="batchnorm.dtype")
    return tuple(out)


def forward_case(fn: Callable, case: BNCase, seed: int, *, training: bool, hidden: bool, part: str) -> None:
    """``part``: ``"out"`` (the normalised output) or ``"running"`` (the returned statistics)."""
    arrays = case.arrays(seed)
    x, gamma, beta, rm, rv = arrays
    what = f"`batchnorm_forward` ({case.describe(training)})"
    got = _student_forward(fn, case, arrays, training, what)
    exp = expected_forward(x, gamma, beta, rm, rv, case.momentum, case.eps, training, hidden=hidden)
    if part == "out":
        if not close(got[0], exp[0]):
            first_diagnosis(got[0], _output_diagnoses(x, gamma, beta, rm, rv, case.eps, training, what))
        expect_close(got[0], exp[0], what=f"{what} : `out`", code="batchnorm.values", hint=HINT_OUT if training else HINT_EVAL)
        return
    both_got, both_exp = np.concatenate(got[1:]), np.concatenate(exp[1:])
    if not training:
        if not close(both_got, both_exp):
            fail("batchnorm.eval_updates_running", f"{what} : les statistiques courantes renvoyées ont changé. {HINT_EVAL}")
        return
    if not close(both_got, both_exp):
        first_diagnosis(both_got, _running_diagnoses(x, rm, rv, case.momentum, what))
    expect_close(got[1], exp[1], what=f"{what} : `running_mean`", code="batchnorm.running_mean", hint=HINT_RUNNING)
    expect_close(got[2], exp[2], what=f"{what} : `running_var`", code="batchnorm.running_var", hint=HINT_RUNNING)


TRAIN_DEFAULTS = BNCase(2, 3, 4, 4, defaults=True)
TRAIN_CUSTOM = BNCase(3, 2, 3, 5, momentum=0.3, eps=1e-3)


def random_cases(seed: int, n: int = 4) -> list[BNCase]:
    """Batches of 1–4 (a single image included), 1–4 channels, various momenta and eps."""
    rng = _rng(seed)
    cases = [BNCase(1, int(rng.integers(1, 4)), 3, 4, momentum=0.05, eps=1e-2)]
    for _ in range(n - 1):
        cases.append(
            BNCase(
                int(rng.integers(2, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(2, 5)),
                momentum=float(rng.choice([0.01, 0.1, 0.25, 0.5])), eps=float(rng.choice([1e-5, 1e-3, 0.1])),
            )
        )
    return cases


def batchnorm_train_output(batchnorm_forward: Callable) -> None:
    """Entraînement : sortie normalisée par les statistiques du lot, comparée à `nn.BatchNorm2d`."""
    forward_case(batchnorm_forward, TRAIN_DEFAULTS, 0, training=True, hidden=False, part="out")


def batchnorm_train_running(batchnorm_forward: Callable) -> None:
    """Entraînement : mise à jour de running_mean et running_var (convention PyTorch)."""
    forward_case(batchnorm_forward, TRAIN_DEFAULTS, 0, training=True, hidden=False, part="running")


def batchnorm_train_custom(batchnorm_forward: Callable) -> None:
    """Entraînement avec momentum=0.3 et eps=1e-3 : sortie et statistiques courantes."""
    forward_case(batchnorm_forward, TRAIN_CUSTOM, 1, training=True, hidden=False, part="out")
    forward_case(batchnorm_forward, TRAIN_CUSTOM, 1, training=True, hidden=False, part="running")


def batchnorm_train_random_output(batchnorm_forward: Callable, seed: int) -> None:
    """Entraînement, cas aléatoires (lot d'une image compris) : sortie, contre PyTorch et Keras."""
    for i, case in enumerate(random_cases(seed)):
        forward_case(batchnorm_forward, case, seed + i, training=True, hidden=True, part="out")


def batchnorm_train_random_running(batchnorm_forward: Callable, seed: int) -> None:
    """Entraînement, cas aléatoires : statistiques courantes, contre PyTorch et Keras (momentum converti)."""
    for i, case in enumerate(random_cases(seed)):
        forward_case(batchnorm_forward, case, seed + i, training=True, hidden=True, part="running")


def public_batchnorm_train(batchnorm_forward: Callable, points: float) -> Grader:
    g = Grader("batchnorm-train", points, "batchnorm_forward (entraînement)")
    g.check(batchnorm_train_output, batchnorm_forward, name="sortie")
    g.check(batchnorm_train_running, batchnorm_forward, name="statistiques courantes")
    g.check(batchnorm_train_custom, batchnorm_forward, name="momentum et eps donnés")
    return g


def hidden_batchnorm_train(g: Grader, batchnorm_forward: Callable, seed: int) -> None:
    g.hidden()
    g.check(batchnorm_train_random_output, batchnorm_forward, seed, name="sortie, cas aléatoires")
    g.check(batchnorm_train_random_running, batchnorm_forward, seed, name="statistiques courantes, cas aléatoires")


EVAL_CASE = BNCase(4, 3, 2, 3, momentum=0.1, eps=1e-5)


def batchnorm_eval_output(batchnorm_forward: Callable) -> None:
    """Évaluation : sortie normalisée par running_mean et running_var, comparée à `nn.BatchNorm2d`."""
    forward_case(batchnorm_forward, EVAL_CASE, 2, training=False, hidden=False, part="out")


def batchnorm_eval_running(batchnorm_forward: Callable) -> None:
    """Évaluation : running_mean et running_var sont renvoyées inchangées."""
    forward_case(batchnorm_forward, EVAL_CASE, 2, training=False, hidden=False, part="running")


def batchnorm_eval_random(batchnorm_forward: Callable, seed: int) -> None:
    """Évaluation, cas aléatoires (une seule image 1×1 comprise), contre PyTorch et Keras."""
    cases = [BNCase(1, 3, 1, 1, eps=1e-3), *random_cases(seed + 100, 3)]
    for i, case in enumerate(cases):
        forward_case(batchnorm_forward, case, seed + i, training=False, hidden=True, part="out")
        forward_case(batchnorm_forward, case, seed + i, training=False, hidden=True, part="running")


def public_batchnorm_eval(batchnorm_forward: Callable, points: float) -> Grader:
    g = Grader("batchnorm-eval", points, "batchnorm_forward (évaluation)")
    g.check(batchnorm_eval_output, batchnorm_forward, name="sortie")
    g.check(batchnorm_eval_running, batchnorm_forward, name="statistiques courantes inchangées")
    return g


def hidden_batchnorm_eval(g: Grader, batchnorm_forward: Callable, seed: int) -> None:
    g.hidden().check(batchnorm_eval_random, batchnorm_forward, seed, name="cas aléatoires")


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------

HINTS_BACKWARD = {
    "dbeta": "dbeta[c] = Σ dout[:, c] sur les axes (0, 2, 3).",
    "dgamma": "dgamma[c] = Σ dout · x̂ sur les axes (0, 2, 3), avec x̂ la sortie **normalisée** "
    "(avant gamma et beta), pas x.",
    "dx": "Avec dx̂ = dout·gamma : dx = (dx̂ − moyenne(dx̂) − x̂ · moyenne(dx̂ · x̂)) / √(σ² + eps), "
    "moyennes sur les axes (0, 2, 3). La moyenne et la variance dépendent de x : ne les oubliez pas.",
}


def _backward_diagnoses(dout, x, gamma, eps, what: str) -> list:
    mean = x.mean(axis=AXES, keepdims=True)
    inv = 1.0 / np.sqrt(x.var(axis=AXES, keepdims=True) + eps)
    xhat = (x - mean) * inv
    dxhat = dout * _c(gamma)
    msg = (
        f"{what} : `dx` ne tient pas compte de la dépendance de la moyenne et de la variance du "
        f"lot envers x (il manque les termes en moyenne). {HINTS_BACKWARD['dx']}"
    )
    return [
        (lambda: dxhat * inv, "batchnorm_backward.mean_terms", msg),
        (lambda: inv * (dxhat - dxhat.mean(axis=AXES, keepdims=True)), "batchnorm_backward.mean_terms", msg),
        (lambda: inv * (dxhat - xhat * (dxhat * xhat).mean(axis=AXES, keepdims=True)), "batchnorm_backward.mean_terms", msg),
    ]


def _student_grads(fn: Callable, dout, x, gamma, eps: float | None, what: str) -> list[np.ndarray]:
    kw = {} if eps is None else {"eps": eps}
    got = call_student(fn, dout, x, gamma, what="batchnorm_backward", code="batchnorm_backward", forbidden=FORBIDDEN_BACKWARD, **kw)
    if not isinstance(got, tuple | list) or len(got) != 3:
        fail(
            "batchnorm_backward.type",
            "`batchnorm_backward` doit renvoyer un triplet `(dx, dgamma, dbeta)` ; reçu "
            f"`{type(got).__name__}`" + (f" de longueur {len(got)}" if isinstance(got, tuple | list) else "") + ".",
        )
    names = ("dx", "dgamma", "dbeta")
    arrays = [expect_array(a, what=f"`{n}`", code="batchnorm_backward") for a, n in zip(got, names, strict=True)]
    for arr, shape, name in zip(arrays, (x.shape, gamma.shape, gamma.shape), names, strict=True):
        expect_shape(arr, shape, what=f"{what} : `{name}`", code="batchnorm_backward.shape", hint=f"`{name}` a la forme de `{name[1:]}`.")
        expect_float(arr, "float64", what=f"`{name}`", code="batchnorm_backward.dtype")
    return arrays


def backward_case(fn: Callable, case: BNCase, seed: int, *, hidden: bool) -> None:
    x, gamma, *_ = case.arrays(seed)
    dout = _rng(seed + 700).normal(size=x.shape)
    eps = None if case.defaults else case.eps
    what = f"`batchnorm_backward` (x de forme {x.shape}, " + ("eps par défaut)" if eps is None else f"eps={eps})")
    dx, dgamma, dbeta = _student_grads(fn, dout, x, gamma, eps, what)
    edx, edgamma, edbeta = expected_grads(dout, x, gamma, case.eps, hidden=hidden)
    expect_close(dbeta, edbeta, what=f"{what} : `dbeta`", code="batchnorm_backward.dbeta", hint=HINTS_BACKWARD["dbeta"])
    if not (close(dgamma, edgamma) and close(dx, edx)):
        oracle = {"torch": torch_batchnorm_grads, "tf": tf_batchnorm_grads}[_frameworks(False)[0]]
        no_eps = oracle(dout, x, gamma, 1e-300)  # PyTorch refuses eps = 0
        if close(dgamma, no_eps[1]) and (close(dx, no_eps[0]) or not close(dx, edx)):
            fail(
                "batchnorm_backward.eps",
                f"{what} : vos gradients correspondent à eps = 0. Utilisez √(σ² + eps) dans la "
                "rétropropagation aussi, avec l'`eps` reçu.",
            )
    expect_close(dgamma, edgamma, what=f"{what} : `dgamma`", code="batchnorm_backward.dgamma", hint=HINTS_BACKWARD["dgamma"])
    if not close(dx, edx):
        first_diagnosis(dx, _backward_diagnoses(dout, x, gamma, case.eps, what))
    expect_close(dx, edx, what=f"{what} : `dx`", code="batchnorm_backward.dx", hint=HINTS_BACKWARD["dx"])


def batchnorm_backward_basic(batchnorm_backward: Callable) -> None:
    """Gradients (dx, dgamma, dbeta) sur un lot (2, 3, 4, 4), eps par défaut, contre l'autograd."""
    backward_case(batchnorm_backward, BNCase(2, 3, 4, 4, defaults=True), 20, hidden=False)


def batchnorm_backward_eps(batchnorm_backward: Callable) -> None:
    """Gradients avec eps=0.1 (eps doit être utilisé aussi dans la rétropropagation)."""
    backward_case(batchnorm_backward, BNCase(3, 2, 3, 3, eps=0.1), 21, hidden=False)


def batchnorm_backward_random(batchnorm_backward: Callable, seed: int) -> None:
    """Cas aléatoires contre l'autograd de PyTorch et de TensorFlow."""
    for i, case in enumerate(random_cases(seed)):
        backward_case(batchnorm_backward, case, seed + i, hidden=True)


def batchnorm_backward_numerical(batchnorm_backward: Callable, seed: int) -> None:
    """Gradient numérique (différences centrées, float64) de Σ out · dout par rapport à x et gamma."""
    case = BNCase(2, 2, 3, 2, eps=1e-3)
    x, gamma, beta, rm, rv = case.arrays(seed)
    dout = _rng(seed + 1).normal(size=x.shape)
    what = f"`batchnorm_backward` (x de forme {x.shape}, eps={case.eps}), gradient numérique"
    dx, dgamma, _ = _student_grads(batchnorm_backward, dout, x, gamma, case.eps, what)

    def loss(xx, gg):
        mean, var = xx.mean(axis=AXES), xx.var(axis=AXES)
        return np.sum(_normalise(xx, gg, beta, mean, var, case.eps) * dout)

    h = 1e-6
    num_dx, num_dgamma = np.zeros_like(x), np.zeros_like(gamma)
    for arr, num in ((x, num_dx), (gamma, num_dgamma)):
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            plus = loss(x, gamma)
            arr[idx] = old - h
            minus = loss(x, gamma)
            arr[idx] = old
            num[idx] = (plus - minus) / (2 * h)
    rtol, atol = tolerance("numerical_gradient")
    for got, num, name in ((dgamma, num_dgamma, "dgamma"), (dx, num_dx, "dx")):
        problem = mismatch(got, num, rtol, atol)
        if problem:
            fail(f"batchnorm_backward.{name}", f"{what} : `{name}` diffère du gradient numérique ({problem}). {HINTS_BACKWARD[name]}")


def public_batchnorm_backward(batchnorm_backward: Callable, points: float) -> Grader:
    g = Grader("batchnorm-backward", points, "batchnorm_backward")
    g.check(batchnorm_backward_basic, batchnorm_backward, name="eps par défaut")
    g.check(batchnorm_backward_eps, batchnorm_backward, name="eps=0.1")
    return g


def hidden_batchnorm_backward(g: Grader, batchnorm_backward: Callable, seed: int) -> None:
    g.hidden()
    g.check(batchnorm_backward_random, batchnorm_backward, seed, name="cas aléatoires")
    g.check(batchnorm_backward_numerical, batchnorm_backward, seed, name="gradient numérique")
