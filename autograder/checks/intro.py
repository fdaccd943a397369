"""Checks for module 1, notebook `cnn_vs_dense`: parameter counts, output shapes, equivariance, quiz.

Expected counts and shapes come at run time from real layers: ``torch.nn.Linear`` /
``torch.nn.Conv2d`` (dense layers built on PyTorch's ``meta`` device: no memory, even for a
224×224×3 input; shapes from a forward pass of one blank image), else Keras layers for sizes
that fit in memory, else plain arithmetic. Hidden checks require every available reference to
agree, the course's ``solutions`` included when installed.
Visible checks need no framework and no ``solutions``.

Quiz answers never appear in a release: the hidden part of each quiz test cell stores a salted
SHA-256 digest (:func:`answer_digest`); the visible part only checks the answer's format.

Failure codes: ``count.*`` (dense_params, conv_params), ``conv_shape.*``, ``compare.*``,
``equivariance.*``, ``quiz.*``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autograder.backends import available
from autograder.checks._core import call_student, reference
from autograder.feedback import CheckFailure, Grader, NotAttempted, fail, fr_number

# Letting a framework count the parameters does the exercise: no credit for that check.
FORBIDDEN_COUNT = (
    "torch.nn.Linear",
    "torch.nn.Conv2d",
    "torch.nn.LazyLinear",
    "torch.nn.LazyConv2d",
    "keras.layers.Dense",
    "keras.layers.Conv2D",
    "solutions.intro.ref_dense_params",
    "solutions.intro.ref_conv_params",
    "solutions.intro.ref_compare_models",
)
FORBIDDEN_SHAPE = (
    "torch.nn.functional.conv2d",
    "torch.conv2d",
    "torch.nn.Conv2d",
    "keras.layers.Conv2D",
    "tensorflow.nn.conv2d",
    "solutions.intro.ref_conv_output_shape",
)
FORBIDDEN_EQUIVARIANCE = ("solutions.intro.ref_equivariance_error",)

#: Keras builds real weights: above this many parameters the arithmetic reference is used.
KERAS_MAX_PARAMS = 5_000_000

#: The models of `compare_models` (stated in the notebook).
DENSE_HIDDEN = 128
CNN_CHANNELS = (16, 32)
N_CLASSES = 10

QUIZ_CHOICES = ("a", "b", "c", "d")

HINT_OUT_SIZE = "Formule : (H + 2·padding − k) // stride + 1, sur chaque axe."


def _solutions() -> Any | None:
    return reference("intro")


def _torch() -> Any | None:
    if not available("torch"):
        return None
    import torch

    return torch


def _keras() -> Any | None:
    """Keras, only where PyTorch is missing or Keras is already loaded (its import is slow)."""
    if not available("tf") or (available("torch") and "keras" not in sys.modules):
        return None
    import keras

    return keras


def _pair(k: Any) -> tuple[int, int]:
    return (int(k), int(k)) if isinstance(k, int | np.integer) else (int(k[0]), int(k[1]))


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _agree(values: Sequence[Any], what: str) -> Any:
    """The common value of several references; a disagreement is the course's bug, not yours."""
    for v in values[1:]:
        if v != values[0]:
            raise RuntimeError(f"les références ne concordent pas pour {what}")
    return values[0]


def _n_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ---------------------------------------------------------------------------------------------
# References: real layers first, arithmetic last.
# ---------------------------------------------------------------------------------------------


def count_dense(n_in: int, n_out: int, bias: bool = True, *, hidden: bool = False) -> int:
    """Parameters of a dense layer ``n_in → n_out``, counted on a real layer when possible."""
    values = []
    torch = _torch()
    if torch is not None:
        values.append(_n_params(torch.nn.Linear(n_in, n_out, bias=bias, device="meta")))
    keras = _keras()
    if keras is not None and n_in * n_out <= KERAS_MAX_PARAMS:
        layer = keras.layers.Dense(n_out, use_bias=bias)
        layer.build((None, n_in))
        values.append(int(layer.count_params()))
    if hidden or not values:
        values.append(n_in * n_out + (n_out if bias else 0))
    ref = _solutions() if hidden else None
    if ref is not None:
        values.append(ref.ref_dense_params(n_in, n_out, bias))
    return _agree(values, "une couche dense")


def count_conv(c_in: int, c_out: int, k: Any, bias: bool = True, *, hidden: bool = False) -> int:
    """Parameters of a 2-D convolution layer, counted on a real layer when possible."""
    kh, kw = _pair(k)
    values = []
    torch = _torch()
    if torch is not None:
        values.append(_n_params(torch.nn.Conv2d(c_in, c_out, (kh, kw), bias=bias, device="meta")))
    keras = _keras()
    if keras is not None and c_in * c_out * kh * kw <= KERAS_MAX_PARAMS:
        layer = keras.layers.Conv2D(c_out, (kh, kw), use_bias=bias)
        layer.build((None, 2 * kh, 2 * kw, c_in))
        values.append(int(layer.count_params()))
    if hidden or not values:
        values.append(c_out * c_in * kh * kw + (c_out if bias else 0))
    ref = _solutions() if hidden else None
    if ref is not None:
        values.append(ref.ref_conv_params(c_in, c_out, k, bias))
    return _agree(values, "une couche de convolution")


