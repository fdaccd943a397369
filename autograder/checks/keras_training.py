"""Checks for module 4 (TensorFlow / Keras), notebook `cnn_keras`: compiling and training.

What the student writes and what is checked here:

- ``compile_model(model, from_logits)``: an optimizer, a loss consistent with integer labels and
  with the model's last activation (logits + ``from_logits=True`` or softmax +
  ``from_logits=False``: both accepted), an accuracy metric — read from what Keras computes;
- ``train_step(model, optimizer, loss_fn, x, y)`` and ``train_epoch(model, dataset, optimizer,
  loss_fn)``: a custom loop with ``tf.GradientTape``. From the same initial weights and the same
  deterministic mini data set, it must end with the weights and losses of Keras' own
  ``model.train_on_batch`` (and of the course's reference in ``solutions`` for hidden checks);
  behaviour checks name the classic bugs (tape, ``training=True``, ``apply_gradients``, the
  optimizer not used, the mean over an epoch whose last batch is smaller);
- ``evaluate_epoch(model, dataset, loss_fn)``: loss and accuracy in inference mode, weights
  untouched;
- ``fit_and_evaluate(...)``: ``fit`` with a validation split, then ``evaluate`` on the test set;
- ``predict_classes(model, x)``: class ids from logits or probabilities;
- the notebook's trained model reaches :data:`ACCURACY_BAR` on the Fashion-MNIST test set.

An optimizer handed to the student is wrapped by a spy that records the (gradient, variable)
pairs it receives: that is how a gradient computed outside the tape (``None``), variables in
the wrong order or a step done by hand are told apart. TensorFlow is imported inside the checks.

Failure codes: ``compile.*``, ``train.*``, ``eval.*``, ``fit.*``, ``predict.*``, ``trained.*``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from autograder.backends import backend
from autograder.checks._core import call_student, close, expect_array, reference, rng, tolerance
from autograder.checks.keras_models import SPEC, SPEC_PARAMS, canonical_layers
from autograder.feedback import CheckFailure, Grader, NotAttempted, fail, fr_number

#: Test accuracy the notebook's model must reach. The reference (20 000 images, 2 epochs, Adam
#: 1e-3, batches of 64) measured 83.1-84.6 % over 11 seeds (0-9, 42) on 2 CPU cores: 5 points
#: of margin for seeds, platforms and GPU non-determinism.
ACCURACY_BAR = 0.78

#: Training by Keras itself inside a function that asks for a hand-written loop earns nothing.
FORBIDDEN_FIT = ("keras.Model.fit", "keras.Model.train_on_batch")
FORBIDDEN_EVAL = ("keras.Model.evaluate", "keras.Model.test_on_batch")

N_CLASSES = 3
IMAGE = 8


def _tf() -> tuple[Any, Any]:
    """``(tensorflow, keras)``, imported quietly through the TF adapter."""
    backend("tf")
    import keras
    import tensorflow as tf

    return tf, keras


def _solutions() -> Any | None:
    return reference("keras_cnn")


_rng = rng


# ---------------------------------------------------------------------------------------------
# Small models and data, deterministic without touching the global seeds of the notebook
# ---------------------------------------------------------------------------------------------


def tiny_model(
    seed: int, *, batchnorm: bool = False, dropout: bool = False, softmax: bool = False
) -> Any:
    """Conv(4)[-BN]-Pool-Flatten[-Dropout]-Dense(3) on 8×8×1 images, seeded initial weights."""
    _, keras = _tf()
    layers = keras.layers
    init = keras.initializers
    stack: list[Any] = [
        keras.Input(shape=(IMAGE, IMAGE, 1)),
        layers.Conv2D(
            4,
            3,
            activation="relu",
            kernel_initializer=init.GlorotUniform(seed=seed),
            bias_initializer=init.RandomNormal(stddev=0.1, seed=seed + 1),
        ),
    ]
    if batchnorm:
        stack.append(layers.BatchNormalization())
    stack += [layers.MaxPooling2D(2), layers.Flatten()]
    if dropout:
        stack.append(layers.Dropout(0.5, seed=seed))
    stack.append(
        layers.Dense(
            N_CLASSES,
            activation="softmax" if softmax else None,
            kernel_initializer=init.GlorotUniform(seed=seed + 2),
        )
    )
    model = keras.Sequential(stack)
    # Tiny models run eagerly in fit / evaluate / predict: tracing a tf.function would cost more
    # than the work itself (`compile` resets it: the checks set it again after compiling).
    model.run_eagerly = True
    if batchnorm:
        # Moving statistics away from (0, 1), so that inference and training modes differ.
        bn = next(
            layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"
        )
        rng = _rng(seed + 3)
        bn.moving_mean.assign(rng.normal(scale=0.5, size=4).astype(np.float32))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=4).astype(np.float32))
    return model


def mini_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.normal(size=(n, IMAGE, IMAGE, 1)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, size=n).astype(np.int32)
    return x, y


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int) -> Any:
    tf, _ = _tf()
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def batches_of(
    x: np.ndarray, y: np.ndarray, batch_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def make_loss() -> Any:
    _, keras = _tf()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_optimizer(kind: str) -> Any:
    _, keras = _tf()
    if kind == "sgd":
        return keras.optimizers.SGD(learning_rate=0.1)
    if kind == "momentum":
        return keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    raise ValueError(kind)


def clone(model: Any) -> Any:
    """A copy of ``model`` with the same weights (non-trainable ones included)."""
    _, keras = _tf()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _train_on_batch() -> Callable:
    """Keras' own ``train_on_batch``, taken before any forbidden-call patching."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    return TensorFlowTrainer.train_on_batch


