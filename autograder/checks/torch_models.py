"""Checks for module 5 (`m5-pytorch/cnn_torch`): data pipeline, a CNN to a spec, a from-scratch
convolution module and the trained model's accuracy.

* ``data.*`` / ``eval.shuffle``: `make_loaders` returns torchvision's Fashion-MNIST through
  ``ToTensor`` + ``Normalize`` in two ``DataLoader``; images are compared with the raw pixels
  normalised here, the samplers' types tell whether a loader shuffles.
* ``cnn.*``: the spec is checked on what the forward pass *does*: a
  :class:`~torch.overrides.TorchFunctionMode` records every torch function it calls (modules and
  ``torch.nn.functional`` alike), so any architecture that computes the spec passes, written with
  ``nn.Sequential``, attributes or functional calls; dropout and batch-norm are ignored.
* ``custom_conv.*``: `MyConv2d` against ``nn.Conv2d`` with copied weights, and by
  ``torch.autograd.gradcheck`` in float64; any convolution op inside scores 0 for that check.
* ``trained.*``: test accuracy of the notebook's trained model, recomputed here on the 10 000
  test images (never from the student's numbers).

PyTorch and torchvision are imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from autograder.checks._core import call_student, mismatch, tolerance
from autograder.checks.training import single_threaded
from autograder.feedback import CheckFailure, Grader, fail, fr_number

#: Fashion-MNIST training-set statistics the notebook gives for ``transforms.Normalize``.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530

#: The CNN of the notebook: conv(1→8) → ReLU → pool → conv(8→16) → ReLU → pool → linear.
CONV1_OUT = 8
CONV2_OUT = 16
N_CLASSES = 10
CNN_PARAMS = (
    (1 * 9 * CONV1_OUT + CONV1_OUT)
    + (CONV1_OUT * 9 * CONV2_OUT + CONV2_OUT)
    + (CONV2_OUT * 7 * 7 * N_CLASSES + N_CLASSES)
)
CNN_SPEC: list[tuple] = [
    ("conv", 1, CONV1_OUT, 3, 1, 1),
    ("relu",),
    ("pool", 2, 2),
    ("conv", CONV1_OUT, CONV2_OUT, 3, 1, 1),
    ("relu",),
    ("pool", 2, 2),
    ("linear", CONV2_OUT * 7 * 7, N_CLASSES),
]

#: Test accuracy the trained model must reach. The notebook's training cell (10 000 training
#: images, 2 epochs, Adam lr=2e-3, batch 64, CPU) measured 0.813-0.843 over seeds 0-9 (mean
#: 0.833, sd 0.009) with the solution, 0.839-0.844 with batch-norm + dropout (seeds 0-2); a loop
#: without zero_grad or with step before backward ends at 0.10-0.11.
ACCURACY_BAR = 0.80

FORBIDDEN_CONV = (
    "torch.nn.functional.conv2d",
    "torch.conv2d",
    "torch.convolution",
    "torch.nn.functional.conv_transpose2d",
    "solutions.torch_cnn.RefMyConv2d",
)
#: Names of torch functions that are convolutions, whatever module they are reached from.
_CONV_OPS = {
    "conv2d",
    "convolution",
    "_convolution",
    "conv_transpose2d",
    "conv1d",
    "conv3d",
    "conv_tbc",
    "cudnn_convolution",
    "mkldnn_convolution",
}


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------------------------------------
# Data pipeline: make_loaders(batch_size, n_train=None)
# ---------------------------------------------------------------------------------------------


class _Calls:
    """Calls the student's `make_loaders` once per argument set (loading the data costs time)."""

    def __init__(self, make_loaders: Callable) -> None:
        self.fn = make_loaders
        self.cache: dict[tuple, Any] = {}

    def get(self, batch_size: int, n_train: int | None = None):
        key = (batch_size, n_train)
        if key not in self.cache:
            kwargs = {} if n_train is None else {"n_train": n_train}
            try:
                self.cache[key] = ("ok", self._call(batch_size, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - replayed to every check that asks
                self.cache[key] = ("raise", exc)
        kind, value = self.cache[key]
        if kind == "raise":
            raise value
        return value

    def _call(self, batch_size: int, **kwargs: Any):
        from torch.utils.data import DataLoader

        what = (
            f"make_loaders({batch_size}{', n_train=' + str(kwargs['n_train']) if kwargs else ''})"
        )
        got = call_student(self.fn, batch_size, what="make_loaders", code="data", **kwargs)
        if not isinstance(got, tuple | list) or len(got) != 2:
            fail(
                "data.type",
                f"`{what}` doit renvoyer le couple `(train_loader, test_loader)` ; reçu `{type(got).__name__}`.",
            )
        for loader, name in zip(got, ("train_loader", "test_loader"), strict=True):
            if not isinstance(loader, DataLoader):
                fail(
                    "data.type",
                    f"`{what}` : `{name}` doit être un `torch.utils.data.DataLoader` ; reçu `{type(loader).__name__}`.",
                )
        return tuple(got)


def _base(dataset):
    """The dataset under ``Subset`` wrappers and the indices that lead to it."""
    from torch.utils.data import Subset

    indices = None
    while isinstance(dataset, Subset):
        idx = list(dataset.indices)
        indices = idx if indices is None else [idx[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


_RAW: dict[bool, np.ndarray] = {}


def _raw(train: bool) -> np.ndarray:
    """Raw uint8 pixels (N, 28, 28) of the real data set, read once per process."""
    if train not in _RAW:
        from autograder.data import load_torchvision

        _RAW[train] = load_torchvision(train=train).data.numpy().copy()
        _RAW[train].flags.writeable = False
    return _RAW[train]


def _normalised(raw: np.ndarray) -> np.ndarray:
    x = raw.astype(np.float32) / np.float32(255.0)
    return (x - np.float32(FASHION_MNIST_MEAN)) / np.float32(FASHION_MNIST_STD)


def _expect_fashion_mnist(loader, train: bool, name: str, what: str, *, split: bool = True) -> None:
    from torchvision.datasets import FashionMNIST

    base, _ = _base(loader.dataset)
    if not isinstance(base, FashionMNIST):
        fail(
            "data.type",
            f"`{what}` : `{name}.dataset` est un `{type(base).__name__}` ; utilisez le jeu "
            "Fashion-MNIST de torchvision (`load_torchvision(train=..., transform=...)`).",
        )
    if split and bool(base.train) != train:
        fail(
            "data.split",
            f"`{what}` : `{name}` lit le jeu {'de test' if train else 'd’entraînement'} ; "
            f"utilisez `train={train}` pour {'l’entraînement' if train else 'le test'}.",
        )


def data_types(calls: _Calls, batch_size: int = 32) -> None:
    """Deux `DataLoader` sur Fashion-MNIST (60 000 / 10 000 images), lots (B, 1, 28, 28) float32 et (B,) int64."""
    torch = _torch()
    what = f"make_loaders({batch_size})"
    train_loader, test_loader = calls.get(batch_size)
    _expect_fashion_mnist(train_loader, True, "train_loader", what)
    _expect_fashion_mnist(test_loader, False, "test_loader", what)
    for loader, name, size in (
        (train_loader, "train_loader", 60000),
        (test_loader, "test_loader", 10000),
    ):
        if len(loader.dataset) != size:
            fail(
                "data.split",
                f"`{what}` : `{name}` contient {len(loader.dataset)} images, attendu {size} (sans `n_train`, le jeu complet).",
            )
        if loader.batch_size != batch_size:
            fail(
                "data.shape",
                f"`{what}` : `{name}.batch_size` vaut {loader.batch_size}, attendu {batch_size}.",
            )
        try:
            batch = next(iter(loader))
        except Exception as exc:  # noqa: BLE001
            from autograder.feedback import describe_exception

            fail(
                "data.exception",
                f"`{what}` : lire un lot de `{name}` échoue ({describe_exception(exc)}). Les "
                "images doivent devenir des tenseurs : `transforms.ToTensor()` dans la transformation.",
            )
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            fail("data.type", f"`{what}` : un lot de `{name}` doit être un couple `(X, y)`.")
        X, y = batch
        if not isinstance(X, torch.Tensor) or tuple(X.shape) != (batch_size, 1, 28, 28):
            shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
            fail(
                "data.shape",
                f"`{what}` : les images d'un lot de `{name}` ont la forme {shape}, attendu ({batch_size}, 1, 28, 28).",
            )
        if X.dtype != torch.float32:
            fail(
                "data.dtype",
                f"`{what}` : images de type `{X.dtype}`, attendu `torch.float32` (`transforms.ToTensor()`).",
            )
        if (
            not isinstance(y, torch.Tensor)
            or tuple(y.shape) != (batch_size,)
            or y.dtype != torch.int64
        ):
            fail(
                "data.shape",
                f"`{what}` : les étiquettes d'un lot doivent être un tenseur `int64` de forme ({batch_size},).",
            )


def _dataset_images(loader, indices: list[int]) -> np.ndarray:
    return np.stack([np.asarray(loader.dataset[i][0]) for i in indices])


HINT_NORMALIZE = (
    f"Utilisez `transforms.Compose([transforms.ToTensor(), transforms.Normalize(({FASHION_MNIST_MEAN:.4f},), "
    f"({FASHION_MNIST_STD:.4f},))])`, la même pour l'entraînement et le test."
)


def data_normalize(calls: _Calls, batch_size: int = 32) -> None:
    """Images de `ToTensor()` puis `Normalize(0.2860, 0.3530)`, pour l'entraînement comme pour le test."""
    what = f"make_loaders({batch_size})"
    train_loader, test_loader = calls.get(batch_size)
    indices = [0, 1, 7, 4321]
    from torchvision.datasets import FashionMNIST

    for loader, name, train in (
        (train_loader, "train_loader", True),
        (test_loader, "test_loader", False),
    ):
        base, sub = _base(loader.dataset)
        # The images of the split the loader reads: a wrong split is `data.split`'s business.
        raw = _raw(bool(base.train) if isinstance(base, FashionMNIST) else train)
        originals = [sub[i] if sub is not None else i for i in indices]
        got = _dataset_images(loader, indices).reshape(len(indices), 28, 28)
        expected = _normalised(raw[originals])
        rtol, atol = tolerance("float32")
        if mismatch(got, expected, rtol, atol) is None:
            continue
        pixels = raw[originals].astype(np.float32) / 255
        if np.allclose(got, pixels, atol=1e-5):
            fail(
                "data.normalize",
                f"`{what}` : les images de `{name}` sont dans [0, 1] : la normalisation manque. {HINT_NORMALIZE}",
            )
        if np.allclose(got, (pixels - 0.5) / 0.5, atol=1e-5):
            fail(
                "data.normalize",
                f"`{what}` : `{name}` est normalisé avec 0.5 et 0.5 ; utilisez la moyenne et l'écart-type du jeu d'entraînement. {HINT_NORMALIZE}",
            )
        fail(
            "data.normalize",
            f"`{what}` : les images de `{name}` ne sont pas celles attendues après normalisation. {HINT_NORMALIZE}",
        )


def data_shuffle_train(calls: _Calls, batch_size: int = 32) -> None:
    """Le chargeur d'entraînement mélange les images à chaque époque (`shuffle=True`)."""
    from torch.utils.data import RandomSampler

    train_loader, _ = calls.get(batch_size)
    if not isinstance(train_loader.sampler, RandomSampler):
        fail(
            "data.shuffle",
            f"`train_loader` lit les images dans l'ordre (échantillonneur `{type(train_loader.sampler).__name__}`) : "
            "des lots toujours identiques entraînent moins bien. Passez `shuffle=True` au `DataLoader` d'entraînement.",
        )


def data_no_shuffle_test(calls: _Calls, batch_size: int = 32) -> None:
    """Le chargeur de test lit les images dans l'ordre (`shuffle=False`)."""
    from torch.utils.data import SequentialSampler

    _, test_loader = calls.get(batch_size)
    if not isinstance(test_loader.sampler, SequentialSampler):
        fail(
            "eval.shuffle",
            f"`test_loader` mélange les images (échantillonneur `{type(test_loader.sampler).__name__}`) : "
            "l'évaluation ne gagne rien au hasard, et les prédictions ne seraient plus dans l'ordre "
            "du jeu de test. Passez `shuffle=False` au `DataLoader` de test.",
        )


def data_subset(calls: _Calls, batch_size: int = 16, n_train: int = 500) -> None:
    """Avec `n_train`, seulement les `n_train` premières images d'entraînement ; le test reste complet."""
    what = f"make_loaders({batch_size}, n_train={n_train})"
    train_loader, test_loader = calls.get(batch_size, n_train)
    _expect_fashion_mnist(
        train_loader, True, "train_loader", what, split=False
    )  # split: `data_types`
    if len(train_loader.dataset) != n_train:
        fail(
            "data.subset",
            f"`{what}` : `train_loader` contient {len(train_loader.dataset)} images, attendu {n_train}. "
            "Utilisez `torch.utils.data.Subset(train_set, range(n_train))`.",
        )
    _, sub = _base(train_loader.dataset)
    indices = [0, n_train - 1]
    originals = [sub[i] if sub is not None else i for i in indices]
    if originals != indices:
        fail(
            "data.subset",
            f"`{what}` : `train_loader` doit contenir les {n_train} *premières* images (`range(n_train)`).",
        )
    _, full_test = calls.get(batch_size)
    if len(test_loader.dataset) != len(full_test.dataset):
        fail(
            "data.subset",
            f"`{what}` : `n_train` ne concerne que l'entraînement ; `test_loader` doit garder les 10 000 images.",
        )


DATA_LABELS = {
    "types": "deux DataLoader Fashion-MNIST, lots (B, 1, 28, 28)",
    "normalize": "ToTensor puis Normalize (moyenne 0.2860, écart-type 0.3530)",
    "shuffle_train": "entraînement mélangé",
    "no_shuffle_test": "test dans l'ordre",
    "subset": "sous-ensemble `n_train`",
}


@single_threaded
def public_make_loaders(make_loaders: Callable, points: float) -> Grader:
    g = Grader("data-pipeline", points, "make_loaders")
    calls = _Calls(make_loaders)
    g.check(data_types, calls, name=DATA_LABELS["types"])
    g.check(data_normalize, calls, name=DATA_LABELS["normalize"])
    g.check(data_shuffle_train, calls, name=DATA_LABELS["shuffle_train"])
    g.check(data_no_shuffle_test, calls, name=DATA_LABELS["no_shuffle_test"])
    g.check(data_subset, calls, name=DATA_LABELS["subset"])
    return g


@single_threaded
def hidden_make_loaders(g: Grader, make_loaders: Callable, seed: int) -> None:
    calls = _Calls(make_loaders)
    batch_size = 50 + seed % 50
    g.deepen(DATA_LABELS["types"], data_types, calls, batch_size=batch_size)
    g.deepen(
        DATA_LABELS["subset"],
        data_subset,
        calls,
        batch_size=batch_size,
        n_train=1000 + seed % 1000,
    )


# ---------------------------------------------------------------------------------------------
# The CNN to a spec
# ---------------------------------------------------------------------------------------------

_ACTIVATIONS = {
    "sigmoid",
    "tanh",
    "gelu",
    "elu",
    "selu",
    "leaky_relu",
    "relu6",
    "hardtanh",
    "silu",
    "softplus",
    "prelu",
    "threshold",
}
_POOLS = {
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "lp_pool2d",
    "fractional_max_pool2d",
}


def _pair(v: Any) -> int | None:
    if isinstance(v, int):
        return v
    if isinstance(v, tuple | list) and len(v) == 2 and v[0] == v[1]:
        return int(v[0])
    if isinstance(v, tuple | list) and len(v) == 1:
        return int(v[0])
    return None


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _layer(name: str, args: tuple, kwargs: dict) -> tuple | None:
    """The layer a recorded torch call stands for, or ``None`` for shape-only / ignored calls."""
    base = name.split(".")[0].rstrip("_")
    if base in _CONV_OPS:
        weight = _arg(args, kwargs, 1, "weight")
        stride = _pair(_arg(args, kwargs, 3, "stride", 1))
        padding = _arg(args, kwargs, 4, "padding", 0)
        k = int(weight.shape[-1]) if weight is not None else None
        padding = (k - 1) // 2 if padding == "same" and k else _pair(padding)
        square = weight is not None and weight.shape[-1] == weight.shape[-2]
        return (
            "conv",
            int(weight.shape[1]),
            int(weight.shape[0]),
            k if square else tuple(weight.shape[-2:]),
            stride,
            padding,
        )
    if base == "relu":
        return ("relu",)
    if base == "max_pool2d":
        k = _pair(_arg(args, kwargs, 1, "kernel_size"))
        stride = _arg(args, kwargs, 2, "stride", None)
        return ("pool", k, k if stride in (None, [], ()) else _pair(stride))
    if base == "linear":
        weight = _arg(args, kwargs, 1, "weight")
        return ("linear", int(weight.shape[1]), int(weight.shape[0]))
    if base in ("softmax", "log_softmax"):
        return ("softmax", base)
    if base in _ACTIVATIONS or base in _POOLS:
        return ("other", base)
    return None


def describe_layer(layer: tuple) -> str:
    kind = layer[0]
    if kind == "conv":
        _, cin, cout, k, stride, padding = layer
        ks = f"{k}×{k}" if isinstance(k, int) else "×".join(map(str, k))
        extra = "" if stride == 1 else f", stride {stride}"
        return f"conv({cin}→{cout}, {ks}, padding {padding}{extra})"
    if kind == "relu":
        return "ReLU"
    if kind == "pool":
        return f"maxpool {layer[1]}×{layer[1]}" + (
            "" if layer[2] == layer[1] else f" (stride {layer[2]})"
        )
    if kind == "linear":
        return f"linear({layer[1]}→{layer[2]})"
    return layer[1]


def trace_layers(model, x) -> tuple[list[tuple], Any]:
    """Layers computed by ``model(x)``, in order, from the torch functions it calls."""
    torch = _torch()
    from torch.overrides import TorchFunctionMode

    layers: list[tuple] = []

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            layer = _layer(getattr(func, "__name__", ""), args, kwargs)
            if layer is not None:
                layers.append(layer)
            return func(*args, **kwargs)

    with Recorder():
        out = model(x)
    del torch
    return layers, out


def _canonical(layers: list[tuple]) -> list[tuple]:
    """ReLU and max-pooling commute: order each adjacent (pool, ReLU) pair as (ReLU, pool)."""
    out = list(layers)
    for i in range(len(out) - 1):
        if out[i][0] == "pool" and out[i + 1][0] == "relu":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _build_cnn(CNN: Callable):
    from torch import nn

    model = call_student(CNN, what="CNN()", code="cnn")
    if not isinstance(model, nn.Module):
        fail(
            "cnn.type",
            f"`CNN()` doit créer un `nn.Module` (classe qui hérite de `nn.Module`) ; reçu `{type(model).__name__}`.",
        )
    return model


def _forward(model, x, what: str = "CNN"):
    return call_student(model, x, what=f"{what}.forward", code="cnn")


def cnn_output(CNN: Callable, batch_sizes: tuple[int, ...] = (2,)) -> None:
    """Un `nn.Module` qui transforme un lot (B, 1, 28, 28) en logits (B, 10)."""
    torch = _torch()
    model = _build_cnn(CNN).eval()
    for b in batch_sizes:
        with torch.no_grad():
            out = _forward(model, torch.randn(b, 1, 28, 28))
        if not isinstance(out, torch.Tensor):
            fail(
                "cnn.output_shape",
                f"`CNN.forward` doit renvoyer un tenseur ; reçu `{type(out).__name__}`.",
            )
        if tuple(out.shape) != (b, N_CLASSES):
            fail(
                "cnn.output_shape",
                f"`CNN` sur un lot de forme ({b}, 1, 28, 28) : sortie de forme {tuple(out.shape)}, attendu "
                f"({b}, {N_CLASSES}). Aplatissez avec `torch.flatten(x, 1)` avant la couche linéaire.",
            )


def cnn_layers(CNN: Callable) -> None:
    """Les couches calculées dans l'ordre de la spécification (dropout et batch-norm ignorés)."""
    torch = _torch()
    model = _build_cnn(CNN).eval()
    with torch.no_grad():
        layers = call_student(
            lambda: trace_layers(model, torch.randn(2, 1, 28, 28))[0],
            what="CNN.forward",
            code="cnn",
        )
    body = [layer for layer in layers if layer[0] != "softmax"]
    if _canonical(body) != _canonical(CNN_SPEC):
        seen = " → ".join(describe_layer(x) for x in body) or "aucune couche reconnue"
        want = " → ".join(describe_layer(x) for x in CNN_SPEC)
        fail(
            "cnn.layers",
            f"`CNN` calcule : {seen}. La spécification demande : {want} (avec un aplatissement "
            "avant la couche linéaire ; dropout et batch-norm sont permis en plus).",
        )


def cnn_param_count(CNN: Callable) -> None:
    """Nombre de paramètres de la spécification (hors batch-norm, permise en plus)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    model = _build_cnn(CNN)
    count = sum(
        p.numel()
        for m in model.modules()
        if not isinstance(m, _BatchNorm)
        for p in m.parameters(recurse=False)
    )
    if count != CNN_PARAMS:
        fail(
            "cnn.param_count",
            f"`CNN` a {count} paramètres (hors batch-norm), la spécification en donne {CNN_PARAMS}. "
            "Vérifiez les nombres de canaux, la taille des noyaux, les biais et qu'aucune couche "
            "n'est déclarée sans servir.",
        )


def cnn_logits(CNN: Callable) -> None:
    """Le modèle renvoie des logits : pas de softmax à la fin (`nn.CrossEntropyLoss` l'applique)."""
    torch = _torch()
    model = _build_cnn(CNN).eval()
    with torch.no_grad():
        layers, out = call_student(
            lambda: trace_layers(model, torch.randn(4, 1, 28, 28)), what="CNN.forward", code="cnn"
        )
    soft = [layer[1] for layer in layers if layer[0] == "softmax"]
    rows_one = (
        isinstance(out, torch.Tensor)
        and out.ndim == 2
        and bool(torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4))
    )
    if soft or rows_one:
        fail(
            "cnn.softmax",
            f"`CNN` applique `{soft[0] if soft else 'softmax'}` en sortie : renvoyez les logits bruts. "
            "`nn.CrossEntropyLoss` applique déjà `log_softmax` ; l'appliquer deux fois fausse la perte.",
        )


def cnn_batch_independent(CNN: Callable, seed: int) -> None:
    """En mode évaluation, la sortie d'une image ne dépend pas des autres images du lot."""
    torch = _torch()
    model = _build_cnn(CNN).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 1, 28, 28, generator=g)
    with torch.no_grad():
        whole = _forward(model, x)
        single = torch.cat([_forward(model, x[i : i + 1]) for i in range(len(x))])
    if whole.shape != single.shape or not torch.allclose(whole, single, rtol=1e-4, atol=1e-5):
        fail(
            "cnn.batch",
            "`CNN` en mode évaluation : la sortie d'une image change selon les autres images du lot. "
            "L'aplatissement mélange sans doute les exemples : gardez l'axe du lot, "
            "`x.view(x.size(0), -1)` ou `torch.flatten(x, 1)`.",
        )


CNN_LABELS = {
    "output": "lot (B, 1, 28, 28) → logits (B, 10)",
    "layers": "couches dans l'ordre de la spécification",
    "params": f"{CNN_PARAMS} paramètres",
    "logits": "sortie en logits (sans softmax)",
    "batch": "exemples du lot indépendants",
}


@single_threaded
def public_cnn(CNN: Callable, points: float) -> Grader:
    g = Grader("cnn-spec", points, "CNN")
    g.check(cnn_output, CNN, name=CNN_LABELS["output"])
    g.check(cnn_layers, CNN, name=CNN_LABELS["layers"])
    g.check(cnn_param_count, CNN, name=CNN_LABELS["params"])
    g.check(cnn_logits, CNN, name=CNN_LABELS["logits"])
    return g


@single_threaded
def hidden_cnn(g: Grader, CNN: Callable, seed: int) -> None:
    g.deepen(CNN_LABELS["output"], cnn_output, CNN, batch_sizes=(1, 7))
    g.hidden().check(cnn_batch_independent, CNN, seed, name=CNN_LABELS["batch"])


# ---------------------------------------------------------------------------------------------
# MyConv2d: a convolution module from scratch
# ---------------------------------------------------------------------------------------------


class _ConvSpy:
    """Records convolution ops called by a forward pass, however they are reached."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __enter__(self):
        from torch.overrides import TorchFunctionMode

        used = self.used

        class Spy(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                if name.split(".")[0].rstrip("_") in _CONV_OPS:
                    used.append(name.split(".")[0])
                return func(*args, **(kwargs or {}))

        self.mode = Spy()
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


HINT_SCRATCH = (
    "L'exercice demande de calculer la convolution vous-même (`F.unfold` puis un produit "
    "matriciel, ou des boucles) : `nn.Conv2d`, `F.conv2d` et les autres convolutions toutes "
    "faites ne rapportent pas de point ici."
)


def _build_conv(MyConv2d: Callable, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0):
    from torch import nn

    what = (
        f"MyConv2d({cin}, {cout}, {k}"
        + (f", stride={stride}, padding={padding}" if (stride, padding) != (1, 0) else "")
        + ")"
    )
    kwargs = {} if (stride, padding) == (1, 0) else {"stride": stride, "padding": padding}
    conv = call_student(MyConv2d, cin, cout, k, what=what, code="custom_conv", **kwargs)
    if not isinstance(conv, nn.Module):
        fail(
            "custom_conv.type",
            f"`{what}` doit créer un `nn.Module` ; reçu `{type(conv).__name__}`.",
        )
    if any(isinstance(m, nn.Conv2d | nn.LazyConv2d) for m in conv.modules()):
        fail("custom_conv.framework_used", f"`{what}` contient un `nn.Conv2d`. {HINT_SCRATCH}")
    weight, bias = getattr(conv, "weight", None), getattr(conv, "bias", None)
    for tensor, name, shape in ((weight, "weight", (cout, cin, k, k)), (bias, "bias", (cout,))):
        if not isinstance(tensor, nn.Parameter):
            fail(
                "custom_conv.params",
                f"`{what}` : `self.{name}` doit être un `nn.Parameter` (sinon l'optimiseur ne le voit pas) ; "
                f"reçu `{type(tensor).__name__}`.",
            )
        if tuple(tensor.shape) != shape:
            fail(
                "custom_conv.params",
                f"`{what}` : `self.{name}` a la forme {tuple(tensor.shape)}, attendu {shape}.",
            )
    registered = {id(p) for p in conv.parameters()}
    if id(weight) not in registered or id(bias) not in registered:
        fail(
            "custom_conv.params",
            f"`{what}` : `weight` et `bias` doivent apparaître dans `parameters()`.",
        )
    return conv, what


def _conv_case(MyConv2d: Callable, case: tuple, seed: int, dtype_name: str = "float32") -> None:
    torch = _torch()
    from torch import nn

    n, cin, h, w, cout, k, stride, padding = case
    dtype = getattr(torch, dtype_name)
    conv, what = _build_conv(MyConv2d, cin, cout, k, stride, padding)
    conv = conv.to(dtype)
    g = torch.Generator().manual_seed(seed)
    ref = nn.Conv2d(cin, cout, k, stride=stride, padding=padding).to(dtype)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(ref.weight.shape, generator=g, dtype=dtype))
        ref.bias.copy_(torch.randn(ref.bias.shape, generator=g, dtype=dtype))
        conv.weight.copy_(ref.weight)
        conv.bias.copy_(ref.bias)
    x = torch.randn(n, cin, h, w, generator=g, dtype=dtype)
    with _ConvSpy() as spy:
        out = call_student(
            conv, x, what=f"{what}.forward", code="custom_conv", forbidden=FORBIDDEN_CONV
        )
    if spy.used:
        fail(
            "custom_conv.framework_used",
            f"`{what}.forward` appelle `{spy.used[0]}`. {HINT_SCRATCH}",
        )
    with torch.no_grad():
        expected = ref(x)
    context = f"`{what}` sur une entrée de forme {(n, cin, h, w)}"
    aspect = "custom_conv.values" if (stride, padding) == (1, 0) else "custom_conv.stride_padding"
    if not isinstance(out, torch.Tensor):
        fail(
            "custom_conv.type",
            f"{context} : la sortie doit être un tenseur ; reçu `{type(out).__name__}`.",
        )
    if tuple(out.shape) != tuple(expected.shape):
        fail(
            "custom_conv.shape" if aspect == "custom_conv.values" else aspect,
            f"{context} : sortie de forme {tuple(out.shape)}, attendu {tuple(expected.shape)}. "
            "H_out = (H + 2·padding − k) // stride + 1.",
        )
    if out.dtype != dtype:
        fail(
            "custom_conv.dtype",
            f"{context} : sortie en `{out.dtype}` pour une entrée en `{dtype}` ; gardez le type de l'entrée.",
        )
    rtol, atol = tolerance(dtype_name)
    problem = mismatch(out.detach().numpy(), expected.numpy(), rtol, atol)
    if problem:
        fail(
            aspect,
            f"{context}, poids copiés d'un `nn.Conv2d` : {problem}. Corrélation croisée (pas de retournement du noyau), biais ajouté à chaque canal de sortie.",
        )


def custom_conv_basic(MyConv2d: Callable) -> None:
    """Comparé à `nn.Conv2d` (poids copiés) : lot de 2, 3 canaux, 4 filtres 3×3, stride 1, sans padding."""
    _conv_case(MyConv2d, (2, 3, 8, 8, 4, 3, 1, 0), seed=0)


def custom_conv_stride_padding(MyConv2d: Callable) -> None:
    """Comparé à `nn.Conv2d` (poids copiés) : stride=2, padding=1, image non carrée."""
    _conv_case(MyConv2d, (1, 2, 7, 9, 3, 3, 2, 1), seed=1)


def custom_conv_random(MyConv2d: Callable, seed: int) -> None:
    """Formes, noyaux (1, 3, 5), strides et paddings aléatoires, en float64."""
    rng = np.random.default_rng(seed)
    for i in range(4):
        k = (1, 3, 5, 3)[i]
        stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 3))
        h, w = k + int(rng.integers(0, 6)), k + int(rng.integers(0, 6))
        case = (
            int(rng.integers(1, 4)),
            int(rng.integers(1, 4)),
            h,
            w,
            int(rng.integers(1, 5)),
            k,
            stride,
            padding,
        )
        _conv_case(MyConv2d, case, seed=seed + i, dtype_name="float64")


def custom_conv_gradcheck(MyConv2d: Callable, seed: int) -> None:
    """`torch.autograd.gradcheck` en float64 : gradients par rapport à l'entrée, aux poids et au biais."""
    torch = _torch()
    from torch.func import functional_call

    conv, what = _build_conv(MyConv2d, 2, 3, 3, 2, 1)
    conv = conv.double()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return functional_call(conv, {"weight": w, "bias": b}, (x,))

    def run():
        with _ConvSpy() as spy:
            ok = torch.autograd.gradcheck(
                f, (x, w, b), eps=1e-6, atol=1e-6, rtol=1e-5, raise_exception=False
            )
        return ok, spy.used

    ok, used = call_student(
        run, what=f"{what}.forward", code="custom_conv", forbidden=FORBIDDEN_CONV
    )
    if used:
        fail("custom_conv.framework_used", f"`{what}.forward` appelle `{used[0]}`. {HINT_SCRATCH}")
    if not ok:
        fail(
            "custom_conv.gradient",
            f"`{what}` : les gradients calculés par autograd ne correspondent pas au gradient "
            "numérique. N'utilisez que des opérations PyTorch sur `x`, `self.weight` et `self.bias` "
            "(pas de `.data`, `.detach()`, `.item()` ni de passage par NumPy).",
        )


CONV_LABELS = {
    "basic": "comparée à nn.Conv2d (stride 1, sans padding)",
    "stride_padding": "comparée à nn.Conv2d (stride 2, padding 1)",
    "gradcheck": "gradients (gradcheck, float64)",
}


@single_threaded
def public_my_conv2d(MyConv2d: Callable, points: float) -> Grader:
    g = Grader("custom-conv", points, "MyConv2d")
    g.check(custom_conv_basic, MyConv2d, name=CONV_LABELS["basic"])
    g.check(custom_conv_stride_padding, MyConv2d, name=CONV_LABELS["stride_padding"])
    return g


@single_threaded
def hidden_my_conv2d(g: Grader, MyConv2d: Callable, seed: int) -> None:
    g.deepen(CONV_LABELS["stride_padding"], custom_conv_random, MyConv2d, seed)
    g.hidden().check(custom_conv_gradcheck, MyConv2d, seed, name=CONV_LABELS["gradcheck"])


# ---------------------------------------------------------------------------------------------
# The trained model
# ---------------------------------------------------------------------------------------------


def test_accuracy(model, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on the 10 000 Fashion-MNIST test images, normalised here."""
    torch = _torch()
    from autograder.data import load_torchvision

    data = load_torchvision(train=False)
    x = torch.from_numpy(_normalised(_raw(False))).unsqueeze(1)
    y = data.targets
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out = model(x[i : i + batch_size].to(device))
                correct += int((out.argmax(dim=1).cpu() == y[i : i + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / len(x)


def trained_accuracy(model: Any, bar: float = ACCURACY_BAR) -> None:
    """Exactitude du modèle entraîné sur les 10 000 images de test, recalculée par la correction."""
    from torch import nn

    if model is None:
        fail(
            "trained.missing",
            "La variable `model` n'existe pas : la cellule d'entraînement n'a pas abouti. "
            "Terminez les fonctions au-dessus, puis relancez-la.",
        )
    if not isinstance(model, nn.Module):
        fail(
            "trained.missing",
            f"`model` doit être votre `CNN` entraîné ; reçu `{type(model).__name__}`.",
        )
    try:
        acc = test_accuracy(model)
    except Exception as exc:  # noqa: BLE001
        from autograder.feedback import describe_exception

        raise CheckFailure(
            "trained.exception",
            f"Le modèle n'a pas pu être évalué sur le jeu de test ({describe_exception(exc)}).",
        ) from None
    if acc < bar:
        fail(
            "trained.accuracy",
            f"Exactitude sur le jeu de test : {fr_number(acc, '.3f')}, le seuil est {fr_number(bar, '.2f')}. Vérifiez la boucle "
            "d'entraînement (zero_grad, backward, step) et la normalisation des données.",
        )


@single_threaded
def public_trained_model(model: Any, points: float) -> Grader:
    g = Grader("trained-model", points, "modèle entraîné")
    g.check(trained_accuracy, model, name=f"exactitude de test ≥ {fr_number(ACCURACY_BAR, '.2f')}")
    return g
