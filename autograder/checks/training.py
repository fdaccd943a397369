"""Checks for training loops: `train_one_epoch`, `evaluate`, `predict` (module 5, PyTorch).

How a loop is graded. Every check runs the student's function on a tiny deterministic problem
(a float64 model, a :class:`~torch.utils.data.TensorDataset` of 10 samples read in batches of 4,
so that the last batch is smaller) and looks at one aspect only, so that one bug costs one
check, and that check names it:

* ``train.loss_average``: with ``lr=0`` the weights cannot move, so the loss the function
  returns must be the mean loss *per sample* over the dataset (not the mean of batch means);
* ``train.zero_grad`` / ``train.step_order`` / ``train.no_step`` / ``train.params``: from the same
  initial weights and batches, the weights after one epoch must equal those of an oracle that
  computes every update from ``torch.autograd.grad`` (SGD with momentum; hidden cases compare
  with ``solutions.torch_cnn.ref_train_one_epoch`` and Adam). Spies on the parameters' gradient
  hooks and on ``optimizer.step`` name the bug when they differ;
* ``train.mode``: a probe module records ``self.training`` in every forward pass (the model is
  handed over in eval mode);
* ``train.device``: the loader yields tensors of a marker subclass that only ``.to(...)`` turns
  back into plain tensors, so that a missing ``.to(device)`` shows on a CPU-only machine;
* ``eval.*`` and ``predict.*``: the same probes (mode, ``torch.is_grad_enabled()``, device,
  weights untouched) plus values against a direct computation.

Helpers at the top are framework-neutral (event log of a loop, per-sample averages, comparing
parameter dictionaries); PyTorch is imported inside functions only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autograder.checks._core import call_student, mismatch, reference, tolerance
from autograder.feedback import CheckFailure, Grader, fail, fr_number

# ---------------------------------------------------------------------------------------------
# Framework-neutral helpers
# ---------------------------------------------------------------------------------------------


def per_sample_mean(batch_means: Sequence[float], batch_sizes: Sequence[int]) -> float:
    """Mean per sample over an epoch from each batch's mean loss and size."""
    total = sum(float(m) * int(n) for m, n in zip(batch_means, batch_sizes, strict=True))
    return total / sum(int(n) for n in batch_sizes)


def mean_of_batch_means(batch_means: Sequence[float]) -> float:
    """The usual wrong epoch average: every batch weighs the same, whatever its size."""
    return float(np.mean([float(m) for m in batch_means]))


def same_number(a: float, b: float, precision: str = "float64") -> bool:
    rtol, atol = tolerance(precision)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def compare_parameters(
    got: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], precision: str = "float64"
) -> str | None:
    """``None`` when every parameter matches; else which one differs and how (no values shown)."""
    rtol, atol = tolerance(precision)
    for name, ref in expected.items():
        if name not in got:
            return f"le paramètre `{name}` a disparu"
        problem = mismatch(np.asarray(got[name]), np.asarray(ref), rtol, atol)
        if problem:
            return f"`{name}` : {problem}"
    return None


@dataclass
class LoopLog:
    """What a training loop did, in order: forward passes, gradients, optimizer steps.

    A framework adapter feeds it (PyTorch: a forward pre-hook, gradient hooks on the
    parameters, a step pre-hook on the optimizer); :func:`diagnose_loop` reads it.
    Events: ``("forward", grad_enabled)``, ``("grad", leftover)`` where ``leftover`` says that
    the parameter still held a non-zero gradient from an earlier backward pass,
    ``("step", has_gradients)``.
    """

    events: list[tuple[str, bool]] = field(default_factory=list)

    def forward(self, grad_enabled: bool) -> None:
        self.events.append(("forward", bool(grad_enabled)))

    def grad(self, leftover: bool) -> None:
        self.events.append(("grad", bool(leftover)))

    def step(self, has_gradients: bool) -> None:
        self.events.append(("step", bool(has_gradients)))


HINT_LOOP = (
    "Pour chaque lot : `optimizer.zero_grad()`, sortie du modèle, perte, `loss.backward()`, "
    "puis `optimizer.step()` (`zero_grad()` peut aussi venir juste après `step()`)."
)


