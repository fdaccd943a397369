"""Checks for module 3, notebook `activations_pooling`: activations and their derivatives.

ReLU, leaky ReLU, sigmoid, tanh and softmax, forward and backward. A backward function takes the
upstream gradient ``dout`` and returns ``dx = dout · f'(x)`` (``relu_backward(dout, x)``…);
``softmax_backward(dout, y, axis)`` takes the softmax *output* ``y`` and returns the
Jacobian-vector product. Expected values come at run time from ``torch.nn.functional`` and
``tf.nn`` (visible checks: the first installed framework; hidden checks: every installed one,
the course's ``solutions`` when present, and numerical gradients in float64).

Failure codes: ``<function>.<aspect>``, e.g. ``softmax.unstable``, ``leaky_relu.slope``,
``sigmoid_backward.output_formula``, ``relu_backward.dout``.
"""

from __future__ import annotations

from collections.abc import Callable
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

# Ops that do the exercise for the student: using one earns no credit for that check.
_AUTOGRAD = (
    "torch.Tensor.backward",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.func.grad",
    "torch.func.vjp",
    "tensorflow.GradientTape",
)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "relu": (
        "torch.relu",
        "torch.nn.functional.relu",
        "tensorflow.nn.relu",
        "keras.ops.relu",
        "keras.activations.relu",
    ),
    "leaky_relu": (
        "torch.nn.functional.leaky_relu",
        "tensorflow.nn.leaky_relu",
        "keras.ops.leaky_relu",
        "keras.activations.leaky_relu",
    ),
    "sigmoid": (
        "scipy.special.expit",
        "torch.sigmoid",
        "torch.special.expit",
        "torch.nn.functional.sigmoid",
        "tensorflow.nn.sigmoid",
        "tensorflow.math.sigmoid",
        "keras.ops.sigmoid",
        "keras.activations.sigmoid",
    ),
    "tanh": (
        "numpy.tanh",
        "torch.tanh",
        "torch.nn.functional.tanh",
        "tensorflow.nn.tanh",
        "tensorflow.math.tanh",
        "keras.ops.tanh",
        "keras.activations.tanh",
    ),
    "softmax": (
        "scipy.special.softmax",
        "scipy.special.log_softmax",
        "scipy.special.logsumexp",
        "torch.softmax",
        "torch.nn.functional.softmax",
        "torch.nn.functional.log_softmax",
        "torch.logsumexp",
        "tensorflow.nn.softmax",
        "tensorflow.math.softmax",
        "tensorflow.nn.log_softmax",
        "tensorflow.math.reduce_logsumexp",
        "keras.ops.softmax",
        "keras.activations.softmax",
    ),
}


def forbidden(name: str) -> tuple[str, ...]:
    """Forbidden ops for the student function ``name`` (``relu``, ``relu_backward``…)."""
    base = name.removesuffix("_backward")
    refs = (f"solutions.activations.ref_{base}", f"solutions.activations.ref_{base}_backward")
    if name.endswith("_backward"):
        # np.tanh stays allowed in tanh_backward: the derivative is the exercise there.
        ops = tuple(op for op in FORBIDDEN[base] if op != "numpy.tanh")
        return ops + _AUTOGRAD + refs
    return FORBIDDEN[base] + refs


HINTS = {
    "relu": "ReLU(x) = max(x, 0), élément par élément (`np.maximum(x, 0)`).",
    "leaky_relu": "leaky_relu(x) = x si x > 0, sinon negative_slope · x.",
    "sigmoid": "σ(x) = 1 / (1 + exp(−x)).",
    "tanh": "tanh(x) = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ) = 2·σ(2x) − 1.",
    "softmax": "softmax(x)ᵢ = exp(xᵢ) / Σⱼ exp(xⱼ), la somme portant sur l'axe `axis` seulement "
    "(`np.sum(..., axis=axis, keepdims=True)`).",
    "relu_backward": "dx = dout là où x > 0, et 0 ailleurs.",
    "leaky_relu_backward": "dx = dout là où x > 0, et negative_slope · dout ailleurs.",
    "sigmoid_backward": "σ'(x) = σ(x)·(1 − σ(x)) : dx = dout · σ(x) · (1 − σ(x)).",
    "tanh_backward": "tanh'(x) = 1 − tanh(x)² : dx = dout · (1 − tanh(x)²).",
    "softmax_backward": "dx = y · (dout − Σ (dout · y)), la somme portant sur l'axe `axis` "
    "(keepdims=True) : le jacobien de softmax n'est pas diagonal.",
}

