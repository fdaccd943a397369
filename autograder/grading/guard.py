"""In-kernel guard: undo what student code did to the grading machinery before each test cell.

Installed by the sandboxed kernel (:mod:`autograder.grading.sandbox_kernel`) before any student
code runs: :func:`install` snapshots IPython's transformers, hooks and events, ``builtins``,
``sys.path``, the trace/profile functions and the public functions of NumPy and the standard
modules the checks rely on. The grading client (:class:`autograder.grading.preprocessors.GuardedExecute`)
calls :func:`before_test_cell` through an ``execute_request``'s *user_expressions* — evaluated
by IPython without input transformers — right before each graded test cell, and
:func:`after_test_cell` right after it.

Neutralised (restored, reported for review, no penalty): input/AST transformers, IPython event
callbacks, display hooks, custom exception handlers, trace/profile functions, changed builtins,
shadowed or monkeypatched ``autograder``/``solutions`` modules (purged and re-imported from the
installed files), monkeypatched NumPy/framework functions (restored from the snapshot or the
module's original when a snapshot exists, else reported), library functions whose ``__code__``
the student replaced, even where no module attribute shows them (restored; seen by an audit
hook, :func:`_audit`). Detected and zeroed (by the client):
a guard that cannot run, output forgery (an ``execute_result`` that is not the Grader's score).

Student code runs in the same process, so a determined attacker who targets this module by name
can still defeat it in memory; the sandbox (no network, read-only files) bounds what that can
achieve, and every finding is recorded for a human to review.
"""

from __future__ import annotations

import builtins
import importlib
import operator
import sys
import threading
import types
import typing as t
from typing import Any

#: Module name prefixes whose functions checks use as oracles or helpers.
PROTECTED = ("numpy", "scipy", "math", "torch", "tensorflow", "keras")
#: Packages re-imported from disk before each test cell.
TRUSTED_PACKAGES = ("autograder", "solutions")

_state: dict[str, Any] = {}


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _ipython_state(ip: Any) -> dict[str, Any]:
    itm = ip.input_transformer_manager
    return {
        "input_transformers_cleanup": list(ip.input_transformers_cleanup),
        "input_transformers_post": list(ip.input_transformers_post),
        "cleanup_transforms": list(itm.cleanup_transforms),
        "line_transforms": list(itm.line_transforms),
        "token_transformers": list(itm.token_transformers),
        "ast_transformers": list(ip.ast_transformers),
        "events": {k: list(v) for k, v in ip.events.callbacks.items()},
        "displayhook": ip.displayhook,
        "display_pub": ip.display_pub,
        "sys_displayhook": sys.displayhook,
        "custom_exceptions": ip.custom_exceptions,
        "CustomTB": ip.CustomTB,
        "instance_keys": set(vars(ip)),
        # Methods of the shell's classes (a patch on the class escapes instance checks).
        "class_methods": {
            klass: {k: v for k, v in vars(klass).items() if callable(v)}
            for klass in type(ip).__mro__
            if klass.__module__.startswith(("IPython", "ipykernel"))
        },
    }


def _functions(module: types.ModuleType) -> dict[str, Any]:
    return {k: v for k, v in list(vars(module).items()) if callable(v)}


def _foreign(value: Any) -> bool:
    """A callable written by the student: in a notebook cell or a module of the submission."""
    try:
        return _foreign_unsafe(value)
    except Exception:  # noqa: BLE001 - objects with odd __getattr__ (absl flags, lazy modules)
        return False


def _callable(value: Any) -> bool:
    try:
        return callable(value)
    except Exception:  # noqa: BLE001
        return False


def _foreign_unsafe(value: Any) -> bool:
    if getattr(value, "__module__", None) == "__main__":
        return True
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    return _foreign_filename(code.co_filename)


def _foreign_filename(filename: str) -> bool:
    """A code object's file is a notebook cell or a file of the submission (the kernel's cwd)."""
    return filename.startswith(("<ipython-input", _scan_cwd())) or "/ipykernel_" in filename


_CWD: list[str] = []


def _scan_cwd() -> str:
    """The working directory, read once per guard call (scans test thousands of callables)."""
    if not _CWD:
        import os

        _CWD.append(os.getcwd())
    return _CWD[0]