def diagnose_loop(log: LoopLog, what: str = "train_one_epoch") -> None:
    """Name the first loop bug the log shows (codes ``train.*``); return when none shows."""
    steps = [i for i, (kind, _) in enumerate(log.events) if kind == "step"]
    if not steps:
        fail(
            "train.no_step",
            f"`{what}` n'appelle jamais `optimizer.step()` : les poids ne changent pas. {HINT_LOOP}",
        )
    for kind, leftover in log.events:
        if kind == "grad" and leftover:
            fail(
                "train.zero_grad",
                f"`{what}` : au moment de `loss.backward()`, les paramètres gardent les gradients "
                "du lot précédent, qui s'additionnent à ceux du lot courant. Remettez-les à zéro "
                f"à chaque lot avec `optimizer.zero_grad()`. {HINT_LOOP}",
            )
    last_forward = last_grad = None
    for i, (kind, flag) in enumerate(log.events):
        if kind == "forward" and flag:
            last_forward = i
        elif kind == "grad":
            last_grad = i
        elif kind == "step":
            if last_grad is None or (last_forward is not None and last_grad < last_forward):
                fail(
                    "train.step_order",
                    f"`{what}` appelle `optimizer.step()` avant `loss.backward()` sur le lot "
                    "courant : le pas utilise des gradients absents ou ceux du lot précédent. "
                    f"{HINT_LOOP}",
                )
            if not flag:
                fail(
                    "train.step_order",
                    f"`{what}` : les gradients sont nuls ou effacés au moment de "
                    "`optimizer.step()` (un `zero_grad()` entre `backward()` et `step()` ?). "
                    f"{HINT_LOOP}",
                )


# ---------------------------------------------------------------------------------------------
# PyTorch pieces (imported lazily)
# ---------------------------------------------------------------------------------------------

#: Gradient descent: a visible oracle (momentum SGD, computed with torch.autograd.grad).
LR = 0.1
MOMENTUM = 0.9
N_SAMPLES = 10
BATCH_SIZE = 4  # batches of 4, 4 and 2: the last one is smaller
N_CLASSES = 3
IMAGE = 6  # tiny 1×6×6 images


def _torch():
    import torch

    return torch


