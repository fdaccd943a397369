"""Checks for module 4 (TensorFlow / Keras), notebook `cnn_keras`: data, models, custom layer.

What the student writes and what is checked here:

- ``preprocess(x, y)``: float32 images in [0, 1] with a channel axis, labels untouched;
- ``build_sequential()`` / ``build_functional()``: the course's CNN (:data:`SPEC`) with each
  API: layer types and order, layer settings, output shape, parameter count, and the same
  computation as the specification once weights are copied;
- ``MyConv2D``: a ``keras.layers.Layer`` convolution written without ``tf.nn.conv2d``, compared
  with ``keras.layers.Conv2D`` (weights copied) forward and by ``tf.GradientTape``.

Expected values come from Keras itself at run time (``Conv2D``, a Sequential model of the
specification), never from stored answers. TensorFlow is imported inside the checks only (``autograder.backends``).

Failure codes: ``preprocess.*``, ``model.*``, ``custom_conv.*``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.backends import backend
from autograder.checks._core import (
    call_student,
    close,
    expect_array,
    expect_close,
    mismatch,
    rng,
    tolerance,
)
from autograder.feedback import CheckFailure, Grader, fail, fr_number

#: The network students build, layer by layer: (Keras class, settings that must match).
#: ``Dropout`` layers may be added anywhere (no parameters); a ReLU may be a separate
#: ``layers.ReLU()`` / ``layers.Activation("relu")`` right after its Conv2D / Dense.
SPEC: list[tuple[str, dict[str, Any]]] = [
    (
        "Conv2D",
        {
            "filters": 16,
            "kernel_size": (3, 3),
            "strides": (1, 1),
            "padding": "same",
            "activation": "relu",
        },
    ),
    ("MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
    (
        "Conv2D",
        {
            "filters": 32,
            "kernel_size": (3, 3),
            "strides": (1, 1),
            "padding": "same",
            "activation": "relu",
        },
    ),
    ("MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
    ("Flatten", {}),
    ("Dense", {"units": 10, "activation": "linear"}),
]
INPUT_SHAPE = (28, 28, 1)
#: 16·(3·3·1) + 16 + 32·(3·3·16) + 32 + (7·7·32)·10 + 10
SPEC_PARAMS = 20490
SPEC_TEXT = (
    "Conv2D(16, 3, padding='same', activation='relu') → MaxPooling2D(2) → Conv2D(32, 3, "
    "padding='same', activation='relu') → MaxPooling2D(2) → Flatten() → Dense(10)"
)
#: Layers that may be added anywhere: no parameters, identity at inference.
OPTIONAL_LAYERS = ("Dropout", "SpatialDropout2D", "InputLayer")

FORBIDDEN_CONV = (
    "tensorflow.nn.conv2d",
    "tensorflow.nn.convolution",
    "tensorflow.nn.depthwise_conv2d",
    "tensorflow.nn.atrous_conv2d",
    "tensorflow.compat.v1.nn.conv2d",
    "tensorflow.raw_ops.Conv2D",
    "keras.ops.conv",
    "keras.ops.depthwise_conv",
    "keras.src.ops.conv",
    "keras.src.ops.nn.conv",
    "keras.layers.Conv2D",
    "keras.layers.Convolution2D",
)


def _tf() -> tuple[Any, Any]:
    """``(tensorflow, keras)``, imported quietly through the TF adapter."""
    backend("tf")
    import keras
    import tensorflow as tf

    return tf, keras


_rng = rng


# ---------------------------------------------------------------------------------------------
# 4.1 preprocess
# ---------------------------------------------------------------------------------------------


def _check_preprocess(preprocess: Callable, x: np.ndarray, y: np.ndarray) -> None:
    what = "preprocess"
    got = call_student(preprocess, x, y, what=what, code="preprocess")
    if not isinstance(got, tuple | list) or len(got) != 2:
        fail(
            "preprocess.type",
            f"`preprocess` doit renvoyer le couple `(x, y)` ; reçu `{type(got).__name__}`"
            + (f" de longueur {len(got)}" if isinstance(got, tuple | list) else "")
            + ".",
        )
    gx = expect_array(got[0], what="les images renvoyées par `preprocess`", code="preprocess")
    gy = expect_array(got[1], what="les étiquettes renvoyées par `preprocess`", code="preprocess")
    n, h, w = x.shape
    if gx.shape != (n, h, w, 1):
        if gx.shape == (n, 1, h, w):
            fail(
                "preprocess.layout",
                f"images de forme {gx.shape} : le canal est en premier (NCHW). Keras attend les "
                f"canaux en dernier (NHWC) : forme ({n}, {h}, {w}, 1), par ex. `x[..., np.newaxis]`.",
            )
        fail(
            "preprocess.shape",
            f"images d'entrée de forme {x.shape} → sortie de forme {gx.shape}, attendu "
            f"({n}, {h}, {w}, 1). Ajoutez l'axe des canaux en dernier : `x[..., np.newaxis]` ou "
            "`np.expand_dims(x, -1)`.",
        )
    if gx.dtype != np.float32:
        fail(
            "preprocess.dtype",
            f"images de type `{gx.dtype}`, attendu `float32` (le type des poids Keras ; "
            "`float64` double la mémoire et force des conversions). Utilisez `x.astype('float32')`.",
        )
    expected = x.astype(np.float32)[..., None] / np.float32(255.0)
    if not close(gx, expected, "float32"):
        lo, hi = float(np.min(gx)), float(np.max(gx))
        if hi > 1.0 + 1e-6 or lo < -1e-6:
            fail(
                "preprocess.range",
                f"valeurs entre {fr_number(lo)} et {fr_number(hi)} : elles doivent être dans [0, 1]. Divisez les "
                "pixels (0 à 255) par 255.",
            )
        fail(
            "preprocess.range",
            "les valeurs ne sont pas `pixel / 255` (image par image, pixel par pixel) : ne "
            "normalisez pas par le maximum du lot ou par une moyenne, ne réordonnez pas les images.",
        )
    if gy.shape != y.shape or not np.issubdtype(gy.dtype, np.integer) or not np.array_equal(gy, y):
        fail(
            "preprocess.labels",
            f"étiquettes de forme {gy.shape} et de type `{gy.dtype}` : renvoyez les étiquettes "
            f"entières telles quelles (forme {y.shape}, valeurs 0 à 9), sans encodage one-hot.",
        )


def _fake_images(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    x[0, 0, 0], x[-1, -1, -1] = 0, 255
    return x, rng.integers(0, 10, size=n).astype(np.uint8)


def preprocess_fixed(preprocess: Callable) -> None:
    """Lot de 4 images uint8 28×28 : forme, type, plage de valeurs, étiquettes intactes."""
    _check_preprocess(preprocess, *_fake_images(0, 4))


def preprocess_random(preprocess: Callable, seed: int) -> None:
    """Lots de tailles variées (dont une seule image), pixels extrêmes 0 et 255."""
    for i, n in enumerate((1, 7, 33)):
        _check_preprocess(preprocess, *_fake_images(seed + i, n))


def public_preprocess(preprocess: Callable, points: float) -> Grader:
    g = Grader("data-preprocess", points, "preprocess")
    g.check(preprocess_fixed, preprocess, name="lot de 4 images")
    return g


def hidden_preprocess(g: Grader, preprocess: Callable, seed: int) -> None:
    g.hidden().check(preprocess_random, preprocess, seed, name="lots de tailles variées")


# ---------------------------------------------------------------------------------------------
# 4.2 models to a specification
# ---------------------------------------------------------------------------------------------


def _activation_name(layer: Any) -> str:
    act = layer.get_config().get("activation", "linear")
    if isinstance(act, dict):  # a serialised callable
        act = act.get("config", {}).get("name") or act.get("class_name", "")
    name = str(act).rsplit(".", 1)[-1].lower()
    return "linear" if name in ("linear", "none", "") else name


def _flat_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.__class__.__name__ in ("Sequential", "Functional"):
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def canonical_layers(model: Any) -> list[tuple[str, dict[str, Any]]]:
    """The model's layers as ``(class name, settings)``, optional layers dropped, ReLUs merged."""
    out: list[tuple[str, dict[str, Any]]] = []
    for layer in _flat_layers(model):
        kind = layer.__class__.__name__
        if kind in OPTIONAL_LAYERS:
            continue
        cfg = layer.get_config()
        relu = (
            kind == "ReLU"
            and not cfg.get("max_value")
            and not cfg.get("negative_slope")
            and not cfg.get("threshold")
        ) or (kind == "Activation" and _activation_name(layer) == "relu")
        if (
            relu
            and out
            and out[-1][0] in ("Conv2D", "Dense")
            and out[-1][1].get("activation") == "linear"
        ):
            out[-1][1]["activation"] = "relu"
            continue
        if kind == "Conv2D":
            settings = {
                "filters": cfg["filters"],
                "kernel_size": tuple(cfg["kernel_size"]),
                "strides": tuple(cfg["strides"]),
                "padding": cfg["padding"],
                "activation": _activation_name(layer),
            }
        elif kind == "MaxPooling2D":
            settings = {
                "pool_size": tuple(cfg["pool_size"]),
                "strides": tuple(cfg["strides"] or cfg["pool_size"]),
                "padding": cfg["padding"],
            }
        elif kind == "Dense":
            settings = {"units": cfg["units"], "activation": _activation_name(layer)}
        elif kind == "Activation":
            settings = {"activation": _activation_name(layer)}
        else:
            settings = {}
        out.append((kind, settings))
    return out


