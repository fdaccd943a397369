"""Framework adapters: PyTorch and TensorFlow objects in, NumPy (NCHW) out.

Nothing here imports a framework at module level. :func:`to_numpy` recognises a tensor by the
module its type comes from, so converting a NumPy array never imports PyTorch or TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

FRAMEWORKS = ("torch", "tf")
_MODULE_OF = {"torch": "torch", "tf": "tensorflow"}


@cache
def available(framework: str) -> bool:
    """Whether ``framework`` (``"torch"`` or ``"tf"``) can be imported here."""
    return importlib.util.find_spec(_MODULE_OF[framework]) is not None


def installed_frameworks() -> list[str]:
    """The frameworks installed here, PyTorch first."""
    return [f for f in FRAMEWORKS if available(f)]


def avoid_triton_crash() -> None:
    """Keep torch from loading Triton into a process where TensorFlow is already loaded.

    Measured here (tensorflow-cpu 2.21, torch 2.14.1, triton 3.8): ``import tensorflow`` then
    ``import torchvision`` kills the process (SIGSEGV in ``triton._C.libtriton``, whose LLVM
    clashes with TensorFlow's); the other order works. Triton only serves ``torch.compile`` on
    GPUs, so in that one situation torch is told it is absent (``sys.modules["triton"] = None``
    makes ``import triton`` raise ImportError, which torch handles) instead of crashing.
    """
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]


def backend(framework: str) -> ModuleType:
    """The adapter module for ``framework`` (imports the framework on first call)."""
    if framework not in _MODULE_OF:
        raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")
    if framework == "torch":
        avoid_triton_crash()
    return importlib.import_module(f"autograder.backends.{framework}_backend")


def any_backend() -> ModuleType:
    """The adapter of the first installed framework; RuntimeError when there is none."""
    for framework in FRAMEWORKS:
        if available(framework):
            return backend(framework)
    raise RuntimeError("ni PyTorch ni TensorFlow n'est installé : installez l'un des deux")


def framework_of(obj: Any) -> str | None:
    """``"torch"``, ``"tf"`` or ``None`` from the module that defines ``type(obj)``."""
    root = type(obj).__module__.split(".", 1)[0]
    if root == "torch":
        return "torch"
    if root in ("tensorflow", "keras", "tf_keras"):
        return "tf"
    return None


def to_numpy(obj: Any) -> np.ndarray:
    """Convert an array-like (NumPy, PyTorch, TensorFlow, nested lists) to a NumPy array."""
    if isinstance(obj, np.ndarray):
        return obj
    framework = framework_of(obj)
    if framework is not None:
        return backend(framework).to_numpy(obj)
    return np.asarray(obj)