def single_threaded(fn: Callable) -> Callable:
    """Run a check runner with one intra-op thread (PyTorch), then restore the setting.

    The checks work on tensors of a few hundred numbers: extra threads only cost, and on a
    shared or busy machine (several kernels graded at once) two OpenMP threads fighting for
    the cores made them ten times slower in measurements here.
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        torch = _torch()
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper


def _solutions() -> Any | None:
    return reference("torch_cnn")


_MARKER_CLASS: Any = None


def _marker_class():
    """A ``torch.Tensor`` subclass that ``.to(...)`` (or ``device=``) turns into a plain tensor.

    Data not moved with ``.to(device)`` reaches the model as this subclass, which the probes
    see: that is how a forgotten ``.to(device)`` shows on a machine with a CPU only.
    """
    global _MARKER_CLASS
    if _MARKER_CLASS is None:
        torch = _torch()

        class NotMovedTensor(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = getattr(func, "__name__", "")
                if name in ("to", "cuda") or "device" in kwargs:
                    with torch._C.DisableTorchFunctionSubclass():
                        out = func(*args, **kwargs)
                    return out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else out
                return super().__torch_function__(func, types, args, kwargs)

        _MARKER_CLASS = NotMovedTensor
    return _MARKER_CLASS


def _plain(t):
    torch = _torch()
    return t.as_subclass(torch.Tensor) if isinstance(t, _marker_class()) else t


def _mini_data(seed: int, n: int = N_SAMPLES, image: int = IMAGE, classes: int = N_CLASSES):
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, image, image, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def _loader(X, y, batch_size: int = BATCH_SIZE, marked: bool = False):
    """A real, non-shuffled ``DataLoader``; ``marked`` batches are :func:`_marker_class` tensors."""
    torch = _torch()
    from torch.utils.data import DataLoader, TensorDataset

    collate = None
    if marked:
        marker = _marker_class()

        def collate(batch):
            xs = torch.stack([b[0] for b in batch])
            ys = torch.stack([b[1] for b in batch])
            return xs.as_subclass(marker), ys.as_subclass(marker)

    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False, collate_fn=collate)


def _tiny_cnn(
    seed: int, *, dropout: float = 0.0, batchnorm: bool = False, classes: int = N_CLASSES
):
    """conv(1→2, 3) → ReLU → maxpool 2 → linear(2·2·2 → classes), float64, seeded weights."""
    torch = _torch()
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Conv2d(1, 2, 3)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(2))
        layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(2 * 2 * 2, classes))
        return nn.Sequential(*layers).double()


class _Probe:
    """Records, at every forward pass of a model: mode, grad mode, and whether X was moved."""

    def __init__(self, model) -> None:
        self.training: list[bool] = []
        self.grad_enabled: list[bool] = []
        self.unmoved_inputs = 0
        self.handle = model.register_forward_pre_hook(self._pre)

    def _pre(self, module, args):
        torch = _torch()
        self.training.append(module.training)
        self.grad_enabled.append(torch.is_grad_enabled())
        marker = _marker_class()
        if any(isinstance(a, marker) for a in args):
            self.unmoved_inputs += 1
        return tuple(_plain(a) for a in args)

    def remove(self) -> None:
        self.handle.remove()


def _loss_fn(unmoved: list[int] | None = None):
    """``nn.CrossEntropyLoss()``; counts targets that arrive without ``.to(device)``."""
    torch = _torch()
    from torch import nn

    class CrossEntropyLoss(nn.CrossEntropyLoss):
        def forward(self, input, target):
            if unmoved is not None and isinstance(target, _marker_class()):
                unmoved.append(1)
            return super().forward(_plain(input), _plain(target))

    del torch
    return CrossEntropyLoss()


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _params(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.named_parameters()}


def _run(fn: Callable, *args: Any, what: str, code: str) -> Any:
    """The student's function on CPU, with its own RNG stream (the notebook's is untouched)."""
    torch = _torch()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return call_student(fn, *args, what=what, code=code, forbidden=FORBIDDEN_LOOPS)
    except CheckFailure as exc:
        if exc.code.endswith(".framework_used"):
            raise CheckFailure(
                exc.code,
                f"`{what}` appelle la version de référence du cours (`solutions`) : écrivez la "
                "vôtre. Cette vérification ne rapporte pas de point.",
            ) from None
        raise


FORBIDDEN_LOOPS = (
    "solutions.torch_cnn.ref_train_one_epoch",
    "solutions.torch_cnn.ref_evaluate",
    "solutions.torch_cnn.ref_predict",
)


def _as_float(value: Any, *, what: str, code: str, expected: str) -> float:
    """A Python/NumPy real number; a tensor, ``None`` or a tuple fails with ``<code>.return``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        kind = type(value).__name__
        hint = (
            " Convertissez avec `.item()` (un tenseur garde tout le graphe de calcul en mémoire)."
            if "Tensor" in kind
            else ""
        )
        if value is None:
            hint = " Avez-vous oublié le `return` ?"
        fail(f"{code}.return", f"`{what}` doit renvoyer {expected} ; reçu `{kind}`.{hint}")
    out = float(value)
    if not math.isfinite(out):
        fail(f"{code}.return", f"`{what}` renvoie une valeur non finie ({out}).")
    return out


# ---------------------------------------------------------------------------------------------
# train_one_epoch
# ---------------------------------------------------------------------------------------------

TRAIN_LABELS = {
    "loss": "perte renvoyée : moyenne par exemple sur l'époque",
    "weights": "poids après une époque (zero_grad → backward → step)",
    "mode": "modèle mis en mode entraînement",
    "device": "lots envoyés sur `device`",
}