def spec_model() -> Any:
    """The specification as a Keras Sequential model (the oracle of the model checks)."""
    _, keras = _tf()
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )


def _build(build: Callable, what: str) -> Any:
    _, keras = _tf()
    model = call_student(build, what=what, code="model")
    if not isinstance(model, keras.Model):
        fail(
            "model.type",
            f"`{what}()` doit renvoyer un modèle Keras (`keras.Model`) ; reçu `{type(model).__name__}`"
            + (" : avez-vous oublié le `return` ?" if model is None else "."),
        )
    return model


def _check_kind(model: Any, what: str, api: str) -> None:
    _, keras = _tf()
    from keras.src.models.functional import Functional

    if api == "sequential" and not isinstance(model, keras.Sequential):
        fail(
            "model.type",
            f"`{what}()` renvoie un `{type(model).__name__}` : construisez-le avec "
            "`keras.Sequential([...])`.",
        )
    if api == "functional" and (
        isinstance(model, keras.Sequential) or not isinstance(model, Functional)
    ):
        fail(
            "model.type",
            f"`{what}()` renvoie un `{type(model).__name__}` : utilisez l'API fonctionnelle, "
            "`inputs = keras.Input(shape=(28, 28, 1))`, chaque couche appliquée au tenseur "
            "précédent, puis `keras.Model(inputs, outputs)`.",
        )