HINT_DOUT = (
    "Le résultat ne dépend pas de `dout` : la rétropropagation multiplie la dérivée locale par le "
    "gradient qui arrive de la couche suivante (règle de la chaîne)."
)
HINT_UNSTABLE = (
    "Pour des entrées très grandes en valeur absolue (de l'ordre de 1000), `np.exp` déborde "
    "(`inf`) et `inf / inf` donne NaN."
)


def _solutions() -> Any | None:
    return reference("activations")


_rng = rng


# ---------------------------------------------------------------------------------------------
# Oracles: the frameworks' own activations, forward and autograd, on float64 NumPy arrays.
# ---------------------------------------------------------------------------------------------


def _frameworks(hidden: bool) -> list[str]:
    found = [f for f in ("torch", "tf") if available(f)]
    if not found:
        raise RuntimeError("ni PyTorch ni TensorFlow n'est installé : installez l'un des deux")
    return found if hidden else found[:1]


def _torch_op(name: str, t: Any, kw: dict) -> Any:
    import torch
    import torch.nn.functional as F

    if name == "relu":
        return F.relu(t)
    if name == "leaky_relu":
        return F.leaky_relu(t, kw.get("negative_slope", 0.01))
    if name == "sigmoid":
        return torch.sigmoid(t)
    if name == "tanh":
        return torch.tanh(t)
    if name == "softmax":
        return torch.softmax(t, dim=kw.get("axis", -1))
    raise ValueError(name)


def _tf_op(name: str, t: Any, kw: dict) -> Any:
    import tensorflow as tf

    if name == "relu":
        return tf.nn.relu(t)
    if name == "leaky_relu":
        return tf.nn.leaky_relu(t, alpha=kw.get("negative_slope", 0.01))
    if name == "sigmoid":
        return tf.nn.sigmoid(t)
    if name == "tanh":
        return tf.nn.tanh(t)
    if name == "softmax":
        return tf.nn.softmax(t, axis=kw.get("axis", -1))
    raise ValueError(name)


def framework_forward(framework: str, name: str, x: np.ndarray, **kw: Any) -> np.ndarray:
    """Activation ``name`` computed by ``framework`` (``"torch"`` or ``"tf"``)."""
    backend(framework)  # imports the framework with its logs silenced
    if framework == "torch":
        import torch

        return _torch_op(name, torch.from_numpy(np.ascontiguousarray(x)), kw).numpy()
    import tensorflow as tf

    return _tf_op(name, tf.constant(x), kw).numpy()


def framework_grad(framework: str, name: str, x: np.ndarray, dout: np.ndarray, **kw: Any) -> np.ndarray:
    """Gradient of ``sum(f(x) * dout)`` with respect to ``x``, by the framework's autograd."""
    backend(framework)
    if framework == "torch":
        import torch

        t = torch.from_numpy(np.array(x)).requires_grad_()
        _torch_op(name, t, kw).backward(torch.from_numpy(np.ascontiguousarray(dout)))
        return t.grad.numpy()
    import tensorflow as tf

    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = _tf_op(name, v, kw)
    return tape.gradient(y, v, output_gradients=tf.constant(dout)).numpy()


def _agreed(outs: list[np.ndarray]) -> np.ndarray:
    for other in outs[1:]:
        if not close(other, outs[0], "float32"):
            raise RuntimeError("les références PyTorch / TensorFlow / solutions ne concordent pas")
    return outs[0]


def expected_forward(name: str, x: np.ndarray, *, hidden: bool, **kw: Any) -> np.ndarray:
    outs = [framework_forward(f, name, x, **kw) for f in _frameworks(hidden)]
    ref = _solutions() if hidden else None
    if ref is not None:
        outs.append(getattr(ref, f"ref_{name}")(x, **kw))
    return _agreed(outs)


