"""Unit tests of autograder.checks.pooling: every check fails on its mutants, passes on valid code.

Valid alternatives: the loop over output positions (with a switch per classic bug, for the
mutants) and a vectorised version over all windows (``sliding_window_view``).
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import pooling

pytestmark = [pytest.mark.torch, pytest.mark.tf]

SEED = 777


def codes_of(name: str, fn) -> list[str]:
    g = getattr(pooling, f"public_{name}")(fn, points=2)
    getattr(pooling, f"hidden_{name}")(g, fn, SEED)
    return [r.code if not r.passed else "ok" for r in g.results]


# ------------------------------------------------------------------------------ implementations


def pool_loop(x, kernel_size, stride=None, padding=0, *, kind="max", pad_value=None, size="floor",
              stride_default=None, count_include_pad=True, divide=True):
    """Forward pooling by loops over output positions, one switch per classic bug."""
    k = kernel_size
    stride = (k if stride_default is None else stride_default) if stride is None else stride
    n, c, h, w = x.shape
    if pad_value is None:
        pad_value = -np.inf if kind == "max" else 0.0
    if size == "floor":
        ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    elif size == "no padding":
        ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    else:  # ceil
        ho, wo = -(-(h + 2 * padding - k) // stride) + 1, -(-(w + 2 * padding - k) // stride) + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2), constant_values=pad_value)
    ones = np.pad(np.ones((h, w)), padding)
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            if kind == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                total = win.sum(axis=(2, 3))
                count = k * k if count_include_pad else ones[i * stride : i * stride + k, j * stride : j * stride + k].sum()
                out[:, :, i, j] = total / count if divide else total
    return out


def pool_windows(x, kernel_size, stride=None, padding=0, *, kind="max"):
    """Vectorised: all windows at once, one reduction."""
    stride = kernel_size if stride is None else stride
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2), constant_values=-np.inf if kind == "max" else 0.0)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kernel_size, kernel_size), axis=(2, 3))[:, :, ::stride, ::stride]
    return win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5))


def pool_backward_loop(dout, x, kernel_size, stride=None, padding=0, *, kind="max", route="argmax",
                       accumulate=True, crop=True, divide=True):
    """Backward pooling by loops, one switch per classic bug."""
    k = kernel_size
    stride = k if stride is None else stride
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2), constant_values=-np.inf)
    dxp = np.zeros(xp.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            hs, ws = i * stride, j * stride
            win = xp[:, :, hs : hs + k, ws : ws + k]
            g = dout[:, :, i, j][:, :, None, None]
            if kind == "max" and route == "argmax":
                contrib = (win == win.max(axis=(2, 3), keepdims=True)) * g
            else:
                contrib = np.broadcast_to(g / (k * k) if divide else g, win.shape)
            if accumulate:
                dxp[:, :, hs : hs + k, ws : ws + k] += contrib
            else:
                dxp[:, :, hs : hs + k, ws : ws + k] = contrib
    return dxp[:, :, padding : padding + h, padding : padding + w] if crop else dxp


def max_backward_argmax_index(dout, x, kernel_size, stride=None, padding=0):
    """Vectorised routing with argmax indices and np.add.at."""
    k = kernel_size
    stride = k if stride is None else stride
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    ho, wo = win.shape[2:4]
    arg = win.reshape(n, c, ho, wo, k * k).argmax(axis=-1)
    ni, ci, ii, jj = np.meshgrid(np.arange(n), np.arange(c), np.arange(ho), np.arange(wo), indexing="ij")
    dxp = np.zeros(xp.shape)
    np.add.at(dxp, (ni, ci, ii * stride + arg // k, jj * stride + arg % k), dout)
    return dxp[:, :, padding : padding + h, padding : padding + w]


def avg_backward_shifts(dout, x, kernel_size, stride=None, padding=0):
    """Vectorised over output positions: one strided slice per window offset."""
    k = kernel_size
    stride = k if stride is None else stride
    n, c, h, w = x.shape
    ho, wo = dout.shape[2:]
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding))
    for u in range(k):
        for v in range(k):
            dxp[:, :, u : u + stride * (ho - 1) + 1 : stride, v : v + stride * (wo - 1) + 1 : stride] += dout / (k * k)
    return dxp[:, :, padding : padding + h, padding : padding + w]


def _fwd(kind, **switches):
    def student(x, kernel_size, stride=None, padding=0):
        return pool_loop(x, kernel_size, stride, padding, kind=kind, **switches)

    return student


def _bwd(kind, **switches):
    def student(dout, x, kernel_size, stride=None, padding=0):
        return pool_backward_loop(dout, x, kernel_size, stride, padding, kind=kind, **switches)

    return student


VALID = {
    "max_pool2d_forward": [_fwd("max"), lambda x, kernel_size, stride=None, padding=0: pool_windows(x, kernel_size, stride, padding, kind="max")],
    "avg_pool2d_forward": [_fwd("avg"), lambda x, kernel_size, stride=None, padding=0: pool_windows(x, kernel_size, stride, padding, kind="avg")],
    "max_pool2d_backward": [_bwd("max"), max_backward_argmax_index],
    "avg_pool2d_backward": [_bwd("avg"), avg_backward_shifts],
}


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, fns in VALID.items() for i in range(len(fns))])
def test_valid_implementations_pass_every_check(name, index):
    codes = codes_of(name, VALID[name][index])
    assert set(codes) == {"ok"}, codes


# ------------------------------------------------------------------------------ mutants


def _torch_max_pool(x, kernel_size, stride=None, padding=0):
    import torch
    import torch.nn.functional as F

    return F.max_pool2d(torch.from_numpy(x), kernel_size, stride, padding).numpy()


def _no_stride_default(kind):
    """`stride=None` treated as 1 (the scaffold line deleted)."""

    def student(x, kernel_size, stride=None, padding=0):
        return pool_loop(x, kernel_size, stride or 1, padding, kind=kind)

    return student


def _stride_ignored(kind):
    """Windows always step by kernel_size, whatever the stride (the output size is right)."""

    def student(x, kernel_size, stride=None, padding=0):
        s = kernel_size if stride is None else stride
        full = pool_loop(x, kernel_size, kernel_size, padding, kind=kind)
        ho = (x.shape[2] + 2 * padding - kernel_size) // s + 1
        wo = (x.shape[3] + 2 * padding - kernel_size) // s + 1
        out = np.zeros((*x.shape[:2], ho, wo))
        h, w = min(ho, full.shape[2]), min(wo, full.shape[3])
        out[:, :, :h, :w] = full[:, :, :h, :w]
        return out

    return student


# name: {mutant: (implementation, expected codes [visible…, hidden…])}
MUTANTS = {
    "max_pool2d_forward": {
        "zero padding instead of -inf": (_fwd("max", pad_value=0.0), ["ok", "ok", "maxpool.padding", "ok", "maxpool.padding", "ok"]),
        "output size ignores padding": (
            _fwd("max", size="no padding"),
            ["ok", "ok", "maxpool.shape", "maxpool.shape", "maxpool.shape", "ok"],
        ),
        "ceil output size": (_fwd("max", size="ceil"), ["ok", "maxpool.shape", "ok", "maxpool.shape", "ok", "maxpool.shape"]),
        "stride ignored": (_stride_ignored("max"), ["ok", "maxpool.stride", "maxpool.stride", "maxpool.stride", "maxpool.stride", "ok"]),
        "stride defaults to 1": (_no_stride_default("max"), ["ok", "ok", "ok", "maxpool.shape", "ok", "maxpool.shape"]),
        "average instead of max": (_fwd("avg"), ["maxpool.values"] * 6),
        "torch inside": (_torch_max_pool, ["maxpool.framework_used"] * 6),
    },
    "avg_pool2d_forward": {
        "padding not counted in the mean": (
            _fwd("avg", count_include_pad=False),
            ["ok", "ok", "avgpool.padding", "avgpool.padding", "ok"],
        ),
        "sum instead of mean": (_fwd("avg", divide=False), ["avgpool.scale"] * 5),
        "output size ignores padding": (_fwd("avg", size="no padding"), ["ok", "ok", "avgpool.shape", "avgpool.shape", "ok"]),
        "stride ignored": (_stride_ignored("avg"), ["ok", "avgpool.stride", "avgpool.stride", "avgpool.stride", "ok"]),
        "max instead of average": (_fwd("max"), ["avgpool.values"] * 3 + ["avgpool.values", "avgpool.values"]),
    },
    "max_pool2d_backward": {
        "gradient to every window element": (_bwd("max", route="all", divide=False), ["maxpool_backward.routing"] * 5),
        "overwrite instead of add": (
            _bwd("max", accumulate=False),
            ["ok", "maxpool_backward.overlap", "ok", "maxpool_backward.overlap", "maxpool_backward.values"],
        ),
        "padding not cropped": (_bwd("max", crop=False), ["ok", "ok"] + ["maxpool_backward.shape"] * 3),
        "gradient spread as for the mean": (_bwd("max", route="all"), ["maxpool_backward.routing"] * 5),
    },
    "avg_pool2d_backward": {
        "not divided by the window size": (_bwd("avg", divide=False), ["avgpool_backward.scale"] * 5),
        "overwrite instead of add": (
            _bwd("avg", accumulate=False),
            ["ok", "avgpool_backward.overlap", "ok", "avgpool_backward.overlap", "avgpool_backward.values"],
        ),
        "padding not cropped": (_bwd("avg", crop=False), ["ok", "ok"] + ["avgpool_backward.shape"] * 3),
        "gradient to the maximum only": (_bwd("max"), ["avgpool_backward.routing"] * 5),
    },
}


@pytest.mark.parametrize(("name", "mutant"), [(n, m) for n, muts in MUTANTS.items() for m in muts])
def test_mutant_fails_with_its_code(name, mutant):
    impl, expected = MUTANTS[name][mutant]
    assert codes_of(name, impl) == expected


def test_every_graded_function_has_three_mutants():
    assert set(MUTANTS) == set(VALID)
    assert all(len(m) >= 3 for m in MUTANTS.values())


def test_stub_is_not_attempted_and_scores_zero():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for name in MUTANTS:
        g = getattr(pooling, f"public_{name}")(stub, points=2)
        getattr(pooling, f"hidden_{name}")(g, stub, SEED)
        assert g.score() == 0.0 and set(g.codes) == {"not_attempted"}


def test_nhwc_layout_is_a_shape_failure_with_the_formula():
    def nhwc(x, kernel_size, stride=None, padding=0):
        return pool_windows(x, kernel_size, stride, padding).transpose(0, 2, 3, 1)

    g = pooling.public_max_pool2d_forward(nhwc, points=2)
    assert g.codes == ["maxpool.shape"] * 3
    assert "(H + 2·padding − kernel_size) // stride + 1" in g.results[0].message


def test_visible_checks_run_without_solutions(monkeypatch):
    monkeypatch.setattr(pooling, "_solutions", lambda: None)
    for name, fns in VALID.items():
        g = getattr(pooling, f"public_{name}")(fns[1], points=2)
        assert g.codes == []


def test_visible_checks_with_tensorflow_only(monkeypatch):
    """Without PyTorch, visible checks compare to tf.nn pooling (NHWC, padding added by hand)."""
    monkeypatch.setattr(pooling, "available", lambda framework: framework == "tf")
    for name, fns in VALID.items():
        assert getattr(pooling, f"public_{name}")(fns[0], points=2).codes == [], name
    g = pooling.public_max_pool2d_backward(MUTANTS["max_pool2d_backward"]["gradient to every window element"][0], points=2)
    assert g.codes == ["maxpool_backward.routing"] * 3