def _arith_shape(h: int, w: int, k: Any, stride: int, padding: int) -> tuple[int, int]:
    kh, kw = _pair(k)
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


def conv_shape(
    h: int, w: int, k: Any, stride: int = 1, padding: int = 0, *, hidden: bool = False
) -> tuple[int, int]:
    """Spatial output size of a convolution, from a real layer when possible."""
    kh, kw = _pair(k)
    values = []
    torch = _torch()
    if torch is not None:
        # A real (tiny) forward pass: meta tensors would load PyTorch's Python meta kernels (seconds).
        x = torch.zeros(1, 1, h, w)
        weight = torch.zeros(1, 1, kh, kw)
        out = torch.nn.functional.conv2d(x, weight, stride=stride, padding=padding)
        values.append((int(out.shape[2]), int(out.shape[3])))
    keras = _keras()
    if keras is not None:
        shape = keras.layers.ZeroPadding2D(padding).compute_output_shape((1, h, w, 1))
        shape = keras.layers.Conv2D(1, (kh, kw), strides=stride).compute_output_shape(shape)
        values.append((int(shape[1]), int(shape[2])))
    if hidden or not values:
        values.append(_arith_shape(h, w, k, stride, padding))
    ref = _solutions() if hidden else None
    if ref is not None:
        values.append(tuple(ref.ref_conv_output_shape(h, w, k, stride, padding)))
    return _agree(values, "la taille de sortie d'une convolution")


