"""Checks for module 3, notebook `convolution`: 1-D/2-D convolution, conv2d forward and backward.

Expected values come from the frameworks' own ops at run time (NumPy/SciPy for 1-D and
single-channel filters, ``torch.nn.functional.conv2d`` and ``tf.nn.conv2d`` for batches), never
from stored answers; hidden checks also compare with the course's ``solutions`` when they are
installed (staff side). Visible checks need only one framework and no ``solutions``.

Failure codes: ``conv1d.*``, ``conv_filter.*``, ``conv.*`` (forward), ``conv_backward.*``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.backends import any_backend, available, backend
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
from autograder.feedback import CheckFailure, Grader, fail

# Ops that do the exercise for the student. Using one earns no credit for that check.
FORBIDDEN_1D = (
    "numpy.convolve",
    "numpy.correlate",
    "scipy.signal.convolve",
    "scipy.signal.correlate",
    "scipy.signal.fftconvolve",
    "scipy.signal.oaconvolve",
    "scipy.ndimage.convolve1d",
    "scipy.ndimage.correlate1d",
    "torch.nn.functional.conv1d",
    "torch.conv1d",
    "tensorflow.nn.conv1d",
    "solutions.conv.ref_correlate1d",
    "solutions.conv.ref_convolve1d",
)
FORBIDDEN_2D = (
    "scipy.signal.convolve2d",
    "scipy.signal.correlate2d",
    "scipy.signal.convolve",
    "scipy.signal.correlate",
    "scipy.signal.fftconvolve",
    "scipy.ndimage.convolve",
    "scipy.ndimage.correlate",
    "torch.nn.functional.conv2d",
    "torch.conv2d",
    "torch.nn.functional.unfold",
    "tensorflow.nn.conv2d",
    "tensorflow.nn.convolution",
    "tensorflow.nn.depthwise_conv2d",
    "keras.ops.conv",
    "cv2.filter2D",
    "solutions.conv.ref_correlate2d",
    "solutions.conv.ref_conv2d_forward",
)
FORBIDDEN_BACKWARD = FORBIDDEN_2D + (
    "torch.Tensor.backward",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.nn.grad.conv2d_input",
    "torch.nn.grad.conv2d_weight",
    "tensorflow.GradientTape",
    "tensorflow.nn.conv2d_transpose",
    "solutions.conv.ref_conv2d_backward",
)

HINT_FLIP = (
    "Votre résultat correspond à l'autre opération (noyau retourné) : une convolution retourne "
    "le noyau (`k[::-1]`), une corrélation croisée ne le retourne pas."
)
HINT_OUT_SIZE = "Vérifiez la formule (H + 2·padding − k) // stride + 1."


def _solutions() -> Any | None:
    return reference("conv")


_rng = rng


# ---------------------------------------------------------------------------------------------
# 1-D convolution and cross-correlation
# ---------------------------------------------------------------------------------------------


def _oracle_1d(x: np.ndarray, k: np.ndarray, flip: bool) -> np.ndarray:
    return np.convolve(x, k, mode="valid") if flip else np.correlate(x, k, mode="valid")


def _check_1d(fn: Callable, x: np.ndarray, k: np.ndarray, *, what: str, flip: bool) -> None:
    got = call_student(fn, x, k, what=what, code="conv1d", forbidden=FORBIDDEN_1D)
    got = expect_array(got, what=f"le résultat de `{what}`", code="conv1d")
    n_out = len(x) - len(k) + 1
    expect_shape(
        got,
        (n_out,),
        what=f"`{what}` avec x de longueur {len(x)} et un noyau de longueur {len(k)}",
        code="conv1d.shape",
        hint="En mode « valid », la sortie a len(x) − len(k) + 1 éléments.",
    )
    expected = _oracle_1d(x, k, flip)
    if not close(got, expected):
        first_diagnosis(got, [(lambda: _oracle_1d(x, k, not flip), "conv1d.flip", f"`{what}` : {HINT_FLIP}")])
    expect_close(got, expected, what=f"`{what}`", code="conv1d.values")


def correlate1d_fixed(correlate1d: Callable) -> None:
    """Corrélation croisée sur un petit signal fixe (noyau non symétrique)."""
    x = np.array([1.0, 2.0, 0.0, -1.0, 3.0, 2.0, 1.0])
    _check_1d(correlate1d, x, np.array([1.0, 0.0, -2.0]), what="correlate1d", flip=False)


def convolve1d_fixed(convolve1d: Callable) -> None:
    """Convolution sur un petit signal fixe (noyau non symétrique)."""
    x = np.array([1.0, 2.0, 0.0, -1.0, 3.0, 2.0, 1.0])
    _check_1d(convolve1d, x, np.array([1.0, 0.0, -2.0]), what="convolve1d", flip=True)


def _random_1d(fn: Callable, seed: int, n: int, flip: bool, what: str) -> None:
    rng = _rng(seed)
    for _ in range(n):
        k = rng.normal(size=int(rng.integers(1, 6)))
        x = rng.normal(size=len(k) + int(rng.integers(0, 12)))
        _check_1d(fn, x, k, what=what, flip=flip)


def correlate1d_random(correlate1d: Callable, seed: int, n: int = 6) -> None:
    """Corrélation croisée sur des signaux et noyaux aléatoires (dont noyau de longueur 1)."""
    _random_1d(correlate1d, seed, n, False, "correlate1d")


def convolve1d_random(convolve1d: Callable, seed: int, n: int = 6) -> None:
    """Convolution sur des signaux et noyaux aléatoires (dont noyau de longueur 1)."""
    _random_1d(convolve1d, seed, n, True, "convolve1d")


def public_correlate1d(correlate1d: Callable, points: float) -> Grader:
    g = Grader("conv1d-correlate", points, "correlate1d")
    g.check(correlate1d_fixed, correlate1d, name="signal fixe")
    return g


def hidden_correlate1d(g: Grader, correlate1d: Callable, seed: int) -> None:
    g.hidden().check(correlate1d_random, correlate1d, seed, name="signaux aléatoires")


def public_convolve1d(convolve1d: Callable, points: float) -> Grader:
    g = Grader("conv1d-convolve", points, "convolve1d")
    g.check(convolve1d_fixed, convolve1d, name="signal fixe")
    return g


def hidden_convolve1d(g: Grader, convolve1d: Callable, seed: int) -> None:
    g.hidden().check(convolve1d_random, convolve1d, seed, name="signaux aléatoires")


# ---------------------------------------------------------------------------------------------
# A 2-D filter on a single-channel image
# ---------------------------------------------------------------------------------------------


def _check_filter(correlate2d: Callable, image: np.ndarray, kernel: np.ndarray) -> None:
    from scipy import signal

    what = "correlate2d"
    got = call_student(correlate2d, image, kernel, what=what, code="conv_filter", forbidden=FORBIDDEN_2D)
    got = expect_array(got, what=f"le résultat de `{what}`", code="conv_filter")
    (h, w), (kh, kw) = image.shape, kernel.shape
    expect_shape(
        got,
        (h - kh + 1, w - kw + 1),
        what=f"`{what}` sur une image {h}×{w} avec un noyau {kh}×{kw}",
        code="conv_filter.shape",
        hint="Sans padding, la sortie a (H − kh + 1) lignes et (W − kw + 1) colonnes.",
    )
    expected = signal.correlate2d(image, kernel, mode="valid")
    if not close(got, expected):
        first_diagnosis(
            got,
            [
                (lambda: signal.convolve2d(image, kernel, mode="valid"), "conv_filter.flip", f"`{what}` : {HINT_FLIP}"),
                (
                    lambda: signal.correlate2d(image, kernel.T, mode="valid"),
                    "conv_filter.values",
                    f"`{what}` : le noyau semble transposé (lignes et colonnes inversées).",
                ),
            ],
        )
    expect_close(got, expected, what=f"`{what}` (image {h}×{w}, noyau {kh}×{kw})", code="conv_filter.values")


def filter_fixed(correlate2d: Callable) -> None:
    """Filtre de Sobel horizontal sur une petite image fixe."""
    image = np.arange(42, dtype=np.float64).reshape(6, 7) % 5
    sobel_x = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    _check_filter(correlate2d, image, sobel_x)


def filter_random(correlate2d: Callable, seed: int, n: int = 4) -> None:
    """Images et noyaux aléatoires, rectangulaires, noyau 1×1 compris."""
    rng = _rng(seed)
    sizes = [(1, 1), (2, 4), (3, 3), (5, 2)]
    for i in range(n):
        kh, kw = sizes[i % len(sizes)]
        image = rng.normal(size=(kh + int(rng.integers(0, 7)), kw + int(rng.integers(0, 7))))
        _check_filter(correlate2d, image, rng.normal(size=(kh, kw)))


def public_correlate2d(correlate2d: Callable, points: float) -> Grader:
    g = Grader("conv2d-filter", points, "correlate2d")
    g.check(filter_fixed, correlate2d, name="filtre de Sobel sur une image fixe")
    return g


def hidden_correlate2d(g: Grader, correlate2d: Callable, seed: int) -> None:
    g.hidden().check(filter_random, correlate2d, seed, name="images et noyaux aléatoires")


# ---------------------------------------------------------------------------------------------
# conv2d_forward: batches, channels, stride, padding (NCHW)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    """One conv2d case: input (N, C, H, W), F filters of size KH×KW, stride, padding."""

    n: int
    c: int
    h: int
    w: int
    f: int
    kh: int
    kw: int
    stride: int = 1
    padding: int = 0

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = _rng(seed)
        x = rng.normal(size=(self.n, self.c, self.h, self.w))
        w = rng.normal(size=(self.f, self.c, self.kh, self.kw))
        b = rng.normal(size=(self.f,))
        return x, w, b

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        ho = (self.h + 2 * self.padding - self.kh) // self.stride + 1
        wo = (self.w + 2 * self.padding - self.kw) // self.stride + 1
        return (self.n, self.f, ho, wo)

    def describe(self) -> str:
        return (
            f"x de forme {(self.n, self.c, self.h, self.w)}, w de forme "
            f"{(self.f, self.c, self.kh, self.kw)}, stride={self.stride}, padding={self.padding}"
        )


def conv_oracles(x, w, b, stride: int, padding: int, *, hidden: bool) -> np.ndarray:
    """Expected conv2d output; hidden checks require every installed oracle to agree."""
    if not hidden:
        return any_backend().conv2d(x, w, b, stride, padding)
    outs = [backend(f).conv2d(x, w, b, stride, padding) for f in ("torch", "tf") if available(f)]
    ref = _solutions()
    if ref is not None:
        outs.append(ref.ref_conv2d_forward(x, w, b, stride, padding))
    if not outs:
        raise RuntimeError("aucune référence disponible (ni PyTorch, ni TensorFlow, ni solutions)")
    for other in outs[1:]:
        if not close(other, outs[0], "float32"):
            raise RuntimeError("les références PyTorch / TensorFlow / solutions ne concordent pas")
    return outs[0]


def _aspect_code(case: ConvCase) -> str:
    if case.padding and case.stride == 1:
        return "conv.padding"
    if case.stride > 1 and not case.padding:
        return "conv.stride"
    return "conv.values"


def _forward_case(conv2d_forward: Callable, case: ConvCase, seed: int, *, hidden: bool, code: str | None = None) -> None:
    x, w, b = case.arrays(seed)
    code = code or _aspect_code(case)
    what = f"`conv2d_forward` ({case.describe()})"
    got = call_student(
        conv2d_forward, x, w, b, stride=case.stride, padding=case.padding,
        what="conv2d_forward", code="conv", forbidden=FORBIDDEN_2D,
    )
    got = expect_array(got, what="le résultat de `conv2d_forward`", code="conv")
    n, f, ho, wo = case.out_shape
    if got.shape != case.out_shape:
        if got.shape == (n, ho, wo, f):
            fail(
                "conv.layout",
                f"{what} : forme {got.shape}, attendu {case.out_shape}. Les canaux sont en dernier "
                "(NHWC) : le cours travaille en NCHW, sortie (N, F, H_out, W_out).",
            )
        expect_shape(got, case.out_shape, what=what, code=code if code != "conv.values" else "conv.shape", hint=HINT_OUT_SIZE)
    expect_float(got, "float64", what="la sortie de `conv2d_forward`", code="conv.dtype")
    expected = conv_oracles(x, w, b, case.stride, case.padding, hidden=hidden)
    if not close(got, expected):
        oracle = any_backend()
        first_diagnosis(
            got,
            [
                (
                    lambda: oracle.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, case.stride, case.padding),
                    "conv.flip",
                    f"{what} : votre noyau est retourné (inversé dans les deux sens). `conv2d_forward` calcule une corrélation "
                    "croisée, comme `torch.nn.functional.conv2d` : pas de `[::-1, ::-1]`.",
                ),
                (
                    lambda: expected.transpose(0, 2, 3, 1),
                    "conv.layout",
                    f"{what} : les canaux sont en dernier (NHWC) ; le cours travaille en NCHW, "
                    "sortie (N, F, H_out, W_out).",
                ),
                (
                    lambda: oracle.conv2d(x, w, None, case.stride, case.padding),
                    "conv.bias",
                    f"{what} : le biais manque. Ajoutez `b[f]` à chaque sortie du filtre f "
                    "(diffusion : `b[None, :, None, None]`).",
                ),
                (
                    lambda: oracle.conv2d(x, w, np.zeros_like(b), case.stride, case.padding) + b.sum(),
                    "conv.bias",
                    f"{what} : chaque filtre reçoit la somme de tous les biais au lieu du sien.",
                ),
            ],
        )
    expect_close(got, expected, what=what, code=code)


def conv2d_forward_basic(conv2d_forward: Callable) -> None:
    """Lot de 2 images à 3 canaux, 4 filtres 3×3, stride=1, padding=0."""
    _forward_case(conv2d_forward, ConvCase(2, 3, 5, 5, 4, 3, 3), seed=0, hidden=False, code="conv.values")


def conv2d_forward_stride(conv2d_forward: Callable) -> None:
    """stride=2 sans padding, image dont la taille ne tombe pas juste."""
    _forward_case(conv2d_forward, ConvCase(1, 2, 7, 8, 4, 3, 3, stride=2), seed=1, hidden=False)


def conv2d_forward_padding(conv2d_forward: Callable) -> None:
    """padding=1 avec stride=1 : la sortie garde la taille de l'entrée."""
    _forward_case(conv2d_forward, ConvCase(2, 2, 5, 5, 2, 3, 3, padding=1), seed=2, hidden=False)


