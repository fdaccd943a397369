"""Checks for module 3, notebook `activations_pooling`: 2-D max and average pooling (NCHW).

Student API (PyTorch's conventions)::

    max_pool2d_forward(x, kernel_size, stride=None, padding=0) -> out
    max_pool2d_backward(dout, x, kernel_size, stride=None, padding=0) -> dx
    avg_pool2d_forward / avg_pool2d_backward: same signatures

Square windows; ``stride`` defaults to ``kernel_size``; ``padding ≤ kernel_size // 2`` cells on
each side (``-inf`` for max, zeros counted in the average for avg, like PyTorch's default
``count_include_pad=True``); output size ``(H + 2·padding − kernel_size) // stride + 1``.
Expected values come at run time from ``F.max_pool2d`` / ``F.avg_pool2d`` and
``tf.nn.max_pool2d`` / ``tf.nn.avg_pool2d`` (NHWC, explicit padding), their autograd, the
course's ``solutions`` (hidden, staff side) and numerical gradients in float64.

Failure codes: ``maxpool.*``, ``avgpool.*`` (forward), ``maxpool_backward.*``,
``avgpool_backward.*`` with aspects ``shape``, ``stride``, ``padding``, ``values``,
``routing``, ``overlap``, ``scale``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from autograder.backends import available, backend
from autograder.checks._core import (
    call_student,
    close,
    expect_array,
    expect_close,
    expect_float,
    first_diagnosis,
    mismatch,
    reference,
    rng,
    tolerance,
)
from autograder.feedback import CheckFailure, Grader, fail

_AUTOGRAD = (
    "torch.Tensor.backward",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.func.vjp",
    "tensorflow.GradientTape",
)
_OPS = {
    "max": (
        "torch.nn.functional.max_pool2d",
        "torch.nn.functional.max_pool2d_with_indices",
        "torch.max_pool2d",
        "torch.nn.functional.adaptive_max_pool2d",
        "tensorflow.nn.max_pool2d",
        "tensorflow.nn.max_pool",
        "tensorflow.nn.pool",
        "keras.ops.max_pool",
        "skimage.measure.block_reduce",
        "solutions.pooling.ref_max_pool2d_forward",
        "solutions.pooling.ref_max_pool2d_backward",
    ),
    "avg": (
        "torch.nn.functional.avg_pool2d",
        "torch.avg_pool2d",
        "torch.nn.functional.adaptive_avg_pool2d",
        "tensorflow.nn.avg_pool2d",
        "tensorflow.nn.avg_pool",
        "tensorflow.nn.pool",
        "keras.ops.average_pool",
        "skimage.measure.block_reduce",
        "solutions.pooling.ref_avg_pool2d_forward",
        "solutions.pooling.ref_avg_pool2d_backward",
    ),
}

HINT_OUT_SIZE = "Vérifiez la formule H_out = (H + 2·padding − kernel_size) // stride + 1 (division entière)."
HINTS = {
    ("max", "forward"): "out[n, c, i, j] est le maximum de la fenêtre kernel_size×kernel_size qui "
    "commence en (i·stride, j·stride) de l'entrée complétée.",
    ("avg", "forward"): "out[n, c, i, j] est la moyenne de la fenêtre kernel_size×kernel_size qui "
    "commence en (i·stride, j·stride) de l'entrée complétée par des zéros.",
    ("max", "backward"): "Chaque dout[n, c, i, j] va **entièrement** à la position du maximum de sa "
    "fenêtre (les autres cases reçoivent 0) ; quand les fenêtres se chevauchent, additionnez (`+=`).",
    ("avg", "backward"): "Chaque dout[n, c, i, j] est réparti à parts égales, dout / kernel_size², "
    "sur toutes les cases de sa fenêtre ; quand les fenêtres se chevauchent, additionnez (`+=`).",
}
HINT_PAD = {
    "max": "Pour le max, complétez avec −inf (`np.pad(..., constant_values=-np.inf)`) : une case de "
    "padding ne doit jamais être le maximum.",
    "avg": "Pour la moyenne, complétez avec des zéros et divisez toujours par kernel_size² (la "
    "convention par défaut de PyTorch, `count_include_pad=True`).",
}


def _solutions() -> Any | None:
    return reference("pooling")


_rng = rng


@dataclass(frozen=True)
class PoolCase:
    """One pooling case: input (N, C, H, W), window k×k, stride (None: k), padding."""

    n: int
    c: int
    h: int
    w: int
    k: int
    stride: int | None = None
    padding: int = 0

    @property
    def s(self) -> int:
        return self.k if self.stride is None else self.stride

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        ho = (self.h + 2 * self.padding - self.k) // self.s + 1
        wo = (self.w + 2 * self.padding - self.k) // self.s + 1
        return (self.n, self.c, ho, wo)

    def x(self, seed: int, negative: bool = False) -> np.ndarray:
        # A permutation: all values distinct, so every window has a single maximum.
        rng = _rng(seed)
        size = self.n * self.c * self.h * self.w
        x = (rng.permutation(size) + rng.uniform(0.1, 0.9, size)).reshape(self.n, self.c, self.h, self.w) / size * 4 - 2
        return -np.abs(x) - 0.5 if negative else x

    def describe(self) -> str:
        stride = "" if self.stride is None else f", stride={self.stride}"
        return f"x de forme {(self.n, self.c, self.h, self.w)}, kernel_size={self.k}{stride}, padding={self.padding}"

    def kwargs(self) -> dict:
        kw: dict = {}
        if self.stride is not None:
            kw["stride"] = self.stride
        if self.padding:
            kw["padding"] = self.padding
        return kw


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------


def _frameworks(hidden: bool) -> list[str]:
    found = [f for f in ("torch", "tf") if available(f)]
    if not found:
        raise RuntimeError("ni PyTorch ni TensorFlow n'est installé : installez l'un des deux")
    return found if hidden else found[:1]


def _torch_pool(kind: str, t: Any, k: int, s: int, p: int, count_include_pad: bool = True) -> Any:
    import torch.nn.functional as F

    if kind == "max":
        return F.max_pool2d(t, k, s, p)
    return F.avg_pool2d(t, k, s, p, count_include_pad=count_include_pad)


def _tf_pool(kind: str, t: Any, k: int, s: int, p: int) -> Any:
    """NHWC input; padding done by hand (−inf for max, zeros for avg), then VALID pooling."""
    import tensorflow as tf

    if p:
        value = -np.inf if kind == "max" else 0.0
        t = tf.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=value)
    op = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    return op(t, k, s, "VALID")


def framework_pool(framework: str, kind: str, x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """``kind`` (``"max"``/``"avg"``) pooling of NCHW ``x`` by ``framework``, result in NCHW."""
    backend(framework)
    if framework == "torch":
        import torch

        return _torch_pool(kind, torch.from_numpy(np.ascontiguousarray(x)), k, s, p).numpy()
    import tensorflow as tf

    out = _tf_pool(kind, tf.constant(np.transpose(x, (0, 2, 3, 1))), k, s, p)
    return np.transpose(out.numpy(), (0, 3, 1, 2))


def framework_pool_grad(framework: str, kind: str, x: np.ndarray, k: int, s: int, p: int, dout: np.ndarray) -> np.ndarray:
    """Gradient of ``sum(pool(x) * dout)`` with respect to ``x`` (NCHW), by autograd."""
    backend(framework)
    if framework == "torch":
        import torch

        t = torch.from_numpy(np.array(x)).requires_grad_()
        _torch_pool(kind, t, k, s, p).backward(torch.from_numpy(np.ascontiguousarray(dout)))
        return t.grad.numpy()
    import tensorflow as tf

    v = tf.Variable(np.transpose(x, (0, 2, 3, 1)))
    with tf.GradientTape() as tape:
        out = _tf_pool(kind, v, k, s, p)
    g = tape.gradient(out, v, output_gradients=tf.constant(np.transpose(dout, (0, 2, 3, 1))))
    return np.transpose(g.numpy(), (0, 3, 1, 2))


def _agreed(outs: list[np.ndarray]) -> np.ndarray:
    for other in outs[1:]:
        if not close(other, outs[0], "float32"):
            raise RuntimeError("les références PyTorch / TensorFlow / solutions ne concordent pas")
    return outs[0]


def expected_forward(kind: str, x: np.ndarray, case: PoolCase, *, hidden: bool) -> np.ndarray:
    outs = [framework_pool(f, kind, x, case.k, case.s, case.padding) for f in _frameworks(hidden)]
    ref = _solutions() if hidden else None
    if ref is not None:
        outs.append(getattr(ref, f"ref_{kind}_pool2d_forward")(x, case.k, case.s, case.padding))
    return _agreed(outs)


def expected_backward(kind: str, x: np.ndarray, dout: np.ndarray, case: PoolCase, *, hidden: bool) -> np.ndarray:
    outs = [framework_pool_grad(f, kind, x, case.k, case.s, case.padding, dout) for f in _frameworks(hidden)]
    ref = _solutions() if hidden else None
    if ref is not None:
        outs.append(getattr(ref, f"ref_{kind}_pool2d_backward")(dout, x, case.k, case.s, case.padding))
    return _agreed(outs)


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------


def _names(kind: str) -> tuple[str, str]:
    """(student function name, failure-code prefix)."""
    return f"{kind}_pool2d_forward", f"{kind}pool"


def _aspect(case: PoolCase, prefix: str) -> str:
    if case.padding:
        return f"{prefix}.padding"
    if case.s != case.k:
        return f"{prefix}.stride"
    return f"{prefix}.values"


def _forward_diagnoses(kind: str, x: np.ndarray, case: PoolCase, what: str) -> list:
    prefix = _names(kind)[1]
    fw = _frameworks(False)[0]
    cands = []
    if case.padding:
        if kind == "max":
            cands.append(
                (
                    lambda: _zero_padded_max(fw, x, case),
                    "maxpool.padding",
                    f"{what} : vous complétez avec des zéros. {HINT_PAD['max']}",
                )
            )
        elif available("torch"):
            cands.append(
                (
                    lambda: _exclude_pad_avg(x, case),
                    "avgpool.padding",
                    f"{what} : vous divisez par le nombre de cases réelles de la fenêtre. {HINT_PAD['avg']}",
                )
            )
    other = "avg" if kind == "max" else "max"
    cands.append(
        (
            lambda: framework_pool(fw, other, x, case.k, case.s, case.padding),
            f"{prefix}.values",
            f"{what} : votre résultat est le pooling par {'moyenne' if other == 'avg' else 'maximum'} : "
            f"`{_names(kind)[0]}` calcule le {'maximum' if kind == 'max' else 'moyenne'}.",
        )
    )
    if kind == "avg":
        cands.append(
            (
                lambda: framework_pool(fw, "avg", x, case.k, case.s, case.padding) * case.k**2,
                "avgpool.scale",
                f"{what} : vous calculez la somme de chaque fenêtre ; divisez par kernel_size².",
            )
        )
    return cands


def _zero_padded_max(fw: str, x: np.ndarray, case: PoolCase) -> np.ndarray:
    p = case.padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    return framework_pool(fw, "max", xp, case.k, case.s, 0)


def _exclude_pad_avg(x: np.ndarray, case: PoolCase) -> np.ndarray:
    import torch

    backend("torch")
    return _torch_pool("avg", torch.from_numpy(np.ascontiguousarray(x)), case.k, case.s, case.padding, False).numpy()


def _student_forward(fn: Callable, kind: str, x: np.ndarray, case: PoolCase, what: str) -> np.ndarray:
    name, prefix = _names(kind)
    got = call_student(fn, x, case.k, what=name, code=prefix, forbidden=_OPS[kind], **case.kwargs())
    got = expect_array(got, what=f"le résultat de `{name}`", code=prefix)
    if got.shape != case.out_shape:
        hint = HINT_OUT_SIZE
        if case.stride is None:
            hint += " Sans `stride`, le pas vaut `kernel_size` (`stride=None` par défaut)."
        fail(f"{prefix}.shape", f"{what} : sortie de forme {tuple(got.shape)}, attendu {case.out_shape}. {hint}")
    expect_float(got, "float64", what=f"le résultat de `{name}`", code=f"{prefix}.dtype")
    return got


def forward_case(fn: Callable, kind: str, case: PoolCase, seed: int, *, hidden: bool, code: str | None = None, negative: bool = False) -> None:
    """The student's pooling on one case against the frameworks (and solutions if hidden)."""
    name, prefix = _names(kind)
    x = case.x(seed, negative)
    what = f"`{name}` ({case.describe()})"
    got = _student_forward(fn, kind, x, case, what)
    expected = expected_forward(kind, x, case, hidden=hidden)
    if not close(got, expected):
        first_diagnosis(got, _forward_diagnoses(kind, x, case, what))
    hint = HINTS[(kind, "forward")] + (" " + HINT_PAD[kind] if case.padding else "")
    expect_close(got, expected, what=what, code=code or _aspect(case, prefix), hint=hint)


