"""Unit tests of autograder.checks.setup (module 2): mutants fail with their code, valid code passes.

The hidden checks simulate other machines (a framework not installed, a CUDA GPU, an Apple
GPU, TensorFlow alone); these tests also show that the simulations leave the real
environment exactly as they found it. Everything here runs on a CPU-only machine.
"""

from __future__ import annotations

import importlib.metadata
import random
import sys

import numpy as np
import pytest

from autograder.checks import setup
from solutions import setup as ref

pytestmark = [pytest.mark.torch, pytest.mark.tf]

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

SEED = 2026


def outcomes(public, hidden, fn) -> list[str]:
    g = public(fn, points=2)
    hidden(g, fn, SEED)
    return [r.code if not r.passed else "ok" for r in g.results]


# --------------------------------------------------------------------------------- framework_versions


def versions_find_spec():
    """find_spec first, then the module's __version__."""
    import importlib
    import importlib.util

    out = {}
    for key in ("numpy", "torch", "tensorflow"):
        out[key] = (
            importlib.import_module(key).__version__ if importlib.util.find_spec(key) else None
        )
    return out


def versions_metadata():
    """importlib.metadata only, trying each distribution name TensorFlow ships under."""
    from importlib.metadata import PackageNotFoundError, version

    def first(*names):
        for name in names:
            try:
                return version(name)
            except PackageNotFoundError:
                pass
        return None

    return {
        "numpy": first("numpy"),
        "torch": first("torch"),
        "tensorflow": first("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"),
    }


@pytest.mark.parametrize("fn", [ref.ref_framework_versions, versions_find_spec, versions_metadata])
def test_framework_versions_valid(fn):
    assert (
        outcomes(setup.public_framework_versions, setup.hidden_framework_versions, fn) == ["ok"] * 5
    )


def _versions_no_try():
    import tensorflow
    import torch

    return {
        "numpy": np.__version__,
        "torch": torch.__version__,
        "tensorflow": tensorflow.__version__,
    }


def _versions_tf_from_metadata():
    """Plausible on a laptop with the `tensorflow` wheel; wrong where TF is `tensorflow-cpu`."""
    out = ref.ref_framework_versions()
    try:
        out["tensorflow"] = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        out["tensorflow"] = None
    return out


VERSIONS_MUTANTS = {
    "imports-without-try": (_versions_no_try, ["ok", "ok", "ok", "ok", "versions.missing"]),
    "numpy-hard-coded": (
        lambda: {**ref.ref_framework_versions(), "numpy": "1.26.4"},
        ["ok", "versions.numpy", "ok", "ok", "versions.numpy"],
    ),
    "tf-from-metadata-name": (
        _versions_tf_from_metadata,
        ["ok", "ok", "ok", "versions.tf", "versions.tf"],
    ),
    "key-missing": (lambda: {"numpy": np.__version__, "torch": None}, ["versions.keys"] * 5),
    "tuple-versions": (
        lambda: {k: tuple((v or "0").split(".")) for k, v in ref.ref_framework_versions().items()},
        ["versions.type"] * 5,
    ),
    "list-not-dict": (lambda: list(ref.ref_framework_versions().values()), ["versions.type"] * 5),
}


@pytest.mark.parametrize("name", list(VERSIONS_MUTANTS))
def test_framework_versions_mutants(name):
    fn, expected = VERSIONS_MUTANTS[name]
    assert (
        outcomes(setup.public_framework_versions, setup.hidden_framework_versions, fn) == expected
    )


def test_framework_versions_local_tag_ignored():
    """torch.__version__ is '2.x.y+cu130' where metadata may say '2.x.y': both accepted."""
    local = {**ref.ref_framework_versions(), "torch": setup.installed_version("torch") + "+cpu"}
    assert (
        outcomes(setup.public_framework_versions, setup.hidden_framework_versions, lambda: local)[2]
        == "ok"
    )


