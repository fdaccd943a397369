"""Unit tests of autograder.checks.conv: every check fails on its mutants, passes on valid code.

Mutants are plausible student bugs; each must fail with the code that names its bug. Valid
alternatives (loops, im2col, different but correct structure) must pass every check.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import conv
from solutions import conv as ref

SEED = 12345


def codes_of(public, hidden, fn) -> list[str]:
    g = public(fn, points=1)
    hidden(g, fn, SEED)
    return [r.code if not r.passed else "ok" for r in g.results]


# ------------------------------------------------------------------------------ valid code


def backward_variant(dout, x, w, b, stride, padding, *, dw_stride=True, crop=True, flip_dx=False):
    """The reference loop with one switch per classic bug."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    wk = w[:, :, ::-1, ::-1] if flip_dx else w
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            hs, ws = i * stride, j * stride
            g = dout[:, :, i, j]
            a, c = (hs, ws) if dw_stride else (i, j)
            dw += np.tensordot(g, xp[:, :, a : a + kh, c : c + kw], axes=([0], [0]))
            dxp[:, :, hs : hs + kh, ws : ws + kw] += np.tensordot(g, wk, axes=([1], [0]))
    h, wd = x.shape[2:]
    dx = dxp[:, :, padding : padding + h, padding : padding + wd] if crop else dxp
    return dx, dw, dout.sum(axis=(0, 2, 3))


def correlate1d_loop(x, k):
    out = []
    for i in range(len(x) - len(k) + 1):
        s = 0.0
        for j in range(len(k)):
            s += x[i + j] * k[j]
        out.append(s)
    return np.array(out)


def correlate1d_windows(x, k):
    return np.lib.stride_tricks.sliding_window_view(np.asarray(x, float), len(k)) @ np.asarray(k, float)


def convolve1d_loop(x, k):
    m = len(k)
    return np.array([sum(x[i + j] * k[m - 1 - j] for j in range(m)) for i in range(len(x) - m + 1)])


def correlate2d_loops(image, kernel):
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i : i + kh, j : j + kw] * kernel)
    return out


