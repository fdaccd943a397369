"""Reference batch normalisation for NCHW batches (PyTorch's conventions).

Training: statistics over (N, H, W) per channel; the *biased* variance normalises; running
statistics follow ``running = (1 − momentum)·running + momentum·batch`` with the *unbiased*
variance for ``running_var`` (``torch.nn.BatchNorm2d``). Evaluation: running statistics, which
are returned unchanged.
"""

from __future__ import annotations

import numpy as np

AXES = (0, 2, 3)


def _c(v: np.ndarray) -> np.ndarray:
    return v[None, :, None, None]


def ref_batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    training: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``(out, new_running_mean, new_running_var)``."""
    if training:
        mean = x.mean(axis=AXES)
        var = x.var(axis=AXES)
        m = x.size // x.shape[1]
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    xhat = (x - _c(mean)) / np.sqrt(_c(var) + eps)
    return _c(gamma) * xhat + _c(beta), new_mean, new_var


def ref_batchnorm_backward(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dgamma, dbeta)`` of the training-mode forward pass."""
    mean = x.mean(axis=AXES, keepdims=True)
    inv_std = 1.0 / np.sqrt(x.var(axis=AXES, keepdims=True) + eps)
    xhat = (x - mean) * inv_std
    dbeta = dout.sum(axis=AXES)
    dgamma = (dout * xhat).sum(axis=AXES)
    dxhat = dout * _c(gamma)
    dx = inv_std * (dxhat - dxhat.mean(axis=AXES, keepdims=True) - xhat * (dxhat * xhat).mean(axis=AXES, keepdims=True))
    return dx, dgamma, dbeta
