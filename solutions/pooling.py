"""Reference 2-D max and average pooling, forward and backward (NumPy, NCHW).

Conventions (PyTorch's): square window ``kernel_size``, ``stride`` defaults to ``kernel_size``,
``padding`` adds ``padding`` cells on each side (``-inf`` for max pooling, zeros *counted in the
average* for average pooling, like ``count_include_pad=True``), output size
``(H + 2·padding − kernel_size) // stride + 1``.
"""

from __future__ import annotations

import numpy as np


def _out_size(size: int, k: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - k) // stride + 1


def _pad(x: np.ndarray, padding: int, value: float) -> np.ndarray:
    p = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    return np.pad(x, p, constant_values=value)


def ref_max_pool2d_forward(x: np.ndarray, kernel_size: int, stride: int | None = None, padding: int = 0) -> np.ndarray:
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    ho, wo = _out_size(h, kernel_size, stride, padding), _out_size(w, kernel_size, stride, padding)
    xp = _pad(x, padding, -np.inf)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * stride : i * stride + kernel_size, j * stride : j * stride + kernel_size]
            out[:, :, i, j] = win.max(axis=(2, 3))
    return out


def ref_max_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: int, stride: int | None = None, padding: int = 0
) -> np.ndarray:
    """The gradient of each window goes to its (first) maximum; overlapping windows add up."""
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    k = kernel_size
    xp = _pad(x, padding, -np.inf)
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, x))
    ni, ci = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            hs, ws = i * stride, j * stride
            win = xp[:, :, hs : hs + k, ws : ws + k].reshape(n, c, k * k)
            arg = win.argmax(axis=2)
            np.add.at(dxp, (ni, ci, hs + arg // k, ws + arg % k), dout[:, :, i, j])
    return dxp[:, :, padding : padding + h, padding : padding + w]


def ref_avg_pool2d_forward(x: np.ndarray, kernel_size: int, stride: int | None = None, padding: int = 0) -> np.ndarray:
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    ho, wo = _out_size(h, kernel_size, stride, padding), _out_size(w, kernel_size, stride, padding)
    xp = _pad(x, padding, 0.0)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * stride : i * stride + kernel_size, j * stride : j * stride + kernel_size]
            out[:, :, i, j] = win.mean(axis=(2, 3))
    return out


def ref_avg_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: int, stride: int | None = None, padding: int = 0
) -> np.ndarray:
    """Each window spreads ``dout / kernel_size²`` over its cells; overlaps add up."""
    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    k = kernel_size
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=np.result_type(dout, x))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dxp[:, :, i * stride : i * stride + k, j * stride : j * stride + k] += dout[:, :, i, j, None, None] / (k * k)
    return dxp[:, :, padding : padding + h, padding : padding + w]