def _check_shapes(model: Any, what: str) -> None:
    try:
        in_shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        fail(
            "model.input_shape",
            f"le modèle de `{what}()` n'a pas d'entrée définie : commencez par "
            "`keras.Input(shape=(28, 28, 1))`.",
        )
    if in_shape != (None, *INPUT_SHAPE):
        fail(
            "model.input_shape",
            f"le modèle de `{what}()` a une entrée de forme {in_shape}, attendu (None, 28, 28, 1) "
            "(lot d'images 28×28 à un canal, canaux en dernier).",
        )
    out_shape = tuple(model.output_shape)
    if out_shape != (None, 10):
        fail(
            "model.output_shape",
            f"le modèle de `{what}()` a une sortie de forme {out_shape}, attendu (None, 10) : un "
            "score par classe pour chaque image du lot.",
        )


def _fmt_settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


def _check_layers(model: Any, what: str) -> None:
    got = canonical_layers(model)
    kinds = [k for k, _ in got]
    expected = [k for k, _ in SPEC]
    if kinds != expected:
        fail(
            "model.layers",
            f"couches de `{what}()` (hors Dropout) : {' → '.join(kinds) or 'aucune'} ; la "
            f"spécification demande {' → '.join(expected)}. Reprenez l'ordre : {SPEC_TEXT}.",
        )
    for i, ((kind, settings), (_, wanted)) in enumerate(zip(got, SPEC, strict=True)):
        for key, value in wanted.items():
            if settings.get(key) != value:
                hint = ""
                if kind == "Dense" and key == "activation":
                    hint = (
                        " La dernière couche produit des logits (pas d'activation) : le softmax "
                        "est pris en compte par la perte (`from_logits=True`)."
                    )
                fail(
                    "model.layer_config",
                    f"couche n° {i + 1} ({kind}) de `{what}()` : {key}={settings.get(key)!r}, "
                    f"attendu {key}={value!r}.{hint}",
                )


