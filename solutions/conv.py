"""Reference convolutions (NumPy, NCHW). Hidden checks and tests compare students to these."""

from __future__ import annotations

import numpy as np


def ref_correlate1d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid 1-D cross-correlation: ``out[i] = sum_j x[i + j] * k[j]``."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    n = x.shape[0] - k.shape[0] + 1
    return np.array([np.dot(x[i : i + k.shape[0]], k) for i in range(n)])


def ref_convolve1d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid 1-D convolution: a cross-correlation with the flipped kernel."""
    return ref_correlate1d(x, np.asarray(k)[::-1])


def ref_correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D cross-correlation of a single-channel image."""
    image = np.asarray(image, dtype=np.float64)
    kh, kw = kernel.shape
    windows = np.lib.stride_tricks.sliding_window_view(image, (kh, kw))
    return np.einsum("ijkl,kl->ij", windows, kernel)


def _out_size(size: int, k: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - k) // stride + 1


def ref_conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Batched multi-channel cross-correlation, like ``torch.nn.functional.conv2d``.

    Args:
        x: input (N, C, H, W). w: weights (F, C, KH, KW). b: bias (F,).
    Returns:
        (N, F, H_out, W_out) with ``H_out = (H + 2·padding − KH) // stride + 1``.
    """
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = _out_size(h, kh, stride, padding), _out_size(wd, kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n, f, ho, wo), dtype=np.result_type(x, w, b))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + b[None, :, None, None]


def ref_conv2d_backward(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of ``sum(conv2d_forward(x, w, b) * dout)``."""
    f, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(ho):
        for j in range(wo):
            hs, ws = i * stride, j * stride
            patch = xp[:, :, hs : hs + kh, ws : ws + kw]
            g = dout[:, :, i, j]  # (N, F)
            dw += np.tensordot(g, patch, axes=([0], [0]))
            dxp[:, :, hs : hs + kh, ws : ws + kw] += np.tensordot(g, w, axes=([1], [0]))
    h, wd = x.shape[2], x.shape[3]
    dx = dxp[:, :, padding : padding + h, padding : padding + wd]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
