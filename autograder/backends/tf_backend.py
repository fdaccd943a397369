"""TensorFlow adapter: converts between the course's NCHW and TensorFlow's NHWC."""

from __future__ import annotations

import os

# TensorFlow's C++ logger writes to stderr on import, which zeroes an nbgrader test cell.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def to_numpy(t: Any) -> np.ndarray:
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    return np.asarray(t)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 3, 1, 2))


def oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))


def _conv(x, w, b, stride: int, padding: int):
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    out = tf.nn.conv2d(x, w, strides=stride, padding=pads if padding else "VALID")
    return out + b if b is not None else out


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    """``tf.nn.conv2d`` on NCHW NumPy arrays (OIHW weights), result in NCHW."""
    out = _conv(
        tf.constant(nchw_to_nhwc(x)),
        tf.constant(oihw_to_hwio(w)),
        None if b is None else tf.constant(np.asarray(b)),
        stride,
        padding,
    )
    return nhwc_to_nchw(out.numpy())


def conv2d_grads(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``sum(conv2d(x, w, b) * dout)`` by ``tf.GradientTape``, in NCHW/OIHW."""
    xt = tf.Variable(nchw_to_nhwc(x))
    wt = tf.Variable(oihw_to_hwio(w))
    bt = tf.Variable(b)
    with tf.GradientTape() as tape:
        out = _conv(xt, wt, bt, stride, padding)
        loss = tf.reduce_sum(out * tf.constant(nchw_to_nhwc(dout)))
    dx, dw, db = tape.gradient(loss, [xt, wt, bt])
    return nhwc_to_nchw(dx.numpy()), np.transpose(dw.numpy(), (3, 2, 0, 1)), db.numpy()