def expected_grad(name: str, x: np.ndarray, dout: np.ndarray, *, hidden: bool, **kw: Any) -> np.ndarray:
    outs = [framework_grad(f, name, x, dout, **kw) for f in _frameworks(hidden)]
    ref = _solutions() if hidden else None
    if ref is not None:
        if name == "softmax":
            outs.append(ref.ref_softmax_backward(dout, ref.ref_softmax(x, **kw), **kw))
        else:
            outs.append(getattr(ref, f"ref_{name}_backward")(dout, x, **kw))
    return _agreed(outs)


def numerical_grad(name: str, x: np.ndarray, dout: np.ndarray, eps: float = 1e-6, **kw: Any) -> np.ndarray:
    """Centred differences of ``sum(f(x) * dout)`` in float64, ``f`` from a framework."""
    framework = _frameworks(False)[0]
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        plus = np.sum(framework_forward(framework, name, xp, **kw) * dout)
        minus = np.sum(framework_forward(framework, name, xm, **kw) * dout)
        out[idx] = (plus - minus) / (2 * eps)
    return out


# ---------------------------------------------------------------------------------------------
# Generic forward / backward cases
# ---------------------------------------------------------------------------------------------


def _kw_text(kw: dict) -> str:
    return "".join(f", {k}={v!r}" for k, v in kw.items())


def _student_output(fn: Callable, name: str, args: tuple, kw: dict, shape: tuple, what: str) -> np.ndarray:
    got = call_student(fn, *args, what=name, code=name, forbidden=forbidden(name), **kw)
    got = expect_array(got, what=f"le résultat de `{name}`", code=name)
    expect_shape(
        got,
        shape,
        what=what,
        code=f"{name}.shape",
        hint="Le résultat a la forme de l'entrée : calculez élément par élément (ou le long de "
        "`axis` pour softmax), sans aplatir ni réduire le tableau.",
    )
    expect_float(got, "float64", what=f"le résultat de `{name}`", code=f"{name}.dtype")
    return got


def _forward_diagnoses(name: str, x: np.ndarray, kw: dict, expected: np.ndarray, what: str) -> list:
    slope = kw.get("negative_slope", 0.01)
    axis = kw.get("axis", -1)
    cands: list = []
    if name == "leaky_relu":
        msg = (
            f"{what} : la partie négative ne suit pas `negative_slope={slope!r}`. Utilisez le "
            "paramètre `negative_slope` reçu (ne le fixez pas dans le code)."
        )
        cands += [
            (lambda: np.maximum(x, 0), "leaky_relu.slope", f"{what} : la partie négative est nulle (c'est ReLU). Multipliez les x ≤ 0 par `negative_slope`."),
        ]
        for other in (0.01, 0.2):
            if other != slope:
                cands.append((lambda o=other: np.where(x > 0, x, o * x), "leaky_relu.slope", msg))
    if name == "softmax":
        msg = (
            f"{what} : vous normalisez par la somme de **tout** le tableau. Sommez le long de "
            "`axis` seulement, avec `keepdims=True`."
        )
        flat = np.exp(x - x.max())
        sliced = np.exp(x - x.max(axis=axis, keepdims=True))
        cands += [(lambda: flat / flat.sum(), "softmax.axis", msg), (lambda: sliced / sliced.sum(), "softmax.axis", msg)]
        for other in {-1, 0, x.ndim - 1} - {axis % x.ndim, axis}:
            cands.append(
                (
                    lambda o=other: framework_forward(_frameworks(False)[0], "softmax", x, axis=o),
                    "softmax.axis",
                    f"{what} : votre résultat est la softmax le long d'un autre axe. Utilisez le "
                    "paramètre `axis` reçu pour le max et pour la somme.",
                )
            )
    return cands