def _check_params(model: Any, what: str) -> None:
    n = int(model.count_params())
    if n != SPEC_PARAMS:
        fail(
            "model.params",
            f"le modèle de `{what}()` a {n} paramètres, la spécification en donne {SPEC_PARAMS} "
            "(vérifiez `padding='same'`, le nombre de filtres et les pools qui divisent la taille "
            "par 2 : 28 → 14 → 7).",
        )


def _same_outputs(dst: Any, src: Any, what: str, seed: int) -> None:
    """Copy ``src``'s weights into ``dst`` and compare outputs on random images."""
    try:
        dst.set_weights(src.get_weights())
    except Exception:  # noqa: BLE001 - shapes or counts differ
        fail(
            "model.same_arch",
            f"impossible de copier les poids de la spécification dans le modèle de `{what}()` : "
            "les couches à paramètres (Conv2D, Dense) ne correspondent pas.",
        )
    x = _rng(seed).random((3, *INPUT_SHAPE), dtype=np.float32)
    got = dst(x, training=False).numpy()
    expected = src(x, training=False).numpy()
    problem = mismatch(got, expected, *tolerance("float32"))
    if problem:
        fail(
            "model.same_arch",
            f"avec les mêmes poids, le modèle de `{what}()` ne calcule pas la même chose que la "
            f"spécification ({problem}) : vérifiez les activations et l'ordre des couches.",
        )


def _model_check(build: Callable, what: str, api: str, aspect: str, seed: int = 0) -> None:
    model = _build(build, what)
    _check_kind(model, what, api)
    _check_shapes(model, what)
    if aspect == "layers":
        _check_layers(model, what)
    elif aspect == "params":
        _check_params(model, what)
    elif aspect == "outputs":
        _same_outputs(model, spec_model(), what, seed)


def sequential_layers(build_sequential: Callable) -> None:
    """Type `keras.Sequential`, entrée (None, 28, 28, 1), sortie (None, 10), couches dans l'ordre."""
    _model_check(build_sequential, "build_sequential", "sequential", "layers")


def sequential_params(build_sequential: Callable) -> None:
    """Nombre de paramètres de la spécification (20 490)."""
    _model_check(build_sequential, "build_sequential", "sequential", "params")


def sequential_outputs(build_sequential: Callable) -> None:
    """Mêmes sorties que la spécification une fois ses poids copiés."""
    _model_check(build_sequential, "build_sequential", "sequential", "outputs")


def _fresh(build: Callable, what: str) -> None:
    a, b = _build(build, what), _build(build, what)
    if a is b or {id(w) for w in a.weights} & {id(w) for w in b.weights}:
        fail(
            "model.fresh",
            f"deux appels à `{what}()` renvoient le même modèle (ou partagent des couches) : "
            "créez les couches et le modèle à l'intérieur de la fonction.",
        )


def sequential_fresh(build_sequential: Callable) -> None:
    """Chaque appel construit un nouveau modèle (pas de modèle global partagé)."""
    _fresh(build_sequential, "build_sequential")


def public_build_sequential(build_sequential: Callable, points: float) -> Grader:
    g = Grader("model-sequential", points, "build_sequential")
    g.check(sequential_layers, build_sequential, name="type, formes et couches")
    g.check(sequential_params, build_sequential, name="nombre de paramètres")
    return g


def hidden_build_sequential(g: Grader, build_sequential: Callable, seed: int) -> None:
    g.hidden()
    g.check(sequential_outputs, build_sequential, name="mêmes calculs que la spécification")
    g.check(sequential_fresh, build_sequential, name="un nouveau modèle à chaque appel")


def functional_layers(build_functional: Callable) -> None:
    """Modèle de l'API fonctionnelle, formes et couches de la spécification."""
    _model_check(build_functional, "build_functional", "functional", "layers")