def _sgd(model, lr: float = LR, momentum: float = MOMENTUM):
    torch = _torch()
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def train_loss_average(
    train_one_epoch: Callable, seed: int = 0, n: int = N_SAMPLES, batch_size: int = BATCH_SIZE
) -> None:
    """Avec lr=0 (poids figés), la perte renvoyée est la perte moyenne par exemple sur le jeu."""
    torch = _torch()
    X, y = _mini_data(seed, n)
    model = _tiny_cnn(seed)
    with torch.no_grad():
        per_batch = [
            (
                torch.nn.functional.cross_entropy(
                    model(X[i : i + batch_size]), y[i : i + batch_size]
                ).item(),
                len(X[i : i + batch_size]),
            )
            for i in range(0, n, batch_size)
        ]
    expected = per_sample_mean([m for m, _ in per_batch], [s for _, s in per_batch])
    got = _run(
        train_one_epoch,
        model,
        _loader(X, y, batch_size),
        _sgd(model, lr=0.0, momentum=0.0),
        _loss_fn(),
        "cpu",
        what="train_one_epoch",
        code="train",
    )
    got = _as_float(
        got,
        what="train_one_epoch",
        code="train",
        expected="la perte moyenne de l'époque (un `float`)",
    )
    if same_number(got, expected):
        return
    sizes = ", ".join(str(s) for _, s in per_batch)
    context = f"`train_one_epoch` sur {n} exemples en lots de taille {sizes}"
    if same_number(got, mean_of_batch_means([m for m, _ in per_batch])):
        fail(
            "train.loss_average",
            f"{context} : vous renvoyez la moyenne des pertes des lots, où le dernier lot (plus "
            "petit) pèse autant que les autres. Renvoyez la moyenne par exemple : additionnez "
            "`loss.item() * len(X)` sur les lots, puis divisez par le nombre total d'exemples.",
        )
    if same_number(got, per_batch[-1][0]):
        fail(
            "train.loss_average",
            f"{context} : vous renvoyez la perte du dernier lot seulement, pas la moyenne de l'époque.",
        )
    fail(
        "train.loss_average",
        f"{context} : la perte renvoyée n'est pas la perte moyenne par exemple (écart relatif "
        f"{fr_number(abs(got - expected) / max(abs(expected), 1e-12), '.1e')}). Additionnez `loss.item() * len(X)` "
        "sur les lots et divisez par le nombre total d'exemples.",
    )


def _attach_spies(model, optimizer) -> tuple[LoopLog, list[Any]]:
    """Feed a :class:`LoopLog` from a model and its optimizer; returns the log and the handles."""
    torch = _torch()
    log = LoopLog()
    params = [p for p in model.parameters() if p.requires_grad]

    def on_grad(p):
        def hook(grad):
            old = p.grad
            log.grad(old is not None and bool(torch.count_nonzero(old.detach()).item()))

        return hook

    def on_step(opt, args, kwargs):
        log.step(
            any(
                p.grad is not None and bool(torch.count_nonzero(p.grad.detach()).item())
                for p in params
            )
        )

    handles = [p.register_hook(on_grad(p)) for p in params]
    handles.append(
        model.register_forward_pre_hook(lambda m, a: log.forward(torch.is_grad_enabled()))
    )
    handles.append(optimizer.register_step_pre_hook(on_step))
    return log, handles


def _oracle_sgd(model, batches, lr: float, momentum: float) -> dict[str, np.ndarray]:
    """Parameters after SGD with momentum over ``batches``, every gradient from autograd.grad."""
    torch = _torch()
    from torch.func import functional_call

    model = copy.deepcopy(model).train()
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    velocity: dict[str, Any] = {}
    for X, y in batches:
        leaves = {n: params[n].clone().requires_grad_() for n in names}
        out = functional_call(model, {**leaves, **buffers}, (X,))
        loss = torch.nn.functional.cross_entropy(out, y)
        grads = torch.autograd.grad(loss, [leaves[n] for n in names])
        for n, grad in zip(names, grads, strict=True):
            velocity[n] = grad if n not in velocity else momentum * velocity[n] + grad
            params[n] = params[n] - lr * velocity[n]
    return {n: p.numpy() for n, p in params.items()}


def _check_weights(
    train_one_epoch: Callable,
    model,
    loader,
    optimizer,
    expected: Mapping[str, np.ndarray],
    context: str,
) -> None:
    log, handles = _attach_spies(model, optimizer)
    try:
        _run(
            train_one_epoch,
            model,
            loader,
            optimizer,
            _loss_fn(),
            "cpu",
            what="train_one_epoch",
            code="train",
        )
    finally:
        for h in handles:
            h.remove()
    diagnose_loop(log)
    problem = compare_parameters(_params(model), expected)
    if problem:
        fail(
            "train.params",
            f"{context} : les poids après une époque diffèrent de ceux de la référence partie des "
            f"mêmes poids sur les mêmes lots ({problem}). Un seul `backward()` et un seul "
            "`step()` par lot, sur la perte moyenne du lot renvoyée par `loss_fn`.",
        )