#: Set by :func:`_audit` when any function's ``__code__`` or any object's ``__class__`` is
#: assigned: the two in-place changes that alter what calling a module's attribute runs.
_CODE_OR_CLASS_SET = [False]
_AUDITED = ("object.__setattr__", "object.__delattr__")


#: ``(function, code before, code after, assigned by the student)`` for each ``__code__``
#: assignment since the guard last looked (:func:`_student_code_swaps`); at most MAX_SWAPS + 1.
_CODE_SWAPS: list[tuple[Any, Any, Any, bool]] = []
MAX_SWAPS = 1000
_TOO_MANY_SWAPS = f"plus de {MAX_SWAPS} remplacements de code de fonctions"
#: Set for the kernel's life once more swaps than recorded happened: an unrecorded swap may
#: still be in place, so every later test cell is blocked, not only the next one.
_SWAPS_OVERFLOWED = [False]


def _audit(event: str, args: tuple) -> None:
    """Audit hook (never raises: an exception would abort the audited operation)."""
    try:
        if event in _AUDITED and len(args) > 1 and type(args[1]) is str and args[1] in ("__code__", "__class__"):
            _CODE_OR_CLASS_SET[0] = True
            if args[1] == "__code__" and len(args) > 2 and len(_CODE_SWAPS) <= MAX_SWAPS:
                caller = sys._getframe(1).f_code  # the code making the assignment
                _CODE_SWAPS.append((args[0], args[0].__code__, args[2], _foreign_code(caller)))
    except Exception:  # noqa: BLE001, S110 - never in the way of the audited operation
        pass


def _foreign_code(code: Any) -> bool:
    try:
        return isinstance(code, types.CodeType) and _foreign_filename(code.co_filename)
    except Exception:  # noqa: BLE001
        return False


def _describe(function: Any) -> str:
    try:
        return f"`{function.__module__}.{function.__qualname__}`"[:200]
    except Exception:  # noqa: BLE001
        return "une fonction"


def _student_code_swaps(consume: bool = True) -> tuple[list[tuple[Any, Any]], bool]:
    """The functions the student did not write whose ``__code__`` was swapped since the last call.

    A swap counts when the new code is the student's (a notebook cell, a file of the
    submission) or the student's code made the assignment (e.g. a library function's code
    given to ``numpy.allclose``'s implementation, which no module attribute shows), on a
    function whose code before its first swap was not the student's. Returns
    ``([(function, its code before its first swap), ...], overflow)``; ``overflow``: more
    swaps than recorded, now or earlier in the kernel's life (the rest were not checked). ``consume=False`` leaves them for the
    next call (after a test cell: the swap is reported, then undone before the next one).
    """
    swaps = list(_CODE_SWAPS)
    if consume:
        del _CODE_SWAPS[:]
    first: dict[int, tuple[Any, Any]] = {}
    tampered: list[int] = []
    for function, before, after, by_student in swaps:
        key = id(function)  # the function is alive: `swaps` holds it
        original = first.setdefault(key, (function, before))[1]
        if key not in tampered and (by_student or _foreign_code(after)) and not _foreign_code(original):
            tampered.append(key)
    if len(swaps) > MAX_SWAPS:
        _SWAPS_OVERFLOWED[0] = True
    return [first[key] for key in tampered], _SWAPS_OVERFLOWED[0]


_HOOKED: list[bool] = []


def _install_audit_hook() -> None:
    if not _HOOKED:
        sys.addaudithook(_audit)  # for the process's life: audit hooks cannot be removed
        _HOOKED.append(True)
    _CODE_OR_CLASS_SET[0] = False
    del _CODE_SWAPS[:]
    _SWAPS_OVERFLOWED[0] = False