def forward_case(fn: Callable, name: str, x: np.ndarray, *, hidden: bool, code: str | None = None, hint: str = "", **kw: Any) -> None:
    """The student's activation ``name`` on ``x`` against the frameworks (and solutions if hidden)."""
    what = f"`{name}` sur un tableau de forme {x.shape}{_kw_text(kw)}"
    got = _student_output(fn, name, (x,), kw, x.shape, what)
    expected = expected_forward(name, x, hidden=hidden, **kw)
    if not close(got, expected):
        first_diagnosis(got, _forward_diagnoses(name, x, kw, expected, what))
    expect_close(got, expected, what=what, code=code or f"{name}.values", hint=hint or HINTS[name])


def _backward_diagnoses(name: str, x: np.ndarray, dout: np.ndarray, kw: dict, expected: np.ndarray, what: str) -> list:
    base = name.removesuffix("_backward")
    cands: list = []
    if base != "softmax":
        local = expected / dout  # dout has no zeros in the cases below
        cands.append((lambda: local, f"{name}.dout", f"{what} : {HINT_DOUT}"))
    if base == "sigmoid":
        cands.append(
            (
                lambda: dout * x * (1 - x),
                "sigmoid_backward.output_formula",
                f"{what} : vous appliquez x·(1 − x) à l'entrée x. La formule y·(1 − y) vaut pour "
                "la **sortie** y = σ(x) : calculez d'abord σ(x).",
            )
        )
    if base == "tanh":
        cands.append(
            (
                lambda: dout * (1 - x * x),
                "tanh_backward.output_formula",
                f"{what} : vous appliquez 1 − x² à l'entrée x. La formule 1 − y² vaut pour la "
                "**sortie** y = tanh(x) : calculez d'abord tanh(x).",
            )
        )
    if base == "leaky_relu":
        slope = kw.get("negative_slope", 0.01)
        for other in (0.0, 0.01, 0.2):
            if other != slope:
                cands.append(
                    (
                        lambda o=other: dout * np.where(x > 0, 1.0, o),
                        "leaky_relu_backward.slope",
                        f"{what} : la dérivée pour x ≤ 0 ne vaut pas `negative_slope={slope!r}`. "
                        "Utilisez le paramètre reçu.",
                    )
                )
    if base == "softmax":
        y = kw["_y"]
        axis = kw.get("axis", -1)
        cands.append(
            (
                lambda: dout * y * (1 - y),
                "softmax_backward.jacobian",
                f"{what} : vous n'utilisez que la diagonale du jacobien (yᵢ(1 − yᵢ)). Chaque "
                "sortie dépend de toutes les entrées de sa tranche : dx = y · (dout − Σ dout·y).",
            )
        )
        for other in {-1, 0, y.ndim - 1} - {axis % y.ndim, axis}:
            cands.append(
                (
                    lambda o=other: y * (dout - np.sum(dout * y, axis=o, keepdims=True)),
                    "softmax_backward.axis",
                    f"{what} : la somme Σ dout·y porte sur un autre axe que `axis`.",
                )
            )
        cands.append(
            (
                lambda: y * (dout - np.sum(dout * y)),
                "softmax_backward.axis",
                f"{what} : la somme Σ dout·y porte sur tout le tableau au lieu de l'axe `axis`.",
            )
        )
    return cands


def backward_case(fn: Callable, name: str, x: np.ndarray, dout: np.ndarray, *, hidden: bool, numerical: bool = False, **kw: Any) -> None:
    """The student's ``<name>_backward`` against autograd (and a numerical gradient if asked)."""
    bname = f"{name}_backward"
    if name == "softmax":
        y = expected_forward("softmax", x, hidden=False, **kw)
        args, second = (dout, y), "y = softmax(x)"
    else:
        args, second = (dout, x), "x"
    what = f"`{bname}` (dout et {second} de forme {x.shape}{_kw_text(kw)})"
    got = _student_output(fn, bname, args, kw, x.shape, what)
    expected = expected_grad(name, x, dout, hidden=hidden, **kw)
    if not close(got, expected):
        extra = {"_y": args[1]} if name == "softmax" else {}
        first_diagnosis(got, _backward_diagnoses(bname, x, dout, {**kw, **extra}, expected, what))
    expect_close(got, expected, what=what, code=f"{bname}.values", hint=HINTS[bname])
    if numerical:
        rtol, atol = tolerance("numerical_gradient")
        problem = mismatch(got, numerical_grad(name, x, dout, **kw), rtol, atol)
        if problem:
            fail(f"{bname}.values", f"{what} : différent du gradient numérique ({problem}). {HINTS[bname]}")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

