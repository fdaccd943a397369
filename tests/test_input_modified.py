"""Inputs are the caller's: every exercise whose function takes arrays or tensors rejects a
function that returns the right answer but modifies its input in place (``*.input_modified``).

The common call path (``autograder.checks._core.call_student``) passes NumPy arrays as copies and
compares them with the caller's after the call; tensors are compared with a snapshot. Mutants:
the source notebooks' solutions (what a full-marks student writes), then one of their array
arguments changed in place. Valid alternatives: the solutions, a version that works on its own copy, and batch norm's running statistics updated in
place (PyTorch's convention, allowed by the check).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from autograder.checks import activations, conv, intro, normalization, pooling


def bump(value) -> None:
    """Change an array or tensor in place, whatever its dtype."""
    if isinstance(value, np.ndarray):
        value += 1
        return
    import torch

    with torch.no_grad():
        value.add_(1)


def in_place(ref, index: int = 0):
    """``ref``'s right answer, then its argument ``index`` changed in place."""

    @functools.wraps(ref)
    def mutant(*args, **kwargs):
        out = ref(*args, **kwargs)
        bump(args[index])
        return out

    return mutant


def on_a_copy(ref, index: int = 0):
    """Valid: modifies only its own copy of the argument."""

    @functools.wraps(ref)
    def valid(*args, **kwargs):
        args = list(args)
        args[index] = args[index].copy()
        out = ref(*args, **kwargs)
        bump(args[index])
        return out

    return valid


def notebook_functions(*notebooks: str, only: tuple[str, ...] | None = None) -> dict:
    """What a full-marks student defines: the source notebooks' imports and solution cells, run."""
    import nbformat

    from autograder.grading import pipeline

    namespace: dict = {}
    for rel in notebooks:
        nb = nbformat.read(str(pipeline.COURSE_ROOT / "source" / rel), as_version=4)
        solutions = pipeline.solution_sources(pipeline.COURSE_ROOT / "source" / rel)
        for cell in nb.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            wanted = gid in only if only else gid in ("imports", "layers") or gid in solutions
            if wanted:  # no setup cell, no demo or plot
                exec(solutions.get(gid, cell.source), namespace)  # noqa: S102 - the course's own code
    return namespace


STUDENT = notebook_functions(
    "m1-intro/cnn_vs_dense.ipynb", "m3-fundamentals/convolution.ipynb",
    "m3-fundamentals/activations_pooling.ipynb", "m3-fundamentals/normalization.ipynb",
)

#: exercise: (public check, function name in the notebook, index of the argument to modify)
NUMPY_EXERCISES = {
    "correlate1d": (conv.public_correlate1d, "correlate1d", 0),
    "convolve1d": (conv.public_convolve1d, "convolve1d", 1),
    "correlate2d": (conv.public_correlate2d, "correlate2d", 0),
    "conv2d_forward": (conv.public_conv2d_forward, "conv2d_forward", 1),
    "conv2d_backward": (conv.public_conv2d_backward, "conv2d_backward", 1),
    "relu": (activations.public_relu, "relu", 0),
    "relu_backward": (activations.public_relu_backward, "relu_backward", 0),
    "leaky_relu": (activations.public_leaky_relu, "leaky_relu", 0),
    "leaky_relu_backward": (activations.public_leaky_relu_backward, "leaky_relu_backward", 1),
    "sigmoid": (activations.public_sigmoid, "sigmoid", 0),
    "sigmoid_backward": (activations.public_sigmoid_backward, "sigmoid_backward", 0),
    "tanh": (activations.public_tanh, "tanh", 0),
    "tanh_backward": (activations.public_tanh_backward, "tanh_backward", 1),
    "softmax": (activations.public_softmax, "softmax", 0),
    "softmax_backward": (activations.public_softmax_backward, "softmax_backward", 1),
    "max_pool2d_forward": (pooling.public_max_pool2d_forward, "max_pool2d_forward", 0),
    "avg_pool2d_forward": (pooling.public_avg_pool2d_forward, "avg_pool2d_forward", 0),
    "max_pool2d_backward": (pooling.public_max_pool2d_backward, "max_pool2d_backward", 1),
    "avg_pool2d_backward": (pooling.public_avg_pool2d_backward, "avg_pool2d_backward", 0),
    "batchnorm_train": (normalization.public_batchnorm_train, "batchnorm_forward", 0),
    "batchnorm_eval": (normalization.public_batchnorm_eval, "batchnorm_forward", 1),
    "batchnorm_backward": (normalization.public_batchnorm_backward, "batchnorm_backward", 1),
    "equivariance_error": (intro.public_equivariance_error, "equivariance_error", 1),
}


