"""Checks for module 2, notebook `environment`: versions, device, seeding, moving tensors.

What is expected comes from this machine at run time: versions from ``importlib.metadata``,
the device from ``torch.cuda`` / ``torch.backends.mps`` (or TensorFlow's GPU list when PyTorch is
absent), reproducibility from draws made twice after seeding. Hidden checks go further by
simulating other machines: a framework that is not installed (its import fails and
``importlib.metadata`` does not know it), a CUDA GPU, an Apple GPU (MPS), TensorFlow alone.

A student machine may have only one of PyTorch and TensorFlow: the visible checks then skip
the missing framework's part and say so (the check's name); at grading both are installed and
nothing is skipped (a hidden check that cannot run counts 0).

Failure codes: ``versions.*``, ``device.*``, ``seed.*``, ``to_device.*``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import numpy as np

from autograder.backends import available
from autograder.checks._core import call_student
from autograder.feedback import CheckFailure, Grader, fail

#: Keys of `framework_versions()` and the module each one names.
VERSION_KEYS = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow"}
DEVICES = ("cuda", "mps", "cpu")
_FRAMEWORK_OF_KEY = {"torch": "torch", "tensorflow": "tf"}
_NAMES = {"torch": "PyTorch", "tf": "TensorFlow", "tensorflow": "TensorFlow"}
_ABSENT = object()


def skipped_name(framework: str, label: str) -> str:
    """Name of a visible check whose framework is missing here (the check then passes)."""
    return f"{label} — {_NAMES[framework]} n'est pas installé ici : vérification ignorée (elle sera faite à la correction)"


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@cache
def _distributions(module: str) -> tuple[str, ...]:
    """Distributions that provide ``module`` (``tensorflow`` → ``tensorflow-cpu`` here)."""
    found = importlib.metadata.packages_distributions().get(module, [])
    return tuple(dict.fromkeys([*found, module]))


def installed_version(module: str) -> str | None:
    """Version of the installed distribution that provides ``module``; ``None`` if absent."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    for dist in _distributions(module):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _public_version(v: str) -> str:
    """``2.14.1+cu130`` → ``2.14.1``: ``torch.__version__`` carries a local tag, metadata may not."""
    return v.strip().split("+", 1)[0]


@contextlib.contextmanager
def frameworks_missing(*modules: str) -> Iterator[None]:
    """Pretend ``modules`` are not installed while the block runs.

    ``import`` raises ImportError, ``importlib.util.find_spec`` returns None (``sys.modules``
    entries set to None) and ``importlib.metadata.version`` / ``distribution`` raise
    PackageNotFoundError for their distributions. Everything is restored afterwards.
    """
    md = importlib.metadata
    hidden = {_normalise(d) for m in modules for d in _distributions(m)}
    saved_modules = {m: sys.modules.get(m, _ABSENT) for m in modules}
    saved_api = {name: getattr(md, name) for name in ("version", "distribution", "metadata")}

    def guard(original: Callable[[str], Any]) -> Callable[[str], Any]:
        def wrapper(name: str, *args: Any, **kwargs: Any) -> Any:
            if _normalise(str(name)) in hidden:
                raise md.PackageNotFoundError(name)
            return original(name, *args, **kwargs)

        return wrapper

    try:
        for m in modules:
            sys.modules[m] = None  # type: ignore[assignment]
        for name, original in saved_api.items():
            setattr(md, name, guard(original))
        yield
    finally:
        for name, original in saved_api.items():
            setattr(md, name, original)
        for m, module in saved_modules.items():
            if module is _ABSENT:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = module


# ---------------------------------------------------------------------------------------------
# framework_versions
# ---------------------------------------------------------------------------------------------