def _protected_student_callables() -> t.Iterator[tuple[str, types.ModuleType, list[tuple[str, Any]]]]:
    """``(name, module, [(attr, value), ...])`` for each loaded protected module with student callables.

    The answer of ``_callable(value) and _foreign(value)`` over every attribute of every
    loaded NumPy/SciPy/PyTorch/TensorFlow/Keras module: ~124,000 attributes in ~3,100
    modules once the frameworks are in, ~75 ms item by item, twice per graded test cell.
    A module in which that scan found nothing is *certified*: its namespace's values are kept.
    While its namespace (that of whatever module now has its name) holds the very same objects
    in the same order (the names do not matter: the scan's answer depends on the values only),
    no function's ``__code__`` and no object's ``__class__`` was assigned anywhere
    (:func:`_audit`) and the working directory is the same, calling any of its attributes runs
    what it ran when it was certified: nothing written by the student.
    It is then not scanned again (comparing identities costs a sixth of scanning: ~12 ms per
    pass instead of ~75). Any doubt (a change, an error) means the full scan of that module.

    Not seen without a change of namespace: assignments that change no call — a library
    function's ``__module__`` set to ``"__main__"`` or a ``__func__`` attribute added to it, a
    class's ``__module__`` or ``__code__`` attribute. The full scan reports those too (it reads
    those attributes); neither scan sees a method replaced on a class, or closures and
    defaults changed.
    """
    certified = _state.setdefault("certified", {})
    if _CODE_OR_CLASS_SET[0] or not _HOOKED:
        certified.clear()
    _CODE_OR_CLASS_SET[0] = False
    cwd = _scan_cwd()
    for name in list(sys.modules):
        module = sys.modules.get(name)
        if module is None or name.split(".")[0] not in PROTECTED:
            continue
        try:
            namespace = vars(module)
        except TypeError:
            continue
        seal = certified.get(name)
        if seal is not None and seal[0] == cwd and _unchanged(namespace, seal[1]):
            continue
        items = list(namespace.items())
        found = [(attr, value) for attr, value in items if _callable(value) and _foreign(value)]
        if found:
            certified.pop(name, None)
            yield name, module, found
        else:
            certified[name] = (cwd, [value for _, value in items])


def _unchanged(namespace: dict, values: list) -> bool:
    """The namespace holds the very same values, in the same order (identity only: no
    ``__eq__`` of the student's can answer)."""
    try:
        return len(namespace) == len(values) and all(map(operator.is_, values, namespace.values()))
    except RuntimeError:  # changed while compared (a thread of the student's)
        return False


def _snapshot_module(name: str) -> None:
    module = sys.modules.get(name)
    if module is not None and name not in _state["modules"]:
        _state["modules"][name] = _functions(module)


def install() -> None:
    """Snapshot the pristine state; call once, before any student code runs."""
    import math  # noqa: F401 - snapshot targets

    import numpy  # noqa: F401
    import numpy.linalg  # noqa: F401
    import numpy.testing  # noqa: F401

    ip = _shell()
    _state.clear()
    _state["ipython"] = _ipython_state(ip) if ip is not None else None
    _state["builtins"] = dict(vars(builtins))
    _state["sys_path"] = list(sys.path)
    _state["threads"] = {t.ident for t in threading.enumerate()}
    _state["modules"] = {}
    _state["trusted_roots"] = {}
    import os

    cwd = os.getcwd()
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    try:
        for pkg in TRUSTED_PACKAGES:
            try:
                mod = importlib.import_module(pkg)
                _state["trusted_roots"][pkg] = list(getattr(mod, "__path__", []))
            except ImportError:
                pass
    finally:
        sys.path[:] = saved_path
    for name in list(sys.modules):
        if name.split(".")[0] in PROTECTED:
            _snapshot_module(name)
    _state["scores"] = []
    _state["claims"] = []
    _state["ledger"] = {}
    _state["reported"] = []
    _state["own"] = {
        name: value for name, value in globals().items() if isinstance(value, types.FunctionType)
    }
    _install_audit_hook()


def _restore_ipython(ip: Any, saved: dict[str, Any], findings: list[str]) -> None:
    itm = ip.input_transformer_manager
    pairs = [
        (ip, "input_transformers_cleanup"),
        (ip, "input_transformers_post"),
        (itm, "cleanup_transforms"),
        (itm, "line_transforms"),
        (itm, "token_transformers"),
        (ip, "ast_transformers"),
    ]
    for owner, attr in pairs:
        current = getattr(owner, attr)
        if list(current) != saved[attr]:
            findings.append(f"IPython: `{attr}` modifié (transformateur ajouté ou retiré)")
            try:
                current[:] = saved[attr]  # some are read-only properties over a list
            except TypeError:
                setattr(owner, attr, list(saved[attr]))
    for klass, methods in saved["class_methods"].items():
        for name, original in methods.items():
            if vars(klass).get(name) is not original:
                findings.append(f"IPython: méthode `{klass.__name__}.{name}` remplacée")
                setattr(klass, name, original)
    for event, callbacks in ip.events.callbacks.items():
        # Libraries register callbacks too (matplotlib's inline backend): drop only the student's.
        student = [cb for cb in callbacks if cb not in saved["events"].get(event, []) and _foreign(cb)]
        for cb in student:
            findings.append(f"IPython: rappel de l'étudiant sur l'événement `{event}`")
            callbacks.remove(cb)
    for attr in ("displayhook", "display_pub", "CustomTB"):
        if getattr(ip, attr) is not saved[attr]:
            findings.append(f"IPython: `{attr}` remplacé")
            setattr(ip, attr, saved[attr])
    if ip.custom_exceptions != saved["custom_exceptions"]:
        findings.append("IPython: gestionnaire d'exceptions personnalisé installé")
        ip.custom_exceptions = saved["custom_exceptions"]
    if sys.displayhook is not saved["sys_displayhook"]:
        findings.append("`sys.displayhook` remplacé")
        sys.displayhook = saved["sys_displayhook"]
    for key in set(vars(ip)) - saved["instance_keys"]:
        if callable(vars(ip)[key]) and hasattr(type(ip), key):
            findings.append(f"IPython: méthode `{key}` remplacée sur le shell")
            del vars(ip)[key]