#: A fixed input with both signs, values above 1 and below −1 (and no exact zero: ReLU's
#: derivative at 0 is a convention, not something to grade).
X_FIXED = np.array([[-2.5, -1.0, -0.25, 0.5], [0.1, 1.5, 3.0, -0.75], [2.0, -3.5, 0.3, -0.05]])
DOUT_FIXED = np.array([[0.5, -1.0, 2.0, 1.5], [-0.3, 0.7, -2.0, 1.0], [1.2, 0.4, -0.6, 0.9]])


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 2.0) -> np.ndarray:
    """Random values with |x| ≥ 0.05 (far from the kinks of ReLU for numerical gradients)."""
    return rng.choice([-1.0, 1.0], size=shape) * (0.05 + scale * np.abs(rng.normal(size=shape)))


def random_shapes(rng: np.random.Generator) -> list[tuple[int, ...]]:
    """1-D, 2-D and 4-D (NCHW) shapes, one element included."""
    return [
        (1,),
        (int(rng.integers(2, 9)),),
        (int(rng.integers(1, 5)), int(rng.integers(2, 7))),
        (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(2, 5))),
    ]


def _random_pairs(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = _rng(seed)
    return [(_away_from_zero(rng, s), _away_from_zero(rng, s, 1.0)) for s in random_shapes(rng)]


def _random_forward(fn: Callable, name: str, seed: int, **kw: Any) -> None:
    for x, _ in _random_pairs(seed):
        forward_case(fn, name, x, hidden=True, **kw)


def _random_backward(fn: Callable, name: str, seed: int, **kw: Any) -> None:
    for x, dout in _random_pairs(seed):
        backward_case(fn, name, x, dout, hidden=True, **kw)
    x, dout = _random_pairs(seed + 1)[2]
    backward_case(fn, name, x, dout, hidden=True, numerical=True, **kw)


EXTREME = np.array([[-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0], [-800.0, -710.0, -20.0, 0.5, 20.0, 710.0, 800.0]])


# ---------------------------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------------------------


def relu_fixed(relu: Callable) -> None:
    """ReLU sur un petit tableau fixe (valeurs positives et négatives)."""
    forward_case(relu, "relu", X_FIXED, hidden=False)


def relu_random(relu: Callable, seed: int) -> None:
    """ReLU sur des tableaux aléatoires 1-D, 2-D et 4-D, comparée à PyTorch et TensorFlow."""
    _random_forward(relu, "relu", seed)


def relu_backward_fixed(relu_backward: Callable) -> None:
    """Gradient de ReLU sur un petit tableau fixe."""
    backward_case(relu_backward, "relu", X_FIXED, DOUT_FIXED, hidden=False)


def relu_backward_random(relu_backward: Callable, seed: int) -> None:
    """Gradient de ReLU : tableaux aléatoires contre l'autograd de PyTorch et TensorFlow, gradient numérique."""
    _random_backward(relu_backward, "relu", seed)


def public_relu(relu: Callable, points: float) -> Grader:
    g = Grader("relu", points, "relu")
    g.check(relu_fixed, relu, name="tableau fixe")
    return g


def hidden_relu(g: Grader, relu: Callable, seed: int) -> None:
    g.hidden().check(relu_random, relu, seed, name="tableaux aléatoires")


def public_relu_backward(relu_backward: Callable, points: float) -> Grader:
    g = Grader("relu-backward", points, "relu_backward")
    g.check(relu_backward_fixed, relu_backward, name="tableau fixe")
    return g


def hidden_relu_backward(g: Grader, relu_backward: Callable, seed: int) -> None:
    g.hidden().check(relu_backward_random, relu_backward, seed, name="tableaux aléatoires et gradient numérique")


# ---------------------------------------------------------------------------------------------
# Leaky ReLU
# ---------------------------------------------------------------------------------------------


def leaky_relu_default(leaky_relu: Callable) -> None:
    """Leaky ReLU avec la pente par défaut (negative_slope=0.01, comme PyTorch)."""
    forward_case(leaky_relu, "leaky_relu", X_FIXED, hidden=False)


def leaky_relu_slope(leaky_relu: Callable) -> None:
    """Leaky ReLU avec negative_slope=0.2 (la valeur par défaut de `tf.nn.leaky_relu`)."""
    forward_case(leaky_relu, "leaky_relu", X_FIXED, hidden=False, negative_slope=0.2)


def leaky_relu_random(leaky_relu: Callable, seed: int) -> None:
    """Tableaux aléatoires avec d'autres pentes (0.05, 0.3), comparés à PyTorch et TensorFlow."""
    for i, slope in enumerate((0.05, 0.3)):
        for x, _ in _random_pairs(seed + i):
            forward_case(leaky_relu, "leaky_relu", x, hidden=True, negative_slope=slope)


def leaky_relu_backward_default(leaky_relu_backward: Callable) -> None:
    """Gradient de leaky ReLU avec la pente par défaut."""
    backward_case(leaky_relu_backward, "leaky_relu", X_FIXED, DOUT_FIXED, hidden=False)


def leaky_relu_backward_random(leaky_relu_backward: Callable, seed: int) -> None:
    """Gradient avec d'autres pentes (0.2, 0.3) contre l'autograd des deux frameworks, gradient numérique."""
    for i, slope in enumerate((0.2, 0.3)):
        _random_backward(leaky_relu_backward, "leaky_relu", seed + i, negative_slope=slope)


def public_leaky_relu(leaky_relu: Callable, points: float) -> Grader:
    g = Grader("leaky-relu", points, "leaky_relu")
    g.check(leaky_relu_default, leaky_relu, name="pente par défaut")
    g.check(leaky_relu_slope, leaky_relu, name="negative_slope=0.2")
    return g


def hidden_leaky_relu(g: Grader, leaky_relu: Callable, seed: int) -> None:
    g.hidden().check(leaky_relu_random, leaky_relu, seed, name="tableaux aléatoires, autres pentes")


def public_leaky_relu_backward(leaky_relu_backward: Callable, points: float) -> Grader:
    g = Grader("leaky-relu-backward", points, "leaky_relu_backward")
    g.check(leaky_relu_backward_default, leaky_relu_backward, name="pente par défaut")
    return g


def hidden_leaky_relu_backward(g: Grader, leaky_relu_backward: Callable, seed: int) -> None:
    g.hidden().check(leaky_relu_backward_random, leaky_relu_backward, seed, name="autres pentes et gradient numérique")


# ---------------------------------------------------------------------------------------------
# Sigmoid and tanh
# ---------------------------------------------------------------------------------------------


def _extreme(fn: Callable, name: str) -> None:
    """Inputs up to ±1000: a failure on the large entries only means an unstable formula."""
    hint = HINT_UNSTABLE + " " + {
        "sigmoid": "Écrivez σ(x) = 1 / (1 + exp(−x)) : pour x très négatif, exp(−x) = inf et "
        "1 / inf = 0 est correct ; évitez exp(x) / (1 + exp(x)).",
        "tanh": "Passez par la sigmoïde : tanh(x) = 2·σ(2x) − 1.",
    }[name]
    what = f"`{name}` sur des entrées extrêmes (|x| jusqu'à 1000)"
    got = _student_output(fn, name, (EXTREME,), {}, EXTREME.shape, what)
    expected = expected_forward(name, EXTREME, hidden=True)
    moderate = np.abs(EXTREME) <= 20
    expect_close(got[moderate], expected[moderate], what=f"`{name}` pour |x| ≤ 20", code=f"{name}.values", hint=HINTS[name])
    expect_close(got, expected, what=what, code=f"{name}.unstable", hint=hint)


def sigmoid_fixed(sigmoid: Callable) -> None:
    """Sigmoïde sur un petit tableau fixe."""
    forward_case(sigmoid, "sigmoid", X_FIXED, hidden=False)


def sigmoid_random(sigmoid: Callable, seed: int) -> None:
    """Sigmoïde sur des tableaux aléatoires, comparée à PyTorch et TensorFlow."""
    _random_forward(sigmoid, "sigmoid", seed)


def sigmoid_extreme(sigmoid: Callable) -> None:
    """Sigmoïde pour |x| jusqu'à 1000 : ni NaN ni infini."""
    _extreme(sigmoid, "sigmoid")


def sigmoid_backward_fixed(sigmoid_backward: Callable) -> None:
    """Gradient de la sigmoïde sur un petit tableau fixe."""
    backward_case(sigmoid_backward, "sigmoid", X_FIXED, DOUT_FIXED, hidden=False)


def sigmoid_backward_random(sigmoid_backward: Callable, seed: int) -> None:
    """Gradient de la sigmoïde : autograd de PyTorch et TensorFlow, gradient numérique."""
    _random_backward(sigmoid_backward, "sigmoid", seed)


def public_sigmoid(sigmoid: Callable, points: float) -> Grader:
    g = Grader("sigmoid", points, "sigmoid")
    g.check(sigmoid_fixed, sigmoid, name="tableau fixe")
    return g


def hidden_sigmoid(g: Grader, sigmoid: Callable, seed: int) -> None:
    g.hidden()
    g.check(sigmoid_random, sigmoid, seed, name="tableaux aléatoires")
    g.check(sigmoid_extreme, sigmoid, name="entrées extrêmes")


def public_sigmoid_backward(sigmoid_backward: Callable, points: float) -> Grader:
    g = Grader("sigmoid-backward", points, "sigmoid_backward")
    g.check(sigmoid_backward_fixed, sigmoid_backward, name="tableau fixe")
    return g


def hidden_sigmoid_backward(g: Grader, sigmoid_backward: Callable, seed: int) -> None:
    g.hidden().check(sigmoid_backward_random, sigmoid_backward, seed, name="tableaux aléatoires et gradient numérique")


def tanh_fixed(tanh: Callable) -> None:
    """tanh sur un petit tableau fixe (sans `np.tanh`)."""
    forward_case(tanh, "tanh", X_FIXED, hidden=False)


def tanh_random(tanh: Callable, seed: int) -> None:
    """tanh sur des tableaux aléatoires, comparée à PyTorch et TensorFlow."""
    _random_forward(tanh, "tanh", seed)


def tanh_extreme(tanh: Callable) -> None:
    """tanh pour |x| jusqu'à 1000 : ni NaN ni infini."""
    _extreme(tanh, "tanh")


def tanh_backward_fixed(tanh_backward: Callable) -> None:
    """Gradient de tanh sur un petit tableau fixe."""
    backward_case(tanh_backward, "tanh", X_FIXED, DOUT_FIXED, hidden=False)


def tanh_backward_random(tanh_backward: Callable, seed: int) -> None:
    """Gradient de tanh : autograd de PyTorch et TensorFlow, gradient numérique."""
    _random_backward(tanh_backward, "tanh", seed)


def public_tanh(tanh: Callable, points: float) -> Grader:
    g = Grader("tanh", points, "tanh")
    g.check(tanh_fixed, tanh, name="tableau fixe")
    return g


def hidden_tanh(g: Grader, tanh: Callable, seed: int) -> None:
    g.hidden()
    g.check(tanh_random, tanh, seed, name="tableaux aléatoires")
    g.check(tanh_extreme, tanh, name="entrées extrêmes")


def public_tanh_backward(tanh_backward: Callable, points: float) -> Grader:
    g = Grader("tanh-backward", points, "tanh_backward")
    g.check(tanh_backward_fixed, tanh_backward, name="tableau fixe")
    return g


def hidden_tanh_backward(g: Grader, tanh_backward: Callable, seed: int) -> None:
    g.hidden().check(tanh_backward_random, tanh_backward, seed, name="tableaux aléatoires et gradient numérique")


# ---------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------

LOGITS_FIXED = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0], [3.0, -2.0, 1.0, 0.2]])