def _versions(framework_versions: Callable) -> dict[str, Any]:
    got = call_student(framework_versions, what="framework_versions", code="versions")
    if not isinstance(got, dict):
        fail(
            "versions.type",
            "`framework_versions()` doit renvoyer un dictionnaire "
            f"`{{'numpy': ..., 'torch': ..., 'tensorflow': ...}}` ; reçu `{type(got).__name__}`.",
        )
    missing = [k for k in VERSION_KEYS if k not in got]
    if missing:
        fail("versions.keys", f"`framework_versions()` : il manque la ou les clés {missing}.")
    for key in VERSION_KEYS:
        value = got[key]
        if value is not None and not isinstance(value, str):
            fail(
                "versions.type",
                f"`framework_versions()['{key}']` doit être une chaîne (par ex. `'2.1.0'`) ou `None` ; "
                f"reçu `{type(value).__name__}`. Utilisez `module.__version__`.",
            )
    return got


def _expect_version(
    got: dict[str, Any], key: str, expected: str | None, *, context: str = ""
) -> None:
    value = got[key]
    code = "versions.tf" if key == "tensorflow" else f"versions.{key}"
    if expected is None:
        if value is not None:
            fail(
                "versions.missing" if context else code,
                f"`framework_versions()['{key}']` vaut {value!r}{context} alors que ce framework n'est "
                "pas installé : renvoyez `None`. Importez-le **dans** la fonction, dans un "
                "`try: ... except ImportError:`.",
            )
        return
    if value is None:
        fail(
            code,
            f"`framework_versions()['{key}']` vaut `None`{context} alors que `{key}` est installé ici. "
            "Importez-le dans un `try` et renvoyez `module.__version__`.",
        )
    if _public_version(value) != _public_version(expected):
        fail(
            code,
            f"`framework_versions()['{key}']` vaut {value!r}{context}, ce n'est pas la version "
            f"installée ici. Lisez-la sur le module importé : `{key}.__version__`.",
        )


def versions_format(framework_versions: Callable) -> None:
    """Un dictionnaire aux clés "numpy", "torch", "tensorflow" ; valeurs : chaîne ou None."""
    _versions(framework_versions)


def _versions_key(framework_versions: Callable, key: str) -> None:
    _expect_version(_versions(framework_versions), key, installed_version(VERSION_KEYS[key]))


def versions_numpy(framework_versions: Callable) -> None:
    """La version de NumPy est celle installée (`numpy.__version__`)."""
    _versions_key(framework_versions, "numpy")


def versions_torch(framework_versions: Callable) -> None:
    """La version de PyTorch est celle installée, ou None s'il n'est pas installé."""
    _versions_key(framework_versions, "torch")


def versions_tensorflow(framework_versions: Callable) -> None:
    """La version de TensorFlow est celle installée, ou None s'il n'est pas installé."""
    _versions_key(framework_versions, "tensorflow")


def versions_missing(framework_versions: Callable) -> None:
    """Machine simulée sans PyTorch, puis sans TensorFlow : la clé vaut None, le reste est juste."""
    expected = {key: installed_version(module) for key, module in VERSION_KEYS.items()}
    for absent in ("torch", "tensorflow"):
        context = f" (machine simulée sans {_NAMES[absent]})"
        with frameworks_missing(absent):
            try:
                got = _versions(framework_versions)
            except CheckFailure as exc:
                if exc.code == "versions.exception":
                    fail(
                        "versions.missing",
                        f"{exc.message}{context} : un framework absent doit donner `None`, pas une "
                        "erreur (`try: import ... except ImportError: ...`).",
                    )
                raise
        for key in VERSION_KEYS:
            _expect_version(got, key, None if key == absent else expected[key], context=context)


def public_framework_versions(framework_versions: Callable, points: float) -> Grader:
    g = Grader("framework-versions", points, "framework_versions")
    g.check(versions_format, framework_versions, name="dictionnaire et types")
    g.check(versions_numpy, framework_versions, name="NumPy")
    g.check(
        versions_torch,
        framework_versions,
        name="PyTorch" + ("" if available("torch") else " (non installé ici : None attendu)"),
    )
    g.check(
        versions_tensorflow,
        framework_versions,
        name="TensorFlow" + ("" if available("tf") else " (non installé ici : None attendu)"),
    )
    return g


