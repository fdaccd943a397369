"""Reference solutions of module 4 (TensorFlow / Keras), notebook ``cnn_keras``.

The same code as the solution cells of ``source/m4-tensorflow/cnn_keras.ipynb``. Hidden checks
compare students to these (training loops: same weights and losses from the same start) and
the tests use them as the first valid implementation. Staff side only: this package is never
shipped to students. Importing it imports TensorFlow.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


def ref_preprocess(x, y):
    """uint8 images (N, 28, 28) -> float32 in [0, 1] with a channel axis (N, 28, 28, 1)."""
    x = np.asarray(x).astype(np.float32) / 255.0
    return x[..., np.newaxis], y


def ref_build_sequential():
    """Conv(16)-Pool-Conv(32)-Pool-Flatten-Dense(10) logits, Sequential API."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )


def ref_build_functional():
    """The same network with the functional API."""
    inputs = keras.Input(shape=(28, 28, 1))
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Flatten()(h)
    outputs = layers.Dense(10)(h)
    return keras.Model(inputs, outputs)


class RefMyConv2D(keras.layers.Layer):
    """2-D convolution (cross-correlation) by ``tf.image.extract_patches`` and a matmul."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding

    def build(self, input_shape):
        k, c = self.kernel_size, input_shape[-1]
        self.kernel = self.add_weight(
            shape=(k, k, c, self.filters), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        k, s = self.kernel_size, self.strides
        patches = tf.image.extract_patches(
            inputs,
            sizes=[1, k, k, 1],
            strides=[1, s, s, 1],
            rates=[1, 1, 1, 1],
            padding=self.padding.upper(),
        )
        w = tf.reshape(self.kernel, (-1, self.filters))
        return tf.tensordot(patches, w, axes=1) + self.bias


class RefMyConv2DLoops(RefMyConv2D):
    """The same layer by summing shifted slices, one per kernel offset (explicit padding)."""

    def call(self, inputs):
        k, s = self.kernel_size, self.strides
        h, w = inputs.shape[1], inputs.shape[2]
        if self.padding == "same":
            ho, wo = -(-h // s), -(-w // s)
            ph, pw = max((ho - 1) * s + k - h, 0), max((wo - 1) * s + k - w, 0)
            inputs = tf.pad(
                inputs, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]]
            )
        else:
            ho, wo = (h - k) // s + 1, (w - k) // s + 1
        out = 0.0
        for u in range(k):
            for v in range(k):
                window = inputs[:, u : u + (ho - 1) * s + 1 : s, v : v + (wo - 1) * s + 1 : s, :]
                out = out + tf.tensordot(window, self.kernel[u, v], axes=1)
        return out + self.bias


def ref_compile_model(model, from_logits):
    """Adam, sparse categorical cross-entropy matching the last activation, accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    return model


def ref_train_step(model, optimizer, loss_fn, x, y):
    """One gradient step; returns the batch loss (mean over the batch)."""
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return loss


def ref_train_epoch(model, dataset, optimizer, loss_fn, step=None):
    """One pass over ``dataset``; returns the mean loss per example (last batch may be smaller).

    ``step`` replaces :func:`ref_train_step` (the checks pass a correct one).
    """
    step = step or ref_train_step
    total, count = 0.0, 0
    for x, y in dataset:
        loss = step(model, optimizer, loss_fn, x, y)
        n = int(tf.shape(x)[0])
        total += float(loss) * n
        count += n
    return total / count


def ref_evaluate_epoch(model, dataset, loss_fn):
    """Mean loss per example and accuracy, in inference mode, without touching the weights."""
    total, correct, count = 0.0, 0, 0
    for x, y in dataset:
        logits = model(x, training=False)
        n = int(tf.shape(x)[0])
        total += float(loss_fn(y, logits)) * n
        pred = tf.argmax(logits, axis=-1, output_type=tf.int64)
        correct += int(tf.reduce_sum(tf.cast(pred == tf.cast(y, tf.int64), tf.int32)))
        count += n
    return total / count, correct / count


def ref_fit_and_evaluate(model, x_train, y_train, x_test, y_test, epochs, batch_size):
    """``fit`` with 10 % of the training set held out for validation, then ``evaluate``."""
    history = model.fit(
        x_train, y_train, epochs=epochs, batch_size=batch_size, validation_split=0.1, verbose=0
    )
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    return history, test_loss, test_acc


def ref_predict_classes(model, x):
    """Class ids (N,) from the model's outputs (logits or probabilities)."""
    return np.argmax(model.predict(x, verbose=0), axis=-1)