def keras_trainer(model: Any, optimizer_kind: str) -> Any:
    """A clone of ``model`` compiled to take Keras' training steps (the visible oracle)."""
    trainer = clone(model)
    trainer.compile(optimizer=make_optimizer(optimizer_kind), loss=make_loss(), run_eagerly=True)
    return trainer


def keras_step(trainer: Any, x: np.ndarray, y: np.ndarray) -> float:
    out = _train_on_batch()(trainer, x, y)
    return float(np.ravel(np.asarray(out, dtype=np.float64))[0])


def _call_loop(fn: Callable, *args: Any, what: str, code: str, forbidden: tuple[str, ...]) -> Any:
    """``call_student`` with a message fit for training loops when Keras' own loop is used."""
    try:
        return call_student(fn, *args, what=what, code=code, forbidden=forbidden)
    except CheckFailure as exc:
        if exc.code.endswith(".framework_used"):
            used = exc.message.split(" : ", 1)[0]
            fail(
                exc.code,
                f"{used} : l'exercice demande d'écrire la boucle vous-même avec `tf.GradientTape` "
                "(ce que `fit`, `train_on_batch` et `evaluate` font en coulisses). Cette "
                "vérification ne rapporte pas de point tant que la méthode toute faite est utilisée.",
            )
        raise


def _scalar(got: Any, *, what: str, code: str) -> float:
    if got is None:
        fail(
            f"{code}.type",
            f"`{what}` renvoie `None` : renvoyez la perte (avez-vous oublié le `return` ?).",
        )
    try:
        arr = np.asarray(got.numpy() if hasattr(got, "numpy") else got, dtype=np.float64)
    except (TypeError, ValueError):
        fail(
            f"{code}.type",
            f"`{what}` doit renvoyer un nombre (la perte) ; reçu `{type(got).__name__}`.",
        )
    if arr.size != 1:
        fail(
            f"{code}.type",
            f"`{what}` renvoie un tableau de forme {arr.shape} : renvoyez un seul nombre, la perte "
            "moyenne (la perte de Keras est déjà moyennée sur le lot).",
        )
    return float(arr.ravel()[0])


def _close_scalar(a: float, b: float) -> bool:
    rtol, atol = tolerance("float32")
    return bool(np.isclose(a, b, rtol=rtol, atol=atol))


