"""PyTorch adapter (NCHW, like the course's NumPy convention)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    """``torch.nn.functional.conv2d`` on NumPy arrays (NCHW input, OIHW weights)."""
    bias = None if b is None else torch.from_numpy(np.asarray(b))
    out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), bias, stride=stride, padding=padding)
    return out.numpy()


def conv2d_grads(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``sum(conv2d(x, w, b) * dout)`` with respect to ``x``, ``w`` and ``b``."""
    xt = torch.from_numpy(x.copy()).requires_grad_()
    wt = torch.from_numpy(w.copy()).requires_grad_()
    bt = torch.from_numpy(b.copy()).requires_grad_()
    out = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    out.backward(torch.from_numpy(dout))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()