def _arith_models(h: int, w: int, c: int) -> dict[str, int]:
    dense = h * w * c * DENSE_HIDDEN + DENSE_HIDDEN + DENSE_HIDDEN * N_CLASSES + N_CLASSES
    c1, c2 = CNN_CHANNELS
    cnn = c1 * c * 9 + c1 + c2 * c1 * 9 + c2
    return {"dense": dense, "cnn": cnn + c2 * (h // 2 // 2) * (w // 2 // 2) * N_CLASSES + N_CLASSES}


def count_models(h: int, w: int, c: int, *, hidden: bool = False) -> dict[str, int]:
    """Parameters of the notebook's dense network and small CNN on ``h × w × c`` images."""
    values = []
    c1, c2 = CNN_CHANNELS
    torch = _torch()
    if torch is not None:
        nn = torch.nn
        dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(h * w * c, DENSE_HIDDEN, device="meta"),
            nn.ReLU(),
            nn.Linear(DENSE_HIDDEN, N_CLASSES, device="meta"),
        )
        features = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        # The flattened size from a real forward pass of one blank image (small convolutions:
        # milliseconds; the large dense layers stay on the meta device, without memory).
        with torch.no_grad():
            n_flat = int(features(torch.zeros(1, c, h, w)).shape[1])
        head = nn.Linear(n_flat, N_CLASSES, device="meta")
        values.append({"dense": _n_params(dense), "cnn": _n_params(features) + _n_params(head)})
    keras = _keras()
    if keras is not None and h * w * c * DENSE_HIDDEN <= 4 * KERAS_MAX_PARAMS:
        layers = keras.layers
        dense = keras.Sequential(
            [
                keras.Input((h, w, c)),
                layers.Flatten(),
                layers.Dense(DENSE_HIDDEN, activation="relu"),
                layers.Dense(N_CLASSES),
            ]
        )
        cnn = keras.Sequential(
            [
                keras.Input((h, w, c)),
                layers.Conv2D(c1, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(c2, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(N_CLASSES),
            ]
        )
        values.append({"dense": int(dense.count_params()), "cnn": int(cnn.count_params())})
    if hidden or not values:
        values.append(_arith_models(h, w, c))
    ref = _solutions() if hidden else None
    if ref is not None:
        values.append(dict(ref.ref_compare_models(h, w, c)))
    return _agree(values, "les deux modèles")


# ---------------------------------------------------------------------------------------------
# dense_params / conv_params
# ---------------------------------------------------------------------------------------------


def _expect_count(got: Any, *, what: str) -> int:
    if got is None:
        fail("count.type", f"{what} renvoie `None` : avez-vous oublié le `return` ?")
    if isinstance(got, float | np.floating):
        fail(
            "count.type",
            f"{what} renvoie un flottant ({got!r}) : un nombre de paramètres est un entier. "
            "Calculez avec des entiers (`*`, `+`, `//`), sans `/` ni `np.sqrt`.",
        )
    if not _is_int(got):
        fail(
            "count.type",
            f"{what} doit renvoyer un entier ; reçu un objet de type `{type(got).__name__}`.",
        )
    return int(got)


def _fmt_bias(bias: bool | None) -> str:
    return "" if bias is None else f", bias={bias}"


def _dense_case(
    dense_params: Callable, n_in: int, n_out: int, bias: bool | None, *, hidden: bool
) -> None:
    kwargs = {} if bias is None else {"bias": bias}
    what = f"`dense_params({n_in}, {n_out}{_fmt_bias(bias)})`"
    got = call_student(
        dense_params,
        n_in,
        n_out,
        what="dense_params",
        code="count",
        forbidden=FORBIDDEN_COUNT,
        **kwargs,
    )
    got = _expect_count(got, what=what)
    use_bias = True if bias is None else bias
    expected = count_dense(n_in, n_out, use_bias, hidden=hidden)
    if got == expected:
        return
    weights = n_in * n_out
    if use_bias and got == weights:
        fail(
            "count.dense_bias",
            f"{what} renvoie {got} : il manque les biais, un par neurone de sortie.",
        )
    if not use_bias and got == weights + n_out:
        fail(
            "count.dense_bias",
            f"{what} renvoie {got} : avec `bias=False`, la couche n'a pas de biais.",
        )
    if got in (weights + n_in, weights + n_in * int(use_bias)):
        fail(
            "count.dense_bias",
            f"{what} renvoie {got} : il y a un biais par neurone de **sortie** (n_out), pas par entrée.",
        )
    fail(
        "count.dense_values",
        f"{what} renvoie {got}, ce n'est pas le bon nombre. Chacun des n_out neurones a un poids par "
        "entrée (n_in) et, si `bias=True`, un biais.",
    )


def dense_params_default(dense_params: Callable) -> None:
    """Couche 784 → 128 (image 28×28 aplatie), biais par défaut."""
    _dense_case(dense_params, 784, 128, None, hidden=False)


def dense_params_bias(dense_params: Callable) -> None:
    """Couche 128 → 10 avec `bias=True` explicite."""
    _dense_case(dense_params, 128, 10, True, hidden=False)


def dense_params_no_bias(dense_params: Callable) -> None:
    """Couche 128 → 10 sans biais (`bias=False`)."""
    _dense_case(dense_params, 128, 10, False, hidden=False)


def dense_params_random(dense_params: Callable, seed: int, n: int = 6) -> None:
    """Tailles aléatoires (dont une sortie à 1 neurone et une entrée 224×224×3), avec et sans biais."""
    rng = np.random.default_rng(seed)
    cases = [(224 * 224 * 3, 4096, True), (int(rng.integers(2, 50)), 1, False)]
    cases += [
        (int(rng.integers(1, 5000)), int(rng.integers(1, 600)), bool(rng.integers(0, 2)))
        for _ in range(n)
    ]
    for n_in, n_out, bias in cases:
        _dense_case(dense_params, n_in, n_out, bias, hidden=True)


def public_dense_params(dense_params: Callable, points: float) -> Grader:
    g = Grader("count-dense", points, "dense_params")
    g.check(dense_params_default, dense_params, name="784 → 128, biais par défaut")
    g.check(dense_params_bias, dense_params, name="128 → 10, bias=True")
    g.check(dense_params_no_bias, dense_params, name="128 → 10, bias=False")
    return g


def hidden_dense_params(g: Grader, dense_params: Callable, seed: int) -> None:
    g.hidden().check(dense_params_random, dense_params, seed, name="tailles aléatoires", weight=2)


def _conv_case(
    conv_params: Callable, c_in: int, c_out: int, k: Any, bias: bool | None, *, hidden: bool
) -> None:
    kwargs = {} if bias is None else {"bias": bias}
    what = f"`conv_params({c_in}, {c_out}, {k!r}{_fmt_bias(bias)})`"
    try:
        got = call_student(
            conv_params,
            c_in,
            c_out,
            k,
            what="conv_params",
            code="count",
            forbidden=FORBIDDEN_COUNT,
            **kwargs,
        )
    except CheckFailure as exc:
        if exc.code == "count.exception" and not isinstance(k, int):
            fail(
                "count.conv_kernel",
                f"{exc.message} Le noyau peut être un entier `k` (noyau k×k) ou un couple `(kh, kw)` : "
                "traitez les deux cas (par ex. `kh, kw = (k, k) if isinstance(k, int) else k`).",
            )
        raise
    got = _expect_count(got, what=what)
    use_bias = True if bias is None else bias
    expected = count_conv(c_in, c_out, k, use_bias, hidden=hidden)
    if got == expected:
        return
    kh, kw = _pair(k)
    b = c_out if use_bias else 0
    if got == c_out * kh * kw + b and c_in != 1:
        fail(
            "count.conv_channels",
            f"{what} renvoie {got} : chaque filtre couvre **tous** les canaux d'entrée, il a "
            "c_in × kh × kw poids.",
        )
    weights = c_out * c_in * kh * kw
    if got in (weights, weights + c_out, weights + c_in, weights + c_in * c_out):
        fail(
            "count.conv_bias",
            f"{what} renvoie {got} : vérifiez les biais, un par filtre (c_out) quand `bias=True`, "
            "aucun quand `bias=False`.",
        )
    if kh != kw and got in (c_out * c_in * kh * kh + b, c_out * c_in * kw * kw + b):
        fail(
            "count.conv_kernel",
            f"{what} renvoie {got} : avec un noyau rectangulaire (kh, kw), un filtre a kh × kw "
            "poids par canal.",
        )
    fail(
        "count.conv_values",
        f"{what} renvoie {got}, ce n'est pas le bon nombre. Une couche a c_out filtres de "
        "c_in × kh × kw poids, plus un biais par filtre si `bias=True`.",
    )


def conv_params_one_channel(conv_params: Callable) -> None:
    """Conv 3×3 d'une image à 1 canal vers 16 canaux (biais par défaut)."""
    _conv_case(conv_params, 1, 16, 3, None, hidden=False)


def conv_params_channels(conv_params: Callable) -> None:
    """Conv 3×3 de 16 à 32 canaux (biais par défaut)."""
    _conv_case(conv_params, 16, 32, 3, None, hidden=False)


def conv_params_no_bias(conv_params: Callable) -> None:
    """Conv 3×3 de 3 à 64 canaux sans biais (`bias=False`)."""
    _conv_case(conv_params, 3, 64, 3, False, hidden=False)


def conv_params_rect(conv_params: Callable) -> None:
    """Noyau rectangulaire donné par un couple (kh, kw) = (1, 5)."""
    _conv_case(conv_params, 4, 8, (1, 5), None, hidden=False)


def conv_params_random(conv_params: Callable, seed: int, n: int = 8) -> None:
    """Canaux, noyaux (entiers et couples) et biais aléatoires."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        kh, kw = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        k: Any = kh if i % 2 else (kh, kw)
        bias = bool(rng.integers(0, 2))
        _conv_case(
            conv_params, int(rng.integers(2, 130)), int(rng.integers(1, 260)), k, bias, hidden=True
        )


def public_conv_params(conv_params: Callable, points: float) -> Grader:
    g = Grader("count-conv", points, "conv_params")
    g.check(conv_params_one_channel, conv_params, name="conv 3×3, 1 → 16 canaux")
    g.check(conv_params_channels, conv_params, name="conv 3×3, 16 → 32 canaux")
    g.check(conv_params_no_bias, conv_params, name="bias=False")
    g.check(conv_params_rect, conv_params, name="noyau rectangulaire (kh, kw)")
    return g


def hidden_conv_params(g: Grader, conv_params: Callable, seed: int) -> None:
    g.hidden().check(conv_params_random, conv_params, seed, name="cas aléatoires", weight=2)


# ---------------------------------------------------------------------------------------------
# conv_output_shape
# ---------------------------------------------------------------------------------------------


def _per_axis(size: Callable[[int, int, int, int], int]) -> Callable[..., tuple[int, int]]:
    def shape(h: int, w: int, k: Any, s: int, p: int) -> tuple[int, int]:
        kh, kw = _pair(k)
        return size(h, kh, s, p), size(w, kw, s, p)

    return shape


#: Classic wrong formulas: (code, message, what the bug computes).
SHAPE_BUGS: list[tuple[str, str, Callable[..., tuple[int, int]]]] = [
    (
        "conv_shape.padding",
        "le padding est oublié : il ajoute `padding` pixels de **chaque** côté (2·padding en tout).",
        _per_axis(lambda n, q, s, p: (n - q) // s + 1),
    ),
    (
        "conv_shape.padding",
        "le padding n'est compté qu'une fois : il s'ajoute des deux côtés, soit H + 2·padding.",
        _per_axis(lambda n, q, s, p: (n + p - q) // s + 1),
    ),
    (
        "conv_shape.stride",
        "la division par le stride est arrondie vers le haut : utilisez `//` (vers le bas), "
        "la dernière fenêtre doit tenir entièrement dans l'image.",
        _per_axis(lambda n, q, s, p: math.ceil((n + 2 * p - q) / s) + 1),
    ),
    (
        "conv_shape.stride",
        "la division par le stride est arrondie au plus proche : utilisez `//` (vers le bas).",
        _per_axis(lambda n, q, s, p: round((n + 2 * p - q) / s) + 1),
    ),
    (
        "conv_shape.stride",
        "le stride est ignoré : la fenêtre avance de `stride` pixels, divisez par le stride.",
        _per_axis(lambda n, q, s, p: n + 2 * p - q + 1),
    ),
    (
        "conv_shape.values",
        "il manque le `+ 1` : la première position de la fenêtre compte aussi.",
        _per_axis(lambda n, q, s, p: (n + 2 * p - q) // s),
    ),
    (
        "conv_shape.order",
        "la hauteur et la largeur sont inversées : renvoyez `(h_out, w_out)`.",
        lambda h, w, k, s, p: _arith_shape(h, w, k, s, p)[::-1],
    ),
]

#: Extra inputs that tell the bugs of SHAPE_BUGS apart (rectangular, strides 1–4, paddings 0–3).
SHAPE_PROBES = [
    (30, 17, 3, 1, 2),
    (31, 24, (4, 2), 3, 1),
    (20, 41, 5, 2, 0),
    (40, 33, 3, 4, 3),
    (9, 12, 2, 2, 0),
]


def _diagnose_shape(conv_output_shape: Callable, case: tuple) -> tuple[str, str] | None:
    """The known bug that the student's function implements on every probe, if any."""
    probes = [case, *SHAPE_PROBES]
    outputs = []
    for h, w, k, s, p in probes:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                out = conv_output_shape(h, w, k, stride=s, padding=p)
            outputs.append((int(out[0]), int(out[1])))
        except Exception:  # noqa: BLE001 - no diagnosis, the generic message stays
            return None
    for code, message, wrong in SHAPE_BUGS:
        if all(out == tuple(wrong(*probe)) for out, probe in zip(outputs, probes, strict=True)):
            return code, message
    return None


def _shape_case(
    conv_output_shape: Callable, h: int, w: int, k: Any, stride: int, padding: int, *, hidden: bool
) -> None:
    what = f"`conv_output_shape({h}, {w}, {k!r}, stride={stride}, padding={padding})`"
    got = call_student(
        conv_output_shape,
        h,
        w,
        k,
        stride=stride,
        padding=padding,
        what="conv_output_shape",
        code="conv_shape",
        forbidden=FORBIDDEN_SHAPE,
    )
    if got is None:
        fail("conv_shape.type", f"{what} renvoie `None` : avez-vous oublié le `return` ?")
    if not isinstance(got, tuple | list) or len(got) != 2:
        fail(
            "conv_shape.type", f"{what} doit renvoyer un couple `(h_out, w_out)` ; reçu `{got!r}`."
        )
    if not all(_is_int(v) for v in got):
        fail(
            "conv_shape.type",
            f"{what} renvoie {tuple(got)!r} : les tailles doivent être des entiers. La division "
            "entière `//` arrondit vers le bas, comme les frameworks.",
        )
    got = (int(got[0]), int(got[1]))
    expected = conv_shape(h, w, k, stride, padding, hidden=hidden)
    if got == expected:
        return
    diagnosis = _diagnose_shape(conv_output_shape, (h, w, k, stride, padding))
    if diagnosis is not None:
        fail(diagnosis[0], f"{what} renvoie {got} : {diagnosis[1]}")
    fail(
        "conv_shape.values", f"{what} renvoie {got}, ce n'est pas la bonne taille. {HINT_OUT_SIZE}"
    )


def conv_output_shape_basic(conv_output_shape: Callable) -> None:
    """Image 28×28, noyau 3×3, sans padding, stride 1."""
    _shape_case(conv_output_shape, 28, 28, 3, 1, 0, hidden=False)


def conv_output_shape_padding(conv_output_shape: Callable) -> None:
    """Padding 1 et 2 (stride 1), dont une image rectangulaire."""
    _shape_case(conv_output_shape, 28, 28, 5, 1, 2, hidden=False)
    _shape_case(conv_output_shape, 32, 20, 3, 1, 1, hidden=False)


def conv_output_shape_stride(conv_output_shape: Callable) -> None:
    """Stride 2 : entrée 224×224 (noyau 7, padding 3) et une taille qui ne tombe pas juste."""
    _shape_case(conv_output_shape, 224, 224, 7, 2, 3, hidden=False)
    _shape_case(conv_output_shape, 7, 8, 3, 2, 0, hidden=False)


def conv_output_shape_random(conv_output_shape: Callable, seed: int, n: int = 10) -> None:
    """Images rectangulaires, noyaux entiers ou (kh, kw), strides 1–4 et paddings 0–3 aléatoires."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        kh, kw = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        k: Any = (kh, kw) if i % 2 else kh
        kw = kw if i % 2 else kh
        h, w = kh + int(rng.integers(0, 40)), kw + int(rng.integers(0, 40))
        _shape_case(
            conv_output_shape,
            h,
            w,
            k,
            int(rng.integers(1, 5)),
            int(rng.integers(0, 4)),
            hidden=True,
        )


def public_conv_output_shape(conv_output_shape: Callable, points: float) -> Grader:
    g = Grader("conv-output-shape", points, "conv_output_shape")
    g.check(conv_output_shape_basic, conv_output_shape, name="sans padding, stride 1")
    g.check(conv_output_shape_padding, conv_output_shape, name="padding")
    g.check(conv_output_shape_stride, conv_output_shape, name="stride")
    return g


def hidden_conv_output_shape(g: Grader, conv_output_shape: Callable, seed: int) -> None:
    g.hidden().check(
        conv_output_shape_random, conv_output_shape, seed, name="cas aléatoires", weight=2
    )


# ---------------------------------------------------------------------------------------------
# compare_models
# ---------------------------------------------------------------------------------------------


def _compare_case(compare_models: Callable, h: int, w: int, c: int, *, hidden: bool) -> None:
    what = f"`compare_models({h}, {w}, {c})`"
    got = call_student(
        compare_models, h, w, c, what="compare_models", code="compare", forbidden=FORBIDDEN_COUNT
    )
    if not isinstance(got, dict):
        fail(
            "compare.type",
            f"{what} doit renvoyer un dictionnaire `{{'dense': ..., 'cnn': ...}}` ; reçu `{type(got).__name__}`.",
        )
    if set(got) != {"dense", "cnn"}:
        fail(
            "compare.keys",
            f"{what} : clés {sorted(map(str, got))}, attendu exactement `'dense'` et `'cnn'`.",
        )
    counts = {}
    for key in ("dense", "cnn"):
        if not _is_int(got[key]):
            fail("compare.type", f"{what}[{key!r}] doit être un entier ; reçu `{got[key]!r}`.")
        counts[key] = int(got[key])
    expected = count_models(h, w, c, hidden=hidden)
    if counts == expected:
        return
    if counts["dense"] == expected["cnn"] and counts["cnn"] == expected["dense"]:
        fail(
            "compare.swapped",
            f"{what} : les deux nombres sont échangés entre `'dense'` et `'cnn'`.",
        )
    if counts["dense"] != expected["dense"]:
        fail(
            "compare.dense",
            f"{what}['dense'] vaut {counts['dense']}, ce n'est pas le bon nombre. Le réseau dense "
            f"reçoit l'image aplatie (H × W × C entrées), puis Dense({DENSE_HIDDEN}) et Dense({N_CLASSES}), "
            "chacune avec ses biais.",
        )
    c1, c2 = CNN_CHANNELS
    convs = c1 * c * 9 + c1 + c2 * c1 * 9 + c2
    if counts["cnn"] == convs + c2 * h * w * N_CLASSES + N_CLASSES:
        fail(
            "compare.cnn_pooling",
            f"{what}['cnn'] vaut {counts['cnn']} : la tête dense reçoit toute la carte H × W, comme si "
            "les deux max-pooling 2×2 ne réduisaient pas la taille. Chaque pooling (stride 2) divise "
            "H et W par 2 (arrondi vers le bas) : utilisez `conv_output_shape(h, w, 2, stride=2)`.",
        )
    fail(
        "compare.cnn",
        f"{what}['cnn'] vaut {counts['cnn']}, ce n'est pas le bon nombre. Comptez les deux convolutions "
        f"(c → {c1}, {c1} → {c2}, noyaux 3×3, biais) et la couche finale, qui reçoit "
        f"{c2} × H' × W' valeurs où H', W' sont les tailles après les deux poolings (arrondis vers le bas).",
    )


def compare_models_mnist(compare_models: Callable) -> None:
    """Images 28×28×1 (type MNIST)."""
    _compare_case(compare_models, 28, 28, 1, hidden=False)


def compare_models_imagenet(compare_models: Callable) -> None:
    """Images 224×224×3 (type ImageNet)."""
    _compare_case(compare_models, 224, 224, 3, hidden=False)


def compare_models_random(compare_models: Callable, seed: int, n: int = 5) -> None:
    """Tailles impaires et rectangulaires, 1 à 4 canaux."""
    rng = np.random.default_rng(seed)
    cases = [(29, 31, 2), (32, 32, 3)]
    cases += [
        (int(rng.integers(8, 80)), int(rng.integers(8, 80)), int(rng.integers(1, 5)))
        for _ in range(n)
    ]
    for h, w, c in cases:
        _compare_case(compare_models, h, w, c, hidden=True)


def public_compare_models(compare_models: Callable, points: float) -> Grader:
    g = Grader("compare-models", points, "compare_models")
    g.check(compare_models_mnist, compare_models, name="28×28×1")
    g.check(compare_models_imagenet, compare_models, name="224×224×3")
    return g


def hidden_compare_models(g: Grader, compare_models: Callable, seed: int) -> None:
    g.hidden().check(
        compare_models_random, compare_models, seed, name="autres tailles d'image", weight=2
    )


# ---------------------------------------------------------------------------------------------
# equivariance_error: a conv feature map moves with the image, a dense layer's does not.
# ---------------------------------------------------------------------------------------------


def translate(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Circular translation (the notebook's `translate`): ``dy`` rows down, ``dx`` columns right."""
    return np.roll(image, shift=(dy, dx), axis=(0, 1))


def circular_conv(kernel: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A convolution layer with circular padding (output the size of the input)."""

    def layer(image: np.ndarray) -> np.ndarray:
        out = np.zeros(image.shape, dtype=np.float64)
        for u in range(kernel.shape[0]):
            for v in range(kernel.shape[1]):
                out += kernel[u, v] * np.roll(image, shift=(-u, -v), axis=(0, 1))
        return out

    return layer


def dense_layer(weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A dense layer from the flattened image to an output of the same shape."""
    return lambda image: (weights @ image.reshape(-1)).reshape(image.shape)


def _error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)))


def _equivariance_case(
    equivariance_error: Callable,
    layer: Callable,
    image: np.ndarray,
    dy: int,
    dx: int,
    *,
    label: str,
) -> None:
    what = (
        f"`equivariance_error` ({label}, image {image.shape[0]}×{image.shape[1]}, dy={dy}, dx={dx})"
    )
    got = _scalar(
        call_student(
            equivariance_error,
            layer,
            image,
            dy,
            dx,
            what="equivariance_error",
            code="equivariance",
            forbidden=FORBIDDEN_EQUIVARIANCE,
        ),
        what,
    )
    moved, out = layer(translate(image, dy, dx)), layer(image)
    expected = _error(moved, translate(out, dy, dx))
    if abs(got - expected) <= 1e-9 + 1e-7 * abs(expected):
        return
    diff = moved - translate(out, dy, dx)
    candidates = [
        (
            _error(moved, out),
            "equivariance.invariance",
            "vous comparez `layer(translate(image))` à `layer(image)` sans translater la sortie. "
            "L'équivariance compare à `translate(layer(image), dy, dx)`.",
        ),
        (
            _error(moved, translate(out, -dy, -dx)),
            "equivariance.direction",
            "la sortie est translatée dans le mauvais sens : utilisez les mêmes (dy, dx) que pour l'image.",
        ),
        (
            _error(layer(translate(image, dx, dy)), translate(out, dx, dy)),
            "equivariance.shift",
            "dy et dx semblent inversés : dy déplace les lignes (axe 0), dx les colonnes (axe 1).",
        ),
        (
            float(np.mean(np.abs(diff))),
            "equivariance.reduction",
            "vous renvoyez l'écart **moyen** : la fonction renvoie l'écart **maximal** `np.max(np.abs(...))`.",
        ),
        (
            float(np.max(diff)),
            "equivariance.reduction",
            "il manque la valeur absolue : `np.max(np.abs(a - b))`.",
        ),
    ]
    for wrong, code, message in candidates:
        if abs(got - wrong) <= 1e-9 + 1e-7 * abs(wrong) and abs(wrong - expected) > 1e-6:
            fail(code, f"{what} renvoie {fr_number(got, '.3g')} : {message}")
    fail(
        "equivariance.values",
        f"{what} renvoie {fr_number(got, '.3g')}, ce n'est pas l'écart attendu. Calculez "
        "`layer(translate(image, dy, dx))` et `translate(layer(image), dy, dx)`, puis le maximum "
        "de la valeur absolue de leur différence.",
    )


def _scalar(got: Any, what: str) -> float:
    if got is None:
        fail("equivariance.type", f"{what} renvoie `None` : avez-vous oublié le `return` ?")
    if isinstance(got, np.ndarray) and got.ndim == 0:
        got = got[()]
    if isinstance(got, bool | np.bool_) or not isinstance(
        got, int | float | np.integer | np.floating
    ):
        shape = f" de forme {got.shape}" if isinstance(got, np.ndarray) else ""
        fail(
            "equivariance.type",
            f"{what} doit renvoyer un nombre (l'écart maximal) ; reçu `{type(got).__name__}`{shape}. "
            "Réduisez le tableau des écarts avec `np.max`.",
        )
    value = float(got)
    if not math.isfinite(value):
        fail("equivariance.type", f"{what} renvoie {value} : un écart maximal est un nombre fini.")
    return value


def _conv_setup(
    seed: int, shape: tuple[int, int], ksize: tuple[int, int]
) -> tuple[Callable, np.ndarray]:
    rng = np.random.default_rng(seed)
    return circular_conv(rng.normal(size=ksize)), rng.normal(size=shape)


def _dense_setup(seed: int, shape: tuple[int, int]) -> tuple[Callable, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = shape[0] * shape[1]
    return dense_layer(rng.normal(size=(n, n)) / np.sqrt(n)), rng.normal(size=shape)


def equivariance_type(equivariance_error: Callable) -> None:
    """Renvoie un nombre réel (l'écart maximal), pas un tableau."""
    layer, image = _conv_setup(1, (5, 5), (3, 3))
    _scalar(
        call_student(
            equivariance_error, layer, image, 1, 2, what="equivariance_error", code="equivariance"
        ),
        "`equivariance_error`",
    )


def equivariance_conv(equivariance_error: Callable) -> None:
    """Couche convolutive (poids aléatoires) : l'écart doit être nul aux arrondis près."""
    layer, image = _conv_setup(2, (8, 8), (3, 3))
    _equivariance_case(equivariance_error, layer, image, 2, 1, label="couche convolutive")


def equivariance_dense(equivariance_error: Callable) -> None:
    """Couche dense (poids aléatoires) : l'écart est grand, et doit être le bon."""
    layer, image = _dense_setup(3, (6, 6))
    _equivariance_case(equivariance_error, layer, image, 1, 3, label="couche dense")


def equivariance_random(equivariance_error: Callable, seed: int, n: int = 4) -> None:
    """Images rectangulaires, translations négatives ou plus grandes que l'image, noyaux variés,
    convolution suivie d'une ReLU, couches denses."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (int(rng.integers(4, 10)), int(rng.integers(4, 10)))
        dy, dx = int(rng.integers(-12, 13)), int(rng.integers(-12, 13))
        if dy % shape[0] == dx % shape[1] == 0:
            dy += 1
        ksize = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        conv, image = _conv_setup(seed + i, shape, ksize)
        _equivariance_case(
            equivariance_error, conv, image, dy, dx, label=f"convolution {ksize[0]}×{ksize[1]}"
        )
        relu = lambda x, conv=conv: np.maximum(conv(x), 0.0)  # noqa: E731 - a layer is a callable
        _equivariance_case(equivariance_error, relu, image, dy, dx, label="convolution + ReLU")
        dense, image = _dense_setup(seed + 100 + i, shape)
        _equivariance_case(equivariance_error, dense, image, dy, dx, label="couche dense")


def public_equivariance_error(equivariance_error: Callable, points: float) -> Grader:
    g = Grader("equivariance", points, "equivariance_error")
    g.check(equivariance_type, equivariance_error, name="renvoie un nombre")
    g.check(equivariance_conv, equivariance_error, name="couche convolutive")
    g.check(equivariance_dense, equivariance_error, name="couche dense")
    return g


def hidden_equivariance_error(g: Grader, equivariance_error: Callable, seed: int) -> None:
    g.hidden().check(equivariance_random, equivariance_error, seed, name="cas aléatoires", weight=2)


# ---------------------------------------------------------------------------------------------
# Quiz: answers graded from salted digests stored only in the hidden tests.
# ---------------------------------------------------------------------------------------------


def normalise_answer(answer: Any) -> str:
    return str(answer).strip().lower()


def answer_digest(answer: Any, *, question: str, salt: str) -> str:
    """Salted SHA-256 of a normalised quiz answer (what a hidden quiz test stores)."""
    return hashlib.sha256(f"{salt}:{question}:{normalise_answer(answer)}".encode()).hexdigest()


def _expect_choice(answer: Any, question: str) -> str:
    if answer is None:
        raise NotAttempted(question)
    if not isinstance(answer, str) or normalise_answer(answer) not in QUIZ_CHOICES:
        fail(
            "quiz.format",
            f"`{question}` vaut `{answer!r}` : répondez par une seule lettre entre guillemets, "
            'parmi "a", "b", "c", "d" (par exemple `' + question + ' = "a"`).',
        )
    return normalise_answer(answer)


def quiz_format(answer: Any, question: str) -> None:
    """La réponse est l'une des lettres "a", "b", "c", "d"."""
    _expect_choice(answer, question)


def quiz_answer(answer: Any, question: str, salt: str, digest: str) -> None:
    """La réponse est la bonne (comparée à une empreinte SHA-256 salée)."""
    choice = _expect_choice(answer, question)
    if answer_digest(choice, question=question, salt=salt) != digest:
        fail(
            "quiz.wrong",
            f"`{question}` : ce n'est pas la bonne réponse. Relisez la partie du cours qui s'y rapporte.",
        )


def public_quiz(grade_id: str, answer: Any, points: float, question: str | None = None) -> Grader:
    """Visible part: the format only, worth nothing; the answer itself is graded by the hidden part."""
    question = question or "q" + grade_id.rsplit("-", 1)[-1]
    g = Grader(grade_id, points, f"question {question}")
    g.check(
        quiz_format,
        answer,
        question,
        name="format de la réponse (sa justesse est notée à la correction)",
        weight=0,
    )
    return g


def hidden_quiz(g: Grader, answer: Any, *, question: str, salt: str, digest: str) -> None:
    g.hidden().check(quiz_answer, answer, question, salt, digest, name="réponse")
