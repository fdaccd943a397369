"""Reference activations and their derivatives (NumPy). Hidden checks and tests compare to these.

Backward functions take the upstream gradient ``dout`` (same shape as the output) and return
``dx = dout * f'(x)``; ``softmax_backward`` is the Jacobian-vector product computed from the
softmax *output* ``y``.
"""

from __future__ import annotations

import numpy as np


def ref_relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` element-wise."""
    return np.maximum(x, 0)


def ref_relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dout`` where ``x > 0``, 0 elsewhere (PyTorch's convention at 0)."""
    return dout * (x > 0)


def ref_leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise."""
    return np.where(x > 0, x, negative_slope * x)


def ref_leaky_relu_backward(dout: np.ndarray, x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    return dout * np.where(x > 0, 1.0, negative_slope)


def ref_sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large ``|x|`` (no overflow on either side)."""
    x = np.asarray(x, dtype=np.result_type(x, np.float64))
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def ref_sigmoid_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    s = ref_sigmoid(x)
    return dout * s * (1.0 - s)


def ref_tanh(x: np.ndarray) -> np.ndarray:
    """``tanh(x) = 2·σ(2x) − 1``, stable for large ``|x|``."""
    return 2.0 * ref_sigmoid(2.0 * np.asarray(x)) - 1.0


def ref_tanh_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    t = ref_tanh(x)
    return dout * (1.0 - t * t)


def ref_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, shifted by the max of each slice (no overflow)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def ref_softmax_backward(dout: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Jacobian-vector product of softmax: ``y * (dout - sum(dout * y, axis))``."""
    return y * (dout - np.sum(dout * y, axis=axis, keepdims=True))