def test_frameworks_missing_simulation_is_undone():
    before = (sys.modules["torch"], importlib.metadata.version, importlib.metadata.distribution)
    with setup.frameworks_missing("torch", "tensorflow"):
        with pytest.raises(ImportError):
            import torch  # noqa: F401
        assert importlib.util.find_spec("tensorflow") is None
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.version(setup._distributions("tensorflow")[0])
        assert importlib.metadata.version("numpy") == np.__version__
    assert (
        sys.modules["torch"],
        importlib.metadata.version,
        importlib.metadata.distribution,
    ) == before
    import torch as again

    assert again is before[0]


# --------------------------------------------------------------------------------- detect_device


def device_count_style():
    """device_count(), getattr for old PyTorch without torch.backends.mps, TF experimental API."""
    try:
        import torch
    except ImportError:
        import tensorflow as tf

        return "cuda" if tf.config.experimental.list_physical_devices("GPU") else "cpu"
    if torch.cuda.device_count() > 0:
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def device_torch_device_str():
    """Builds a torch.device, returns its type (a str)."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None:
        import tensorflow as tf

        return "cuda" if len(tf.config.list_physical_devices("GPU")) else "cpu"
    name = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    return torch.device(name).type


@pytest.mark.parametrize("fn", [ref.ref_detect_device, device_count_style, device_torch_device_str])
def test_detect_device_valid(fn):
    assert outcomes(setup.public_detect_device, setup.hidden_detect_device, fn) == ["ok"] * 6


def _device_variant(*, mps=True, mps_first=False, tf_fallback=True):
    def detect_device():
        try:
            import torch
        except ImportError:
            if not tf_fallback:
                raise
            import tensorflow as tf

            return "cuda" if tf.config.list_physical_devices("GPU") else "cpu"
        order = [("mps", torch.backends.mps.is_available), ("cuda", torch.cuda.is_available)]
        if not mps_first:
            order.reverse()
        for name, test in order:
            if (mps or name != "mps") and test():
                return name
        return "cpu"

    return detect_device


DEVICE_MUTANTS = {
    "always-cpu": (
        lambda: "cpu",
        ["ok", "device.cuda", "device.mps", "device.priority", "ok", "device.tf_only"],
    ),
    "mps-forgotten": (_device_variant(mps=False), ["ok", "ok", "device.mps", "ok", "ok", "ok"]),
    "mps-before-cuda": (
        _device_variant(mps_first=True),
        ["ok", "ok", "ok", "device.priority", "ok", "ok"],
    ),
    "no-tf-fallback": (
        _device_variant(tf_fallback=False),
        ["ok", "ok", "ok", "ok", "ok", "device.tf_only"],
    ),
    "always-cuda": (
        lambda: "cuda",
        ["device.machine", "ok", "device.mps", "ok", "device.cpu", "device.tf_only"],
    ),
    "torch-device-object": (lambda: torch.device("cpu"), ["device.type"] * 5 + ["device.tf_only"]),
    "gpu-word": (
        lambda: "gpu" if torch.cuda.is_available() else "cpu",
        ["ok", "device.type", "device.mps", "device.type", "ok", "device.tf_only"],
    ),
}


@pytest.mark.parametrize("name", list(DEVICE_MUTANTS))
def test_detect_device_mutants(name):
    fn, expected = DEVICE_MUTANTS[name]
    if name == "always-cuda" and torch.cuda.is_available():
        expected = ["ok"] + expected[1:]
    assert outcomes(setup.public_detect_device, setup.hidden_detect_device, fn) == expected


def test_device_simulations_are_undone():
    real = (
        torch.cuda.is_available(),
        torch.backends.mps.is_available(),
        tf.config.list_physical_devices("GPU"),
    )
    with setup.simulated_machine(cuda=True, mps=True):
        assert torch.cuda.is_available() and torch.backends.mps.is_available()
        assert len(tf.config.list_physical_devices("GPU")) == 1
        assert tf.config.list_physical_devices("CPU")
    assert (
        torch.cuda.is_available(),
        torch.backends.mps.is_available(),
        tf.config.list_physical_devices("GPU"),
    ) == real


# --------------------------------------------------------------------------------- seed_everything


def seed_keras(seed):
    """keras.utils.set_random_seed seeds Python, NumPy and TF; torch is seeded by hand."""
    try:
        import keras

        keras.utils.set_random_seed(seed)
    except ImportError:
        random.seed(seed)
        np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


@pytest.mark.parametrize("fn", [ref.ref_seed_everything, seed_keras])
def test_seed_everything_valid(fn):
    assert outcomes(setup.public_seed_everything, setup.hidden_seed_everything, fn) == ["ok"] * 6


def _seed_variant(*, python=True, numpy="global", torch_=True, tf_=True, fixed=None, guarded=True):
    def seed_everything(seed):
        seed = fixed if fixed is not None else seed
        if python:
            random.seed(seed)
        if numpy == "global":
            np.random.seed(seed)
        elif numpy == "generator":
            np.random.default_rng(seed)
        for enabled, module, call in (
            (torch_, "torch", "manual_seed"),
            (tf_, "tensorflow", "random.set_seed"),
        ):
            if not enabled:
                continue
            try:
                import importlib

                obj = importlib.import_module(module)
            except ImportError:
                if not guarded:
                    raise
                continue
            for part in call.split("."):
                obj = getattr(obj, part)
            obj(seed)

    return seed_everything


SEED_MUTANTS = {
    "python-forgotten": (
        _seed_variant(python=False),
        ["seed.python", "ok", "ok", "ok", "seed.python", "seed.python"],
    ),
    "numpy-generator-not-global": (
        _seed_variant(numpy="generator"),
        ["ok", "seed.numpy", "ok", "ok", "seed.numpy", "seed.numpy"],
    ),
    "torch-forgotten": (
        _seed_variant(torch_=False),
        ["ok", "ok", "seed.torch", "ok", "seed.torch", "ok"],
    ),
    "tf-forgotten": (_seed_variant(tf_=False), ["ok", "ok", "ok", "seed.tf", "seed.tf", "ok"]),
    "imports-without-try": (
        _seed_variant(guarded=False),
        ["ok", "ok", "ok", "ok", "ok", "seed.missing_framework"],
    ),
    "seed-hard-coded": (_seed_variant(fixed=42), ["seed.fixed"] * 6),
    "keras-only": (
        lambda seed: __import__("keras").utils.set_random_seed(seed),
        ["ok", "ok", "seed.torch", "ok", "seed.torch", "ok"],
    ),
}


@pytest.mark.parametrize("name", list(SEED_MUTANTS))
def test_seed_everything_mutants(name):
    fn, expected = SEED_MUTANTS[name]
    assert outcomes(setup.public_seed_everything, setup.hidden_seed_everything, fn) == expected


def test_seed_visible_check_skips_missing_framework_with_a_message(monkeypatch):
    """On a student machine without TensorFlow the visible check says it skipped that part."""
    real = setup.available
    monkeypatch.setattr(setup, "available", lambda f: False if f == "tf" else real(f))
    g = setup.public_seed_everything(_seed_variant(tf_=False), points=4)
    names = [r.name for r in g.results]
    assert (
        "n'est pas installé ici : vérification ignorée" in names[-1] and "TensorFlow" in names[-1]
    )
    assert g.fraction == 1.0
    # At grading both frameworks are installed: the hidden part still catches the mutant.
    monkeypatch.setattr(setup, "available", real)
    g = setup.public_seed_everything(_seed_variant(tf_=False), points=4)
    assert g.codes == ["seed.tf"]


# --------------------------------------------------------------------------------- to_device


def to_device_isinstance(x, device):
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {key: to_device_isinstance(value, device) for key, value in x.items()}
    if isinstance(x, list):
        return [to_device_isinstance(v, device) for v in x]
    if isinstance(x, tuple):
        return tuple(to_device_isinstance(v, device) for v in x)
    return x


def to_device_pytree(x, device):
    from torch.utils import _pytree

    return _pytree.tree_map(lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, x)


@pytest.mark.parametrize("fn", [ref.ref_to_device, to_device_isinstance, to_device_pytree])
def test_to_device_valid(fn):
    assert outcomes(setup.public_to_device, setup.hidden_to_device, fn) == ["ok"] * 5


def _to_device_variant(*, nested=True, keep_tuples=True, leaves=True):
    def to_device(x, device):
        if isinstance(x, torch.Tensor):
            return x.to(device)
        if nested and isinstance(x, dict):
            return {k: to_device(v, device) for k, v in x.items()}
        if nested and isinstance(x, list | tuple):
            items = [to_device(v, device) for v in x]
            return type(x)(items) if keep_tuples else items
        return x if leaves else x.to(device)

    return to_device


def _to_device_dict_values(x, device):
    if isinstance(x, dict):
        return [_to_device_dict_values(v, device) for v in x.values()]
    if isinstance(x, list | tuple):
        return type(x)(_to_device_dict_values(v, device) for v in x)
    return x.to(device) if isinstance(x, torch.Tensor) else x


def _to_device_float32(x, device):
    if isinstance(x, torch.Tensor):
        return x.to(device, dtype=torch.float32)
    if isinstance(x, dict):
        return {k: _to_device_float32(v, device) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_to_device_float32(v, device) for v in x)
    return x


TO_DEVICE_MUTANTS = {
    "not-moved": (
        lambda x, device: x,
        ["ok", "to_device.not_moved", "to_device.nested", "to_device.nested", "to_device.nested"],
    ),
    "top-level-only": (
        _to_device_variant(nested=False),
        ["ok", "ok", "to_device.nested", "to_device.nested", "to_device.nested"],
    ),
    "tuples-become-lists": (
        _to_device_variant(keep_tuples=False),
        ["ok", "ok", "to_device.container", "to_device.container", "to_device.container"],
    ),
    "to-on-every-leaf": (
        _to_device_variant(leaves=False),
        ["ok", "ok", "ok", "to_device.leaves", "to_device.leaves"],
    ),
    "dict-becomes-list": (
        _to_device_dict_values,
        ["ok", "ok", "to_device.container", "to_device.container", "to_device.container"],
    ),
    "cast-to-float32": (
        _to_device_float32,
        ["to_device.values", "ok", "to_device.values", "to_device.values", "to_device.values"],
    ),
}


@pytest.mark.parametrize("name", list(TO_DEVICE_MUTANTS))
def test_to_device_mutants(name):
    fn, expected = TO_DEVICE_MUTANTS[name]
    assert outcomes(setup.public_to_device, setup.hidden_to_device, fn) == expected


def test_to_device_cuda_mutant_fails_without_gpu():
    """`.cuda()` ignores the device argument: it raises on a CPU-only machine, or lands on the wrong device."""
    codes = outcomes(setup.public_to_device, setup.hidden_to_device, lambda x, device: x.cuda())
    assert codes[0] in ("to_device.exception", "to_device.not_moved", "to_device.values")
    assert "ok" not in codes[:2]


# --------------------------------------------------------------------------------- student machines

ONE_FRAMEWORK = r"""
import json, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # not installed on this student machine
from pathlib import Path
from autograder.checks import setup
from autograder.grading.pipeline import solution_sources

