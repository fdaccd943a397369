"""Reference answers of module 2, notebook `environment`: versions, device, seeding, moves.

Each framework is imported inside the function that needs it, so every reference also works
on a machine that has only one of PyTorch and TensorFlow.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np


def ref_framework_versions() -> dict[str, str | None]:
    """Versions of NumPy, PyTorch and TensorFlow; ``None`` for a framework that is absent."""
    versions: dict[str, str | None] = {"numpy": np.__version__, "torch": None, "tensorflow": None}
    try:
        import torch

        versions["torch"] = str(torch.__version__)
    except ImportError:
        pass
    try:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return versions


def ref_detect_device() -> str:
    """``"cuda"``, else ``"mps"``, else ``"cpu"``; PyTorch decides, TensorFlow when it is alone."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        import tensorflow as tf
    except ImportError:
        return "cpu"
    if tf.config.list_physical_devices("GPU"):
        return "mps" if sys.platform == "darwin" else "cuda"
    return "cpu"


def ref_seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator, PyTorch (all devices) and TensorFlow."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
        torch.cuda.manual_seed_all(seed)
    except ImportError:
        pass
    try:
        import tensorflow as tf

        tf.random.set_seed(seed)
    except ImportError:
        pass


def ref_to_device(x: Any, device: Any) -> Any:
    """Move every tensor of ``x`` (nested lists, tuples, dicts) to ``device``; keep the rest."""
    if hasattr(x, "to") and type(x).__module__.split(".", 1)[0] == "torch":
        return x.to(device)
    if isinstance(x, dict):
        return {k: ref_to_device(v, device) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(ref_to_device(v, device) for v in x)
    return x