def softmax_rows(softmax: Callable) -> None:
    """Softmax de chaque ligne d'une matrice fixe (axis par défaut : -1)."""
    forward_case(softmax, "softmax", LOGITS_FIXED, hidden=False)


def softmax_axis0(softmax: Callable) -> None:
    """Softmax le long de axis=0 (chaque colonne somme à 1)."""
    forward_case(softmax, "softmax", LOGITS_FIXED, hidden=False, code="softmax.axis", axis=0)


def _softmax_cases(seed: int) -> list[tuple[np.ndarray, int]]:
    rng = _rng(seed)
    x3 = rng.normal(scale=3.0, size=(2, int(rng.integers(2, 5)), int(rng.integers(2, 6))))
    x4 = rng.normal(scale=3.0, size=(2, 3, 2, int(rng.integers(2, 5))))
    return [(x3, -1), (x3, 1), (x3, 0), (x4, 1), (x4, -2)]


def softmax_random(softmax: Callable, seed: int) -> None:
    """Tableaux 3-D et 4-D, différents axes (dont axis=1 et des axes négatifs), PyTorch et TensorFlow."""
    for x, axis in _softmax_cases(seed):
        forward_case(softmax, "softmax", x, hidden=True, code="softmax.values" if axis == -1 else "softmax.axis", axis=axis)


