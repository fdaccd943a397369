"""Building blocks shared by every check: calling student code, comparing arrays, guards.

Order inside a check (STYLE.md): not attempted → type → shape → dtype → values → behaviour.
Each helper raises :class:`~autograder.feedback.CheckFailure` at the first problem with a
stable code and a French message; none of them prints the expected values of a case.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autograder.backends import to_numpy
from autograder.feedback import CheckFailure, NotAttempted, describe_exception, fail, fr_number

#: Tolerances, in one place: (rtol, atol) by the dtype the comparison runs in.
#: float64 forward passes match frameworks to ~1e-12; CS231n asks ~1e-8 relative error.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "numerical_gradient": (1e-5, 1e-7),
}


def tolerance(kind: str) -> tuple[float, float]:
    return TOLERANCES[kind]


def reference(module: str) -> Any | None:
    """``solutions.<module>`` when installed (staff side, hidden checks), else ``None``."""
    import importlib

    try:
        return importlib.import_module(f"solutions.{module}")
    except ImportError:
        return None


def rng(seed: int) -> np.random.Generator:
    """The random generator every check draws its cases from."""
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# Forbidden calls: using the framework op the exercise asks to implement earns no credit.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Spy:
    used: list[str] = field(default_factory=list)
    #: introspection of the grader's memory or stack by the student's code (see _INTROSPECTION).
    grader_access: list[str] = field(default_factory=list)


#: Calls through which code can reach the checks' objects from inside a student function: the
#: frames above it (the student's code runs on its own greenlet stack, see :func:`_isolated`,
#: whose parent ``greenlet.getcurrent()`` leads back to the check), every live object (``gc``),
#: or the profiler that watches it. Flagged when student code calls them itself.
_INTROSPECTION = (
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "greenlet.getcurrent",
    "sys.getprofile", "sys.setprofile", "sys.settrace", "threading.setprofile", "threading.settrace",
)


def _library_prefixes() -> tuple[str, ...]:
    import sysconfig
    from pathlib import Path

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    paths.add(str(Path(__file__).resolve().parents[1]))  # autograder
    for name in ("solutions",):
        module = sys.modules.get(name)
        for folder in getattr(module, "__path__", []) or []:
            paths.add(str(folder))
    return tuple(sorted(p for p in paths if p)) + ("<frozen",)


def _student_frame(frame: Any, prefixes: tuple[str, ...]) -> bool:
    """Whether ``frame`` runs code of the submission (not of Python, a library or the course)."""
    return not frame.f_code.co_filename.startswith(prefixes)


def _isolated(body: Callable[[], Any]) -> Any:
    """Run ``body()`` on a stack of its own (a greenlet, same thread).

    The student's function then cannot walk up the frames (``sys._getframe``, a traceback's
    ``tb_frame.f_back``) into the check and edit its expected values; thread-local framework
    state (PyTorch grad mode, TensorFlow's context) is the caller's, and so are context
    variables (a copy). Without greenlet, a plain call.
    """
    try:
        import greenlet
    except ImportError:
        return body()
    import contextvars

    runner = greenlet.greenlet(body)
    runner.gr_context = contextvars.copy_context()
    return runner.switch()


def _resolve(dotted: str) -> tuple[Any, str] | None:
    """Parent object and attribute name of ``dotted`` if its root module is imported."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is None:
            continue
        obj = module
        try:
            for name in parts[i:-1]:
                obj = getattr(obj, name)
            if not hasattr(obj, parts[-1]):
                return None
        except AttributeError:
            return None
        return obj, parts[-1]
    return None


@contextlib.contextmanager
def _patched(targets: Sequence[str], spy: _Spy) -> Iterator[None]:
    saved: list[tuple[Any, str, Any]] = []
    for dotted in targets:
        found = _resolve(dotted)
        if found is None:
            continue
        parent, attr = found
        original = getattr(parent, attr)

        def wrapper(*args: Any, __o: Any = original, __n: str = dotted, **kwargs: Any) -> Any:
            spy.used.append(__n)
            return __o(*args, **kwargs)

        try:
            setattr(parent, attr, wrapper)
        except (AttributeError, TypeError):
            continue
        saved.append((parent, attr, original))
    try:
        yield
    finally:
        for parent, attr, original in reversed(saved):
            setattr(parent, attr, original)


def _roots(targets: Sequence[str]) -> set[str]:
    return {t.split(".", 1)[0] for t in targets}


def _watch_list(targets: Sequence[str]) -> tuple[dict[int, str], dict[Any, str]]:
    """Builtins (by id) and Python code objects of the forbidden ops that are importable now.

    A student may hold a direct reference (``from torch.nn.functional import conv2d``) that the
    attribute patch cannot see; a profiler sees the call itself.
    """
    import inspect

    builtins_by_id: dict[int, str] = {}
    codes: dict[Any, str] = {}
    for dotted in targets:
        found = _resolve(dotted)
        if found is None:
            continue
        value = getattr(*found)
        if isinstance(value, type):
            value = value.__init__
        try:
            inner = inspect.unwrap(value)
        except ValueError:
            inner = value
        code = getattr(inner, "__code__", None)
        if code is not None:
            codes[code] = dotted
        else:
            builtins_by_id[id(value)] = dotted
            builtins_by_id[id(inner)] = dotted
    return builtins_by_id, codes


@contextlib.contextmanager
def _profiled(targets: Sequence[str], spy: _Spy) -> Iterator[None]:
    builtins_by_id, codes = _watch_list(targets)
    introspection, _ = _watch_list(_INTROSPECTION)
    prefixes = _library_prefixes()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            name = builtins_by_id.get(id(arg))
            seen = introspection.get(id(arg))
            if seen is not None and _student_frame(frame, prefixes):
                spy.grader_access.append(seen)
        elif event == "call":
            name = codes.get(frame.f_code)
        else:
            return
        if name is not None:
            spy.used.append(name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)


def _import_watched_modules(targets: Sequence[str]) -> None:
    """Import the submodules named by ``targets`` whose package is already imported.

    ``solutions`` may be imported while ``solutions.conv`` is not (yet): a student calling its
    reference would then go unseen.
    """
    import importlib

    for dotted in targets:
        parts = dotted.split(".")
        if parts[0] not in sys.modules:
            continue
        for i in range(len(parts) - 1, 1, -1):
            name = ".".join(parts[:i])
            if name in sys.modules:
                break
            try:
                importlib.import_module(name)
                break
            except ImportError:
                continue


def call_student(
    fn: Any,
    *args: Any,
    what: str,
    code: str,
    forbidden: Sequence[str] = (),
    mutable: Collection[int | str] = (),
    **kwargs: Any,
) -> Any:
    """Call the student's ``fn`` and turn what can go wrong into a clear failure.

    Args:
        fn: the student's function.
        what: its name as the student knows it (``conv2d_forward``).
        code: failure-code prefix (``conv``): errors become ``<code>.exception``, use of a
            forbidden op ``<code>.framework_used``, an argument modified in place
            ``<code>.input_modified``.
        forbidden: dotted names (``torch.nn.functional.conv2d``) whose use gives no credit.
            Modules imported by the call itself are caught by calling it a second time.
        mutable: positions or names of the arguments ``fn`` may modify in place (a buffer it
            is meant to fill, running statistics updated the PyTorch way). Every other NumPy
            array or tensor argument must be left as the caller gave it.

    Raises:
        NotAttempted: ``fn`` is still nbgrader's stub.
        CheckFailure: ``fn`` is not callable, raised, used a forbidden op or modified an input.
    """
    if not callable(fn):
        fail(f"{code}.not_callable", f"`{what}` doit être une fonction ; reçu un objet de type `{type(fn).__name__}`.")
    spy = _Spy()
    _import_watched_modules(forbidden)
    before = set(sys.modules)
    result, modified = _call_once(fn, args, kwargs, what, code, forbidden, spy, mutable)
    if forbidden and not spy.used and any(r in sys.modules and r not in before for r in _roots(forbidden)):
        # The student imported a framework inside the function: watch it on a second call.
        result, again = _call_once(fn, args, kwargs, what, code, forbidden, spy, mutable)
        modified = modified or again
    if spy.grader_access:
        names = ", ".join(f"`{n}`" for n in dict.fromkeys(spy.grader_access))
        guard = sys.modules.get("autograder.grading.guard")
        if guard is not None:  # grading kernel: the whole cell is zeroed and flagged for review
            guard.report_tampering(f"`{what}` appelle {names} pendant les vérifications")
        fail(
            f"{code}.grader_access",
            f"`{what}` appelle {names} : inspecter la mémoire, la pile ou le profilage du "
            "correcteur est interdit pendant la correction. Cette vérification ne rapporte pas de "
            "point et la cellule est signalée pour relecture.",
        )
    if spy.used:
        names = ", ".join(f"`{n}`" for n in dict.fromkeys(spy.used))
        fail(
            f"{code}.framework_used",
            f"`{what}` appelle {names} : l'exercice demande de l'implémenter vous-même "
            "(NumPy et des boucles ou des produits matriciels). Cette vérification ne rapporte "
            "pas de point tant que l'opération toute faite est utilisée.",
        )
    if modified:
        fail(
            f"{code}.input_modified",
            f"`{what}` modifie en place {modified} reçu de l'appelant : même si le résultat est "
            "juste, les données de l'appelant sont corrompues (un lot d'images qui change après "
            "un appel, par exemple). Ne modifiez jamais une entrée : travaillez sur une copie "
            "(`x = x.copy()`, `x = x.clone()`) ou écrivez le résultat dans un nouveau tableau.",
        )
    return result


def _argument_name(fn: Any, key: int | str) -> str:
    """``x`` for argument ``key`` (a position or a name) of ``fn`` when its signature says."""
    if isinstance(key, str):
        return key
    import inspect

    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[key].name if key < len(params) else f"n° {key + 1}"


def _describe_modified(fn: Any, keys: list[int | str]) -> str:
    names = ", ".join(f"`{_argument_name(fn, k)}`" for k in keys)
    return f"son argument {names}" if len(keys) == 1 else f"ses arguments {names}"


def _same_tensor(before: Any, after: Any) -> bool:
    try:
        a, b = to_numpy(before), to_numpy(after)
    except Exception:  # noqa: BLE001 - a tensor we cannot read back: not ours to judge
        return True
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    equal_nan = a.dtype.kind in "fc"
    return bool(np.array_equal(a, b, equal_nan=equal_nan))


def _guarded_inputs(args: tuple, kwargs: dict, mutable: Collection[int | str]) -> tuple[tuple, dict, Callable[[], list]]:
    """Copies of the NumPy arguments to pass, and a function that lists the inputs modified.

    A NumPy array is passed as a copy (the check's own stays intact whatever the student does)
    and compared with the original after the call; a PyTorch tensor or a TensorFlow variable is
    passed as is (a check may look at its ``.grad`` or identity) and compared with a snapshot.
    """
    passed: dict[int | str, Any] = {}
    watched: list[tuple[int | str, Any, Any]] = []  # (key, reference value, object passed)
    for key, value in [*enumerate(args), *kwargs.items()]:
        if isinstance(value, np.ndarray):
            passed[key] = value.copy()
            if key not in mutable and value.dtype != object:
                watched.append((key, value, passed[key]))
            continue
        passed[key] = value
        framework = None if key in mutable else _framework_of(value)
        if framework == "torch":
            import torch

            if isinstance(value, torch.Tensor) and value.layout == torch.strided:
                watched.append((key, value.detach().clone(), value))
        elif framework == "tf":
            import tensorflow as tf

            if isinstance(value, tf.Variable):  # a tf.Tensor is immutable
                watched.append((key, value.numpy().copy(), value))

    def modified() -> list[int | str]:
        return [key for key, before, obj in watched if not _same_tensor(before, obj)]

    new_args = tuple(passed[i] for i in range(len(args)))
    new_kwargs = {k: passed[k] for k in kwargs}
    return new_args, new_kwargs, modified


def _framework_of(value: Any) -> str | None:
    from autograder.backends import framework_of

    try:
        return framework_of(value)
    except Exception:  # noqa: BLE001
        return None


def _call_once(fn, args, kwargs, what, code, forbidden, spy, mutable=()) -> tuple[Any, str]:
    """One call of ``fn``: its result and what it modified in place ("" when nothing)."""
    args, kwargs, modified = _guarded_inputs(args, kwargs, mutable)

    def body() -> Any:
        with _profiled(forbidden, spy), _patched(forbidden, spy):
            return fn(*args, **kwargs)

    try:
        result = _isolated(body)
    except NotImplementedError as exc:
        raise NotAttempted(what) from exc
    except CheckFailure:
        raise
    except RecursionError as exc:
        fail(f"{code}.exception", f"`{what}` s'appelle elle-même sans fin ({describe_exception(exc)}).")
    except Exception as exc:  # noqa: BLE001 - any student error becomes feedback
        fail(f"{code}.exception", f"`{what}` a levé une exception : {describe_exception(exc)}.")
    keys = modified()
    return result, (_describe_modified(fn, keys) if keys else "")


# ---------------------------------------------------------------------------------------------
# Expectations on arrays.
# ---------------------------------------------------------------------------------------------


def expect_array(got: Any, *, what: str, code: str) -> np.ndarray:
    """``got`` as a NumPy array; fails with ``<code>.type`` for None, tuples of arrays, etc."""
    if got is None:
        fail(f"{code}.type", f"{what} vaut `None` : avez-vous oublié le `return` ?")
    try:
        arr = to_numpy(got)
    except Exception:  # noqa: BLE001
        arr = None
    if arr is None or arr.dtype == object:
        fail(f"{code}.type", f"{what} doit être un tableau NumPy ; reçu `{type(got).__name__}`.")
    return arr


def expect_shape(got: np.ndarray, shape: tuple[int, ...], *, what: str, code: str, hint: str = "") -> None:
    if tuple(got.shape) != tuple(shape):
        fail(code, f"{what} : forme {tuple(got.shape)}, attendu {tuple(shape)}. {hint}".strip())


def expect_float(got: np.ndarray, precision: str, *, what: str, code: str) -> None:
    """A floating dtype, at least as precise as ``precision`` (``float64`` inputs stay float64)."""
    if not np.issubdtype(got.dtype, np.floating):
        fail(
            code,
            f"{what} est de type `{got.dtype}` : les valeurs sont tronquées. Créez le tableau de "
            "sortie avec un type flottant (par ex. `np.zeros(forme, dtype=x.dtype)`).",
        )
    if np.finfo(got.dtype).bits < np.finfo(np.dtype(precision)).bits:
        fail(
            code,
            f"{what} est en `{got.dtype}` alors que l'entrée est en `{precision}` : gardez la "
            "précision de l'entrée (par ex. `dtype=x.dtype`).",
        )


def mismatch(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """``None`` when close; else a description that shows positions, never expected values."""
    if got.shape != expected.shape:
        return f"forme {got.shape} au lieu de {expected.shape}"
    finite = np.isfinite(got)
    if not finite.all():
        idx = tuple(int(i) for i in np.argwhere(~finite)[0])
        return f"valeur non finie (NaN ou infini) à l'indice {idx}"
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if not bad.any():
        return None
    err = np.abs(got.astype(np.float64) - expected)
    idx = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape))
    text = (
        f"{int(bad.sum())} valeur(s) sur {bad.size} hors tolérance, écart maximal "
        f"{fr_number(err.max(), '.2e')} à l'indice {idx}"
    )
    if bad.all() and bad.size > 1:
        text += " (toutes les valeurs sont fausses : revoyez la formule elle-même, pas un cas particulier)"
    elif bad.sum() > 1:
        text += (
            f" (plusieurs valeurs fausses à la fois ; la première à l'indice {_first(bad)} : "
            "regardez ce qu'elles ont en commun, un bord, un canal, un exemple du lot)"
        )
    return text


def _first(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def close(got: np.ndarray, expected: np.ndarray, precision: str = "float64") -> bool:
    rtol, atol = tolerance(precision)
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=rtol, atol=atol))


def expect_close(
    got: np.ndarray,
    expected: np.ndarray,
    *,
    what: str,
    code: str,
    hint: str = "",
    precision: str = "float64",
) -> None:
    rtol, atol = tolerance(precision)
    problem = mismatch(got, expected, rtol, atol)
    if problem is not None:
        fail(code, f"{what} : {problem}. {hint}".strip())


def first_diagnosis(got: np.ndarray, candidates: Sequence[tuple[Callable[[], np.ndarray], str, str]]) -> None:
    """Name a known bug when ``got`` equals what that bug would produce.

    Args:
        candidates: ``(make_wrong_output, code, message)`` triples, tried in order; the
            first whose wrong output matches ``got`` raises its failure.
    """
    for make, code, message in candidates:
        try:
            wrong = make()
        except Exception:  # noqa: BLE001 - a diagnosis that cannot be built is skipped
            continue
        if close(got, np.asarray(wrong)):
            raise CheckFailure(code, message)
