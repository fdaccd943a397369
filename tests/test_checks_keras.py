"""Unit tests of autograder.checks.keras_models / keras_training (module 4, TensorFlow track).

Student code is run the way the notebook runs it: the solution cells of the source notebook are
executed in one namespace (so ``train_epoch`` finds ``train_step`` as a global, like in a
kernel). Mutants are those cells with one plausible bug; each must fail with the code that names
it. Valid alternatives (other loop styles, ``tf.function``, a sum then a division, other layers
the specification allows, both logits/softmax pairings) must pass every check.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autograder.checks import keras_models as km
from autograder.checks import keras_training as kt
from autograder.grading import pipeline

pytestmark = [pytest.mark.tf]

SOURCE = Path(__file__).resolve().parents[1] / "source" / "m4-tensorflow" / "cnn_keras.ipynb"
SEED = 4242
HEADER = "import numpy as np\nimport tensorflow as tf\nimport keras\nfrom keras import layers\n"


@pytest.fixture(scope="module")
def solution() -> dict[str, str]:
    return pipeline.solution_sources(SOURCE)


def notebook(solution: dict[str, str], **cells: str) -> dict:
    """A kernel-like namespace: the solution cells, some replaced by ``cells`` (grade_id=source)."""
    ns: dict = {"__name__": "__notebook__"}
    exec(HEADER, ns)
    for grade_id, src in solution.items():
        exec(textwrap.dedent(cells.get(grade_id, src)), ns)
    return ns


def mutate(solution: dict[str, str], grade_id: str, old: str | None, new: str) -> dict:
    """The solution with one cell changed: ``old`` replaced by ``new`` (``old=None``: whole cell)."""
    src = solution[grade_id]
    if old is None:
        return notebook(solution, **{grade_id: new})
    assert old in src, f"{old!r} not in the solution of {grade_id}"
    return notebook(solution, **{grade_id: src.replace(old, new)})


def codes(public, hidden, fn, seed: int = SEED, **kwargs) -> list[str]:
    g = public(fn, points=1)
    hidden(g, fn, seed, **kwargs)
    return [r.code if not r.passed else "ok" for r in g.results]


CELLS = {
    "preprocess": (km.public_preprocess, km.hidden_preprocess),
    "build_sequential": (km.public_build_sequential, km.hidden_build_sequential),
    "build_functional": (km.public_build_functional, km.hidden_build_functional),
    "MyConv2D": (km.public_my_conv2d, km.hidden_my_conv2d),
    "compile_model": (kt.public_compile_model, kt.hidden_compile_model),
    "train_step": (kt.public_train_step, kt.hidden_train_step),
    "train_epoch": (kt.public_train_epoch, kt.hidden_train_epoch),
    "evaluate_epoch": (kt.public_evaluate_epoch, kt.hidden_evaluate_epoch),
    "fit_and_evaluate": (kt.public_fit_and_evaluate, kt.hidden_fit_and_evaluate),
    "predict_classes": (kt.public_predict_classes, kt.hidden_predict_classes),
}
GRADE_ID = {"MyConv2D": "my_conv2d"}


def grade(ns: dict, name: str) -> list[str]:
    public, hidden = CELLS[name]
    extra = {"build_sequential": ns["build_sequential"]} if name == "build_functional" else {}
    return codes(public, hidden, ns[name], **extra)


# ------------------------------------------------------------------------------ the solution


@pytest.mark.parametrize("name", list(CELLS))
def test_notebook_solution_passes(solution, name):
    assert set(grade(notebook(solution), name)) == {"ok"}


def test_solution_module_matches_the_notebook():
    from solutions import keras_cnn as ref

    assert set(codes(km.public_my_conv2d, km.hidden_my_conv2d, ref.RefMyConv2D)) == {"ok"}
    assert set(codes(km.public_my_conv2d, km.hidden_my_conv2d, ref.RefMyConv2DLoops)) == {"ok"}
    assert set(
        codes(km.public_build_functional, km.hidden_build_functional, ref.ref_build_functional)
    ) == {"ok"}
    assert set(codes(kt.public_train_step, kt.hidden_train_step, ref.ref_train_step)) == {"ok"}


def test_stubs_are_not_attempted_and_score_zero():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for name, (public, hidden) in CELLS.items():
        g = public(stub, points=2)
        extra = {"build_sequential": stub} if name == "build_functional" else {}
        hidden(g, stub, SEED, **extra)
        assert g.score() == 0.0 and type(g.score()) is float, name
        assert set(g.codes) == {"not_attempted"}, (name, g.codes)
        assert "Non tenté" in g.report()


def test_stub_layer_is_not_attempted(solution):
    src = solution["my_conv2d"].split("    def build")[0] + (
        "    def build(self, input_shape):\n        raise NotImplementedError()\n\n"
        "    def call(self, inputs):\n        raise NotImplementedError()\n"
    )
    assert set(grade(notebook(solution, my_conv2d=src), "MyConv2D")) == {"not_attempted"}


# ------------------------------------------------------------------------------ valid alternatives

VALID = {
    "preprocess": [
        """
        def preprocess(x, y):
            return np.expand_dims(x.astype(np.float32) / 255, -1), y.copy()
        """,
        """
        def preprocess(x, y):
            return tf.cast(x, tf.float32)[..., tf.newaxis] / 255.0, y
        """,
    ],
    "build_sequential": [
        """
        def build_sequential():
            model = keras.Sequential()
            model.add(keras.Input(shape=(28, 28, 1)))
            model.add(layers.Conv2D(16, (3, 3), padding="same"))
            model.add(layers.ReLU())
            model.add(layers.MaxPooling2D(pool_size=(2, 2)))
            model.add(layers.Dropout(0.1))
            model.add(layers.Conv2D(32, 3, padding="same", activation=keras.activations.relu))
            model.add(layers.MaxPooling2D())
            model.add(layers.Flatten())
            model.add(layers.Dropout(0.3))
            model.add(layers.Dense(10, activation=None))
            return model
        """,
    ],
    "build_functional": [
        """
        def build_functional():
            inputs = keras.Input((28, 28, 1))
            h = layers.Conv2D(16, 3, padding="same")(inputs)
            h = layers.Activation("relu")(h)
            h = layers.MaxPooling2D(2)(h)
            h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
            h = layers.MaxPooling2D(2)(h)
            h = layers.Dropout(0.25)(layers.Flatten()(h))
            return keras.Model(inputs=inputs, outputs=layers.Dense(10)(h), name="cnn")
        """,
    ],
    "MyConv2D": [
        """
        class MyConv2D(keras.layers.Layer):
            def __init__(self, filters, kernel_size, strides=1, padding="valid", **kwargs):
                super().__init__(**kwargs)
                self.filters, self.kernel_size, self.strides, self.padding = filters, kernel_size, strides, padding

            def build(self, input_shape):
                k = self.kernel_size
                self.kernel = self.add_weight(shape=(k, k, input_shape[-1], self.filters), initializer="glorot_uniform")
                self.bias = self.add_weight(shape=(self.filters,), initializer="zeros")

            def call(self, x):
                k, s = self.kernel_size, self.strides
                h, w = x.shape[1], x.shape[2]
                if self.padding == "same":
                    ho, wo = -(-h // s), -(-w // s)
                    ph, pw = max((ho - 1) * s + k - h, 0), max((wo - 1) * s + k - w, 0)
                    x = tf.pad(x, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]])
                else:
                    ho, wo = (h - k) // s + 1, (w - k) // s + 1
                rows = []
                for i in range(ho):
                    cols = []
                    for j in range(wo):
                        patch = x[:, i * s : i * s + k, j * s : j * s + k, :]
                        cols.append(tf.einsum("nuvc,uvcf->nf", patch, self.kernel))
                    rows.append(tf.stack(cols, axis=1))
                return tf.stack(rows, axis=1) + self.bias
        """,
    ],
    "compile_model": [
        """
        def compile_model(model, from_logits):
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if from_logits else "sparse_categorical_crossentropy"
            model.compile(optimizer="sgd", loss=loss, metrics=[keras.metrics.SparseCategoricalAccuracy()])
        """,
        """
        def compile_model(model, from_logits):
            def loss(y_true, y_pred):
                return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits)
            model.compile(keras.optimizers.RMSprop(), loss, metrics=["acc"])
            return model
        """,
    ],
    "train_step": [
        """
        @tf.function
        def train_step(model, optimizer, loss_fn, x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_weights)
            optimizer.apply(grads, model.trainable_weights)
            return loss
        """,
        """
        def train_step(model, optimizer, loss_fn, x, y):
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                per_example = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
                loss = tf.reduce_sum(per_example) / tf.cast(tf.shape(x)[0], tf.float32)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables)])
            return float(loss)
        """,
    ],
    "train_epoch": [
        """
        def train_epoch(model, dataset, optimizer, loss_fn):
            mean = keras.metrics.Mean()
            for step, (x, y) in enumerate(dataset):
                loss = train_step(model, optimizer, loss_fn, x, y)
                mean.update_state(loss, sample_weight=tf.shape(x)[0])
            return float(mean.result())
        """,
        """
        def train_epoch(model, dataset, optimizer, loss_fn):
            losses, sizes = [], []
            for batch in dataset:
                x, y = batch
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                losses.append(loss.numpy())
                sizes.append(len(y))
            return np.average(losses, weights=sizes)
        """,
        """
        def train_epoch(model, dataset, optimizer, loss_fn):
            total_sum, count = tf.constant(0.0), 0
            for x, y in dataset:
                batch_loss = train_step(model, optimizer, loss_fn, x, y)
                total_sum += batch_loss * tf.cast(tf.shape(x)[0], tf.float32)
                count += int(x.shape[0])
            return total_sum / count
        """,
    ],
    "evaluate_epoch": [
        """
        def evaluate_epoch(model, dataset, loss_fn):
            loss_mean, acc = keras.metrics.Mean(), keras.metrics.SparseCategoricalAccuracy()
            for x, y in dataset:
                logits = model(x, training=False)
                loss_mean.update_state(loss_fn(y, logits), sample_weight=len(y))
                acc.update_state(y, logits)
            return float(loss_mean.result()), float(acc.result())
        """,
        """
        def evaluate_epoch(model, dataset, loss_fn):
            total, hits, n = 0.0, 0, 0
            for x, y in dataset:
                out = model.predict_on_batch(x)
                total += float(loss_fn(y, out)) * len(y)
                hits += int(np.sum(np.argmax(out, axis=1) == y.numpy()))
                n += len(y)
            return total / n, hits / n
        """,
    ],
    "fit_and_evaluate": [
        """
        def fit_and_evaluate(model, x_train, y_train, x_test, y_test, epochs, batch_size):
            history = model.fit(x_train, y_train, batch_size, epochs, validation_split=0.1, shuffle=True, verbose=0)
            results = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
            return history, results["loss"], results["accuracy"]
        """,
    ],
    "predict_classes": [
        """
        def predict_classes(model, x):
            return tf.argmax(model(x, training=False), axis=1).numpy()
        """,
        """
        def predict_classes(model, x):
            probs = tf.nn.softmax(model.predict(x, batch_size=64, verbose=0))
            return np.argmax(probs, axis=-1).astype(np.int32)
        """,
    ],
}


@pytest.mark.parametrize(
    "name,index", [(name, i) for name, sources in VALID.items() for i in range(len(sources))]
)
def test_valid_alternatives_pass(solution, name, index):
    ns = notebook(solution, **{GRADE_ID.get(name, name): VALID[name][index]})
    assert set(grade(ns, name)) == {"ok"}


def test_train_epoch_is_graded_apart_from_a_broken_train_step(solution):
    """A bug in train_step (forward pass outside the tape) costs points in its own cell only."""
    ns = mutate(
        solution,
        "train_step",
        "    with tf.GradientTape() as tape:\n        logits = model(x, training=True)\n",
        "    logits = model(x, training=True)\n    with tf.GradientTape() as tape:\n",
    )
    assert set(grade(ns, "train_step")) == {"train.tape"}
    assert set(grade(ns, "train_epoch")) == {"ok"}
    assert (
        ns["train_epoch"].__globals__["train_step"] is ns["train_step"]
    )  # restored after the check


# ------------------------------------------------------------------------------ mutants

EVAL_BATCH_MEANS = """
def evaluate_epoch(model, dataset, loss_fn):
    losses, correct, count = [], 0, 0
    for x, y in dataset:
        logits = model(x, training=False)
        losses.append(float(loss_fn(y, logits)))
        correct += int(np.sum(np.argmax(logits, axis=-1) == y.numpy()))
        count += len(y)
    return float(np.mean(losses)), correct / count