def softmax_large_logits(softmax: Callable, seed: int) -> None:
    """Logits de l'ordre de ±1000 (lignes d'échelles très différentes) : résultat fini et exact."""
    rng = _rng(seed)
    x = rng.normal(scale=5.0, size=(4, 6))
    x[0] += 1000.0
    x[1] -= 1000.0
    x[2] = [1000.0, 999.0, 998.0, -1000.0, 0.0, 1000.0]
    forward_case(
        softmax, "softmax", x, hidden=True, code="softmax.unstable",
        hint=HINT_UNSTABLE + " Soustrayez le maximum **de chaque tranche** "
        "(`x - x.max(axis=axis, keepdims=True)`) avant `np.exp` : la softmax n'en change pas.",
    )


def softmax_backward_rows(softmax_backward: Callable) -> None:
    """Produit jacobien-vecteur de softmax par lignes (axis=-1) sur une matrice fixe."""
    backward_case(softmax_backward, "softmax", LOGITS_FIXED, DOUT_FIXED, hidden=False)


def softmax_backward_axis0(softmax_backward: Callable) -> None:
    """Produit jacobien-vecteur le long de axis=0."""
    backward_case(softmax_backward, "softmax", LOGITS_FIXED, DOUT_FIXED, hidden=False, axis=0)