def _classify(conv2d_forward: Callable, case: ConvCase, seed: int, failure: CheckFailure) -> CheckFailure:
    """Name the aspect a failing random case reveals (same codes as the visible checks)."""
    if failure.code.endswith((".framework_used", ".exception", ".type", ".layout", ".flip", ".bias", ".dtype")):
        return failure
    for simpler in (
        ConvCase(case.n, case.c, case.h, case.w, case.f, case.kh, case.kw),
        ConvCase(case.n, case.c, case.h, case.w, case.f, case.kh, case.kw, stride=case.stride),
    ):
        try:
            _forward_case(conv2d_forward, simpler, seed, hidden=True)
        except CheckFailure as exc:
            return exc if simpler.stride == 1 else CheckFailure("conv.stride", exc.message)
    code = "conv.padding" if case.padding else "conv.stride"
    return CheckFailure(code, failure.message)


def random_conv_cases(seed: int, n: int) -> list[ConvCase]:
    """Rectangular inputs and kernels, strides 1–3, paddings 0–2, batches of 1–3."""
    rng = _rng(seed)
    cases = []
    for _ in range(n):
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        padding = int(rng.integers(0, 3))
        cases.append(
            ConvCase(
                n=int(rng.integers(1, 4)), c=int(rng.integers(1, 4)),
                h=kh + int(rng.integers(0, 7)), w=kw + int(rng.integers(0, 7)),
                f=int(rng.integers(1, 5)), kh=kh, kw=kw,
                stride=int(rng.integers(1, 4)), padding=padding,
            )
        )
    return cases