def functional_params(build_functional: Callable) -> None:
    """Nombre de paramètres de la spécification (20 490)."""
    _model_check(build_functional, "build_functional", "functional", "params")


def functional_same_as_sequential(
    build_functional: Callable, build_sequential: Callable | None, seed: int
) -> None:
    """Poids copiés du modèle séquentiel (ou de la spécification) : mêmes sorties."""
    model = _build(build_functional, "build_functional")
    _check_kind(model, "build_functional", "functional")
    _check_shapes(model, "build_functional")
    source = spec_model()
    if build_sequential is not None:
        # The student's own Sequential when it meets the spec; the spec model otherwise, so
        # that a bug in `build_sequential` costs points in its own cell only.
        try:
            seq = build_sequential()
            if canonical_layers(seq) == SPEC and int(seq.count_params()) == SPEC_PARAMS:
                source = seq
        except Exception:  # noqa: BLE001
            pass
    _same_outputs(model, source, "build_functional", seed)


def functional_fresh(build_functional: Callable) -> None:
    """Chaque appel construit un nouveau modèle."""
    _fresh(build_functional, "build_functional")


def public_build_functional(build_functional: Callable, points: float) -> Grader:
    g = Grader("model-functional", points, "build_functional")
    g.check(functional_layers, build_functional, name="API fonctionnelle, formes et couches")
    g.check(functional_params, build_functional, name="nombre de paramètres")
    return g


def hidden_build_functional(
    g: Grader, build_functional: Callable, seed: int, build_sequential: Callable | None = None
) -> None:
    g.hidden()
    g.check(
        functional_same_as_sequential,
        build_functional,
        build_sequential,
        seed,
        name="mêmes calculs que le modèle séquentiel",
    )
    g.check(functional_fresh, build_functional, name="un nouveau modèle à chaque appel")


# ---------------------------------------------------------------------------------------------
# 4.3 a custom convolution layer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCase:
    """Input (N, H, W, C), F filters of size K×K, stride, padding ("valid" / "same")."""

    n: int
    h: int
    w: int
    c: int
    f: int
    k: int
    stride: int = 1
    padding: str = "valid"

    def describe(self) -> str:
        return (
            f"`MyConv2D({self.f}, {self.k}, strides={self.stride}, padding={self.padding!r})` sur "
            f"une entrée de forme {(self.n, self.h, self.w, self.c)}"
        )

    @property
    def code(self) -> str:
        if self.padding == "same":
            return "custom_conv.padding"
        return "custom_conv.stride" if self.stride > 1 else "custom_conv.values"


HINT_SAME = (
    "Avec padding='same', la sortie a ceil(H / stride) lignes ; TensorFlow ajoute "
    "max((H_out − 1)·stride + K − H, 0) zéros au total, la moitié (arrondie vers le bas) en haut "
    "et le reste en bas (idem à gauche / à droite) — `tf.image.extract_patches(..., "
    "padding='SAME')` le fait pour vous."
)
HINT_VALID = "Avec padding='valid', la sortie a (H − K) // stride + 1 lignes."


def _make_layer(MyConv2D: Any, case: LayerCase) -> Any:
    _, keras = _tf()
    layer = call_student(
        MyConv2D,
        case.f,
        case.k,
        strides=case.stride,
        padding=case.padding,
        what="MyConv2D",
        code="custom_conv",
    )
    if not isinstance(layer, keras.layers.Layer):
        fail(
            "custom_conv.type",
            f"`MyConv2D` doit hériter de `keras.layers.Layer` ; reçu `{type(layer).__name__}`.",
        )
    return layer


def _oracle_layer(case: LayerCase, seed: int) -> tuple[Any, np.ndarray]:
    _, keras = _tf()
    rng = _rng(seed)
    x = rng.normal(size=(case.n, case.h, case.w, case.c)).astype(np.float32)
    conv = keras.layers.Conv2D(case.f, case.k, strides=case.stride, padding=case.padding)
    conv.build(x.shape)
    conv.kernel.assign(rng.normal(size=(case.k, case.k, case.c, case.f)).astype(np.float32))
    conv.bias.assign(rng.normal(size=(case.f,)).astype(np.float32))
    return conv, x