def _weights_close(got: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    return len(got) == len(expected) and all(
        close(g, e, "float32") for g, e in zip(got, expected, strict=True)
    )


def _trainable_mask(model: Any) -> list[bool]:
    trainable = {id(v) for v in model.trainable_weights}
    return [id(v) in trainable for v in model.weights]


# ---------------------------------------------------------------------------------------------
# The optimizer spy
# ---------------------------------------------------------------------------------------------


class OptimizerSpy:
    """Records the gradients and variables given to ``optimizer.apply_gradients`` / ``apply``."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer
        self.calls: list[tuple[list[Any], list[Any]]] = []
        self._depth = 0
        apply_gradients, apply = optimizer.apply_gradients, optimizer.apply

        def spy_apply_gradients(grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
            pairs = list(grads_and_vars)
            self.calls.append(([g for g, _ in pairs], [v for _, v in pairs]))
            self._depth += 1
            try:
                return apply_gradients(pairs, *args, **kwargs)
            finally:
                self._depth -= 1

        def spy_apply(
            grads: Any, trainable_variables: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            grads = list(grads)
            if self._depth == 0:
                variables = (
                    list(trainable_variables)
                    if trainable_variables is not None
                    else list(getattr(optimizer, "_trainable_variables", []))
                )
                self.calls.append((grads, variables))
            return apply(grads, trainable_variables, *args, **kwargs)

        optimizer.apply_gradients = spy_apply_gradients
        optimizer.apply = spy_apply

    def diagnose(self, model: Any, weights_before: list[np.ndarray], *, what: str) -> None:
        """Fail with the code of the first misuse of the optimizer seen, if any."""
        trainable = model.trainable_variables
        ids = {id(v) for v in trainable}
        if not self.calls:
            mask = _trainable_mask(model)
            now = model.get_weights()
            moved = any(
                t and not close(a, b, "float32")
                for a, b, t in zip(now, weights_before, mask, strict=True)
            )
            if moved:
                fail(
                    "train.optimizer",
                    f"`{what}` modifie les poids sans passer par l'optimiseur reçu : utilisez "
                    "`optimizer.apply_gradients(zip(grads, model.trainable_variables))` (l'optimiseur "
                    "peut avoir un élan, un pas adaptatif comme Adam… qu'une mise à jour à la main ignore).",
                )
            fail(
                "train.apply",
                f"`{what}` n'appelle jamais `optimizer.apply_gradients` : les poids ne bougent pas. "
                "Après `tape.gradient`, appliquez les gradients avec l'optimiseur.",
            )
        covered: set[int] = set()
        any_none = False
        for grads, variables in self.calls:
            if len(grads) != len(variables):
                fail(
                    "train.apply",
                    f"`{what}` donne {len(grads)} gradients pour {len(variables)} variables à "
                    "l'optimiseur : passez `zip(grads, model.trainable_variables)`.",
                )
            for g, v in zip(grads, variables, strict=True):
                if id(v) not in ids:
                    fail(
                        "train.apply",
                        f"`{what}` donne à l'optimiseur une variable (`{getattr(v, 'path', getattr(v, 'name', '?'))}`) "
                        "qui n'est pas un poids entraînable du modèle : utilisez "
                        "`model.trainable_variables` (et non `model.weights`, qui contient aussi "
                        "les statistiques de BatchNormalization) pour le gradient et pour l'optimiseur.",
                    )
                if g is not None and tuple(g.shape) != tuple(v.shape):
                    fail(
                        "train.apply",
                        f"`{what}` applique un gradient de forme {tuple(g.shape)} à une variable de "
                        f"forme {tuple(v.shape)} : les gradients et les variables ne sont pas appariés. "
                        "Calculez `tape.gradient(loss, model.trainable_variables)` et passez la même "
                        "liste à `apply_gradients`.",
                    )
                any_none = any_none or g is None
                covered.add(id(v))
        if any_none:
            fail(
                "train.tape",
                f"dans `{what}`, `tape.gradient` renvoie `None` : la passe avant (`model(x, "
                "training=True)`) et la perte doivent être calculées à l'intérieur du bloc "
                "`with tf.GradientTape() as tape:`, qui enregistre les opérations sur les poids.",
            )
        if covered != ids:
            fail(
                "train.apply",
                f"`{what}` ne met à jour que {len(covered & ids)} des {len(ids)} poids entraînables : "
                "le gradient doit être calculé et appliqué pour tous les `model.trainable_variables`.",
            )


# ---------------------------------------------------------------------------------------------
# 4.4 compile_model
# ---------------------------------------------------------------------------------------------


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).lower()


def _compile_case(
    compile_model: Callable, *, from_logits: bool, seed: int, softmax_layer: bool = False
) -> None:
    tf, keras = _tf()
    model = tiny_model(seed, softmax=not from_logits and not softmax_layer)
    if softmax_layer:
        model = keras.Sequential([*model.layers, keras.layers.Softmax()])
    pairing = (
        "des logits (pas d'activation finale)"
        if from_logits
        else "des probabilités (softmax final)"
    )
    what = f"`compile_model(model, from_logits={from_logits})` sur un modèle qui sort {pairing}"
    got = call_student(compile_model, model, from_logits, what="compile_model", code="compile")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        if isinstance(got, keras.Model) and got is not model:
            fail(
                "compile.in_place",
                f"{what} : compilez le modèle reçu (`model.compile(...)`), pas une copie.",
            )
        fail(
            "compile.not_compiled",
            f"{what} : le modèle n'est pas compilé. Appelez `model.compile(...)`.",
        )
    if not isinstance(model.optimizer, keras.optimizers.Optimizer):
        fail(
            "compile.optimizer",
            f"{what} : pas d'optimiseur Keras (reçu `{type(model.optimizer).__name__}`).",
        )
    x, y = mini_data(seed + 10, 24)
    # A plain tensor: Keras tags a softmax output with its logits (``_keras_logits``) and then
    # silently repairs `from_logits=True` in that one case; the check reads the loss as compiled.
    y_pred = tf.constant(np.asarray(model(x, training=False)))
    name = _loss_name(model.loss)
    labels_hint = (
        "Les étiquettes sont des entiers (0 à 9) : utilisez `SparseCategoricalCrossentropy` "
        "(`CategoricalCrossentropy` attend des vecteurs one-hot)."
    )
    try:
        value = float(model.compute_loss(x=x, y=y, y_pred=y_pred))
    except Exception as exc:  # noqa: BLE001 - an inconsistent loss raises inside Keras
        if "categorical" in name and "sparse" not in name:
            fail(
                "compile.loss_labels",
                f"{what} : la perte `{name}` échoue sur des étiquettes entières. {labels_hint}",
            )
        fail(
            "compile.loss",
            f"{what} : la perte ne se calcule pas ({type(exc).__name__}). {labels_hint}",
        )
    expected = float(keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(y, y_pred))
    flipped = float(
        keras.losses.SparseCategoricalCrossentropy(from_logits=not from_logits)(y, y_pred)
    )
    if not _close_scalar(value, expected):
        if _close_scalar(value, flipped):
            fail(
                "compile.from_logits",
                f"{what} : la perte est calculée avec `from_logits={not from_logits}`. "
                + (
                    "Le modèle sort des logits : la perte doit appliquer le softmax elle-même, "
                    "`from_logits=True`."
                    if from_logits
                    else "Le modèle applique déjà le softmax : `from_logits=False`, sinon le softmax "
                    "est appliqué deux fois (Keras le corrige parfois avec un avertissement, mais "
                    "pas en général)."
                )
                + " Utilisez l'argument `from_logits` de `compile_model`.",
            )
        if "categorical" in name and "sparse" not in name:
            fail("compile.loss_labels", f"{what} : perte `{name}`. {labels_hint}")
        fail(
            "compile.loss",
            f"{what} : la perte compilée ne vaut pas l'entropie croisée des étiquettes entières. {labels_hint}",
        )
    model.run_eagerly = True
    # Two label sets whose accuracy is known exactly (1 and 1/2): a metric that is not the
    # accuracy of integer labels (e.g. `categorical_accuracy`) cannot match both by chance.
    predicted = np.argmax(np.asarray(y_pred), axis=-1).astype(np.int32)
    half = predicted.copy()
    half[::2] = (half[::2] + 1) % N_CLASSES
    runs = [
        (model.evaluate(x, labels, verbose=0, return_dict=True), target)
        for labels, target in ((predicted, 1.0), (half, 0.5))
    ]
    keys = [k for k in runs[0][0] if k != "loss"]
    if not keys:
        fail("compile.metrics", f"{what} : aucune métrique. Ajoutez `metrics=['accuracy']`.")
    if not any(all(abs(float(np.ravel(r[k])[0]) - t) < 1e-6 for r, t in runs) for k in keys):
        fail(
            "compile.metrics",
            f"{what} : la métrique {', '.join(f'`{k}`' for k in keys)} ne donne pas l'exactitude "
            "(accuracy) sur des étiquettes entières : utilisez `metrics=['accuracy']` "
            "(`categorical_accuracy` attend des vecteurs one-hot).",
        )


def compile_logits(compile_model: Callable) -> None:
    """Modèle qui sort des logits, `from_logits=True` : optimiseur, perte, exactitude."""
    _compile_case(compile_model, from_logits=True, seed=20)


def compile_softmax(compile_model: Callable) -> None:
    """Modèle terminé par un softmax, `from_logits=False` : optimiseur, perte, exactitude."""
    _compile_case(compile_model, from_logits=False, seed=21)


def compile_random(compile_model: Callable, seed: int) -> None:
    """Autres modèles (dont une couche `Softmax` séparée), les deux associations."""
    _compile_case(compile_model, from_logits=True, seed=seed)
    _compile_case(compile_model, from_logits=False, seed=seed + 1, softmax_layer=True)


def public_compile_model(compile_model: Callable, points: float) -> Grader:
    g = Grader("compile", points, "compile_model")
    g.check(compile_logits, compile_model, name="logits + from_logits=True")
    g.check(compile_softmax, compile_model, name="softmax + from_logits=False")
    return g


def hidden_compile_model(g: Grader, compile_model: Callable, seed: int) -> None:
    g.hidden().check(compile_random, compile_model, seed, name="autres modèles")


# ---------------------------------------------------------------------------------------------
# 4.5 train_step
# ---------------------------------------------------------------------------------------------


def _reference_steps(
    model: Any, batches: list, optimizer_kind: str, *, hidden: bool
) -> tuple[list[float], list[list[np.ndarray]]]:
    """Losses and weights after each correct step from ``model``'s weights (Keras, + solutions)."""
    trainer = keras_trainer(model, optimizer_kind)
    losses, weights = [], []
    for xb, yb in batches:
        losses.append(keras_step(trainer, xb, yb))
        weights.append(trainer.get_weights())
    ref = _solutions() if hidden else None
    if ref is not None:
        other = clone(model)
        optimizer, loss_fn = make_optimizer(optimizer_kind), make_loss()
        for (xb, yb), loss, expected in zip(batches, losses, weights, strict=True):
            value = float(ref.ref_train_step(other, optimizer, loss_fn, xb, yb))
            if not (_close_scalar(value, loss) and _weights_close(other.get_weights(), expected)):
                raise RuntimeError(
                    "la référence `solutions` et `train_on_batch` de Keras ne concordent pas"
                )
    return losses, weights


def _step_case(
    train_step: Callable,
    *,
    seed: int,
    batchnorm: bool,
    optimizer_kind: str,
    batch_sizes: tuple[int, ...],
    hidden: bool,
) -> None:
    tf, _ = _tf()
    model = tiny_model(seed, batchnorm=batchnorm)
    x, y = mini_data(seed + 1, sum(batch_sizes))
    starts = np.cumsum((0, *batch_sizes))
    batches = [(x[a:b], y[a:b]) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    expected_losses, expected_weights = _reference_steps(
        model, batches, optimizer_kind, hidden=hidden
    )
    optimizer, loss_fn = make_optimizer(optimizer_kind), make_loss()
    optimizer.build(model.trainable_variables)
    spy = OptimizerSpy(optimizer)
    kind = "avec BatchNormalization" if batchnorm else "sans BatchNormalization"
    mask = _trainable_mask(model)
    for step, (xb, yb) in enumerate(batches):
        what = f"`train_step` (pas n° {step + 1}, lot de {len(yb)}, petit CNN {kind})"
        before = model.get_weights()
        calls = len(spy.calls)
        try:
            got = _call_loop(
                train_step,
                model,
                optimizer,
                loss_fn,
                tf.constant(xb),
                tf.constant(yb),
                what="train_step",
                code="train",
                forbidden=FORBIDDEN_FIT,
            )
        except CheckFailure as exc:
            if exc.code == "train.exception":
                spy.diagnose(model, before, what="train_step")
            raise
        loss = _scalar(got, what="train_step", code="train")
        if step == 0 or len(spy.calls) > calls:  # a tf.function runs the spy once, when traced
            spy.diagnose(model, before, what="train_step")
        after = model.get_weights()
        if not _weights_close(after, expected_weights[step]):
            if batchnorm and all(
                np.array_equal(a, b) for a, b, t in zip(after, before, mask, strict=True) if not t
            ):
                fail(
                    "train.mode",
                    f"{what} : les statistiques de BatchNormalization n'ont pas bougé : le modèle a "
                    "été appelé en mode inférence. Pendant l'entraînement, appelez `model(x, "
                    "training=True)` (Dropout et BatchNormalization se comportent autrement à "
                    "l'entraînement).",
                )
            deltas = [
                (a - b, e - b)
                for a, b, e, t in zip(after, before, expected_weights[step], mask, strict=True)
                if t
            ]
            if all(close(d, -e, "float32") for d, e in deltas):
                fail(
                    "train.gradient_sign",
                    f"{what} : les poids bougent dans le sens opposé : l'optimiseur soustrait déjà "
                    "le gradient, ne le changez pas de signe.",
                )
            fail(
                "train.weights",
                f"{what} : après le pas, les poids diffèrent de ceux de `model.train_on_batch` "
                "partant des mêmes poids. Vérifiez la perte utilisée (`loss_fn(y, logits)`, "
                "étiquettes d'abord) et que chaque appel fait exactement un pas.",
            )
        if not _close_scalar(loss, expected_losses[step]):
            fail(
                "train.loss_value",
                f"{what} : la perte renvoyée ne correspond pas à la perte du lot calculée avant la "
                "mise à jour. Renvoyez la valeur de `loss_fn(y, logits)` calculée dans le bloc "
                "`GradientTape`.",
            )


def train_step_sgd(train_step: Callable) -> None:
    """Un pas de SGD sur un petit CNN : perte et poids comparés à `model.train_on_batch` de Keras."""
    _step_case(
        train_step, seed=30, batchnorm=False, optimizer_kind="sgd", batch_sizes=(8,), hidden=False
    )


def train_step_batchnorm(train_step: Callable) -> None:
    """Mode entraînement : CNN avec BatchNormalization, statistiques mises à jour comme par Keras."""
    _step_case(
        train_step, seed=31, batchnorm=True, optimizer_kind="sgd", batch_sizes=(8,), hidden=False
    )


def train_step_momentum(train_step: Callable, seed: int) -> None:
    """Trois pas avec un SGD à élan (l'optimiseur reçu doit être utilisé), lots de tailles différentes."""
    _step_case(
        train_step,
        seed=seed,
        batchnorm=False,
        optimizer_kind="momentum",
        batch_sizes=(6, 6, 3),
        hidden=True,
    )


def train_step_reference(train_step: Callable, seed: int) -> None:
    """Comparaison avec la référence du cours : BatchNormalization, deux pas, SGD à élan."""
    _step_case(
        train_step,
        seed=seed + 1,
        batchnorm=True,
        optimizer_kind="momentum",
        batch_sizes=(7, 5),
        hidden=True,
    )


def public_train_step(train_step: Callable, points: float) -> Grader:
    g = Grader("train-step", points, "train_step")
    g.check(train_step_sgd, train_step, name="un pas comparé à Keras")
    g.check(train_step_batchnorm, train_step, name="mode entraînement (BatchNormalization)")
    return g


def hidden_train_step(g: Grader, train_step: Callable, seed: int) -> None:
    g.hidden()
    g.check(train_step_momentum, train_step, seed, name="optimiseur à élan, plusieurs pas")
    g.check(train_step_reference, train_step, seed, name="référence du cours")


# ---------------------------------------------------------------------------------------------
# 4.5 train_epoch
# ---------------------------------------------------------------------------------------------


def correct_step_for(trainers: dict[int, Any]) -> Callable:
    """A correct ``train_step`` (Keras' ``train_on_batch``) to lend to the student's epoch loop.

    ``train_epoch`` is graded on its own: the student's ``train_step`` is swapped for this one
    while it runs, so a bug in ``train_step`` costs points in its own cell only.
    """
    tf, _ = _tf()
    train_on_batch = _train_on_batch()

    def train_step(model, optimizer, loss_fn, x, y):
        key = id(model)
        if key not in trainers or trainers[key][1:] != (id(optimizer), id(loss_fn)):
            model.compile(optimizer=optimizer, loss=loss_fn, run_eagerly=True)
            trainers[key] = (model, id(optimizer), id(loss_fn))
        # This step is the course's, not the student's: hide it from the forbidden-call profiler
        # that `call_student` runs around the student's `train_epoch`.
        profiler = sys.getprofile()
        sys.setprofile(None)
        try:
            out = train_on_batch(model, x, y)
        finally:
            sys.setprofile(profiler)
        return tf.constant(float(np.ravel(np.asarray(out))[0]), dtype=tf.float32)

    return train_step


@contextlib.contextmanager
def lend_step(fn: Callable, name: str, replacement: Callable) -> Iterator[None]:
    """Replace the global ``name`` seen by ``fn`` (the notebook's namespace) for a while."""
    namespace = getattr(fn, "__globals__", None)
    if not isinstance(namespace, dict) or name not in namespace:
        yield
        return
    saved = namespace[name]
    namespace[name] = replacement
    try:
        yield
    finally:
        namespace[name] = saved


def _epoch_case(
    train_epoch: Callable,
    *,
    seed: int,
    n: int,
    batch_size: int,
    batchnorm: bool,
    optimizer_kind: str,
    hidden: bool,
) -> None:
    model = tiny_model(seed, batchnorm=batchnorm)
    x, y = mini_data(seed + 1, n)
    batches = batches_of(x, y, batch_size)
    sizes = [len(b[1]) for b in batches]
    trainer = keras_trainer(model, optimizer_kind)
    batch_losses, after_first = [], None
    for xb, yb in batches:
        batch_losses.append(keras_step(trainer, xb, yb))
        after_first = after_first or trainer.get_weights()
    expected_weights = trainer.get_weights()
    expected = float(np.average(batch_losses, weights=sizes))
    ref = _solutions() if hidden else None
    if ref is not None:
        other = clone(model)
        value = ref.ref_train_epoch(
            other, make_dataset(x, y, batch_size), make_optimizer(optimizer_kind), make_loss()
        )
        if not (
            _close_scalar(value, expected) and _weights_close(other.get_weights(), expected_weights)
        ):
            raise RuntimeError(
                "la référence `solutions` et `train_on_batch` de Keras ne concordent pas"
            )

    before = model.get_weights()
    optimizer, loss_fn = make_optimizer(optimizer_kind), make_loss()
    optimizer.build(model.trainable_variables)
    what = f"`train_epoch` ({n} exemples en lots de {batch_size} : {'+'.join(map(str, sizes))})"
    with lend_step(train_epoch, "train_step", correct_step_for({})):
        got = _call_loop(
            train_epoch,
            model,
            make_dataset(x, y, batch_size),
            optimizer,
            loss_fn,
            what="train_epoch",
            code="train",
            forbidden=FORBIDDEN_FIT,
        )
    value = _scalar(got, what="train_epoch", code="train")
    after = model.get_weights()
    if not _weights_close(after, expected_weights):
        if _weights_close(after, after_first):
            fail(
                "train.epoch_incomplete",
                f"{what} : seul le premier lot a servi à l'entraînement. Le `return` est-il dans la "
                "boucle `for` ? Il doit venir après elle.",
            )
        if _weights_close(after, before):
            fail(
                "train.epoch_weights",
                f"{what} : les poids n'ont pas bougé. Appelez `train_step` sur chaque lot.",
            )
        fail(
            "train.epoch_weights",
            f"{what} : après l'époque, les poids diffèrent de ceux de Keras partant des mêmes poids : "
            "chaque lot du `dataset` doit servir une fois, dans l'ordre, à un pas de `train_step`.",
        )
    if not _close_scalar(value, expected):
        if _close_scalar(value, float(np.mean(batch_losses))):
            fail(
                "train.loss_average",
                f"{what} : vous faites la moyenne des pertes des lots, mais le dernier lot est plus "
                "petit. La perte moyenne de l'époque est la moyenne par exemple : additionnez "
                "`perte_du_lot × taille_du_lot`, puis divisez par le nombre total d'exemples.",
            )
        fail(
            "train.loss_value",
            f"{what} : la valeur renvoyée n'est pas la perte moyenne par exemple sur l'époque "
            "(moyenne des pertes des lots pondérée par la taille des lots).",
        )


def train_epoch_basic(train_epoch: Callable) -> None:
    """Une époque sur 20 exemples en lots de 8 (dernier lot de 4) : poids et perte moyenne comparés à Keras."""
    _epoch_case(
        train_epoch,
        seed=40,
        n=20,
        batch_size=8,
        batchnorm=False,
        optimizer_kind="sgd",
        hidden=False,
    )


def train_epoch_random(train_epoch: Callable, seed: int) -> None:
    """Autres tailles de lots, BatchNormalization, SGD à élan, comparés à Keras et à la référence."""
    _epoch_case(
        train_epoch,
        seed=seed,
        n=23,
        batch_size=5,
        batchnorm=True,
        optimizer_kind="momentum",
        hidden=True,
    )
    _epoch_case(
        train_epoch,
        seed=seed + 1,
        n=16,
        batch_size=16,
        batchnorm=False,
        optimizer_kind="sgd",
        hidden=True,
    )


def public_train_epoch(train_epoch: Callable, points: float) -> Grader:
    g = Grader("train-epoch", points, "train_epoch")
    g.check(train_epoch_basic, train_epoch, name="une époque comparée à Keras")
    return g


def hidden_train_epoch(g: Grader, train_epoch: Callable, seed: int) -> None:
    g.hidden().check(
        train_epoch_random, train_epoch, seed, name="autres lots, BatchNormalization, élan"
    )


# ---------------------------------------------------------------------------------------------
# 4.5 evaluate_epoch
# ---------------------------------------------------------------------------------------------


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(y)), y]