def conv2d_forward_random(conv2d_forward: Callable, seed: int, n: int = 8) -> None:
    """Formes, strides et paddings aléatoires, comparés à PyTorch et à TensorFlow."""
    for i, case in enumerate(random_conv_cases(seed, n)):
        try:
            _forward_case(conv2d_forward, case, seed + i, hidden=True)
        except CheckFailure as exc:
            raise _classify(conv2d_forward, case, seed + i, exc) from None


def public_conv2d_forward(conv2d_forward: Callable, points: float) -> Grader:
    g = Grader("conv2d-forward", points, "conv2d_forward")
    g.check(conv2d_forward_basic, conv2d_forward, name="cas de base")
    g.check(conv2d_forward_stride, conv2d_forward, name="stride")
    g.check(conv2d_forward_padding, conv2d_forward, name="padding")
    return g


def hidden_conv2d_forward(g: Grader, conv2d_forward: Callable, seed: int) -> None:
    g.hidden().check(conv2d_forward_random, conv2d_forward, seed, name="cas aléatoires", weight=2)


# ---------------------------------------------------------------------------------------------
# conv2d_backward: (dx, dw, db)
# ---------------------------------------------------------------------------------------------


def grad_oracles(x, w, b, stride: int, padding: int, dout, *, hidden: bool) -> tuple[np.ndarray, ...]:
    if not hidden:
        return any_backend().conv2d_grads(x, w, b, stride, padding, dout)
    outs = [backend(f).conv2d_grads(x, w, b, stride, padding, dout) for f in ("torch", "tf") if available(f)]
    ref = _solutions()
    if ref is not None:
        outs.append(ref.ref_conv2d_backward(dout, x, w, b, stride, padding))
    if not outs:
        raise RuntimeError("aucune référence disponible (ni PyTorch, ni TensorFlow, ni solutions)")
    for other in outs[1:]:
        if not all(close(o, r, "float32") for o, r in zip(other, outs[0], strict=True)):
            raise RuntimeError("les gradients de référence ne concordent pas")
    return outs[0]