def train_weights(train_one_epoch: Callable, seed: int = 1) -> None:
    """Mêmes poids initiaux, mêmes lots (4, 4, 2), SGD avec momentum : mêmes poids que l'oracle."""
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed)
    batches = [
        (X[i : i + BATCH_SIZE], y[i : i + BATCH_SIZE]) for i in range(0, N_SAMPLES, BATCH_SIZE)
    ]
    expected = _oracle_sgd(model, batches, LR, MOMENTUM)
    student = copy.deepcopy(model)
    _check_weights(
        train_one_epoch,
        student,
        _loader(X, y),
        _sgd(student),
        expected,
        f"`train_one_epoch` (SGD lr={LR}, momentum={MOMENTUM}, lots de 4, 4 et 2)",
    )


def train_weights_reference(train_one_epoch: Callable, seed: int) -> None:
    """Cas cachés : autres poids et lots (3, 3, 3, 2), SGD et Adam, comparés à la référence du cours."""
    torch = _torch()
    n, batch_size = 11, 3
    X, y = _mini_data(seed, n)
    model = _tiny_cnn(seed)
    batches = [(X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]
    student = copy.deepcopy(model)
    _check_weights(
        train_one_epoch,
        student,
        _loader(X, y, batch_size),
        _sgd(student, lr=0.05, momentum=0.5),
        _oracle_sgd(model, batches, 0.05, 0.5),
        "`train_one_epoch` (cas caché, SGD)",
    )
    ref = _solutions()
    if ref is None:
        return
    reference = copy.deepcopy(model)
    ref.ref_train_one_epoch(
        reference,
        _loader(X, y, batch_size),
        torch.optim.Adam(reference.parameters(), lr=0.01),
        _loss_fn(),
        "cpu",
    )
    student = copy.deepcopy(model)
    _check_weights(
        train_one_epoch,
        student,
        _loader(X, y, batch_size),
        torch.optim.Adam(student.parameters(), lr=0.01),
        _params(reference),
        "`train_one_epoch` (cas caché, Adam)",
    )


def train_mode(train_one_epoch: Callable, seed: int = 2) -> None:
    """Le modèle, reçu en mode évaluation, doit passer en mode entraînement (`model.train()`)."""
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed, dropout=0.25, batchnorm=True).eval()
    probe = _Probe(model)
    try:
        _run(
            train_one_epoch,
            model,
            _loader(X, y),
            _sgd(model),
            _loss_fn(),
            "cpu",
            what="train_one_epoch",
            code="train",
        )
    finally:
        probe.remove()
    if not probe.training:
        fail(
            "train.no_forward",
            "`train_one_epoch` n'appelle jamais le modèle sur les lots du `loader`.",
        )
    if not all(probe.training):
        fail(
            "train.mode",
            f"`train_one_epoch` a reçu un modèle en mode évaluation et l'a appelé "
            f"{probe.training.count(False)} fois sur {len(probe.training)} sans repasser en mode "
            "entraînement : dropout et batch-norm s'y comportent autrement. Appelez "
            "`model.train()` au début de la fonction.",
        )


def train_device(train_one_epoch: Callable, seed: int = 3) -> None:
    """Chaque lot (X et y) passe par `.to(device)` avant d'entrer dans le modèle et la perte."""
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed)
    probe = _Probe(model)
    unmoved_targets: list[int] = []
    try:
        _run(
            train_one_epoch,
            model,
            _loader(X, y, marked=True),
            _sgd(model),
            _loss_fn(unmoved_targets),
            "cpu",
            what="train_one_epoch",
            code="train",
        )
    finally:
        probe.remove()
    _expect_moved(probe, unmoved_targets, "train_one_epoch", "train")


def _expect_moved(probe: _Probe, unmoved_targets: list[int], what: str, code: str) -> None:
    if not probe.training:
        fail(f"{code}.no_forward", f"`{what}` n'appelle jamais le modèle sur les lots du `loader`.")
    parts = []
    if probe.unmoved_inputs:
        parts.append("les images `X`")
    if unmoved_targets:
        parts.append("les étiquettes `y`")
    if parts:
        fail(
            f"{code}.device",
            f"`{what}` : {' et '.join(parts)} n'ont pas été envoyé(e)s sur `device` : sur GPU, le "
            "modèle et les données ne seraient pas au même endroit. Écrivez "
            "`X, y = X.to(device), y.to(device)` au début de chaque lot.",
        )