ns = {}
exec("import os, random, sys\nimport numpy as np", ns)
for source in solution_sources(Path("source/m2-setup/environment.ipynb")).values():
    exec(source, ns)
out = {}
for name in ("framework_versions", "detect_device", "seed_everything", "to_device"):
    g = getattr(setup, "public_" + name)(ns[name], points=1)
    out[name] = [g.fraction, [r.name for r in g.results], g.codes]
print(json.dumps(out))
"""


@pytest.mark.parametrize("missing", ["torch", "tensorflow,keras"])
def test_visible_checks_on_a_machine_with_one_framework(repo_root, missing):
    """The notebook's own solution passes every visible check where a framework is missing
    (and `solutions` is not installed); the skipped parts say so."""
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", ONE_FRAMEWORK, missing + ",solutions"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (fraction, _, codes) in results.items():
        assert fraction == 1.0 and codes == [], (name, codes)
    framework = "PyTorch" if missing == "torch" else "TensorFlow"
    skipped = [n for _, names, _ in results.values() for n in names if "vérification ignorée" in n]
    assert skipped and all(framework in n for n in skipped)
    if missing == "torch":
        assert len(skipped) == 5  # seed: PyTorch; to_device: its four checks
        assert "None attendu" in results["framework_versions"][1][2]