def _restore_builtins(findings: list[str]) -> None:
    saved = _state["builtins"]
    current = vars(builtins)
    for name, value in saved.items():
        if current.get(name) is not value:
            findings.append(f"`builtins.{name}` modifié")
            current[name] = value


def _restore_protected_modules(findings: list[str], blocking: list[str]) -> None:
    """Put back library functions replaced by student code (from the kernel-start snapshot).

    Modules imported after the kernel started (PyTorch, TensorFlow) have no snapshot: a student
    function found in them cannot be undone safely (re-executing a compiled module can crash
    the process), so it is reported as blocking and the cell scores 0.
    """
    for name, module, hits in _protected_student_callables():
        snapshot = _state["modules"].get(name, {})
        for attr, _ in hits:
            original = snapshot.get(attr)
            if original is not None and not _foreign(original):
                setattr(module, attr, original)
                findings.append(f"`{name}.{attr}` remplacé par du code de l'étudiant (restauré)")
            else:
                blocking.append(f"`{name}.{attr}` remplacé par du code de l'étudiant")


def _restore_code_swaps(findings: list[str], blocking: list[str]) -> None:
    """Give back their code to functions whose code the student replaced."""
    swaps, overflow = _student_code_swaps()
    for function, original in swaps:
        try:
            if function.__code__ is not original:
                function.__code__ = original
            findings.append(f"code de {_describe(function)} remplacé par l'étudiant (restauré)")
        except Exception:  # noqa: BLE001 - cannot be undone: the cell is not graded on it
            blocking.append(f"code de {_describe(function)} remplacé par l'étudiant")
    if overflow:
        blocking.append(_TOO_MANY_SWAPS)
    del _CODE_SWAPS[:]  # the restorations themselves


def _trusted_tampering() -> list[str]:
    """Student callables found in the loaded check library (module level or on its classes)."""
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in TRUSTED_PACKAGES or name == __name__:
            continue
        for attr, value in list(vars(module).items()):
            if _callable(value) and _foreign(value):
                found.append(f"`{name}.{attr}` remplacé")
            elif isinstance(value, type) and value.__module__ == name:
                for key, member in list(vars(value).items()):
                    if _callable(member) and _foreign(member):
                        found.append(f"`{name}.{attr}.{key}` remplacé")
    return found


def _reload_trusted(findings: list[str]) -> None:
    findings.extend(f"bibliothèque de correction : {f} (rechargée)" for f in _trusted_tampering())
    # sys.path first: a student folder named `autograder/` must not shadow the real one.
    if sys.path != _state["sys_path"]:
        if set(sys.path) - set(_state["sys_path"]):
            findings.append("`sys.path` modifié")
        sys.path[:] = _state["sys_path"]
    for name in list(sys.modules):
        if name.split(".")[0] in TRUSTED_PACKAGES and name != __name__:
            del sys.modules[name]
    importlib.invalidate_caches()
    # Import the trusted packages with the working directory off sys.path, so that a folder
    # or module named like them in the submission cannot stand in for them; their submodules
    # are then found through the package's own __path__.
    import os

    cwd = os.getcwd()
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    try:
        for pkg, roots in _state["trusted_roots"].items():
            try:
                mod = importlib.import_module(pkg)
            except ImportError:
                findings.append(f"le paquet `{pkg}` ne s'importe plus")
                continue
            if list(getattr(mod, "__path__", [])) != roots:
                findings.append(f"`{pkg}` importé depuis un autre dossier ({list(mod.__path__)})")
    finally:
        sys.path[:] = saved_path