def codes(public, fn) -> list[str]:
    g = public(fn, points=1)
    return [r.code for r in g.results if not r.passed]


@pytest.mark.parametrize("name", NUMPY_EXERCISES)
def test_a_function_that_modifies_its_input_loses_the_check(name):
    public, fn, index = NUMPY_EXERCISES[name]
    got = codes(public, in_place(STUDENT[fn], index))
    assert got and all(c.endswith(".input_modified") for c in got), got


@pytest.mark.parametrize("name", NUMPY_EXERCISES)
def test_the_reference_and_a_function_working_on_its_own_copy_pass(name):
    public, fn, index = NUMPY_EXERCISES[name]
    assert codes(public, STUDENT[fn]) == []
    assert codes(public, on_a_copy(STUDENT[fn], index)) == []


def test_the_message_names_the_argument_and_says_what_to_do():
    g = conv.public_conv2d_forward(in_place(STUDENT["conv2d_forward"], 1), points=1)
    failed = [r for r in g.results if not r.passed]
    assert failed[0].code == "conv.input_modified"
    assert "`conv2d_forward` modifie en place son argument `w`" in failed[0].message
    assert "copie" in failed[0].message


def test_batchnorm_running_statistics_may_be_updated_in_place():
    """PyTorch's own batch norm updates running_mean / running_var in place: allowed."""

    def pytorch_style(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=True):
        out, new_mean, new_var = STUDENT["batchnorm_forward"](
            x, gamma, beta, running_mean, running_var, momentum=momentum, eps=eps, training=training
        )
        running_mean[...] = new_mean
        running_var[...] = new_var
        return out, running_mean, running_var

    assert codes(normalization.public_batchnorm_train, pytorch_style) == []
    assert codes(normalization.public_batchnorm_eval, pytorch_style) == []
    # ... but not x
    assert all(c.endswith(".input_modified") for c in codes(normalization.public_batchnorm_train,
                                                             in_place(pytorch_style, 0)))


@pytest.mark.torch
def test_a_torch_function_that_modifies_its_tensor_input_loses_the_check():
    from autograder.checks import setup, training
    from solutions import setup as ref_setup

    predict = notebook_functions("m5-pytorch/cnn_torch.ipynb", only=("imports", "predict"))["predict"]
    got = codes(training.public_predict, in_place(predict, 1))
    assert got and all(c.endswith(".input_modified") for c in got), got
    assert codes(training.public_predict, predict) == []
    got = codes(setup.public_to_device, in_place(ref_setup.ref_to_device, 0))
    assert "to_device.input_modified" in got, got
    assert codes(setup.public_to_device, ref_setup.ref_to_device) == []


@pytest.mark.tf
def test_keras_preprocess_that_modifies_its_images_loses_the_check():
    from autograder.checks import keras_models
    from solutions import keras_cnn

    got = codes(keras_models.public_preprocess, in_place(keras_cnn.ref_preprocess, 0))
    assert got and all(c.endswith(".input_modified") for c in got), got
    assert codes(keras_models.public_preprocess, keras_cnn.ref_preprocess) == []