@single_threaded
def public_train_one_epoch(train_one_epoch: Callable, points: float) -> Grader:
    g = Grader("train-one-epoch", points, "train_one_epoch")
    g.check(train_loss_average, train_one_epoch, name=TRAIN_LABELS["loss"])
    g.check(train_weights, train_one_epoch, name=TRAIN_LABELS["weights"])
    g.check(train_mode, train_one_epoch, name=TRAIN_LABELS["mode"])
    g.check(train_device, train_one_epoch, name=TRAIN_LABELS["device"])
    return g


@single_threaded
def hidden_train_one_epoch(g: Grader, train_one_epoch: Callable, seed: int) -> None:
    g.deepen(
        TRAIN_LABELS["loss"], train_loss_average, train_one_epoch, seed=seed, n=7, batch_size=3
    )
    g.deepen(TRAIN_LABELS["weights"], train_weights_reference, train_one_epoch, seed=seed)


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------

EVAL_LABELS = {
    "values": "perte moyenne par exemple et exactitude (fraction)",
    "mode": "modèle mis en mode évaluation",
    "no_grad": "passes avant sans gradient (`torch.no_grad()`)",
    "weights": "poids et gradients laissés intacts",
    "device": "lots envoyés sur `device`",
}


def _unpack_eval(got: Any) -> tuple[float, float]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        kind = type(got).__name__ + (
            f" de longueur {len(got)}" if isinstance(got, tuple | list) else ""
        )
        fail(
            "eval.return",
            f"`evaluate` doit renvoyer le couple `(perte_moyenne, precision)` ; reçu `{kind}`.",
        )
    loss = _as_float(
        got[0], what="evaluate", code="eval", expected="une perte moyenne `float` en premier"
    )
    acc = _as_float(
        got[1], what="evaluate", code="eval", expected="une exactitude `float` en second"
    )
    return loss, acc


def eval_values(
    evaluate: Callable, seed: int = 4, n: int = N_SAMPLES, batch_size: int = BATCH_SIZE
) -> None:
    """Perte moyenne par exemple et exactitude (entre 0 et 1) sur tout le jeu, dernier lot plus petit."""
    torch = _torch()
    X, y = _mini_data(seed, n)
    model = _tiny_cnn(seed).eval()
    with torch.no_grad():
        logits = model(X)
        # Labels chosen so that accuracy is neither 0 nor 1 and batches differ.
        y = torch.where(torch.arange(n) % 3 == 0, logits.argmax(1), y)
        losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        correct = (logits.argmax(1) == y).double()
    expected_loss, expected_acc = losses.mean().item(), correct.mean().item()
    got = _run(
        evaluate, model, _loader(X, y, batch_size), _loss_fn(), "cpu", what="evaluate", code="eval"
    )
    loss, acc = _unpack_eval(got)
    chunks = [slice(i, i + batch_size) for i in range(0, n, batch_size)]
    context = f"`evaluate` sur {n} exemples en lots de {batch_size} (le dernier plus petit)"
    if not same_number(acc, expected_acc):
        if same_number(acc, 100 * expected_acc) or same_number(acc, correct.sum().item()):
            fail(
                "eval.accuracy",
                f"{context} : l'exactitude doit être une fraction entre 0 et 1 (bonnes réponses / nombre d'exemples).",
            )
        if same_number(acc, mean_of_batch_means([correct[c].mean().item() for c in chunks])):
            fail(
                "eval.accuracy",
                f"{context} : exactitude moyennée par lot ; comptez les bonnes réponses sur tout le jeu puis divisez par le nombre d'exemples.",
            )
        fail(
            "eval.accuracy",
            f"{context} : exactitude incorrecte. Comptez `(logits.argmax(dim=1) == y).sum()` sur tous les lots, puis divisez par le nombre d'exemples.",
        )
    if not same_number(loss, expected_loss):
        if same_number(loss, mean_of_batch_means([losses[c].mean().item() for c in chunks])):
            fail(
                "eval.loss_average",
                f"{context} : vous renvoyez la moyenne des pertes des lots ; le dernier lot, plus petit, "
                "pèse alors trop. Additionnez `loss.item() * len(X)` puis divisez par le nombre d'exemples.",
            )
        fail(
            "eval.loss_average",
            f"{context} : la perte renvoyée n'est pas la perte moyenne par exemple.",
        )