def before_test_cell() -> dict[str, list[str]]:
    """Restore the pristine state before a test cell.

    Returns:
        ``{"neutralised": [...], "blocking": [...]}``: what was undone (the cell is graded and
        flagged for review) and what could not be undone (the cell scores 0, flagged).
    """
    findings: list[str] = []
    blocking: list[str] = []
    _CWD.clear()
    if not _state:
        return {"neutralised": [], "blocking": ["garde non installée"]}
    if sys.gettrace() is not None or threading.gettrace() is not None:
        findings.append("fonction de traçage (`sys.settrace`) installée")
    sys.settrace(None)
    threading.settrace(None)  # type: ignore[arg-type]
    if sys.getprofile() is not None:
        findings.append("fonction de profilage (`sys.setprofile`) installée")
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]
    _restore_builtins(findings)
    if _state["ipython"] is not None:
        ip = _shell()
        if ip is not None:
            _restore_ipython(ip, _state["ipython"], findings)
    _restore_code_swaps(findings, blocking)
    _restore_protected_modules(findings, blocking)
    _reload_trusted(findings)
    new_threads = [
        t.name
        for t in threading.enumerate()
        if t.ident not in _state["threads"] and t.is_alive()
        and (_foreign(getattr(t, "_target", None)) or _foreign(type(t).run))
    ]
    if new_threads:
        findings.append(f"fils d'exécution lancés par le code : {', '.join(sorted(new_threads))[:200]}")
        _state["threads"] |= {t.ident for t in threading.enumerate()}
    _state["scores"] = []
    _state["claims"] = []
    _state["ledger"] = {}
    _state["reported"] = []
    _own_functions_intact(blocking)
    return {"neutralised": sorted(set(findings)), "blocking": sorted(set(blocking))}


def register_grader(key: int, grade_id: str, points: float) -> None:
    """Called when a :class:`~autograder.feedback.Grader` is created: its own result ledger."""
    if _state:
        _state["ledger"][key] = {"grade_id": grade_id, "points": float(points), "results": []}


def record_result(key: int, index: int | None, passed: bool, weight: float) -> None:
    """Called by the Grader *before* it stores a result: the guard's copy of each outcome.

    Whatever the student's code does to the Grader's own state (its ``results`` list swapped
    for one that rewrites failures, results edited in place, points changed), the score the
    guard recomputes from these copies is the one the checks really computed.
    """
    entry = _state.get("ledger", {}).get(key) if _state else None
    if entry is None:
        return
    if index is None:
        entry["results"].append((bool(passed), float(weight)))
    elif 0 <= index < len(entry["results"]):
        entry["results"][index] = (bool(passed), float(weight))


def record_score(grade_id: str, score: float, key: int | None = None) -> None:
    """Called by :meth:`autograder.feedback.Grader.score`: the score the cell must display."""
    if _state:
        _state["scores"].append((grade_id, score))
        _state["claims"].append((grade_id, score, key))


def report_tampering(what: str) -> None:
    """Called by the check library when student code reached for the grader during a check."""
    if _state:
        _state["reported"].append(what)


def _ledger_score(entry: dict[str, Any]) -> float:
    """The Grader's formula (``points × passed weight / total weight``) on the guard's copies."""
    total = sum(w for _, w in entry["results"])
    fraction = sum(w for ok, w in entry["results"] if ok) / total if total > 0 else 0.0
    return float(round(entry["points"] * fraction, 4))


def _forged_scores() -> list[str]:
    found = []
    for grade_id, score, key in _state.get("claims", []):
        entry = _state.get("ledger", {}).get(key)
        if entry is None or entry["grade_id"] != grade_id:
            found.append(f"score {score:g} annoncé par un correcteur inconnu de la garde")
            continue
        expected = _ledger_score(entry)
        if abs(expected - float(score)) > 1e-9:
            found.append(
                f"état du correcteur modifié : score {score:g} calculé, {expected:g} d'après les "
                "vérifications réellement exécutées"
            )
    return found