"""

# name: (cell, grade_id, old (None: the whole cell), new, expected codes: visible then hidden checks)
MUTANTS = {
    # preprocess
    "no-scaling": (
        "preprocess",
        "preprocess",
        '.astype("float32") / 255.0',
        '.astype("float32")',
        ["preprocess.range"] * 2,
    ),
    "float64": (
        "preprocess",
        "preprocess",
        'x = x.astype("float32") / 255.0',
        "x = x / 255.0",
        ["preprocess.dtype"] * 2,
    ),
    "standardised": (
        "preprocess",
        "preprocess",
        'x = x.astype("float32") / 255.0',
        'x = x.astype("float32")\n    x = (x - x.mean()) / x.std()',
        ["preprocess.range"] * 2,
    ),
    "no-channel-axis": (
        "preprocess",
        "preprocess",
        "return x[..., np.newaxis], y",
        "return x, y",
        ["preprocess.shape"] * 2,
    ),
    "channels-first": (
        "preprocess",
        "preprocess",
        "return x[..., np.newaxis], y",
        "return x[:, np.newaxis], y",
        ["preprocess.layout"] * 2,
    ),
    "one-hot-labels": (
        "preprocess",
        "preprocess",
        "return x[..., np.newaxis], y",
        "return x[..., np.newaxis], keras.utils.to_categorical(y, 10)",
        ["preprocess.labels"] * 2,
    ),
    # models
    "valid-padding": (
        "build_sequential",
        "build_sequential",
        'layers.Conv2D(32, 3, padding="same"',
        'layers.Conv2D(32, 3, padding="valid"',
        ["model.layer_config", "model.params", "model.same_arch", "ok"],
    ),
    "softmax-head": (
        "build_sequential",
        "build_sequential",
        "layers.Dense(10)",
        'layers.Dense(10, activation="softmax")',
        ["model.layer_config", "ok", "model.same_arch", "ok"],
    ),
    "missing-pool": (
        "build_sequential",
        "build_sequential",
        "            layers.MaxPooling2D(2),\n            layers.Flatten(),",
        "            layers.Flatten(),",
        ["model.layers", "model.params", "model.same_arch", "ok"],
    ),
    "wrong-filters": (
        "build_sequential",
        "build_sequential",
        "layers.Conv2D(32, 3,",
        "layers.Conv2D(64, 3,",
        ["model.layer_config", "model.params", "model.same_arch", "ok"],
    ),
    "global-model": (
        "build_sequential",
        "build_sequential",
        None,
        "_MODEL = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(16, 3, padding='same', activation='relu'), layers.MaxPooling2D(2), layers.Conv2D(32, 3, padding='same', activation='relu'), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10)])\n\ndef build_sequential():\n    return _MODEL\n",
        ["ok", "ok", "ok", "model.fresh"],
    ),
    "functional-is-sequential": (
        "build_functional",
        "build_functional",
        None,
        "def build_functional():\n    return build_sequential()\n",
        ["model.type", "model.type", "model.type", "ok"],
    ),
    "no-input": (
        "build_sequential",
        "build_sequential",
        "            keras.Input(shape=(28, 28, 1)),\n",
        "",
        ["model.input_shape", "model.input_shape", "model.input_shape", "ok"],
    ),
    # custom conv layer
    "conv-ignores-padding": (
        "MyConv2D",
        "my_conv2d",
        "padding=self.padding.upper()",
        'padding="VALID"',
        [
            "ok",
            "ok",
            "custom_conv.padding",
            "ok",
            "custom_conv.gradients",
            "custom_conv.padding",
            "custom_conv.gradients",
            "custom_conv.model",
        ],
    ),
    "conv-ignores-stride": (
        "MyConv2D",
        "my_conv2d",
        "strides=[1, s, s, 1]",
        "strides=[1, 1, 1, 1]",
        [
            "ok",
            "ok",
            "ok",
            "custom_conv.stride",
            "ok",
            "custom_conv.stride",
            "custom_conv.gradients",
            "ok",
        ],
    ),
    "conv-flipped-kernel": (
        "MyConv2D",
        "my_conv2d",
        "tf.reshape(self.kernel, (-1, self.filters))",
        "tf.reshape(self.kernel[::-1, ::-1], (-1, self.filters))",
        [
            "ok",
            "custom_conv.flip",
            "custom_conv.flip",
            "custom_conv.flip",
            "custom_conv.gradients",
            "custom_conv.flip",
            "custom_conv.gradients",
            "custom_conv.model",
        ],
    ),
    "conv-tf-nn": (
        "MyConv2D",
        "my_conv2d",
        "return tf.tensordot(patches, w, axes=1) + self.bias",
        "return tf.nn.conv2d(inputs, self.kernel, s, self.padding.upper()) + self.bias",
        ["ok"] + ["custom_conv.framework_used"] * 7,
    ),
    "conv-numpy": (
        "MyConv2D",
        "my_conv2d",
        "return tf.tensordot(patches, w, axes=1) + self.bias",
        "return tf.constant(np.tensordot(patches.numpy(), w.numpy(), axes=1) + self.bias.numpy())",
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "custom_conv.gradients",
            "ok",
            "custom_conv.gradients",
            "custom_conv.model",
        ],
    ),
    "conv-static-batch": (
        "MyConv2D",
        "my_conv2d",
        "return tf.tensordot(patches, w, axes=1) + self.bias",
        "n, ho, wo = inputs.shape[0], patches.shape[1], patches.shape[2]\n        flat = tf.reshape(patches, (n * ho * wo, -1))\n        return tf.reshape(flat @ w, (n, ho, wo, self.filters)) + self.bias",
        ["ok"] * 7 + ["custom_conv.model"],
    ),
    "conv-constant-weights": (
        "MyConv2D",
        "my_conv2d",
        'self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")',
        "self.bias = tf.zeros((self.filters,))",
        ["custom_conv.weights"] * 5
        + ["custom_conv.weights", "custom_conv.weights", "custom_conv.model"],
    ),
    # compile
    "string-loss": (
        "compile_model",
        "compile_model",
        "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)",
        'loss="sparse_categorical_crossentropy"',
        ["compile.from_logits", "ok", "compile.from_logits"],
    ),
    "inverted-from-logits": (
        "compile_model",
        "compile_model",
        "from_logits=from_logits",
        "from_logits=not from_logits",
        ["compile.from_logits"] * 3,
    ),
    "categorical-loss": (
        "compile_model",
        "compile_model",
        "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)",
        "loss=keras.losses.CategoricalCrossentropy(from_logits=from_logits)",
        ["compile.loss_labels"] * 3,
    ),
    "no-metric": (
        "compile_model",
        "compile_model",
        'metrics=["accuracy"],',
        "",
        ["compile.metrics"] * 3,
    ),
    "categorical-accuracy": (
        "compile_model",
        "compile_model",
        'metrics=["accuracy"]',
        'metrics=["categorical_accuracy"]',
        ["compile.metrics"] * 3,
    ),
    "compiles-a-copy": (
        "compile_model",
        "compile_model",
        "    model.compile(",
        "    model = keras.models.clone_model(model)\n    model.compile(",
        ["compile.in_place"] * 3,
    ),
    # train_step
    "forward-outside-tape": (
        "train_step",
        "train_step",
        "    with tf.GradientTape() as tape:\n        logits = model(x, training=True)\n",
        "    logits = model(x, training=True)\n    with tf.GradientTape() as tape:\n",
        ["train.tape"] * 4,
    ),
    "tape-not-watching": (
        "train_step",
        "train_step",
        "tf.GradientTape()",
        "tf.GradientTape(watch_accessed_variables=False)",
        ["train.tape"] * 4,
    ),
    "training-flag-missing": (
        "train_step",
        "train_step",
        "model(x, training=True)",
        "model(x)",
        ["ok", "train.mode", "ok", "train.mode"],
    ),
    "apply-to-model-weights": (
        "train_step",
        "train_step",
        "optimizer.apply_gradients(zip(grads, model.trainable_variables))",
        "optimizer.apply_gradients(zip(grads, model.weights))",
        ["ok", "train.apply", "ok", "train.apply"],
    ),
    "reversed-variables": (
        "train_step",
        "train_step",
        "optimizer.apply_gradients(zip(grads, model.trainable_variables))",
        "optimizer.apply_gradients(zip(grads, model.trainable_variables[::-1]))",
        ["train.apply"] * 4,
    ),
    "last-layer-gradients-only": (
        "train_step",
        "train_step",
        "grads = tape.gradient(loss, model.trainable_variables)",
        "grads = tape.gradient(loss, model.trainable_variables[-2:])",
        ["train.apply"] * 4,
    ),
    "never-applied": (
        "train_step",
        "train_step",
        "    optimizer.apply_gradients(zip(grads, model.trainable_variables))\n",
        "",
        ["train.apply"] * 4,
    ),
    "manual-sgd": (
        "train_step",
        "train_step",
        "    optimizer.apply_gradients(zip(grads, model.trainable_variables))",
        "    for g, v in zip(grads, model.trainable_variables):\n        v.assign_sub(0.1 * g)",
        ["train.optimizer"] * 4,
    ),
    "gradient-ascent": (
        "train_step",
        "train_step",
        "zip(grads, model.trainable_variables)",
        "zip([-g for g in grads], model.trainable_variables)",
        ["train.gradient_sign"] * 4,
    ),
    "loss-after-update": (
        "train_step",
        "train_step",
        "    return loss",
        "    return loss_fn(y, model(x, training=False))",
        ["train.loss_value"] * 4,
    ),
    "uses-train-on-batch": (
        "train_step",
        "train_step",
        "    with tf.GradientTape() as tape:",
        "    model.compile(optimizer=optimizer, loss=loss_fn)\n    return model.train_on_batch(x, y)\n    with tf.GradientTape() as tape:",
        ["train.framework_used"] * 4,
    ),
    # train_epoch
    "epoch-mean-of-batch-means": (
        "train_epoch",
        "train_epoch",
        "total += float(loss) * n",
        "total += float(loss)\n        n = 1",
        ["train.loss_average"] * 2,
    ),
    "epoch-return-in-loop": (
        "train_epoch",
        "train_epoch",
        "        count += n\n    return total / count",
        "        count += n\n        return total / count",
        ["train.epoch_incomplete"] * 2,
    ),
    "epoch-sum": (
        "train_epoch",
        "train_epoch",
        "return total / count",
        "return total",
        ["train.loss_value"] * 2,
    ),
    "epoch-last-loss": (
        "train_epoch",
        "train_epoch",
        "return total / count",
        "return float(loss)",
        ["train.loss_value"] * 2,
    ),
    # evaluate_epoch
    "eval-training-mode": (
        "evaluate_epoch",
        "evaluate_epoch",
        "training=False",
        "training=True",
        ["eval.mode"] * 2,
    ),
    "eval-trains": (
        "evaluate_epoch",
        "evaluate_epoch",
        "        logits = model(x, training=False)\n",
        "        opt = keras.optimizers.SGD(0.01)\n        with tf.GradientTape() as tape:\n            logits = model(x, training=False)\n            batch_loss = loss_fn(y, logits)\n        grads = tape.gradient(batch_loss, model.trainable_variables)\n        opt.apply_gradients(zip(grads, model.trainable_variables))\n",
        ["eval.updates_weights"] * 2,
    ),
    "eval-mean-of-batch-means": (
        "evaluate_epoch",
        "evaluate_epoch",
        None,
        EVAL_BATCH_MEANS,
        ["eval.loss_average"] * 2,
    ),
    "eval-percent": (
        "evaluate_epoch",
        "evaluate_epoch",
        "correct / count",
        "100 * correct / count",
        ["eval.accuracy"] * 2,
    ),
    # fit_and_evaluate
    "fit-no-validation": (
        "fit_and_evaluate",
        "fit_and_evaluate",
        "validation_split=0.1, ",
        "",
        ["fit.validation"] * 2,
    ),
    "fit-validation-0.2": (
        "fit_and_evaluate",
        "fit_and_evaluate",
        "validation_split=0.1",
        "validation_split=0.2",
        ["fit.validation"] * 2,
    ),
    "fit-fixed-epochs": (
        "fit_and_evaluate",
        "fit_and_evaluate",
        "epochs=epochs",
        "epochs=1",
        ["fit.epochs"] * 2,
    ),
    "fit-default-batch": (
        "fit_and_evaluate",
        "fit_and_evaluate",
        "batch_size=batch_size, ",
        "",
        ["fit.batch_size"] * 2,
    ),
    "fit-evaluates-train": (
        "fit_and_evaluate",
        "fit_and_evaluate",
        "model.evaluate(x_test, y_test",
        "model.evaluate(x_train, y_train",
        ["fit.evaluate"] * 2,
    ),
    # predict_classes
    "predict-axis-0": (
        "predict_classes",
        "predict_classes",
        "axis=-1",
        "axis=0",
        ["predict.axis"] * 3,
    ),
    "predict-probabilities": (
        "predict_classes",
        "predict_classes",
        "np.argmax(model.predict(x, verbose=0), axis=-1)",
        "model.predict(x, verbose=0)",
        ["predict.shape"] * 3,
    ),
    "predict-training-mode": (
        "predict_classes",
        "predict_classes",
        "np.argmax(model.predict(x, verbose=0), axis=-1)",
        "np.argmax(model(x, training=True), axis=-1)",
        ["ok", "ok", "predict.mode"],
    ),
    "predict-float": (
        "predict_classes",
        "predict_classes",
        "axis=-1)",
        "axis=-1).astype(float)",
        ["predict.dtype"] * 3,
    ),
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_fails_with_the_code_naming_its_bug(solution, name):
    cell, grade_id, old, new, expected = MUTANTS[name]
    assert grade(mutate(solution, grade_id, old, new), cell) == expected


# ------------------------------------------------------------------------------ trained model


def test_trained_model_checks():
    from solutions import keras_cnn as ref

    untrained = ref.ref_build_sequential()
    assert codes(kt.public_trained_model, kt.hidden_trained_model, untrained) == [
        "trained.accuracy",
        "ok",
    ]
    import keras

    other = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    assert codes(kt.public_trained_model, kt.hidden_trained_model, other) == [
        "trained.accuracy",
        "trained.spec",
    ]
    assert codes(kt.public_trained_model, kt.hidden_trained_model, None) == ["not_attempted"] * 2
    g = kt.public_trained_model(None, points=2)
    kt.hidden_trained_model(g, None, SEED)
    assert g.score() == 0.0 and "Non tenté" in g.report()


def test_messages_are_french_and_hide_nothing_secret(solution):
    ns = mutate(
        solution, "train_epoch", "total += float(loss) * n", "total += float(loss)\n        n = 1"
    )
    g = kt.public_train_epoch(ns["train_epoch"], points=2)
    text = g.report()
    assert "[train.loss_average]" in text and "dernier lot est plus petit" in text
    ns = mutate(solution, "train_step", "model(x, training=True)", "model(x)")
    g = kt.public_train_step(ns["train_step"], points=3)
    assert "training=True" in g.report() and g.score() == 1.5