def _student_grads(conv2d_backward: Callable, dout, x, w, b, stride: int, padding: int, what: str):
    got = call_student(
        conv2d_backward, dout, x, w, b, stride=stride, padding=padding,
        what="conv2d_backward", code="conv_backward", forbidden=FORBIDDEN_BACKWARD,
    )
    if not isinstance(got, tuple | list) or len(got) != 3:
        fail(
            "conv_backward.type",
            f"`conv2d_backward` doit renvoyer un triplet `(dx, dw, db)` ; reçu `{type(got).__name__}`"
            + (f" de longueur {len(got)}" if isinstance(got, tuple | list) else "")
            + ".",
        )
    names = ("dx", "dw", "db")
    arrays = [expect_array(g, what=f"`{n}`", code="conv_backward") for g, n in zip(got, names, strict=True)]
    for arr, ref, name in zip(arrays, (x, w, b), names, strict=True):
        expect_shape(
            arr, ref.shape, what=f"{what} : `{name}`", code="conv_backward.shape",
            hint=f"`{name}` a toujours la forme de `{name[1:]}`"
            + (" (retirez le padding de dx)." if name == "dx" and padding else "."),
        )
    return arrays


BACKWARD_HINTS = {
    "db": "db[f] est la somme de dout[:, f] sur le lot et sur les positions (axes 0, 2, 3).",
    "dw": "dw[f, c] accumule dout[n, f, i, j] × la fenêtre de x vue en (i, j) : avec stride>1, "
    "la fenêtre commence en (i·stride, j·stride).",
    "dx": "dx accumule dout[n, f, i, j] × w[f] dans la fenêtre vue en (i, j) (additionnez, "
    "les fenêtres se chevauchent), puis retirez le padding.",
}