def eval_mode(evaluate: Callable, seed: int = 5) -> None:
    """Le modèle, reçu en mode entraînement, doit passer en mode évaluation (`model.eval()`)."""
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed, dropout=0.25, batchnorm=True).train()
    probe = _Probe(model)
    try:
        _run(evaluate, model, _loader(X, y), _loss_fn(), "cpu", what="evaluate", code="eval")
    finally:
        probe.remove()
    if not probe.training:
        fail("eval.no_forward", "`evaluate` n'appelle jamais le modèle sur les lots du `loader`.")
    if any(probe.training):
        fail(
            "eval.mode",
            f"`evaluate` a appelé le modèle {sum(probe.training)} fois sur {len(probe.training)} en "
            "mode entraînement : le dropout resterait actif et la batch-norm modifierait ses "
            "statistiques. Appelez `model.eval()` au début de la fonction.",
        )


def eval_no_grad(evaluate: Callable, seed: int = 6) -> None:
    """Les passes avant se font sans graphe de gradient (`with torch.no_grad():`)."""
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed)
    probe = _Probe(model)
    try:
        _run(evaluate, model, _loader(X, y), _loss_fn(), "cpu", what="evaluate", code="eval")
    finally:
        probe.remove()
    if not probe.grad_enabled:
        fail("eval.no_forward", "`evaluate` n'appelle jamais le modèle sur les lots du `loader`.")
    if any(probe.grad_enabled):
        fail(
            "eval.no_grad",
            "`evaluate` calcule les sorties avec le suivi des gradients actif : PyTorch garde le "
            "graphe de calcul en mémoire pour rien. Placez la boucle dans `with torch.no_grad():`.",
        )


def eval_weights(evaluate: Callable, seed: int = 7) -> None:
    """Évaluer ne modifie ni les poids ni les tampons du modèle, et ne calcule pas de gradient."""
    torch = _torch()
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed)
    before = _state(model)
    _run(evaluate, model, _loader(X, y), _loss_fn(), "cpu", what="evaluate", code="eval")
    problem = compare_parameters(_state(model), before)
    if problem:
        fail(
            "eval.updates_weights",
            f"`evaluate` modifie le modèle ({problem}) : l'évaluation mesure le modèle, elle ne "
            "l'entraîne pas (pas de `backward()`, pas de `step()`, pas de modification des poids).",
        )
    if any(p.grad is not None and bool(torch.count_nonzero(p.grad)) for p in model.parameters()):
        fail(
            "eval.updates_weights",
            "`evaluate` calcule des gradients (`backward()`) : ils s'ajouteraient à ceux du prochain "
            "lot d'entraînement. L'évaluation ne fait que des passes avant.",
        )


def eval_device(evaluate: Callable, seed: int = 8) -> None:
    """Chaque lot (X et y) passe par `.to(device)` avant d'entrer dans le modèle et la perte."""
    X, y = _mini_data(seed)
    model = _tiny_cnn(seed)
    probe = _Probe(model)
    unmoved_targets: list[int] = []
    try:
        _run(
            evaluate,
            model,
            _loader(X, y, marked=True),
            _loss_fn(unmoved_targets),
            "cpu",
            what="evaluate",
            code="eval",
        )
    finally:
        probe.remove()
    _expect_moved(probe, unmoved_targets, "evaluate", "eval")


@single_threaded
def public_evaluate(evaluate: Callable, points: float) -> Grader:
    g = Grader("evaluate", points, "evaluate")
    g.check(eval_values, evaluate, name=EVAL_LABELS["values"])
    g.check(eval_mode, evaluate, name=EVAL_LABELS["mode"])
    g.check(eval_no_grad, evaluate, name=EVAL_LABELS["no_grad"])
    g.check(eval_weights, evaluate, name=EVAL_LABELS["weights"])
    g.check(eval_device, evaluate, name=EVAL_LABELS["device"])
    return g


@single_threaded
def hidden_evaluate(g: Grader, evaluate: Callable, seed: int) -> None:
    g.deepen(EVAL_LABELS["values"], eval_values, evaluate, seed=seed, n=7, batch_size=3)


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------