def _tampered_now() -> list[str]:
    """What student code changed while the checks ran (nothing is restored here)."""
    found: list[str] = []
    _CWD.clear()
    if sys.gettrace() is not None or threading.gettrace() is not None:
        found.append("fonction de traçage installée")
    if sys.getprofile() is not None:
        found.append("fonction de profilage installée")
    for name, value in _state.get("builtins", {}).items():
        if vars(builtins).get(name) is not value:
            found.append(f"`builtins.{name}` modifié")
    probe_findings: list[str] = []
    probe_blocking: list[str] = []
    if _state.get("ipython") is not None and _shell() is not None:
        ip = _shell()
        saved = _state["ipython"]
        for klass, methods in saved["class_methods"].items():
            for key, original in methods.items():
                if vars(klass).get(key) is not original:
                    found.append(f"IPython: méthode `{klass.__name__}.{key}` remplacée")
        if ip.displayhook is not saved["displayhook"] or sys.displayhook is not saved["sys_displayhook"]:
            found.append("affichage des résultats (`displayhook`) remplacé")
    for name, _, hits in _protected_student_callables():
        probe_blocking.extend(f"`{name}.{attr}` remplacé" for attr, _ in hits)
    swaps, overflow = _student_code_swaps(consume=False)
    probe_blocking.extend(f"code de {_describe(function)} remplacé par l'étudiant" for function, _ in swaps)
    if overflow:
        probe_blocking.append(_TOO_MANY_SWAPS)
    found.extend(probe_findings + probe_blocking + _trusted_tampering())
    found.extend(_forged_scores())
    found.extend(_state.get("reported", []))
    _own_functions_intact(found)
    return sorted(set(found))


def _own_functions_intact(found: list[str]) -> None:
    """The guard's own functions are the ones installed (the student may replace them too)."""
    module = sys.modules.get(__name__)
    for name, original in _state.get("own", {}).items():
        if module is None or vars(module).get(name) is not original:
            found.append(f"garde de correction : `{name}` remplacé")


def after_test_cell() -> dict[str, list]:
    """The scores the Grader computed during the last test cell, and tampering seen since.

    Also forgets the hidden part of every executed test cell (see :func:`scrub_hidden_tests`).
    """
    out = {"scores": list(_state.get("scores", [])), "tampered": _tampered_now() if _state else []}
    scrub_hidden_tests()
    return out


HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
HIDDEN_PLACEHOLDER = "# (tests cachés)"


def _without_hidden(text: str) -> str:
    """``text`` with every hidden-test region (marker lines included) replaced by a placeholder."""
    lines, out, hidden = text.splitlines(keepends=True), [], False
    for line in lines:
        if HIDDEN_BEGIN in line:
            hidden = True
            out.append(line[: len(line) - len(line.lstrip())] + HIDDEN_PLACEHOLDER + "\n")
        elif HIDDEN_END in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "".join(out)


def scrub_hidden_tests() -> int:
    """Remove hidden tests from what the kernel remembers of executed cells; returns how many.

    IPython keeps every executed cell in ``In``/``_ih`` (and ``_i``, ``_ii``, ``_iN``), and the
    cells' source in ``linecache`` for tracebacks: a later student cell could print them into
    its outputs, which the autograded notebook and the feedback keep.
    """
    import linecache

    count = 0
    ip = _shell()
    if ip is not None:
        hm = getattr(ip, "history_manager", None)
        for hist in (getattr(hm, "input_hist_parsed", None), getattr(hm, "input_hist_raw", None)):
            if isinstance(hist, list):
                for i, src in enumerate(hist):
                    if isinstance(src, str) and HIDDEN_BEGIN in src:
                        hist[i] = _without_hidden(src)
                        count += 1
        ns = getattr(ip, "user_ns", {})
        for key, value in list(ns.items()):
            if isinstance(value, str) and key.startswith("_i") and HIDDEN_BEGIN in value:
                ns[key] = _without_hidden(value)
                count += 1
    for name, entry in list(linecache.cache.items()):
        if not (name.startswith("<ipython-input") or "/ipykernel_" in name):
            continue  # only executed cells (library files are never test cells)
        lines = entry[2] if isinstance(entry, tuple) and len(entry) > 2 else None
        if isinstance(lines, list) and any(HIDDEN_BEGIN in line for line in lines if isinstance(line, str)):
            linecache.cache[name] = (entry[0], entry[1], _without_hidden("".join(lines)).splitlines(True), name)
            count += 1
    return count
