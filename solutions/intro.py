"""Reference answers of module 1, notebook `cnn_vs_dense` (parameter counts, shapes, quiz).

Pure Python and NumPy: the checks also count parameters with real ``torch.nn`` / Keras layers
and require every reference to agree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Correct quiz choices. Only salted SHA-256 digests of them reach the notebook's hidden tests
#: (see ``autograder.checks.intro.answer_digest``).
QUIZ_ANSWERS: dict[str, str] = {"q1": "c", "q2": "a", "q3": "d", "q4": "b"}

#: Salt mixed into each quiz digest (stored in the hidden part of the test cell too).
QUIZ_SALT = "cnn-course/m1-intro/quiz/2026"

#: The two models `compare_models` counts (the notebook states them in words).
DENSE_HIDDEN = 128
CNN_CHANNELS = (16, 32)
N_CLASSES = 10


def _pair(k: int | tuple[int, int]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))


def ref_dense_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """Weights ``n_in × n_out`` plus one bias per output neuron."""
    return n_in * n_out + (n_out if bias else 0)


def ref_conv_params(c_in: int, c_out: int, k: int | tuple[int, int], bias: bool = True) -> int:
    """``c_out`` filters of ``c_in × kh × kw`` weights, plus one bias per filter."""
    kh, kw = _pair(k)
    return c_out * c_in * kh * kw + (c_out if bias else 0)


def ref_conv_output_shape(
    h: int, w: int, k: int | tuple[int, int], stride: int = 1, padding: int = 0
) -> tuple[int, int]:
    """``(H + 2·padding − k) // stride + 1`` on each spatial axis."""
    kh, kw = _pair(k)
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


def ref_compare_models(h: int, w: int, c: int) -> dict[str, int]:
    """Parameter counts of the notebook's dense network and small CNN on ``h × w × c`` images.

    Dense: flatten → Dense(128) → ReLU → Dense(10).
    CNN: Conv(c→16, 3×3, padding 1) → ReLU → MaxPool 2×2 → Conv(16→32, 3×3, padding 1) → ReLU
    → MaxPool 2×2 → flatten → Dense(10).
    """
    dense = ref_dense_params(h * w * c, DENSE_HIDDEN) + ref_dense_params(DENSE_HIDDEN, N_CLASSES)
    c1, c2 = CNN_CHANNELS
    cnn = ref_conv_params(c, c1, 3) + ref_conv_params(c1, c2, 3)
    hh, ww = h, w
    for _ in range(2):
        hh, ww = ref_conv_output_shape(hh, ww, 3, 1, 1)  # the conv keeps the size
        hh, ww = ref_conv_output_shape(hh, ww, 2, 2, 0)  # the 2×2 pooling halves it (floor)
    cnn += ref_dense_params(c2 * hh * ww, N_CLASSES)
    return {"dense": dense, "cnn": cnn}


def ref_translate(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Circular translation: ``dy`` rows down, ``dx`` columns right."""
    return np.roll(image, shift=(dy, dx), axis=(0, 1))


def ref_equivariance_error(
    layer: Callable[[np.ndarray], np.ndarray], image: np.ndarray, dy: int, dx: int
) -> float:
    """``max |layer(translate(image)) − translate(layer(image))|``."""
    a = layer(ref_translate(image, dy, dx))
    b = ref_translate(layer(image), dy, dx)
    return float(np.max(np.abs(a - b)))
