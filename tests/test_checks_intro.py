"""Unit tests of autograder.checks.intro (module 1): mutants fail with their code, valid code passes.

Each mutant is a plausible student bug; the full list of outcomes of its grader (visible then
hidden checks, ``"ok"`` for a pass) is pinned, so a mutant proves both that the check catches
the bug with the right code and that the other checks still give partial credit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from autograder.checks import intro
from solutions import intro as ref

SEED = 2026


def outcomes(public, hidden, fn) -> list[str]:
    g = public(fn, points=2)
    hidden(g, fn, SEED)
    return [r.code if not r.passed else "ok" for r in g.results]


def score(public, hidden, fn) -> float:
    g = public(fn, points=2)
    hidden(g, fn, SEED)
    return g.score()


# --------------------------------------------------------------------------------- dense_params


def dense_formula(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def dense_factored(n_in, n_out, bias=True):
    return (n_in + int(bias)) * n_out


def dense_numpy(n_in, n_out, bias=True):
    shapes = [(n_out, n_in)] + ([(n_out,)] if bias else [])
    return sum(np.prod(s) for s in shapes)  # a NumPy integer: accepted


@pytest.mark.parametrize("fn", [dense_formula, dense_factored, dense_numpy])
def test_dense_params_valid(fn):
    assert outcomes(intro.public_dense_params, intro.hidden_dense_params, fn) == ["ok"] * 4


DENSE_MUTANTS = {
    "no-bias": (
        lambda n_in, n_out, bias=True: n_in * n_out,
        ["count.dense_bias", "count.dense_bias", "ok", "count.dense_bias"],
    ),
    "bias-flag-ignored": (
        lambda n_in, n_out, bias=True: n_in * n_out + n_out,
        ["ok", "ok", "count.dense_bias", "count.dense_bias"],
    ),
    "bias-per-input": (
        lambda n_in, n_out, bias=True: n_in * n_out + (n_in if bias else 0),
        ["count.dense_bias", "count.dense_bias", "ok", "count.dense_bias"],
    ),
    "default-no-bias": (
        lambda n_in, n_out, bias=False: n_in * n_out + (n_out if bias else 0),
        ["count.dense_bias", "ok", "ok", "ok"],
    ),
    "sum-not-product": (
        lambda n_in, n_out, bias=True: n_in + n_out + (n_out if bias else 0),
        ["count.dense_values"] * 4,
    ),
    "true-division": (
        lambda n_in, n_out, bias=True: n_in * n_out / 1 + (n_out if bias else 0),
        ["count.type"] * 4,
    ),
    "forgot-return": (lambda n_in, n_out, bias=True: None, ["count.type"] * 4),
}


@pytest.mark.parametrize("name", list(DENSE_MUTANTS))
def test_dense_params_mutants(name):
    fn, expected = DENSE_MUTANTS[name]
    assert outcomes(intro.public_dense_params, intro.hidden_dense_params, fn) == expected


def test_dense_params_framework_counts_earn_nothing():
    def with_torch(n_in, n_out, bias=True):
        import torch

        return sum(
            p.numel() for p in torch.nn.Linear(n_in, n_out, bias=bias, device="meta").parameters()
        )

    assert (
        outcomes(intro.public_dense_params, intro.hidden_dense_params, with_torch)
        == ["count.framework_used"] * 4
    )


def test_dense_params_not_attempted_scores_zero():
    def stub(n_in, n_out, bias=True):
        raise NotImplementedError()

    assert (
        outcomes(intro.public_dense_params, intro.hidden_dense_params, stub)
        == ["not_attempted"] * 4
    )
    assert score(intro.public_dense_params, intro.hidden_dense_params, stub) == 0.0


# --------------------------------------------------------------------------------- conv_params


def conv_formula(c_in, c_out, k, bias=True):
    kh, kw = (k, k) if isinstance(k, int) else k
    return c_out * c_in * kh * kw + (c_out if bias else 0)


def conv_loop(c_in, c_out, k, bias=True):
    size = [k, k] if isinstance(k, int) else list(k)
    per_filter = c_in
    for s in size:
        per_filter *= s
    return sum(per_filter + (1 if bias else 0) for _ in range(c_out))


@pytest.mark.parametrize("fn", [conv_formula, conv_loop])
def test_conv_params_valid(fn):
    assert outcomes(intro.public_conv_params, intro.hidden_conv_params, fn) == ["ok"] * 5


def _conv_no_channels(c_in, c_out, k, bias=True):
    kh, kw = (k, k) if isinstance(k, int) else k
    return c_out * kh * kw + (c_out if bias else 0)


CONV_MUTANTS = {
    "channels-forgotten": (
        _conv_no_channels,
        [
            "ok",
            "count.conv_channels",
            "count.conv_channels",
            "count.conv_channels",
            "count.conv_channels",
        ],
    ),
    "no-bias": (
        lambda c_in, c_out, k, bias=True: conv_formula(c_in, c_out, k, False),
        ["count.conv_bias", "count.conv_bias", "ok", "count.conv_bias", "count.conv_bias"],
    ),
    "int-kernel-only": (
        lambda c_in, c_out, k, bias=True: c_out * c_in * k * k + (c_out if bias else 0),
        ["ok", "ok", "ok", "count.conv_kernel", "count.conv_kernel"],
    ),
    "square-of-first-side": (
        lambda c_in, c_out, k, bias=True: conv_formula(
            c_in, c_out, k if isinstance(k, int) else k[0], bias
        ),
        ["ok", "ok", "ok", "count.conv_kernel", "count.conv_kernel"],
    ),
    "bias-per-input-channel": (
        lambda c_in, c_out, k, bias=True: (
            conv_formula(c_in, c_out, k, False) + (c_in if bias else 0)
        ),
        ["count.conv_bias", "count.conv_bias", "ok", "count.conv_bias", "count.conv_bias"],
    ),
}


@pytest.mark.parametrize("name", list(CONV_MUTANTS))
def test_conv_params_mutants(name):
    fn, expected = CONV_MUTANTS[name]
    assert outcomes(intro.public_conv_params, intro.hidden_conv_params, fn) == expected


# --------------------------------------------------------------------------------- conv_output_shape


def shape_formula(h, w, k, stride=1, padding=0):
    kh, kw = (k, k) if isinstance(k, int) else k
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


def shape_floor(h, w, k, stride=1, padding=0):
    kh, kw = (k, k) if isinstance(k, int) else k
    return [
        math.floor((h + 2 * padding - kh) / stride) + 1,
        int((w + 2 * padding - kw) / stride) + 1,
    ]


def shape_count_windows(h, w, k, stride=1, padding=0):
    """Slide the window and count the positions where it fits."""
    kh, kw = (k, k) if isinstance(k, int) else k
    rows = len(range(0, h + 2 * padding - kh + 1, stride))
    cols = len(range(0, w + 2 * padding - kw + 1, stride))
    return rows, cols


@pytest.mark.parametrize("fn", [shape_formula, shape_floor, shape_count_windows])
def test_conv_output_shape_valid(fn):
    assert (
        outcomes(intro.public_conv_output_shape, intro.hidden_conv_output_shape, fn) == ["ok"] * 4
    )


def _shape(fn):
    def student(h, w, k, stride=1, padding=0):
        kh, kw = (k, k) if isinstance(k, int) else k
        return fn(h, kh, stride, padding), fn(w, kw, stride, padding)

    return student


SHAPE_MUTANTS = {
    "padding-forgotten": (
        _shape(lambda n, k, s, p: (n - k) // s + 1),
        ["ok", "conv_shape.padding", "conv_shape.padding", "conv_shape.padding"],
    ),
    "padding-once": (
        _shape(lambda n, k, s, p: (n + p - k) // s + 1),
        ["ok", "conv_shape.padding", "conv_shape.padding", "conv_shape.padding"],
    ),
    "ceil": (
        _shape(lambda n, k, s, p: math.ceil((n + 2 * p - k) / s) + 1),
        ["ok", "ok", "conv_shape.stride", "conv_shape.stride"],
    ),
    "stride-ignored": (
        _shape(lambda n, k, s, p: n + 2 * p - k + 1),
        ["ok", "ok", "conv_shape.stride", "conv_shape.stride"],
    ),
    "swapped": (
        lambda h, w, k, stride=1, padding=0: shape_formula(h, w, k, stride, padding)[::-1],
        ["ok", "conv_shape.order", "ok", "conv_shape.order"],
    ),
    "plus-one-forgotten": (
        _shape(lambda n, k, s, p: (n + 2 * p - k) // s),
        ["conv_shape.values"] * 4,
    ),
    "true-division": (_shape(lambda n, k, s, p: (n + 2 * p - k) / s + 1), ["conv_shape.type"] * 4),
}


@pytest.mark.parametrize("name", list(SHAPE_MUTANTS))
def test_conv_output_shape_mutants(name):
    fn, expected = SHAPE_MUTANTS[name]
    assert outcomes(intro.public_conv_output_shape, intro.hidden_conv_output_shape, fn) == expected


def test_conv_output_shape_message_shows_formula_not_hidden_values():
    g = intro.public_conv_output_shape(SHAPE_MUTANTS["padding-once"][0], points=2)
    intro.hidden_conv_output_shape(g, SHAPE_MUTANTS["padding-once"][0], SEED)
    hidden = [r for r in g.results if r.hidden][0]
    assert "2·padding" in hidden.message
    assert "attendu" not in hidden.message


# --------------------------------------------------------------------------------- compare_models


def compare_with_helpers(h, w, c):
    """The intended solution: reuse the three counting functions."""
    dense = dense_formula(h * w * c, 128) + dense_formula(128, 10)
    cnn = conv_formula(c, 16, 3) + conv_formula(16, 32, 3)
    hh, ww = shape_formula(h, w, 3, padding=1)
    hh, ww = shape_formula(hh, ww, 2, stride=2)
    hh, ww = shape_formula(hh, ww, 3, padding=1)
    hh, ww = shape_formula(hh, ww, 2, stride=2)
    return {"dense": dense, "cnn": cnn + dense_formula(32 * hh * ww, 10)}


def compare_by_layers(h, w, c):
    """A list of layers and a loop, integer division by 4 for the two poolings."""
    layers = [("conv", c, 16), ("conv", 16, 32)]
    cnn = sum(cout * cin * 9 + cout for _, cin, cout in layers)
    cnn += 32 * (h // 4) * (w // 4) * 10 + 10
    return {"cnn": cnn, "dense": (h * w * c + 1) * 128 + 129 * 10}


@pytest.mark.parametrize("fn", [compare_with_helpers, compare_by_layers])
def test_compare_models_valid(fn):
    assert outcomes(intro.public_compare_models, intro.hidden_compare_models, fn) == ["ok"] * 3


def _compare_variant(
    *, c_fixed=None, pool=lambda n: n // 2, square=False, no_pool=False, swap=False
):
    def student(h, w, c):
        c = c_fixed or c
        w_cnn = h if square else w
        dense = (h * w * c + 1) * 128 + 129 * 10
        hh, ww = (h, w_cnn) if no_pool else (pool(pool(h)), pool(pool(w_cnn)))
        cnn = 16 * c * 9 + 16 + 32 * 16 * 9 + 32 + 32 * hh * ww * 10 + 10
        return {"dense": cnn, "cnn": dense} if swap else {"dense": dense, "cnn": cnn}

    return student


COMPARE_MUTANTS = {
    "one-channel-hard-coded": (
        _compare_variant(c_fixed=1),
        ["ok", "compare.dense", "compare.dense"],
    ),
    "ceil-pooling": (_compare_variant(pool=lambda n: (n + 1) // 2), ["ok", "ok", "compare.cnn"]),
    "square-images-assumed": (_compare_variant(square=True), ["ok", "ok", "compare.cnn"]),
    "no-pooling": (_compare_variant(no_pool=True), ["compare.cnn_pooling"] * 3),
    "keys-swapped": (_compare_variant(swap=True), ["compare.swapped"] * 3),
    "wrong-keys": (lambda h, w, c: {"mlp": 1, "cnn": 2}, ["compare.keys"] * 3),
    "tuple": (lambda h, w, c: (1, 2), ["compare.type"] * 3),
}


@pytest.mark.parametrize("name", list(COMPARE_MUTANTS))
def test_compare_models_mutants(name):
    fn, expected = COMPARE_MUTANTS[name]
    assert outcomes(intro.public_compare_models, intro.hidden_compare_models, fn) == expected


def test_compare_models_references_agree_on_real_layers():
    """The expected counts come from torch.nn layers (meta device) and agree with arithmetic."""
    for h, w, c in [(28, 28, 1), (224, 224, 3), (29, 31, 2)]:
        assert intro.count_models(h, w, c, hidden=True) == ref.ref_compare_models(h, w, c)


@pytest.mark.tf
def test_keras_reference_agrees_with_torch(monkeypatch):
    """Where PyTorch is missing, Keras layers count the same parameters and shapes."""
    pytest.importorskip("keras")
    monkeypatch.setattr(intro, "_torch", lambda: None)
    assert intro.count_models(29, 31, 2) == ref.ref_compare_models(29, 31, 2)
    assert intro.count_conv(3, 8, (3, 5), False) == ref.ref_conv_params(3, 8, (3, 5), False)
    assert intro.count_dense(100, 7) == ref.ref_dense_params(100, 7)
    assert intro.conv_shape(29, 31, (3, 2), 2, 1) == ref.ref_conv_output_shape(29, 31, (3, 2), 2, 1)


# --------------------------------------------------------------------------------- equivariance_error

translate = ref.ref_translate  # the notebook gives students `translate`


def equivariance_direct(layer, image, dy, dx):
    return float(np.max(np.abs(layer(translate(image, dy, dx)) - translate(layer(image), dy, dx))))


def equivariance_loop(layer, image, dy, dx):
    """Loops over pixels, returns a NumPy scalar."""
    a, b = layer(translate(image, dy, dx)), translate(layer(image), dy, dx)
    worst = np.float64(0.0)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            worst = max(worst, abs(a[i, j] - b[i, j]))
    return worst


def equivariance_inverse(layer, image, dy, dx):
    """Undo the shift on the translated output instead: same maximum."""
    return np.abs(translate(layer(translate(image, dy, dx)), -dy, -dx) - layer(image)).max()


@pytest.mark.parametrize("fn", [equivariance_direct, equivariance_loop, equivariance_inverse])
def test_equivariance_valid(fn):
    assert (
        outcomes(intro.public_equivariance_error, intro.hidden_equivariance_error, fn) == ["ok"] * 4
    )


EQUIVARIANCE_MUTANTS = {
    "invariance": (
        lambda layer, image, dy, dx: np.max(np.abs(layer(translate(image, dy, dx)) - layer(image))),
        ["ok", "equivariance.invariance", "equivariance.invariance", "equivariance.invariance"],
    ),
    "opposite-direction": (
        lambda layer, image, dy, dx: np.max(
            np.abs(layer(translate(image, dy, dx)) - translate(layer(image), -dy, -dx))
        ),
        ["ok", "equivariance.direction", "equivariance.direction", "equivariance.direction"],
    ),
    "mean-not-max": (
        lambda layer, image, dy, dx: np.mean(
            np.abs(layer(translate(image, dy, dx)) - translate(layer(image), dy, dx))
        ),
        ["ok", "ok", "equivariance.reduction", "equivariance.reduction"],
    ),
    "no-abs": (
        lambda layer, image, dy, dx: np.max(
            layer(translate(image, dy, dx)) - translate(layer(image), dy, dx)
        ),
        ["ok", "ok", "equivariance.reduction", "equivariance.reduction"],
    ),
    "dy-dx-swapped": (
        lambda layer, image, dy, dx: equivariance_direct(layer, image, dx, dy),
        ["ok", "ok", "equivariance.shift", "equivariance.shift"],
    ),
    "array-returned": (
        lambda layer, image, dy, dx: np.abs(
            layer(translate(image, dy, dx)) - translate(layer(image), dy, dx)
        ),
        ["equivariance.type"] * 4,
    ),
}


@pytest.mark.parametrize("name", list(EQUIVARIANCE_MUTANTS))
def test_equivariance_mutants(name):
    fn, expected = EQUIVARIANCE_MUTANTS[name]
    assert (
        outcomes(intro.public_equivariance_error, intro.hidden_equivariance_error, fn) == expected
    )


def test_equivariance_layers_behave_as_the_notebook_says():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(7, 9))
    conv = intro.circular_conv(rng.normal(size=(3, 3)))
    dense = intro.dense_layer(rng.normal(size=(63, 63)))
    assert ref.ref_equivariance_error(conv, image, 3, -2) < 1e-12
    assert ref.ref_equivariance_error(dense, image, 3, -2) > 1.0


# --------------------------------------------------------------------------------- quiz


def quiz_outcomes(answer, correct="c"):
    digest = intro.answer_digest(correct, question="q1", salt="salt")
    g = intro.public_quiz("quiz-1", answer, points=1)
    visible = g.score()
    intro.hidden_quiz(g, answer, question="q1", salt="salt", digest=digest)
    return visible, g.score(), [r.code if not r.passed else "ok" for r in g.results]


@pytest.mark.parametrize("answer", ["c", "C", " c "])
def test_quiz_right_answer_in_any_case(answer):
    assert quiz_outcomes(answer) == (0.0, 1.0, ["ok", "ok"])


def test_quiz_visible_part_gives_no_point_and_no_hint():
    """A well-formed but wrong answer looks exactly like a right one before grading."""
    right, wrong = quiz_outcomes("c"), quiz_outcomes("a")
    assert right[0] == wrong[0] == 0.0
    assert wrong[1:] == (0.0, ["ok", "quiz.wrong"])


@pytest.mark.parametrize("answer", ["b)", "e", 2, "ab", ["c"]])
def test_quiz_format_errors(answer):
    assert quiz_outcomes(answer) == (0.0, 0.0, ["quiz.format", "quiz.format"])


def test_quiz_unanswered_is_not_attempted():
    assert quiz_outcomes(None) == (0.0, 0.0, ["not_attempted", "not_attempted"])


def test_quiz_digest_depends_on_question_and_salt():
    d = intro.answer_digest("a", question="q1", salt="s")
    assert d != intro.answer_digest("a", question="q2", salt="s")
    assert d != intro.answer_digest("a", question="q1", salt="t")
    assert len(d) == 64 and "a" != d


def test_source_notebook_quiz_digests_match_the_reference_answers(repo_root):
    """The hidden tests hold digests of solutions.intro.QUIZ_ANSWERS, and nothing else."""
    import json
    import re

    nb = json.loads(
        (repo_root / "source" / "m1-intro" / "cnn_vs_dense.ipynb").read_text(encoding="utf-8")
    )
    found = {}
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        m = re.search(r'question="(q\d)", salt="([^"]+)", digest="([0-9a-f]{64})"', src)
        if m:
            found[m.group(1)] = (m.group(2), m.group(3))
    assert set(found) == set(ref.QUIZ_ANSWERS)
    for question, (salt, digest) in found.items():
        assert (
            intro.answer_digest(ref.QUIZ_ANSWERS[question], question=question, salt=salt) == digest
        )
        others = [c for c in intro.QUIZ_CHOICES if c != ref.QUIZ_ANSWERS[question]]
        assert all(intro.answer_digest(o, question=question, salt=salt) != digest for o in others)


NO_FRAMEWORK = r"""
import json, sys
for name in ("torch", "tensorflow", "keras", "solutions"):
    sys.modules[name] = None  # a student machine without frameworks nor staff references
from pathlib import Path
from autograder.checks import intro
from autograder.grading.pipeline import solution_sources

ns = {}
exec("import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')", ns)
sources = solution_sources(Path("source/m1-intro/cnn_vs_dense.ipynb"))
for source in sources.values():
    exec(source, ns)
exec("translate = lambda image, dy, dx: np.roll(image, shift=(dy, dx), axis=(0, 1))", ns)
out = {}
for name in ("dense_params", "conv_params", "conv_output_shape", "compare_models", "equivariance_error"):
    g = getattr(intro, "public_" + name)(ns[name], points=1)
    out[name] = [g.fraction, g.codes]
print(json.dumps(out))
"""


def test_visible_checks_need_no_framework(repo_root):
    """On a machine with neither PyTorch nor TensorFlow, the visible checks fall back to
    arithmetic and the notebook's own solution passes them all."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", NO_FRAMEWORK],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == {name: [1.0, []] for name in results} and len(results) == 5
