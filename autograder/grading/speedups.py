"""Two caches for nbgrader 0.9.6's grading client, installed by nbgrader_config.py, and a
deferred import for every process of ours that loads nbgrader.

Profiled on ``nbgrader autograde`` of m3 notebooks (``cProfile`` with a CPU-time clock), the
grading client spends ~1.4 CPU-s per notebook outside the kernel; a third of it is waste:

- **SQL compilation** (~0.3 CPU-s per notebook): nbgrader opens ~11 ``Gradebook`` objects per
  notebook, each with a new SQLAlchemy engine, so SQLAlchemy's compiled-statement cache (kept
  per engine) starts empty every time and every query is compiled again. :func:`install` makes
  ``nbgrader.api.create_engine`` return one engine per database URL and process.
  ``Gradebook.close()`` still calls ``engine.dispose()``, which closes the engine's pooled
  connections (a new connection opens the file again: a gradebook file replaced between two
  ``Gradebook`` objects is read afresh); only compiled SQL and the dialect survive.
  In-memory SQLite URLs are never shared (each ``create_engine`` is a new database).
- **JSON schema checking** (~0.2 CPU-s per notebook): ``CheckCellMetadata`` validates each
  cell's nbgrader metadata with ``jsonschema.validate``, which first checks the *schema itself*
  against its meta-schema, for every cell. :func:`install` gives nbgrader's metadata validators
  a ``jsonschema`` whose ``validate`` checks each schema once, then validates exactly as
  ``jsonschema.validate`` does (same validator class, same ``best_match`` error).

Scores cannot change: the same queries run on the same database and the same validation on the
same metadata. ``tests/test_speedups.py`` checks both caches, and the end-to-end tests compare
gradebooks with plain nbgrader's.

- **The IRI parser** (~1.3 CPU-s per process, plus ~0.6 s at its exit): importing nbgrader
  imports ``nbformat``, hence ``jsonschema``, whose format checkers import ``rfc3987_syntax``
  (installed with ``jupyter_events``' ``jsonschema[format-nongpl]``); that module builds a Lark
  Earley parser of RFC 3987 at import time, for the ``iri`` formats that no notebook or
  nbgrader schema uses. :func:`defer_iri_parser`, called by ``course`` and by the Dask worker
  module before they import nbgrader, puts a stand-in in its place: the real module is imported
  on the first call, which then gets exactly its answer. ``course grade`` pays it neither in the
  driver nor in a worker's first task.

``COURSE_NO_SPEEDUPS=1`` leaves nbgrader and ``jsonschema`` untouched.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: Engines kept per process (one per gradebook URL; a grading run uses one or two).
MAX_ENGINES = 8

_lock = threading.Lock()
_import_lock = threading.Lock()
_engines: OrderedDict[tuple, Any] = OrderedDict()
_validators: dict[str, Any] = {}


def _in_memory(url: Any) -> bool:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.get_backend_name() == "sqlite" and u.database in (None, "", ":memory:")


def create_engine(url: Any, **kwargs: Any) -> Any:
    """``sqlalchemy.create_engine``, one engine per (URL, arguments) in this process."""
    import sqlalchemy

    if _in_memory(url):
        return sqlalchemy.create_engine(url, **kwargs)
    key = (str(url), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        engine = sqlalchemy.create_engine(url, **kwargs)
        _engines[key] = engine
        while len(_engines) > MAX_ENGINES:
            _, old = _engines.popitem(last=False)
            old.dispose()
        return engine


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """``jsonschema.validate``, the schema itself checked once per process."""
    import jsonschema
    from jsonschema import exceptions, validators

    if cls is not None or args or kwargs:
        return jsonschema.validate(instance, schema, cls, *args, **kwargs)
    key = json.dumps(schema, sort_keys=True)
    validator = _validators.get(key)
    if validator is None:
        klass = validators.validator_for(schema)
        klass.check_schema(schema)
        validator = klass(schema)
        with _lock:
            _validators[key] = validator
    error = exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error
    return None


def _jsonschema_with_cache() -> types.ModuleType:
    """A stand-in for the ``jsonschema`` module: its attributes, with the caching ``validate``."""
    import jsonschema

    shim = types.ModuleType("jsonschema", jsonschema.__doc__)
    shim.__dict__.update({k: v for k, v in vars(jsonschema).items() if not k.startswith("__")})
    shim.validate = validate
    return shim


def installed() -> bool:
    import nbgrader.api
    import nbgrader.nbgraderformat.common as common

    return nbgrader.api.create_engine is create_engine and common.jsonschema.validate is validate


def install() -> bool:
    """Install both caches into nbgrader (idempotent); False when ``COURSE_NO_SPEEDUPS=1``."""
    if os.environ.get("COURSE_NO_SPEEDUPS") == "1":
        return False
    import nbgrader.api
    import nbgrader.nbgraderformat.common as common

    nbgrader.api.create_engine = create_engine
    if getattr(common.jsonschema, "validate", None) is not validate:
        common.jsonschema = _jsonschema_with_cache()
    return True


def uninstall() -> None:
    """Give nbgrader back its own ``create_engine`` and ``jsonschema`` (tests); drop the caches."""
    import jsonschema
    import nbgrader.api
    import nbgrader.nbgraderformat.common as common
    import sqlalchemy

    nbgrader.api.create_engine = sqlalchemy.create_engine
    common.jsonschema = jsonschema
    with _lock:
        while _engines:
            _, engine = _engines.popitem()
            engine.dispose()
        _validators.clear()


#: The module that builds its parser on import, and the functions ``jsonschema`` takes from it.
IRI_MODULE = ("rfc3987_syntax", ("is_valid_syntax",))


def defer_iri_parser() -> bool:
    """Defer ``rfc3987_syntax``'s import to its first use (see the module docstring)."""
    name, functions = IRI_MODULE
    return defer_import(name, functions)


def defer_import(name: str, functions: tuple[str, ...]) -> bool:
    """Put a stand-in for the module ``name`` in ``sys.modules``; the real one loads on first use.

    The stand-in has the listed ``functions``, each importing the real module on its first call
    and returning what the real function returns; any other public attribute loads it too.
    Nothing happens (False) when ``COURSE_NO_SPEEDUPS=1``, when the module is already imported,
    when it is not installed or when it is a submodule (its package would be imported anyway). If the real import fails, the stand-in stays and the error is
    raised to the caller, as the import itself would have raised it.
    """
    if os.environ.get("COURSE_NO_SPEEDUPS") == "1" or name in sys.modules or "." in name:
        return False
    if importlib.util.find_spec(name) is None:
        return False
    stand_in = types.ModuleType(name, f"Stand-in for {name}, imported on first use (autograder.grading.speedups).")
    real: list[types.ModuleType] = []

    def load() -> types.ModuleType:
        with _import_lock:
            if not real:
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
                try:
                    real.append(importlib.import_module(name))
                except BaseException:
                    sys.modules.setdefault(name, stand_in)
                    raise
        return real[0]

    def forward(function: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(load(), function)(*args, **kwargs)

        call.__name__ = call.__qualname__ = function
        return call

    def module_getattr(attr: str) -> Any:
        if attr.startswith("__"):  # the import system probes __path__ and the like: not a use
            raise AttributeError(attr)
        return getattr(load(), attr)

    for function in functions:
        setattr(stand_in, function, forward(function))
    stand_in.__getattr__ = module_getattr  # type: ignore[method-assign]  # PEP 562
    sys.modules[name] = stand_in
    return True