def conv2d_naive(x, w, b, stride=1, padding=0):
    """Six nested loops: slow but obviously right."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, f, ho, wo))
    for ni in range(n):
        for fi in range(f):
            for i in range(ho):
                for j in range(wo):
                    window = xp[ni, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[ni, fi, i, j] = np.sum(window * w[fi]) + b[fi]
    return out


def _im2col(x, kh, kw, stride, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * kh * kw), ho, wo


def conv2d_im2col(x, w, b, stride=1, padding=0):
    """Vectorised: all windows in a matrix, one matrix product."""
    f, c, kh, kw = w.shape
    cols, ho, wo = _im2col(x, kh, kw, stride, padding)
    out = cols @ w.reshape(f, -1).T + b
    return out.transpose(0, 3, 1, 2)


def conv2d_backward_im2col(dout, x, w, b, stride=1, padding=0):
    f, c, kh, kw = w.shape
    n, _, h, wd = x.shape
    cols, ho, wo = _im2col(x, kh, kw, stride, padding)
    g = dout.transpose(0, 2, 3, 1)  # (N, Ho, Wo, F)
    dw = np.einsum("nijf,nijk->fk", g, cols).reshape(w.shape)
    dcols = (g @ w.reshape(f, -1)).reshape(n, ho, wo, c, kh, kw)
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    for i in range(ho):
        for j in range(wo):
            dxp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw] += dcols[:, i, j]
    return dxp[:, :, padding : padding + h, padding : padding + wd], dw, g.sum(axis=(0, 1, 2))


@pytest.mark.parametrize("fn", [correlate1d_loop, correlate1d_windows])
def test_correlate1d_valid(fn):
    assert codes_of(conv.public_correlate1d, conv.hidden_correlate1d, fn) == ["ok", "ok"]


@pytest.mark.parametrize("fn", [convolve1d_loop, lambda x, k: correlate1d_windows(x, np.asarray(k)[::-1])])
def test_convolve1d_valid(fn):
    assert codes_of(conv.public_convolve1d, conv.hidden_convolve1d, fn) == ["ok", "ok"]


def correlate2d_shifts(image, kernel):
    """Vectorised: loop over kernel offsets, add shifted slices."""
    kh, kw = kernel.shape
    ho, wo = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    out = np.zeros((ho, wo))
    for u in range(kh):
        for v in range(kw):
            out += kernel[u, v] * image[u : u + ho, v : v + wo]
    return out


@pytest.mark.parametrize("fn", [correlate2d_loops, correlate2d_shifts])
def test_correlate2d_valid(fn):
    assert codes_of(conv.public_correlate2d, conv.hidden_correlate2d, fn) == ["ok", "ok"]


@pytest.mark.parametrize("fn", [conv2d_naive, conv2d_im2col])
def test_conv2d_forward_valid(fn):
    assert codes_of(conv.public_conv2d_forward, conv.hidden_conv2d_forward, fn) == ["ok"] * 4


def test_conv2d_forward_float32_input_kept_float64_check():
    """A student who returns float32 for float64 input loses precision: dtype failure."""
    codes = codes_of(conv.public_conv2d_forward, conv.hidden_conv2d_forward, lambda *a, **k: conv2d_im2col(*a, **k).astype(np.float32))
    assert set(codes) == {"conv.dtype"}


@pytest.mark.parametrize("fn", [backward_variant, conv2d_backward_im2col])
def test_conv2d_backward_valid(fn):
    def student(dout, x, w, b, stride=1, padding=0):
        return fn(dout, x, w, b, stride, padding)

    assert codes_of(conv.public_conv2d_backward, conv.hidden_conv2d_backward, student) == ["ok"] * 4


# ------------------------------------------------------------------------------ mutants


def test_stub_is_not_attempted_and_scores_zero():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    g = conv.public_conv2d_forward(stub, points=4)
    conv.hidden_conv2d_forward(g, stub, SEED)
    assert g.score() == 0.0 and type(g.score()) is float
    assert set(g.codes) == {"not_attempted"}
    assert "Non tenté" in g.report()


def test_convolve1d_without_flip():
    assert codes_of(conv.public_convolve1d, conv.hidden_convolve1d, correlate1d_loop) == ["conv1d.flip"] * 2


def test_correlate1d_with_flip():
    assert codes_of(conv.public_correlate1d, conv.hidden_correlate1d, convolve1d_loop) == ["conv1d.flip"] * 2


def test_correlate1d_full_mode_shape():
    assert codes_of(conv.public_correlate1d, conv.hidden_correlate1d, lambda x, k: np.correlate(x, k, "full")) == [
        "conv1d.framework_used"
    ] * 2

    def full_loop(x, k):
        xp = np.pad(np.asarray(x, float), len(k) - 1)
        return correlate1d_loop(xp, k)

    assert codes_of(conv.public_correlate1d, conv.hidden_correlate1d, full_loop) == ["conv1d.shape"] * 2


def test_correlate1d_off_by_one_range_hidden_only_when_kernel_len_1():
    """range(n - m) drops the last output: shape failure in both checks."""

    def short(x, k):
        return np.array([np.dot(x[i : i + len(k)], k) for i in range(len(x) - len(k))])

    assert codes_of(conv.public_correlate1d, conv.hidden_correlate1d, short) == ["conv1d.shape"] * 2


def test_correlate1d_using_numpy_is_framework_used():
    codes = codes_of(conv.public_convolve1d, conv.hidden_convolve1d, lambda x, k: np.convolve(x, k, "valid"))
    assert codes == ["conv1d.framework_used"] * 2


def test_correlate2d_mutants():
    from scipy import signal

    flipped = codes_of(conv.public_correlate2d, conv.hidden_correlate2d, lambda im, k: correlate2d_loops(im, k[::-1, ::-1]))
    assert flipped == ["conv_filter.flip"] * 2
    transposed = codes_of(conv.public_correlate2d, conv.hidden_correlate2d, lambda im, k: correlate2d_loops(im, k.T))
    assert transposed == ["conv_filter.values", "conv_filter.shape"]
    same = codes_of(conv.public_correlate2d, conv.hidden_correlate2d, lambda im, k: correlate2d_loops(np.pad(im, 1), k))
    assert same == ["conv_filter.shape"] * 2
    cheat = codes_of(conv.public_correlate2d, conv.hidden_correlate2d, lambda im, k: signal.correlate2d(im, k, "valid"))
    assert cheat == ["conv_filter.framework_used"] * 2


def _forward_mutant(change):
    def student(x, w, b, stride=1, padding=0):
        return change(x, w, b, stride, padding)

    return student


FORWARD_MUTANTS = {
    # name: (implementation, expected codes for [basic, stride, padding, random])
    "flipped kernel": (
        lambda x, w, b, s, p: conv2d_naive(x, w[:, :, ::-1, ::-1], b, s, p),
        ["conv.flip", "conv.flip", "conv.flip", "conv.flip"],
    ),
    "missing bias": (
        lambda x, w, b, s, p: conv2d_naive(x, w, np.zeros_like(b), s, p),
        ["conv.bias", "conv.bias", "conv.bias", "conv.bias"],
    ),
    "padding off by one (pads padding+1)": (
        lambda x, w, b, s, p: conv2d_naive(x, w, b, s, p + 1 if p else 0),
        ["ok", "ok", "conv.padding", "conv.padding"],
    ),
    "padding on one side only": (
        lambda x, w, b, s, p: conv2d_naive(np.pad(x, ((0, 0), (0, 0), (p, 0), (p, 0))), w, b, s, 0),
        ["ok", "ok", "conv.padding", "conv.padding"],
    ),
    "stride ignored in windows": (
        lambda x, w, b, s, p: conv2d_naive(x, w, b, 1, p)[:, :, : (x.shape[2] + 2 * p - w.shape[2]) // s + 1, : (x.shape[3] + 2 * p - w.shape[3]) // s + 1],
        ["ok", "conv.stride", "ok", "conv.stride"],
    ),
    "ceil-like stride formula": (
        lambda x, w, b, s, p: conv2d_naive(x, w, b, s, p)[:, :, : (x.shape[2] + 2 * p - w.shape[2] + 1) // s, : (x.shape[3] + 2 * p - w.shape[3] + 1) // s],
        ["conv.shape", "conv.stride", "conv.padding", "conv.stride"],
    ),
    "channels-last output (NHWC)": (
        lambda x, w, b, s, p: conv2d_naive(x, w, b, s, p).transpose(0, 2, 3, 1),
        ["conv.layout", "conv.layout", "conv.layout", "conv.layout"],
    ),
    "integer output array": (
        lambda x, w, b, s, p: conv2d_naive(x, w, b, s, p).astype(int),
        ["conv.dtype"] * 4,
    ),
    "sum of all biases": (
        lambda x, w, b, s, p: conv2d_naive(x, w, np.zeros_like(b), s, p) + b.sum(),
        ["conv.bias"] * 4,
    ),
}


@pytest.mark.parametrize("name", list(FORWARD_MUTANTS))
def test_conv2d_forward_mutants(name):
    impl, expected = FORWARD_MUTANTS[name]
    codes = codes_of(conv.public_conv2d_forward, conv.hidden_conv2d_forward, _forward_mutant(impl))
    if name == "ceil-like stride formula":
        # The wrong formula may agree with the right one on some shapes; it must fail the
        # stride check and the hidden random cases, and never pass everything.
        assert codes[1] == "conv.stride" and codes[3] in {"conv.stride", "conv.padding", "conv.shape"}
        return
    assert codes == expected


def test_conv2d_forward_calling_torch_gets_no_credit():
    import torch
    import torch.nn.functional as F

    def cheat(x, w, b, stride=1, padding=0):
        return F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=padding).numpy()

    g = conv.public_conv2d_forward(cheat, points=4)
    conv.hidden_conv2d_forward(g, cheat, SEED)
    assert g.codes == ["conv.framework_used"] * 4 and g.score() == 0.0
    assert "torch.nn.functional.conv2d" in g.results[0].message


def test_conv2d_forward_importing_tf_inside_is_caught():
    def cheat(x, w, b, stride=1, padding=0):
        import tensorflow as tf

        out = tf.nn.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), stride, [[0, 0], [padding] * 2, [padding] * 2, [0, 0]])
        return out.numpy().transpose(0, 3, 1, 2) + b[None, :, None, None]

    g = conv.public_conv2d_forward(cheat, points=4)
    assert g.codes[0] == "conv.framework_used"


def test_conv2d_forward_student_exception_is_reported():
    def broken(x, w, b, stride=1, padding=0):
        return x @ w  # shapes do not align

    g = conv.public_conv2d_forward(broken, points=4)
    assert g.codes == ["conv.exception"] * 3
    assert "ValueError" in g.results[0].message


def test_conv2d_forward_none_return():
    g = conv.public_conv2d_forward(lambda *a, **k: None, points=4)
    assert g.codes == ["conv.type"] * 3 and "return" in g.results[0].message


def _backward(change):
    def student(dout, x, w, b, stride=1, padding=0):
        return change(dout, x, w, b, stride, padding)

    return student


BACKWARD_MUTANTS = {
    "db not summed over the batch": (
        lambda d, x, w, b, s, p: (*backward_variant(d, x, w, b, s, p)[:2], d.sum(axis=(2, 3))),
        "conv_backward.shape",
    ),
    "db averaged": (
        lambda d, x, w, b, s, p: (*backward_variant(d, x, w, b, s, p)[:2], d.mean(axis=(0, 2, 3))),
        "conv_backward.db",
    ),
    "dw ignores the stride": (lambda *a: backward_variant(*a, dw_stride=False), "conv_backward.dw"),
    "dx keeps the padding": (lambda *a: backward_variant(*a, crop=False), "conv_backward.shape"),
    "dx with flipped weights": (lambda *a: backward_variant(*a, flip_dx=True), "conv_backward.dx"),
    "returns a list of two": (lambda d, x, w, b, s, p: list(backward_variant(d, x, w, b, s, p)[:2]), "conv_backward.type"),
}


@pytest.mark.parametrize("name", list(BACKWARD_MUTANTS))
def test_conv2d_backward_mutants(name):
    impl, code = BACKWARD_MUTANTS[name]
    codes = codes_of(conv.public_conv2d_backward, conv.hidden_conv2d_backward, _backward(impl))
    failing = [c for c in codes if c != "ok"]
    assert failing and set(failing) == {code}, codes
    # The hidden random cases always catch it (visible checks may miss stride-only bugs).
    assert codes[2] == code


def test_conv2d_backward_autograd_cheat():
    import torch
    import torch.nn.functional as F

    def cheat(dout, x, w, b, stride=1, padding=0):
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        (F.conv2d(xt, wt, bt, stride=stride, padding=padding) * torch.tensor(dout)).sum().backward()
        return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()

    codes = codes_of(conv.public_conv2d_backward, conv.hidden_conv2d_backward, cheat)
    assert codes == ["conv_backward.framework_used"] * 4


def test_scores_are_plain_floats_and_partial():
    g = conv.public_conv2d_forward(_forward_mutant(FORWARD_MUTANTS["padding off by one (pads padding+1)"][0]), points=4)
    conv.hidden_conv2d_forward(g, _forward_mutant(FORWARD_MUTANTS["padding off by one (pads padding+1)"][0]), SEED)
    score = g.score()
    assert type(score) is float and 0 < score < 4
    # weights: basic 1 + stride 1 + padding 1 + random 2 → 2 of 5 passed.
    assert score == pytest.approx(4 * 2 / 5)


def test_hidden_messages_never_show_expected_values():
    """Failure text shows shapes, counts and positions, not the values of a hidden case."""
    impl = FORWARD_MUTANTS["flipped kernel"][0]
    g = conv.public_conv2d_forward(_forward_mutant(impl), points=4)
    conv.hidden_conv2d_forward(g, _forward_mutant(impl), SEED)
    case = conv.random_conv_cases(SEED, 8)[0]
    x, w, b = case.arrays(SEED)
    expected = ref.ref_conv2d_forward(x, w, b, case.stride, case.padding)
    text = g.report()
    for v in expected.ravel()[:20]:
        assert f"{v:.4f}" not in text and f"{v:.2e}" not in text


def test_direct_reference_to_forbidden_op_is_caught():
    """`from torch.nn.functional import conv2d` keeps a reference the attribute patch misses."""
    import torch
    from torch.nn.functional import conv2d as direct

    def cheat(x, w, b, stride=1, padding=0):
        return direct(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=padding).numpy()

    g = conv.public_conv2d_forward(cheat, points=4)
    assert g.codes == ["conv.framework_used"] * 3


def test_direct_reference_to_solutions_is_caught():
    from solutions.conv import ref_convolve1d

    assert codes_of(conv.public_convolve1d, conv.hidden_convolve1d, ref_convolve1d) == ["conv1d.framework_used"] * 2


def test_nn_conv2d_module_inside_is_caught():
    import torch

    def cheat(x, w, b, stride=1, padding=0):
        layer = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding).double()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
            return layer(torch.from_numpy(x)).numpy()

    g = conv.public_conv2d_forward(cheat, points=4)
    assert g.codes == ["conv.framework_used"] * 3