def _call_conv(fn: Callable, *args: Any, what: str = "MyConv2D.call") -> Any:
    """``call_student`` with the forbidden convolutions, and a message fit for a Keras layer."""
    try:
        return call_student(fn, *args, what=what, code="custom_conv", forbidden=FORBIDDEN_CONV)
    except CheckFailure as exc:
        if exc.code == "custom_conv.framework_used":
            used = exc.message.split(" : ", 1)[0]
            fail(
                exc.code,
                f"{used} : l'exercice demande de calculer la convolution vous-même avec des "
                "opérations TensorFlow élémentaires (`tf.image.extract_patches` et un produit "
                "matriciel, ou une boucle sur les positions du noyau). Cette vérification ne "
                "rapporte pas de point tant que la convolution toute faite est utilisée.",
            )
        raise


def _call_layer(layer: Any, x: Any) -> Any:
    return _call_conv(layer, x)


def _copy_weights(layer: Any, conv: Any, x: np.ndarray, case: LayerCase) -> None:
    """Build ``layer`` on ``x``'s shape and give it ``conv``'s kernel and bias."""
    if not getattr(layer, "built", False):
        call_student(layer.build, x.shape, what="MyConv2D.build", code="custom_conv")
    kernel, bias = getattr(layer, "kernel", None), getattr(layer, "bias", None)
    wanted = {"kernel": (case.k, case.k, case.c, case.f), "bias": (case.f,)}
    for name, var in (("kernel", kernel), ("bias", bias)):
        if var is None:
            fail(
                "custom_conv.weights",
                f"après `build`, `self.{name}` n'existe pas : créez-le dans `build` avec "
                f"`self.{name} = self.add_weight(shape=..., initializer=..., name='{name}')`.",
            )
        if tuple(var.shape) != wanted[name]:
            fail(
                "custom_conv.weights",
                f"{case.describe()} : `self.{name}` a la forme {tuple(var.shape)}, attendu "
                f"{wanted[name]}"
                + (" (K, K, C_in, filters), comme `Conv2D`." if name == "kernel" else "."),
            )
    trainable = {id(v) for v in layer.trainable_weights}
    if id(kernel) not in trainable or id(bias) not in trainable:
        fail(
            "custom_conv.weights",
            "`self.kernel` et `self.bias` doivent être des poids entraînables de la couche : "
            "créez-les avec `self.add_weight(...)` (pas avec `tf.constant` ni NumPy).",
        )
    kernel.assign(conv.kernel)
    bias.assign(conv.bias)


def _forward_case(MyConv2D: Any, case: LayerCase, seed: int) -> None:
    tf, _ = _tf()
    conv, x = _oracle_layer(case, seed)
    layer = _make_layer(MyConv2D, case)
    _copy_weights(layer, conv, x, case)
    got = expect_array(
        _call_layer(layer, tf.constant(x)), what="la sortie de `MyConv2D`", code="custom_conv"
    )
    expected = conv(x).numpy()
    if got.shape != expected.shape:
        fail(
            case.code,
            f"{case.describe()} : sortie de forme {got.shape}, attendu {expected.shape}. "
            + (HINT_SAME if case.padding == "same" else HINT_VALID),
        )
    if not close(got, expected, "float32"):
        flipped = conv.kernel.numpy()[::-1, ::-1].copy()
        if close(got, _conv_with(conv, x, flipped), "float32"):
            fail(
                "custom_conv.flip",
                f"{case.describe()} : votre noyau est retourné (inversé dans les deux sens). `Conv2D` calcule une corrélation "
                "croisée : pas de `[::-1, ::-1]`.",
            )
        hint = HINT_SAME if case.padding == "same" else ""
        expect_close(
            got, expected, what=case.describe(), code=case.code, hint=hint, precision="float32"
        )