def hidden_framework_versions(g: Grader, framework_versions: Callable, seed: int) -> None:  # noqa: ARG001
    g.hidden().check(versions_missing, framework_versions, name="framework absent", weight=2)


# ---------------------------------------------------------------------------------------------
# detect_device
# ---------------------------------------------------------------------------------------------


def machine_device() -> str:
    """The device this machine offers: from PyTorch when installed, else from TensorFlow."""
    if available("torch"):
        import torch

        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if available("tf"):
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return "mps" if sys.platform == "darwin" else "cuda"
    return "cpu"


@contextlib.contextmanager
def _patched(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    saved = [(obj, name, getattr(obj, name, _ABSENT)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in reversed(saved):
            if value is _ABSENT:
                delattr(obj, name)
            else:
                setattr(obj, name, value)


def _tf_gpu_patches(gpu: bool) -> list[tuple[Any, str, Any]]:
    """TensorFlow reports one GPU, or none (TensorFlow is imported if needed)."""
    if not available("tf"):
        return []
    import tensorflow as tf

    original = tf.config.list_physical_devices
    fake = (
        [tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")] if gpu else []
    )

    def list_physical_devices(device_type: str | None = None) -> list[Any]:
        if device_type is not None and str(device_type).upper() == "GPU":
            return list(fake)
        devices = [d for d in original(device_type) if d.device_type != "GPU"]
        return devices + (list(fake) if device_type is None else [])

    return [
        (tf.config, "list_physical_devices", list_physical_devices),
        (tf.config.experimental, "list_physical_devices", list_physical_devices),
        (tf.test, "is_gpu_available", lambda *a, **k: gpu),
        (tf.test, "is_built_with_cuda", lambda: gpu),
    ]


@contextlib.contextmanager
def simulated_machine(*, cuda: bool, mps: bool) -> Iterator[None]:
    """PyTorch (and TensorFlow) report a CUDA GPU and/or an Apple GPU as asked."""
    import torch

    patches = [
        (torch.cuda, "is_available", lambda: cuda),
        (torch.cuda, "device_count", lambda: int(cuda)),
        (torch.backends.mps, "is_available", lambda: mps),
        (torch.backends.mps, "is_built", lambda: mps),
    ]
    with _patched(patches + _tf_gpu_patches(cuda)):
        yield


def _device(detect_device: Callable, context: str) -> str:
    got = call_student(detect_device, what="detect_device", code="device")
    if not isinstance(got, str) or got not in DEVICES:
        fail(
            "device.type",
            f"`detect_device()` renvoie {got!r}{context} : renvoyez l'une des chaînes "
            '"cuda", "mps" ou "cpu" (une chaîne, pas un `torch.device`).',
        )
    return got


def device_machine(detect_device: Callable) -> None:
    """Le périphérique renvoyé est celui de cette machine."""
    expected = machine_device()
    got = _device(detect_device, "")
    if got != expected:
        fail(
            "device.machine",
            f"`detect_device()` renvoie {got!r} ; sur cette machine, PyTorch (ou TensorFlow) indique "
            f"{expected!r}. Testez `torch.cuda.is_available()`, puis `torch.backends.mps.is_available()`.",
        )


_SIMULATIONS = {
    "cuda": (
        True,
        False,
        "device.cuda",
        "une machine simulée avec un GPU NVIDIA (CUDA)",
        "Testez `torch.cuda.is_available()` en premier.",
    ),
    "mps": (
        False,
        True,
        "device.mps",
        "un Mac simulé avec un GPU Apple (MPS)",
        "Testez `torch.backends.mps.is_available()` quand CUDA n'est pas disponible.",
    ),
    "priority": (
        True,
        True,
        "device.priority",
        "une machine simulée où CUDA et MPS répondent tous deux",
        "CUDA passe avant MPS : testez `torch.cuda.is_available()` en premier.",
    ),
    "cpu": (
        False,
        False,
        "device.cpu",
        "une machine simulée sans GPU",
        'Sans GPU, renvoyez "cpu".',
    ),
}


def _simulated(detect_device: Callable, which: str) -> None:
    cuda, mps, code, label, hint = _SIMULATIONS[which]
    expected = "cuda" if cuda else "mps" if mps else "cpu"
    with simulated_machine(cuda=cuda, mps=mps):
        try:
            got = _device(detect_device, f" sur {label}")
        except CheckFailure as exc:
            if exc.code == "device.exception":
                fail(code, f"Sur {label} : {exc.message}")
            raise
    if got != expected:
        fail(
            code, f"Sur {label}, `detect_device()` renvoie {got!r} au lieu de {expected!r}. {hint}"
        )


def device_cuda(detect_device: Callable) -> None:
    """Machine simulée avec CUDA : "cuda"."""
    _simulated(detect_device, "cuda")


def device_mps(detect_device: Callable) -> None:
    """Mac simulé avec MPS : "mps"."""
    _simulated(detect_device, "mps")


def device_priority(detect_device: Callable) -> None:
    """CUDA et MPS tous deux disponibles (simulé) : "cuda" d'abord."""
    _simulated(detect_device, "priority")


def device_cpu(detect_device: Callable) -> None:
    """Aucun GPU (simulé) : "cpu"."""
    _simulated(detect_device, "cpu")


def device_tf_only(detect_device: Callable) -> None:
    """Machine simulée avec TensorFlow seul (PyTorch absent), avec puis sans GPU."""
    for gpu in (True, False):
        # TensorFlow names no vendor: its GPU is Apple's on a Mac (tensorflow-metal), CUDA elsewhere.
        expected = ("mps" if sys.platform == "darwin" else "cuda") if gpu else "cpu"
        label = f"une machine simulée avec TensorFlow seul ({'un GPU' if gpu else 'sans GPU'})"
        with _patched(_tf_gpu_patches(gpu)), frameworks_missing("torch"):
            try:
                got = _device(detect_device, f" sur {label}")
            except CheckFailure as exc:
                if exc.code in ("device.exception", "device.type"):
                    fail(
                        "device.tf_only",
                        f"Sur {label} : {exc.message} Sans PyTorch, `import torch` échoue : "
                        "prévoyez un `try/except ImportError` et interrogez "
                        "`tf.config.list_physical_devices('GPU')`.",
                    )
                raise
        if got != expected:
            fail(
                "device.tf_only",
                f"Sur {label}, `detect_device()` renvoie {got!r} au lieu de {expected!r}. Sans "
                "PyTorch, interrogez `tf.config.list_physical_devices('GPU')`.",
            )


def public_detect_device(detect_device: Callable, points: float) -> Grader:
    g = Grader("detect-device", points, "detect_device")
    g.check(device_machine, detect_device, name=f"cette machine ({machine_device()})")
    return g


def hidden_detect_device(g: Grader, detect_device: Callable, seed: int) -> None:  # noqa: ARG001
    g.hidden()
    g.check(device_cuda, detect_device, name="GPU NVIDIA (simulé)")
    g.check(device_mps, detect_device, name="GPU Apple (simulé)")
    g.check(device_priority, detect_device, name="CUDA et MPS (simulé)")
    g.check(device_cpu, detect_device, name="sans GPU (simulé)")
    g.check(device_tf_only, detect_device, name="TensorFlow seul (simulé)")


# ---------------------------------------------------------------------------------------------
# seed_everything
# ---------------------------------------------------------------------------------------------


def _draw_python() -> list[float]:
    import random

    return [random.random() for _ in range(3)] + [float(random.randint(0, 10**9))]


def _draw_numpy() -> list[float]:
    return np.random.rand(3).tolist() + [float(np.random.randint(0, 10**9))]


def _draw_torch() -> list[float]:
    import torch

    values = torch.rand(3).tolist() + torch.randn(2).tolist()
    if torch.cuda.is_available():
        values += torch.rand(3, device="cuda").cpu().tolist()
    return values


def _draw_tf() -> list[float]:
    import tensorflow as tf

    return tf.random.uniform([3]).numpy().tolist() + tf.random.normal([2]).numpy().tolist()


_LIBRARIES = {
    "python": ("le module `random` de Python", _draw_python, "`random.seed(seed)`"),
    "numpy": ("NumPy (générateur global `np.random`)", _draw_numpy, "`np.random.seed(seed)`"),
    "torch": ("PyTorch", _draw_torch, "`torch.manual_seed(seed)` (il initialise aussi les GPU)"),
    "tf": (
        "TensorFlow",
        _draw_tf,
        "`tf.random.set_seed(seed)` (ou `keras.utils.set_random_seed(seed)`)",
    ),
}


def _seed(seed_everything: Callable, seed: int) -> None:
    call_student(seed_everything, seed, what="seed_everything", code="seed")


def _reproducible(seed_everything: Callable, library: str, seed: int, other: int) -> None:
    label, draw, how = _LIBRARIES[library]
    runs = []
    for s in (seed, seed, other):
        _seed(seed_everything, s)
        runs.append(draw())
    if runs[0] != runs[1]:
        fail(
            f"seed.{library}",
            f"Après `seed_everything({seed})` deux fois, {label} tire des nombres différents : il "
            f"n'est pas initialisé. Ajoutez {how}.",
        )
    if runs[0] == runs[2]:
        fail(
            "seed.fixed",
            f"Avec `seed_everything({seed})` puis `seed_everything({other})`, {label} tire les mêmes "
            "nombres : la graine passée en argument n'est pas utilisée (graine écrite en dur ?).",
        )


def seed_python(seed_everything: Callable) -> None:
    """`random` de Python : mêmes tirages après la même graine, autres tirages sinon."""
    _reproducible(seed_everything, "python", 42, 43)


def seed_numpy(seed_everything: Callable) -> None:
    """NumPy (`np.random` global) : mêmes tirages après la même graine, autres tirages sinon."""
    _reproducible(seed_everything, "numpy", 42, 43)


def seed_torch(seed_everything: Callable) -> None:
    """PyTorch (CPU, et CUDA s'il est là) : mêmes tirages après la même graine, autres sinon."""
    _reproducible(seed_everything, "torch", 42, 43)


def seed_tf(seed_everything: Callable) -> None:
    """TensorFlow : mêmes tirages après la même graine, autres tirages sinon."""
    _reproducible(seed_everything, "tf", 42, 43)


def seed_other_values(seed_everything: Callable, seed: int) -> None:
    """Autres graines (0, 2**31 − 1, une graine tirée au hasard) pour les quatre bibliothèques."""
    other = int(np.random.default_rng(seed).integers(1, 2**31 - 1))
    for library in _LIBRARIES:
        for s, t in ((0, other), (2**31 - 1, 0)):
            _reproducible(seed_everything, library, s, t)


def seed_missing_framework(seed_everything: Callable) -> None:
    """Machine simulée sans PyTorch, puis sans TensorFlow : pas d'erreur, Python et NumPy initialisés."""
    for absent in ("torch", "tensorflow"):
        with frameworks_missing(absent):
            try:
                for library in ("python", "numpy"):
                    _reproducible(seed_everything, library, 7, 8)
            except CheckFailure as exc:
                if exc.code == "seed.exception":
                    fail(
                        "seed.missing_framework",
                        f"Sur une machine simulée sans {_NAMES[absent]} : {exc.message} Importez chaque "
                        "framework dans un `try: ... except ImportError:`.",
                    )
                raise


def public_seed_everything(seed_everything: Callable, points: float) -> Grader:
    g = Grader("seed-everything", points, "seed_everything")
    g.check(seed_python, seed_everything, name="Python (random)")
    g.check(seed_numpy, seed_everything, name="NumPy")
    for framework, check in (("torch", seed_torch), ("tf", seed_tf)):
        if available(framework):
            g.check(check, seed_everything, name=_NAMES[framework])
        else:
            g.check(
                lambda _fn: None, seed_everything, name=skipped_name(framework, _NAMES[framework])
            )
    return g


def hidden_seed_everything(g: Grader, seed_everything: Callable, seed: int) -> None:
    g.hidden()
    g.check(seed_other_values, seed_everything, seed, name="autres graines")
    g.check(seed_missing_framework, seed_everything, name="framework absent (simulé)")


# ---------------------------------------------------------------------------------------------
# to_device
# ---------------------------------------------------------------------------------------------


def _is_tensor(x: Any) -> bool:
    return (
        type(x).__module__.split(".", 1)[0] == "torch"
        and hasattr(x, "device")
        and hasattr(x, "dtype")
    )


def _compare(got: Any, original: Any, target: str, path: str) -> None:
    """``got`` mirrors ``original`` with every tensor on ``target`` (a device type)."""
    import torch

    where = f" (à l'emplacement `batch{path}`)" if path else ""
    if isinstance(original, torch.Tensor):
        if not _is_tensor(got):
            fail(
                "to_device.nested" if path else "to_device.type",
                f"`to_device` renvoie un objet de type `{type(got).__name__}` là où il y avait un "
                f"tenseur{where}.",
            )
        if got.device.type != target:
            fail(
                "to_device.nested" if path else "to_device.not_moved",
                f"Un tenseur{where} est resté sur `{got.device}` au lieu de `{target}`"
                + (
                    " : parcourez les listes, tuples et dictionnaires et déplacez chaque tenseur."
                    if path
                    else " : utilisez `x.to(device)`."
                ),
            )
        if got.shape != original.shape or got.dtype != original.dtype:
            fail(
                "to_device.values",
                f"Un tenseur{where} a changé de forme ou de type ({tuple(got.shape)}, {got.dtype}) au "
                f"lieu de ({tuple(original.shape)}, {original.dtype}) : seul le périphérique change.",
            )
        if target != "meta" and not torch.equal(got.cpu(), original.cpu()):
            fail(
                "to_device.values",
                f"Les valeurs d'un tenseur{where} ont changé : seul le périphérique change.",
            )
        return
    if isinstance(original, dict):
        if type(got) is not type(original) or list(got) != list(original):
            fail(
                "to_device.container",
                f"Un dictionnaire{where} devient `{type(got).__name__}`"
                + (f" de clés {list(got)}" if isinstance(got, dict) else "")
                + " : renvoyez un dictionnaire aux mêmes clés (`{k: to_device(v, device) for k, v in x.items()}`).",
            )
        for key in original:
            _compare(got[key], original[key], target, f"{path}[{key!r}]")
        return
    if isinstance(original, list | tuple):
        kind = type(original).__name__
        if type(got) is not type(original) or len(got) != len(original):
            fail(
                "to_device.container",
                f"Un `{kind}`{where} devient `{type(got).__name__}`"
                + (f" de longueur {len(got)}" if isinstance(got, list | tuple) else "")
                + f" : gardez le même type de conteneur (`{kind}(...)`) et la même longueur.",
            )
        for i, (g_item, o_item) in enumerate(zip(got, original, strict=True)):
            _compare(g_item, o_item, target, f"{path}[{i}]")
        return
    if type(got) is not type(original) or got != original:
        fail(
            "to_device.leaves",
            f"La valeur {original!r}{where}, qui n'est pas un tenseur, devient {got!r} : renvoyez telles "
            "quelles les valeurs qui ne sont ni des tenseurs ni des conteneurs.",
        )


def _move(to_device: Callable, x: Any, device: Any, *, leaves: bool = False) -> Any:
    try:
        return call_student(to_device, x, device, what="to_device", code="to_device")
    except CheckFailure as exc:
        if leaves and exc.code == "to_device.exception":
            fail(
                "to_device.leaves",
                f"{exc.message} Le lot contient aussi des valeurs qui ne sont pas des tenseurs (chaînes, "
                "entiers, None) : renvoyez-les telles quelles.",
            )
        raise


def _check_move(to_device: Callable, x: Any, device: Any, *, leaves: bool = False) -> None:
    import torch

    target = torch.device(device).type
    _compare(_move(to_device, x, device, leaves=leaves), x, target, "")


def _tensors(seed: int) -> list[Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [
        torch.rand(2, 3, generator=g),
        torch.randint(0, 10, (4,), generator=g),
        torch.rand(1, 1, 5, 5, generator=g).double(),
        torch.rand(3, generator=g) > 0.5,
    ]


def to_device_cpu(to_device: Callable) -> None:
    """Un tenseur vers "cpu" : même tenseur, mêmes valeurs, même type."""
    t = _tensors(0)
    _check_move(to_device, t[0], "cpu")
    _check_move(to_device, t[1], "cpu")


def to_device_meta(to_device: Callable) -> None:
    """Un tenseur vers un autre périphérique ("meta", qui existe sur toute machine)."""
    _check_move(to_device, _tensors(1)[0], "meta")


def to_device_nested(to_device: Callable) -> None:
    """Dictionnaire de listes et de tuples de tenseurs : même structure, tenseurs déplacés."""
    t = _tensors(2)
    batch = {"images": t[2], "labels": [t[1], t[3]], "pair": (t[0], t[1])}
    _check_move(to_device, batch, "meta")


def to_device_leaves(to_device: Callable) -> None:
    """Valeurs qui ne sont pas des tenseurs (chaîne, entier, None) : renvoyées telles quelles."""
    t = _tensors(3)
    batch = {"x": t[0], "name": "img_001.png", "index": 3, "extra": None, "both": (t[1], 2.5)}
    _check_move(to_device, batch, "meta", leaves=True)


def to_device_cuda(to_device: Callable) -> None:
    """Lot imbriqué vers "cuda" (GPU présent sur cette machine)."""
    t = _tensors(4)
    _check_move(to_device, {"x": t[0], "y": [t[1], (t[2],)]}, "cuda")


def to_device_random(to_device: Callable, seed: int) -> None:
    """Structures plus profondes, conteneurs vides, `torch.device` en argument, aller-retour."""
    import torch

    t = _tensors(seed)
    batch = [{"a": (t[0], [t[1], {"b": t[2]}]), "empty": [], "t": ()}, (t[3],), "label", 0]
    _check_move(to_device, batch, torch.device("meta"), leaves=True)
    _check_move(to_device, (t[0], {"k": [t[1], t[2]]}), torch.device("cpu"))
    _check_move(to_device, [[[[t[3]]]]], "meta")
    _check_move(to_device, {}, "meta")
    if torch.cuda.is_available():
        _check_move(to_device, [t[0], {"k": (t[1],)}], torch.device("cuda"))
        back = _move(to_device, _move(to_device, t[2], "cuda"), "cpu")
        _compare(back, t[2], "cpu", "")


def public_to_device(to_device: Callable, points: float) -> Grader:
    g = Grader("to-device", points, "to_device")
    checks = [
        (to_device_cpu, 'tenseur vers "cpu"'),
        (to_device_meta, 'tenseur vers un autre périphérique ("meta")'),
        (to_device_nested, "structures imbriquées"),
        (to_device_leaves, "valeurs qui ne sont pas des tenseurs"),
    ]
    for check, label in checks:
        if available("torch"):
            g.check(check, to_device, name=label)
        else:
            g.check(lambda _fn: None, to_device, name=skipped_name("torch", label))
    if available("torch") and _cuda():
        g.check(to_device_cuda, to_device, name='lot vers "cuda"')
    return g


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def hidden_to_device(g: Grader, to_device: Callable, seed: int) -> None:
    g.hidden().check(to_device_random, to_device, seed, name="structures variées", weight=2)