def random_cases(seed: int, n: int) -> list[PoolCase]:
    """Windows 1–4, strides 1–3 (or the default), paddings 0..k//2, non-square inputs."""
    rng = _rng(seed)
    cases = []
    for i in range(n):
        k = int(rng.integers(1, 5))
        stride = None if i % 3 == 0 else int(rng.integers(1, 4))
        padding = int(rng.integers(0, k // 2 + 1))
        cases.append(
            PoolCase(
                int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                k + int(rng.integers(0, 6)), k + int(rng.integers(0, 6)), k, stride, padding,
            )
        )
    return cases


def _classify_forward(fn: Callable, kind: str, case: PoolCase, seed: int, failure: CheckFailure, hidden: bool) -> CheckFailure:
    """Name the aspect a failing case reveals by running it without padding, then with stride=k."""
    if not failure.code.endswith((".values", ".stride", ".padding")):
        return failure
    prefix = _names(kind)[1]
    for simpler in (replace(case, stride=case.k, padding=0), replace(case, padding=0)):
        if simpler == case:
            continue
        try:
            forward_case(fn, kind, simpler, seed, hidden=hidden)
        except CheckFailure as exc:
            return exc if simpler.s == simpler.k else CheckFailure(f"{prefix}.stride", exc.message)
    return CheckFailure(_aspect(case, prefix), failure.message)


def classified_forward(fn: Callable, kind: str, case: PoolCase, seed: int, *, hidden: bool) -> None:
    """:func:`forward_case`, its failure named after the aspect that breaks (stride, padding)."""
    try:
        forward_case(fn, kind, case, seed, hidden=hidden)
    except CheckFailure as exc:
        raise _classify_forward(fn, kind, case, seed, exc, hidden) from None


def _forward_random(fn: Callable, kind: str, seed: int, n: int = 6) -> None:
    for i, case in enumerate(random_cases(seed, n)):
        classified_forward(fn, kind, case, seed + i, hidden=True)


BASIC = PoolCase(2, 3, 4, 4, 2, stride=2)
STRIDED = PoolCase(1, 2, 7, 8, 3, stride=2)
PADDED = PoolCase(2, 2, 5, 5, 3, stride=2, padding=1)


def max_pool_forward_basic(max_pool2d_forward: Callable) -> None:
    """Fenêtres 2×2, stride=2, sans padding, sur un lot NCHW."""
    forward_case(max_pool2d_forward, "max", BASIC, 0, hidden=False)


def max_pool_forward_stride(max_pool2d_forward: Callable) -> None:
    """Fenêtres 3×3, stride=2 (fenêtres qui se chevauchent, taille qui ne tombe pas juste)."""
    classified_forward(max_pool2d_forward, "max", STRIDED, 1, hidden=False)


def max_pool_forward_padding(max_pool2d_forward: Callable) -> None:
    """Fenêtres 3×3, stride=2, padding=1."""
    classified_forward(max_pool2d_forward, "max", PADDED, 2, hidden=False)


def max_pool_forward_random(max_pool2d_forward: Callable, seed: int) -> None:
    """Formes, fenêtres, strides et paddings aléatoires, comparés à PyTorch et TensorFlow."""
    _forward_random(max_pool2d_forward, "max", seed)


def max_pool_forward_negative_padding(max_pool2d_forward: Callable, seed: int) -> None:
    """Entrée entièrement négative avec padding : une case de padding n'est jamais le maximum."""
    case = PoolCase(1, 2, 4, 5, 2, stride=1, padding=1)
    try:
        forward_case(max_pool2d_forward, "max", case, seed, hidden=True, code="maxpool.padding", negative=True)
    except CheckFailure as exc:
        raise _classify_forward(max_pool2d_forward, "max", case, seed, exc, True) from None


def max_pool_forward_default_stride(max_pool2d_forward: Callable, seed: int) -> None:
    """Appel sans `stride` : le pas vaut alors `kernel_size`."""
    forward_case(max_pool2d_forward, "max", PoolCase(2, 2, 6, 7, 3), seed, hidden=True, code="maxpool.stride")


def public_max_pool2d_forward(max_pool2d_forward: Callable, points: float) -> Grader:
    g = Grader("maxpool-forward", points, "max_pool2d_forward")
    g.check(max_pool_forward_basic, max_pool2d_forward, name="fenêtres 2×2, stride 2")
    g.check(max_pool_forward_stride, max_pool2d_forward, name="stride")
    g.check(max_pool_forward_padding, max_pool2d_forward, name="padding")
    return g


def hidden_max_pool2d_forward(g: Grader, max_pool2d_forward: Callable, seed: int) -> None:
    g.hidden()
    g.check(max_pool_forward_random, max_pool2d_forward, seed, name="cas aléatoires", weight=2)
    g.check(max_pool_forward_negative_padding, max_pool2d_forward, seed, name="padding et valeurs négatives")
    g.check(max_pool_forward_default_stride, max_pool2d_forward, seed, name="stride par défaut")


def avg_pool_forward_basic(avg_pool2d_forward: Callable) -> None:
    """Fenêtres 2×2, stride=2, sans padding, sur un lot NCHW."""
    forward_case(avg_pool2d_forward, "avg", BASIC, 0, hidden=False)


def avg_pool_forward_stride(avg_pool2d_forward: Callable) -> None:
    """Fenêtres 3×3, stride=2 (fenêtres qui se chevauchent, taille qui ne tombe pas juste)."""
    classified_forward(avg_pool2d_forward, "avg", STRIDED, 1, hidden=False)


def avg_pool_forward_padding(avg_pool2d_forward: Callable) -> None:
    """Fenêtres 3×3, stride=2, padding=1 (zéros comptés dans la moyenne)."""
    classified_forward(avg_pool2d_forward, "avg", PADDED, 2, hidden=False)


def avg_pool_forward_random(avg_pool2d_forward: Callable, seed: int) -> None:
    """Formes, fenêtres, strides et paddings aléatoires, comparés à PyTorch et TensorFlow."""
    _forward_random(avg_pool2d_forward, "avg", seed)


def avg_pool_forward_default_stride(avg_pool2d_forward: Callable, seed: int) -> None:
    """Appel sans `stride` : le pas vaut alors `kernel_size`."""
    forward_case(avg_pool2d_forward, "avg", PoolCase(2, 2, 6, 7, 3), seed, hidden=True, code="avgpool.stride")


def public_avg_pool2d_forward(avg_pool2d_forward: Callable, points: float) -> Grader:
    g = Grader("avgpool-forward", points, "avg_pool2d_forward")
    g.check(avg_pool_forward_basic, avg_pool2d_forward, name="fenêtres 2×2, stride 2")
    g.check(avg_pool_forward_stride, avg_pool2d_forward, name="stride")
    g.check(avg_pool_forward_padding, avg_pool2d_forward, name="padding")
    return g


def hidden_avg_pool2d_forward(g: Grader, avg_pool2d_forward: Callable, seed: int) -> None:
    g.hidden()
    g.check(avg_pool_forward_random, avg_pool2d_forward, seed, name="cas aléatoires", weight=2)
    g.check(avg_pool_forward_default_stride, avg_pool2d_forward, seed, name="stride par défaut")


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------


def _backward_aspect(case: PoolCase, prefix: str) -> str:
    if case.padding:
        return f"{prefix}.padding"
    if case.s < case.k:
        return f"{prefix}.overlap"
    if case.s != case.k:
        return f"{prefix}.stride"
    return f"{prefix}.values"


def _backward_diagnoses(kind: str, x: np.ndarray, dout: np.ndarray, case: PoolCase, expected: np.ndarray, what: str) -> list:
    fw = _frameworks(False)[0]
    cands = []
    if kind == "max":
        cands.append(
            (
                lambda: framework_pool_grad(fw, "avg", x, case.k, case.s, case.padding, dout) * case.k**2,
                "maxpool_backward.routing",
                f"{what} : le gradient de chaque fenêtre est copié sur **toutes** ses cases. "
                "Seule la position du maximum reçoit dout (elle seule a influencé la sortie).",
            )
        )
        cands.append(
            (
                lambda: framework_pool_grad(fw, "avg", x, case.k, case.s, case.padding, dout),
                "maxpool_backward.routing",
                f"{what} : le gradient de chaque fenêtre est réparti sur toutes ses cases (c'est le "
                "pooling par moyenne). Seule la position du maximum reçoit dout.",
            )
        )
    else:
        cands.append(
            (
                lambda: expected * case.k**2,
                "avgpool_backward.scale",
                f"{what} : chaque case reçoit dout entier. Divisez par kernel_size² (la sortie est "
                "une moyenne de kernel_size² valeurs).",
            )
        )
        cands.append(
            (
                lambda: framework_pool_grad(fw, "max", x, case.k, case.s, case.padding, dout),
                "avgpool_backward.routing",
                f"{what} : vous envoyez le gradient au maximum de chaque fenêtre (c'est le pooling "
                "par maximum). Répartissez dout / kernel_size² sur toute la fenêtre.",
            )
        )
    return cands


def _student_backward(fn: Callable, kind: str, dout: np.ndarray, x: np.ndarray, case: PoolCase, what: str) -> np.ndarray:
    name, prefix = f"{kind}_pool2d_backward", f"{kind}pool_backward"
    ops = _OPS[kind] + _AUTOGRAD
    got = call_student(fn, dout, x, case.k, what=name, code=prefix, forbidden=ops, **case.kwargs())
    got = expect_array(got, what=f"le résultat de `{name}`", code=prefix)
    if got.shape != x.shape:
        pad_hint = " Retirez les bords de padding de dx." if case.padding else ""
        fail(f"{prefix}.shape", f"{what} : dx de forme {tuple(got.shape)}, attendu {x.shape} (la forme de x).{pad_hint}")
    expect_float(got, "float64", what=f"le résultat de `{name}`", code=f"{prefix}.dtype")
    return got


def backward_case(fn: Callable, kind: str, case: PoolCase, seed: int, *, hidden: bool, code: str | None = None) -> None:
    """The student's pooling backward on one case against the frameworks' autograd."""
    prefix = f"{kind}pool_backward"
    x = case.x(seed)
    dout = _rng(seed + 500).normal(size=case.out_shape)
    what = f"`{kind}_pool2d_backward` ({case.describe()})"
    got = _student_backward(fn, kind, dout, x, case, what)
    expected = expected_backward(kind, x, dout, case, hidden=hidden)
    if not close(got, expected):
        first_diagnosis(got, _backward_diagnoses(kind, x, dout, case, expected, what))
    expect_close(got, expected, what=what, code=code or _backward_aspect(case, prefix), hint=HINTS[(kind, "backward")])


def _classify_backward(fn: Callable, kind: str, case: PoolCase, seed: int, failure: CheckFailure, hidden: bool) -> CheckFailure:
    if not failure.code.endswith((".values", ".overlap", ".stride", ".padding")):
        return failure
    prefix = f"{kind}pool_backward"
    for simpler in (replace(case, stride=case.k, padding=0), replace(case, padding=0)):
        if simpler == case:
            continue
        try:
            backward_case(fn, kind, simpler, seed, hidden=hidden)
        except CheckFailure as exc:
            return exc if simpler.s == simpler.k else CheckFailure(_backward_aspect(simpler, prefix), exc.message)
    return CheckFailure(_backward_aspect(case, prefix), failure.message)


def classified_backward(fn: Callable, kind: str, case: PoolCase, seed: int, *, hidden: bool) -> None:
    """:func:`backward_case`, its failure named after the aspect that breaks."""
    try:
        backward_case(fn, kind, case, seed, hidden=hidden)
    except CheckFailure as exc:
        raise _classify_backward(fn, kind, case, seed, exc, hidden) from None


def _backward_random(fn: Callable, kind: str, seed: int, n: int = 6) -> None:
    for i, case in enumerate(random_cases(seed, n)):
        classified_backward(fn, kind, case, seed + i, hidden=True)


def _backward_numerical(fn: Callable, kind: str, seed: int) -> None:
    """Centred differences of ``sum(pool(x) * dout)`` in float64 (values are all distinct)."""
    case = PoolCase(1, 2, 5, 4, 3, stride=2, padding=1)
    prefix = f"{kind}pool_backward"
    x = case.x(seed)
    dout = _rng(seed + 1).normal(size=case.out_shape)
    what = f"`{kind}_pool2d_backward` ({case.describe()}), gradient numérique"
    got = _student_backward(fn, kind, dout, x, case, what)
    fw = _frameworks(False)[0]
    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        plus = np.sum(framework_pool(fw, kind, xp, case.k, case.s, case.padding) * dout)
        minus = np.sum(framework_pool(fw, kind, xm, case.k, case.s, case.padding) * dout)
        num[idx] = (plus - minus) / (2 * eps)
    rtol, atol = tolerance("numerical_gradient")
    problem = mismatch(got, num, rtol, atol)
    if problem:
        first_diagnosis(got, _backward_diagnoses(kind, x, dout, case, num, what))
        fail(f"{prefix}.values", f"{what} : différent du gradient numérique ({problem}). {HINTS[(kind, 'backward')]}")


BACKWARD_BASIC = PoolCase(2, 2, 4, 6, 2, stride=2)
BACKWARD_OVERLAP = PoolCase(1, 2, 7, 6, 3, stride=2)
BACKWARD_PADDED = PoolCase(2, 1, 5, 5, 2, stride=2, padding=1)


def max_pool_backward_basic(max_pool2d_backward: Callable) -> None:
    """Fenêtres 2×2 disjointes (stride=2)."""
    backward_case(max_pool2d_backward, "max", BACKWARD_BASIC, 10, hidden=False)


def max_pool_backward_overlap(max_pool2d_backward: Callable) -> None:
    """Fenêtres 3×3, stride=2 : les fenêtres se chevauchent, les gradients s'additionnent."""
    classified_backward(max_pool2d_backward, "max", BACKWARD_OVERLAP, 11, hidden=False)


def max_pool_backward_padding(max_pool2d_backward: Callable) -> None:
    """Fenêtres 2×2, stride=2, padding=1 : dx a la forme de x."""
    classified_backward(max_pool2d_backward, "max", BACKWARD_PADDED, 12, hidden=False)


def max_pool_backward_random(max_pool2d_backward: Callable, seed: int) -> None:
    """Cas aléatoires contre l'autograd de PyTorch et de TensorFlow."""
    _backward_random(max_pool2d_backward, "max", seed)


def max_pool_backward_numerical(max_pool2d_backward: Callable, seed: int) -> None:
    """Gradient numérique (différences centrées, float64)."""
    _backward_numerical(max_pool2d_backward, "max", seed)


def public_max_pool2d_backward(max_pool2d_backward: Callable, points: float) -> Grader:
    g = Grader("maxpool-backward", points, "max_pool2d_backward")
    g.check(max_pool_backward_basic, max_pool2d_backward, name="fenêtres disjointes")
    g.check(max_pool_backward_overlap, max_pool2d_backward, name="fenêtres qui se chevauchent")
    g.check(max_pool_backward_padding, max_pool2d_backward, name="padding")
    return g


def hidden_max_pool2d_backward(g: Grader, max_pool2d_backward: Callable, seed: int) -> None:
    g.hidden()
    g.check(max_pool_backward_random, max_pool2d_backward, seed, name="cas aléatoires", weight=2)
    g.check(max_pool_backward_numerical, max_pool2d_backward, seed, name="gradient numérique")


def avg_pool_backward_basic(avg_pool2d_backward: Callable) -> None:
    """Fenêtres 2×2 disjointes (stride=2)."""
    backward_case(avg_pool2d_backward, "avg", BACKWARD_BASIC, 10, hidden=False)


def avg_pool_backward_overlap(avg_pool2d_backward: Callable) -> None:
    """Fenêtres 3×3, stride=2 : les fenêtres se chevauchent, les gradients s'additionnent."""
    classified_backward(avg_pool2d_backward, "avg", BACKWARD_OVERLAP, 11, hidden=False)


def avg_pool_backward_padding(avg_pool2d_backward: Callable) -> None:
    """Fenêtres 2×2, stride=2, padding=1 : dx a la forme de x."""
    classified_backward(avg_pool2d_backward, "avg", BACKWARD_PADDED, 12, hidden=False)


def avg_pool_backward_random(avg_pool2d_backward: Callable, seed: int) -> None:
    """Cas aléatoires contre l'autograd de PyTorch et de TensorFlow."""
    _backward_random(avg_pool2d_backward, "avg", seed)


def avg_pool_backward_numerical(avg_pool2d_backward: Callable, seed: int) -> None:
    """Gradient numérique (différences centrées, float64)."""
    _backward_numerical(avg_pool2d_backward, "avg", seed)


def public_avg_pool2d_backward(avg_pool2d_backward: Callable, points: float) -> Grader:
    g = Grader("avgpool-backward", points, "avg_pool2d_backward")
    g.check(avg_pool_backward_basic, avg_pool2d_backward, name="fenêtres disjointes")
    g.check(avg_pool_backward_overlap, avg_pool2d_backward, name="fenêtres qui se chevauchent")
    g.check(avg_pool_backward_padding, avg_pool2d_backward, name="padding")
    return g


def hidden_avg_pool2d_backward(g: Grader, avg_pool2d_backward: Callable, seed: int) -> None:
    g.hidden()
    g.check(avg_pool_backward_random, avg_pool2d_backward, seed, name="cas aléatoires", weight=2)
    g.check(avg_pool_backward_numerical, avg_pool2d_backward, seed, name="gradient numérique")
