"""Data sets of the course, all available offline.

``fashion_mnist``: the real Fashion-MNIST, found locally or in the Debian package, verified by
checksum and installed where ``tf.keras.datasets`` and ``torchvision.datasets`` read it. The
notebooks of modules 4-7 use::

    from autograder.data import load_keras, load_torchvision, CLASS_NAMES

No framework is imported here; the loaders import theirs when called.
"""

from autograder.data.fashion_mnist import (
    CLASS_NAMES,
    DataError,
    ensure_fashion_mnist,
    load_keras,
    load_torchvision,
    torchvision_root,
)

__all__ = [
    "CLASS_NAMES",
    "DataError",
    "ensure_fashion_mnist",
    "load_keras",
    "load_torchvision",
    "torchvision_root",
]