def _backward_case(conv2d_backward: Callable, case: ConvCase, seed: int, *, hidden: bool) -> None:
    x, w, b = case.arrays(seed)
    dout = _rng(seed + 1000).normal(size=case.out_shape)
    what = f"`conv2d_backward` ({case.describe()})"
    dx, dw, db = _student_grads(conv2d_backward, dout, x, w, b, case.stride, case.padding, what)
    edx, edw, edb = grad_oracles(x, w, b, case.stride, case.padding, dout, hidden=hidden)
    for got, expected, name in ((db, edb, "db"), (dw, edw, "dw"), (dx, edx, "dx")):
        expect_close(got, expected, what=f"{what} : `{name}`", code=f"conv_backward.{name}", hint=BACKWARD_HINTS[name])


def conv2d_backward_basic(conv2d_backward: Callable) -> None:
    """Gradients pour stride=1, padding=0 (lot de 2, 3 canaux, 2 filtres 3×3)."""
    _backward_case(conv2d_backward, ConvCase(2, 3, 5, 5, 2, 3, 3), seed=10, hidden=False)


def conv2d_backward_stride_padding(conv2d_backward: Callable) -> None:
    """Gradients pour stride=2, padding=1."""
    _backward_case(conv2d_backward, ConvCase(2, 2, 6, 6, 3, 3, 3, stride=2, padding=1), seed=11, hidden=False)