def _conv_with(conv: Any, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    saved = conv.kernel.numpy()
    conv.kernel.assign(kernel)
    try:
        return conv(x).numpy()
    finally:
        conv.kernel.assign(saved)


VISIBLE_CASES = (
    LayerCase(2, 6, 6, 2, 3, 3),
    LayerCase(2, 6, 5, 2, 3, 3, padding="same"),
    LayerCase(1, 7, 8, 2, 3, 3, stride=2),
)


def custom_conv_weights(MyConv2D: Any) -> None:
    """`build` crée `self.kernel` (K, K, C_in, filtres) et `self.bias` (filtres,) entraînables."""
    case = VISIBLE_CASES[0]
    conv, x = _oracle_layer(case, 0)
    _copy_weights(_make_layer(MyConv2D, case), conv, x, case)


def custom_conv_valid(MyConv2D: Any) -> None:
    """Comparé à `keras.layers.Conv2D` (mêmes poids) : padding='valid', stride=1."""
    _forward_case(MyConv2D, VISIBLE_CASES[0], seed=1)


def custom_conv_same(MyConv2D: Any) -> None:
    """padding='same' (image rectangulaire) : la sortie garde la taille de l'entrée."""
    _forward_case(MyConv2D, VISIBLE_CASES[1], seed=2)


def custom_conv_stride(MyConv2D: Any) -> None:
    """stride=2, padding='valid', taille qui ne tombe pas juste."""
    _forward_case(MyConv2D, VISIBLE_CASES[2], seed=3)


def _gradient_case(MyConv2D: Any, case: LayerCase, seed: int) -> None:
    tf, _ = _tf()
    conv, x = _oracle_layer(case, seed)
    layer = _make_layer(MyConv2D, case)
    _copy_weights(layer, conv, x, case)
    xt = tf.Variable(x)
    expected_out = conv(x)
    got_out = expect_array(
        _call_layer(layer, tf.constant(x)), what="la sortie de `MyConv2D`", code="custom_conv"
    )
    if got_out.shape != tuple(expected_out.shape) or not close(
        got_out, expected_out.numpy(), "float32"
    ):
        fail(
            "custom_conv.gradients",
            f"{case.describe()} : la passe avant est déjà fausse (voir les autres vérifications), "
            "les gradients ne peuvent pas être justes.",
        )
    dout = tf.constant(_rng(seed + 1).normal(size=expected_out.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        ref = tf.reduce_sum(conv(xt) * dout)
    expected = tape.gradient(ref, [xt, conv.kernel, conv.bias])

    def student_grads() -> list[Any]:
        with tf.GradientTape() as t:
            out = layer(xt)
            loss = tf.reduce_sum(tf.convert_to_tensor(out) * dout)
        return t.gradient(loss, [xt, layer.kernel, layer.bias])

    got = _call_conv(student_grads)
    for g, e, name in zip(got, expected, ("l'entrée", "`kernel`", "`bias`"), strict=True):
        if g is None:
            fail(
                "custom_conv.gradients",
                f"{case.describe()} : `tf.GradientTape` ne trouve aucun gradient par rapport à "
                f"{name}. Le calcul sort de TensorFlow (NumPy, `.numpy()`, `tf.constant` sur un "
                "résultat intermédiaire) : n'utilisez que des opérations TensorFlow dans `call`.",
            )
        expect_close(
            np.asarray(tf.convert_to_tensor(g)),
            e.numpy(),
            what=f"{case.describe()} : gradient par rapport à {name}",
            code="custom_conv.gradients",
            hint="Le gradient diffère de celui de `Conv2D` alors que la sortie est juste : "
            "n'arrêtez pas le gradient (`tf.stop_gradient`).",
            precision="float32",
        )


def custom_conv_gradients(MyConv2D: Any) -> None:
    """Gradients (`tf.GradientTape`) par rapport à l'entrée, à `kernel` et à `bias`, comparés à `Conv2D`."""
    _gradient_case(MyConv2D, LayerCase(2, 5, 6, 2, 3, 3, padding="same"), seed=4)


def custom_conv_in_model(MyConv2D: Any) -> None:
    """Dans un `keras.Sequential` (taille de lot inconnue) avec `model.predict`."""
    tf, keras = _tf()
    case = LayerCase(5, 9, 9, 3, 4, 3, padding="same")
    conv, x = _oracle_layer(case, 5)
    layer = _make_layer(MyConv2D, case)
    _call_layer(layer, tf.constant(x[:1]))  # eagerly first: a stub reads "Non tenté"

    def build_and_predict() -> np.ndarray:
        model = keras.Sequential([keras.Input(shape=(case.h, case.w, case.c)), layer])
        layer.kernel.assign(conv.kernel)
        layer.bias.assign(conv.bias)
        return model.predict(x, batch_size=2, verbose=0)

    try:
        got = _call_conv(build_and_predict, what="MyConv2D")
    except CheckFailure as exc:
        if exc.code != "custom_conv.exception":
            raise
        fail(
            "custom_conv.model",
            f"`MyConv2D` ne fonctionne pas dans un modèle Keras ({exc.message.split(' : ', 1)[-1]}) "
            "Dans un modèle, la taille du lot est inconnue (`None`) : utilisez `tf.shape(x)[0]` "
            "plutôt que `x.shape[0]`, ou des opérations qui n'ont pas besoin de la connaître.",
        )
    got = expect_array(got, what="la sortie du modèle", code="custom_conv")
    expect_close(
        got,
        conv(x).numpy(),
        what=f"{case.describe()}, dans un modèle",
        code="custom_conv.model",
        precision="float32",
    )


def random_layer_cases(seed: int, n: int) -> list[LayerCase]:
    """Kernel 1-4, strides 1-3, both paddings, 1-3 channels, rectangular inputs."""
    rng = _rng(seed)
    cases = []
    for i in range(n):
        k = int(rng.integers(1, 5))
        cases.append(
            LayerCase(
                n=int(rng.integers(1, 4)),
                h=k + int(rng.integers(0, 6)),
                w=k + int(rng.integers(0, 6)),
                c=int(rng.integers(1, 4)),
                f=int(rng.integers(1, 5)),
                k=k,
                stride=int(rng.integers(1, 4)),
                padding=("valid", "same")[i % 2],
            )
        )
    return cases


def _classify(MyConv2D: Any, case: LayerCase, seed: int, failure: CheckFailure) -> CheckFailure:
    """Name the aspect a failing random case reveals (the visible checks' codes)."""
    if not failure.code.endswith((".values", ".stride", ".padding")):
        return failure
    simpler = LayerCase(case.n, case.h, case.w, case.c, case.f, case.k, 1, "valid")
    try:
        _forward_case(MyConv2D, simpler, seed)
    except CheckFailure as exc:
        return exc
    if case.stride > 1:
        try:
            _forward_case(
                MyConv2D,
                LayerCase(case.n, case.h, case.w, case.c, case.f, case.k, case.stride, "valid"),
                seed,
            )
        except CheckFailure as exc:
            return CheckFailure("custom_conv.stride", exc.message)
    return CheckFailure(case.code, failure.message)


def custom_conv_random(MyConv2D: Any, seed: int, n: int = 8) -> None:
    """Formes, noyaux, strides et paddings aléatoires, comparés à `Conv2D`."""
    for i, case in enumerate(random_layer_cases(seed, n)):
        try:
            _forward_case(MyConv2D, case, seed + i)
        except CheckFailure as exc:
            raise _classify(MyConv2D, case, seed + i, exc) from None


def custom_conv_gradients_random(MyConv2D: Any, seed: int) -> None:
    """Gradients pour stride=2 avec les deux paddings."""
    for i, padding in enumerate(("valid", "same")):
        _gradient_case(MyConv2D, LayerCase(2, 7, 6, 2, 3, 3, stride=2, padding=padding), seed + i)


def public_my_conv2d(MyConv2D: Any, points: float) -> Grader:
    g = Grader("custom-conv-layer", points, "MyConv2D")
    g.check(custom_conv_weights, MyConv2D, name="poids créés par build")
    g.check(custom_conv_valid, MyConv2D, name="padding='valid'")
    g.check(custom_conv_same, MyConv2D, name="padding='same'")
    g.check(custom_conv_stride, MyConv2D, name="stride=2")
    g.check(custom_conv_gradients, MyConv2D, name="gradients")
    return g


def hidden_my_conv2d(g: Grader, MyConv2D: Any, seed: int) -> None:
    g.hidden()
    g.check(custom_conv_random, MyConv2D, seed, name="cas aléatoires", weight=2)
    g.check(custom_conv_gradients_random, MyConv2D, seed, name="gradients avec stride=2")
    g.check(custom_conv_in_model, MyConv2D, name="dans un modèle Keras")