def _eval_case(evaluate_epoch: Callable, *, seed: int, n: int, batch_size: int) -> None:
    model = tiny_model(seed, batchnorm=True, dropout=True)
    x, y = mini_data(seed + 1, n)
    logits = np.asarray(model(x, training=False))
    per_example = _cross_entropy(logits, y)
    expected_loss = float(per_example.mean())
    batch_means = [per_example[i : i + batch_size].mean() for i in range(0, n, batch_size)]
    expected_acc = float(np.mean(np.argmax(logits, axis=-1) == y))
    before = model.get_weights()
    mask = _trainable_mask(model)
    what = f"`evaluate_epoch` ({n} exemples en lots de {batch_size})"
    got = _call_loop(
        evaluate_epoch,
        model,
        make_dataset(x, y, batch_size),
        make_loss(),
        what="evaluate_epoch",
        code="eval",
        forbidden=FORBIDDEN_EVAL,
    )
    if not isinstance(got, tuple | list) or len(got) != 2:
        fail(
            "eval.type",
            f"{what} doit renvoyer le couple `(perte_moyenne, precision)` ; reçu `{type(got).__name__}`.",
        )
    after = model.get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(after, before, strict=True)]
    if any(c and t for c, t in zip(changed, mask, strict=True)):
        fail(
            "eval.updates_weights",
            f"{what} : les poids entraînables ont changé pendant l'évaluation. L'évaluation ne "
            "calcule ni gradient ni pas d'optimiseur : seulement `model(x, training=False)` et la perte.",
        )
    if any(changed):
        fail(
            "eval.mode",
            f"{what} : les statistiques de BatchNormalization ont changé : le modèle a été appelé "
            "en mode entraînement. Évaluez avec `model(x, training=False)`.",
        )
    loss = _scalar(got[0], what="evaluate_epoch (perte)", code="eval")
    acc = _scalar(got[1], what="evaluate_epoch (exactitude)", code="eval")
    if not _close_scalar(loss, expected_loss):
        if _close_scalar(loss, float(np.mean(batch_means))):
            fail(
                "eval.loss_average",
                f"{what} : perte moyenne des lots, alors que le dernier lot est plus petit : "
                "pondérez chaque perte de lot par la taille du lot.",
            )
        fail(
            "eval.loss_value",
            f"{what} : la perte renvoyée n'est pas la perte moyenne par exemple en mode inférence.",
        )
    if not abs(acc - expected_acc) < 1e-6:
        hint = " Elle doit être entre 0 et 1 (pas en %)." if acc > 1 else ""
        fail(
            "eval.accuracy",
            f"{what} : l'exactitude renvoyée ({fr_number(acc, '.4g')}) n'est pas la proportion d'exemples dont la "
            f"classe prédite (`argmax` sur le dernier axe) est la bonne.{hint}",
        )