def softmax_backward_random(softmax_backward: Callable, seed: int) -> None:
    """Tableaux 3-D et 4-D, différents axes : autograd de PyTorch et TensorFlow, gradient numérique."""
    rng = _rng(seed + 1)
    for x, axis in _softmax_cases(seed):
        backward_case(softmax_backward, "softmax", x, rng.normal(size=x.shape), hidden=True, axis=axis)
    x, axis = _softmax_cases(seed)[1]
    backward_case(softmax_backward, "softmax", x, rng.normal(size=x.shape), hidden=True, numerical=True, axis=axis)


def public_softmax(softmax: Callable, points: float) -> Grader:
    g = Grader("softmax", points, "softmax")
    g.check(softmax_rows, softmax, name="par lignes")
    g.check(softmax_axis0, softmax, name="axis=0")
    return g


def hidden_softmax(g: Grader, softmax: Callable, seed: int) -> None:
    g.hidden()
    g.check(softmax_random, softmax, seed, name="tableaux aléatoires, différents axes")
    g.check(softmax_large_logits, softmax, seed, name="stabilité numérique (logits ±1000)")


def public_softmax_backward(softmax_backward: Callable, points: float) -> Grader:
    g = Grader("softmax-backward", points, "softmax_backward")
    g.check(softmax_backward_rows, softmax_backward, name="par lignes")
    g.check(softmax_backward_axis0, softmax_backward, name="axis=0")
    return g


def hidden_softmax_backward(g: Grader, softmax_backward: Callable, seed: int) -> None:
    g.hidden().check(softmax_backward_random, softmax_backward, seed, name="tableaux aléatoires et gradient numérique", weight=2)