PREDICT_LABELS = {
    "values": "classes prédites (argmax des logits)",
    "mode": "prédiction en mode évaluation",
    "device": "images envoyées sur `device`",
}


def _predict_case(
    predict: Callable,
    seed: int,
    n: int,
    *,
    dropout: float = 0.0,
    train: bool = False,
    marked: bool = False,
):
    torch = _torch()
    X, _ = _mini_data(seed, n, classes=10)
    model = _tiny_cnn(seed, dropout=dropout, classes=10)
    with torch.no_grad():
        expected = model.eval()(X).argmax(1).numpy()
    model.train(train)
    probe = _Probe(model)
    x = X.as_subclass(_marker_class()) if marked else X
    try:
        got = _run(predict, model, x, "cpu", what="predict", code="predict")
    finally:
        probe.remove()
    return got, expected, probe


def _predicted_ids(got: Any, n: int) -> np.ndarray:
    from autograder.backends import to_numpy

    if got is None:
        fail("predict.type", "`predict` renvoie `None` : avez-vous oublié le `return` ?")
    try:
        arr = to_numpy(got)
    except Exception:  # noqa: BLE001
        fail(
            "predict.type",
            f"`predict` doit renvoyer un tenseur d'entiers ; reçu `{type(got).__name__}`.",
        )
    if arr.shape == (n, 10):
        fail(
            "predict.shape",
            f"`predict` renvoie une forme {arr.shape} : ce sont des scores par classe. Renvoyez la "
            "classe prédite de chaque image : `logits.argmax(dim=1)`, forme (N,).",
        )
    if arr.shape != (n,):
        fail(
            "predict.shape",
            f"`predict` sur {n} image(s) : forme {arr.shape}, attendu ({n},) (un numéro de classe par image).",
        )
    if not np.issubdtype(arr.dtype, np.integer):
        fail(
            "predict.type",
            f"`predict` renvoie des valeurs de type `{arr.dtype}` : attendu des numéros de classe entiers (`argmax`).",
        )
    return arr


def predict_values(predict: Callable, seed: int = 9, n: int = 16) -> None:
    """Un lot d'images : un numéro de classe entier par image, l'argmax des logits du modèle."""
    got, expected, _ = _predict_case(predict, seed, n)
    arr = _predicted_ids(got, n)
    wrong = int((arr != expected).sum())
    if wrong:
        fail(
            "predict.values",
            f"`predict` sur {n} images : {wrong} classe(s) différente(s) de l'argmax des logits du modèle.",
        )


def predict_mode(predict: Callable, seed: int = 10, n: int = 64) -> None:
    """Un modèle à dropout reçu en mode entraînement : les prédictions sont celles du mode évaluation."""
    _, _, probe = _predict_case(predict, seed, n, dropout=0.5, train=True)
    if not probe.training:
        fail("predict.no_forward", "`predict` n'appelle pas le modèle.")
    if any(probe.training):
        fail(
            "predict.mode",
            "`predict` a utilisé le modèle en mode entraînement (dropout actif : prédictions au "
            "hasard). Appelez `model.eval()` avant de prédire.",
        )


def predict_device(predict: Callable, seed: int = 11, n: int = 8) -> None:
    """Les images passent par `.to(device)` avant d'entrer dans le modèle."""
    got, _, probe = _predict_case(predict, seed, n, marked=True)
    if not probe.training:
        fail("predict.no_forward", "`predict` n'appelle pas le modèle.")
    if probe.unmoved_inputs:
        fail(
            "predict.device",
            "`predict` : les images n'ont pas été envoyées sur `device` (`x.to(device)`).",
        )


@single_threaded
def public_predict(predict: Callable, points: float) -> Grader:
    g = Grader("predict", points, "predict")
    g.check(predict_values, predict, name=PREDICT_LABELS["values"])
    g.check(predict_mode, predict, name=PREDICT_LABELS["mode"])
    g.check(predict_device, predict, name=PREDICT_LABELS["device"])
    return g


@single_threaded
def hidden_predict(g: Grader, predict: Callable, seed: int) -> None:
    g.deepen(PREDICT_LABELS["values"], predict_values, predict, seed=seed, n=1)