def evaluate_basic(evaluate_epoch: Callable) -> None:
    """20 exemples en lots de 8 : perte moyenne et exactitude, modèle avec Dropout et BatchNormalization."""
    _eval_case(evaluate_epoch, seed=50, n=20, batch_size=8)


def evaluate_random(evaluate_epoch: Callable, seed: int) -> None:
    """Autres tailles de lots ; poids et statistiques inchangés."""
    _eval_case(evaluate_epoch, seed=seed, n=29, batch_size=6)


def public_evaluate_epoch(evaluate_epoch: Callable, points: float) -> Grader:
    g = Grader("evaluate-epoch", points, "evaluate_epoch")
    g.check(evaluate_basic, evaluate_epoch, name="perte, exactitude, poids intacts")
    return g


def hidden_evaluate_epoch(g: Grader, evaluate_epoch: Callable, seed: int) -> None:
    g.hidden().check(evaluate_random, evaluate_epoch, seed, name="autres lots")


# ---------------------------------------------------------------------------------------------
# 4.6 fit_and_evaluate
# ---------------------------------------------------------------------------------------------


def _fit_case(
    fit_and_evaluate: Callable, *, seed: int, n: int, epochs: int, batch_size: int
) -> None:
    _, keras = _tf()
    model = tiny_model(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=make_loss(),
        metrics=["accuracy"],
        run_eagerly=True,
    )
    x, y = mini_data(seed + 1, n)
    xt, yt = mini_data(seed + 2, 30)
    what = f"`fit_and_evaluate` ({n} exemples, epochs={epochs}, batch_size={batch_size})"
    got = call_student(
        fit_and_evaluate,
        model,
        x,
        y,
        xt,
        yt,
        epochs,
        batch_size,
        what="fit_and_evaluate",
        code="fit",
    )
    if not isinstance(got, tuple | list) or len(got) != 3:
        fail(
            "fit.type",
            f"{what} doit renvoyer `(history, test_loss, test_acc)` ; reçu `{type(got).__name__}`.",
        )
    history, test_loss, test_acc = got
    logs = getattr(history, "history", None)
    if not isinstance(logs, dict) or "loss" not in logs:
        fail(
            "fit.type",
            f"{what} : le premier élément doit être l'objet `History` renvoyé par `model.fit`.",
        )
    if "val_loss" not in logs:
        fail(
            "fit.validation",
            f"{what} : pas de courbe de validation (`val_loss`) dans l'historique. Passez "
            "`validation_split=0.1` à `model.fit`.",
        )
    if len(logs["loss"]) != epochs:
        fail(
            "fit.epochs",
            f"{what} : {len(logs['loss'])} époque(s) dans l'historique, attendu {epochs} : passez `epochs=epochs`.",
        )
    steps = (getattr(history, "params", None) or {}).get("steps")
    if steps is not None and steps != math.ceil(int(n * 0.9) / batch_size):
        if any(steps == math.ceil(int(n * (1 - s)) / batch_size) for s in (0.0, 0.2, 0.25, 0.3)):
            fail(
                "fit.validation",
                f"{what} : {steps} lots par époque : la part de validation n'est pas de 10 %. "
                "Passez `validation_split=0.1`.",
            )
        fail(
            "fit.batch_size",
            f"{what} : {steps} lots par époque : passez `batch_size=batch_size` à `model.fit`.",
        )
    expected_loss, expected_acc = model.evaluate(xt, yt, verbose=0)
    try:
        ok = (
            _close_scalar(float(test_loss), float(expected_loss))
            and abs(float(test_acc) - float(expected_acc)) < 1e-6
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        fail(
            "fit.evaluate",
            f"{what} : `test_loss` et `test_acc` ne sont pas ceux de `model.evaluate(x_test, y_test)` "
            "après l'entraînement (évaluez sur le jeu de test, pas sur le jeu d'entraînement).",
        )


def fit_basic(fit_and_evaluate: Callable) -> None:
    """100 exemples, 2 époques, lots de 16 : historique avec validation, évaluation sur le test."""
    _fit_case(fit_and_evaluate, seed=60, n=100, epochs=2, batch_size=16)


def fit_random(fit_and_evaluate: Callable, seed: int) -> None:
    """Autres nombres d'exemples, d'époques et de lots."""
    _fit_case(fit_and_evaluate, seed=seed, n=50, epochs=3, batch_size=8)


def public_fit_and_evaluate(fit_and_evaluate: Callable, points: float) -> Grader:
    g = Grader("fit-evaluate", points, "fit_and_evaluate")
    g.check(fit_basic, fit_and_evaluate, name="fit avec validation, puis evaluate")
    return g


def hidden_fit_and_evaluate(g: Grader, fit_and_evaluate: Callable, seed: int) -> None:
    g.hidden().check(fit_random, fit_and_evaluate, seed, name="autres réglages")


# ---------------------------------------------------------------------------------------------
# 4.6 predict_classes
# ---------------------------------------------------------------------------------------------


def _predict_case(predict_classes: Callable, model: Any, x: np.ndarray, what: str) -> None:
    outputs = np.asarray(model(x, training=False))
    expected = np.argmax(outputs, axis=-1)
    got = call_student(predict_classes, model, x, what="predict_classes", code="predict")
    arr = expect_array(got, what=f"{what} : le résultat", code="predict")
    n = len(x)
    if arr.shape != (n,):
        if arr.shape == (outputs.shape[1],) and np.array_equal(arr, np.argmax(outputs, axis=0)):
            fail(
                "predict.axis",
                f"{what} : forme {arr.shape} au lieu de ({n},) : `argmax` sur l'axe 0 cherche "
                "l'image la plus probable pour chaque classe. Prenez l'argmax sur le dernier axe "
                "(`axis=-1`), celui des classes.",
            )
        fail(
            "predict.shape",
            f"{what} : forme {arr.shape}, attendu ({n},) : une classe (un entier) par image, "
            "pas les scores ou probabilités de chaque classe.",
        )
    if not np.issubdtype(arr.dtype, np.integer):
        fail(
            "predict.dtype",
            f"{what} : type `{arr.dtype}` : renvoyez des numéros de classe entiers.",
        )
    if not np.array_equal(arr, expected):
        again = np.asarray(
            call_student(predict_classes, model, x, what="predict_classes", code="predict")
        )
        if not np.array_equal(again, arr):
            fail(
                "predict.mode",
                f"{what} : deux appels donnent des classes différentes : le Dropout est actif. "
                "Prédisez en mode inférence (`model.predict(x)` ou `model(x, training=False)`).",
            )
        fail(
            "predict.values",
            f"{what} : {int(np.sum(arr != expected))} classe(s) sur {n} ne sont pas l'argmax des sorties du modèle.",
        )


def predict_logits(predict_classes: Callable) -> None:
    """Modèle qui sort des logits, 7 images."""
    x, _ = mini_data(70, 7)
    _predict_case(
        predict_classes, tiny_model(70), x, "`predict_classes` (modèle à logits, 7 images)"
    )


def predict_probabilities(predict_classes: Callable) -> None:
    """Modèle terminé par un softmax, 7 images."""
    x, _ = mini_data(71, 7)
    _predict_case(
        predict_classes,
        tiny_model(71, softmax=True),
        x,
        "`predict_classes` (modèle à softmax, 7 images)",
    )


def predict_random(predict_classes: Callable, seed: int) -> None:
    """Modèle avec Dropout (mode inférence), 300 images (plusieurs lots de `predict`)."""
    x, _ = mini_data(seed, 300)
    _predict_case(
        predict_classes,
        tiny_model(seed, dropout=True),
        x,
        "`predict_classes` (modèle avec Dropout, 300 images)",
    )


def public_predict_classes(predict_classes: Callable, points: float) -> Grader:
    g = Grader("predict", points, "predict_classes")
    g.check(predict_logits, predict_classes, name="logits")
    g.check(predict_probabilities, predict_classes, name="probabilités")
    return g


def hidden_predict_classes(g: Grader, predict_classes: Callable, seed: int) -> None:
    g.hidden().check(predict_random, predict_classes, seed, name="Dropout, 300 images")


# ---------------------------------------------------------------------------------------------
# 4.6 the trained model
# ---------------------------------------------------------------------------------------------


def _test_set() -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST test set, preprocessed here (not by the student's `preprocess`)."""
    from autograder.data import load_keras

    _, (x, y) = load_keras()
    return (x.astype(np.float32) / 255.0)[..., None], y


def trained_accuracy(model: Any) -> None:
    """Exactitude sur les 10 000 images de test de Fashion-MNIST, au moins le seuil annoncé."""
    _, keras = _tf()
    if model is None:
        raise NotAttempted("build_sequential")
    if not isinstance(model, keras.Model):
        fail(
            "trained.type",
            f"`model` doit être le modèle Keras entraîné ; reçu `{type(model).__name__}`.",
        )
    x, y = _test_set()
    try:
        outputs = np.concatenate(
            [np.asarray(model(x[i : i + 1000], training=False)) for i in range(0, len(x), 1000)]
        )
    except Exception as exc:  # noqa: BLE001
        fail(
            "trained.exception",
            f"`model.predict` échoue sur le jeu de test ({type(exc).__name__}).",
        )
    acc = float(np.mean(np.argmax(outputs, axis=-1) == y))
    if acc < ACCURACY_BAR:
        fail(
            "trained.accuracy",
            f"exactitude sur le jeu de test : {fr_number(acc, '.1%')}, le seuil est {fr_number(ACCURACY_BAR, '.0%')}. Vérifiez "
            "`preprocess`, la perte (`from_logits`) et que `fit` tourne bien sur les époques demandées.",
        )


def trained_spec(model: Any) -> None:
    """Le modèle évalué est celui de la spécification (même architecture, 20 490 paramètres)."""
    if model is None:
        raise NotAttempted("build_sequential")
    if canonical_layers(model) != SPEC or int(model.count_params()) != SPEC_PARAMS:
        fail(
            "trained.spec",
            "le modèle entraîné n'est pas celui de la spécification (couches ou nombre de "
            "paramètres) : entraînez le modèle de `build_sequential()`.",
        )


def public_trained_model(model: Any, points: float) -> Grader:
    g = Grader("trained-model", points, "modèle entraîné")
    g.check(trained_accuracy, model, name=f"exactitude de test ≥ {fr_number(ACCURACY_BAR, '.0%')}")
    return g


def hidden_trained_model(g: Grader, model: Any, seed: int) -> None:
    g.hidden().check(trained_spec, model, name="modèle de la spécification")