def conv2d_backward_random(conv2d_backward: Callable, seed: int, n: int = 6) -> None:
    """Formes, strides et paddings aléatoires, comparés à l'autograd de PyTorch et de TensorFlow."""
    for i, case in enumerate(random_conv_cases(seed, n)):
        _backward_case(conv2d_backward, case, seed + i, hidden=True)


def conv2d_backward_numerical(conv2d_backward: Callable, seed: int) -> None:
    """Gradient numérique (différences centrées, float64) du produit scalaire <conv(x, w, b), dout>."""
    case = ConvCase(2, 2, 5, 4, 2, 3, 2, stride=2, padding=1)
    x, w, b = case.arrays(seed)
    dout = _rng(seed + 1).normal(size=case.out_shape)
    what = f"`conv2d_backward` ({case.describe()}), gradient numérique"
    grads = _student_grads(conv2d_backward, dout, x, w, b, case.stride, case.padding, what)
    forward = any_backend().conv2d
    eps = 1e-6

    def numerical(arr: np.ndarray) -> np.ndarray:
        out = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            plus = np.sum(forward(x, w, b, case.stride, case.padding) * dout)
            arr[idx] = old - eps
            minus = np.sum(forward(x, w, b, case.stride, case.padding) * dout)
            arr[idx] = old
            out[idx] = (plus - minus) / (2 * eps)
        return out

    rtol, atol = tolerance("numerical_gradient")
    for got, arr, name in zip(grads, (x, w, b), ("dx", "dw", "db"), strict=True):
        problem = mismatch(got, numerical(arr), rtol, atol)
        if problem:
            fail(f"conv_backward.{name}", f"{what} : `{name}` ne correspond pas au gradient numérique ({problem}). {BACKWARD_HINTS[name]}")


def public_conv2d_backward(conv2d_backward: Callable, points: float) -> Grader:
    g = Grader("conv2d-backward", points, "conv2d_backward")
    g.check(conv2d_backward_basic, conv2d_backward, name="stride=1, padding=0")
    g.check(conv2d_backward_stride_padding, conv2d_backward, name="stride=2, padding=1")
    return g


def hidden_conv2d_backward(g: Grader, conv2d_backward: Callable, seed: int) -> None:
    g.hidden()
    g.check(conv2d_backward_random, conv2d_backward, seed, name="cas aléatoires")
    g.check(conv2d_backward_numerical, conv2d_backward, seed, name="gradient numérique")
