"""nbgrader client caches (autograder/grading/speedups.py): same results, less repeated work.

End to end, every nbgrader run of the test suite goes through them (nbgrader_config.py installs
them), and tests/test_bench.py compares the gradebook with plain nbgrader's.
"""

from __future__ import annotations

import copy
import json
import shutil

import jsonschema
import nbgrader.api
import nbgrader.nbgraderformat.common as common
import pytest
import sqlalchemy
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

from autograder.grading import speedups


@pytest.fixture
def installed():
    speedups.uninstall()
    assert speedups.install()
    try:
        yield
    finally:
        speedups.uninstall()


def test_install_is_idempotent_and_uninstall_restores(installed):
    assert speedups.installed()
    shim = common.jsonschema
    assert speedups.install() and common.jsonschema is shim  # no shim of a shim
    assert shim.ValidationError is jsonschema.ValidationError  # the rest of the module is there
    speedups.uninstall()
    assert not speedups.installed()
    assert nbgrader.api.create_engine is sqlalchemy.create_engine and common.jsonschema is jsonschema


def test_opt_out_leaves_nbgrader_untouched(monkeypatch):
    speedups.uninstall()
    monkeypatch.setenv("COURSE_NO_SPEEDUPS", "1")
    assert speedups.install() is False
    assert not speedups.installed()


def test_one_engine_per_url_never_for_memory_databases(installed, tmp_path):
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    assert speedups.create_engine(a, echo=False) is speedups.create_engine(a, echo=False)
    assert speedups.create_engine(a, echo=False) is not speedups.create_engine(b, echo=False)
    assert speedups.create_engine(a, echo=False) is not speedups.create_engine(a, echo=True)
    for memory in ("sqlite://", "sqlite:///:memory:"):
        assert speedups.create_engine(memory) is not speedups.create_engine(memory)


def test_engines_beyond_the_limit_are_disposed(installed, tmp_path, monkeypatch):
    monkeypatch.setattr(speedups, "MAX_ENGINES", 2)
    first = speedups.create_engine(f"sqlite:///{tmp_path / '0.db'}")
    for i in range(1, 3):
        speedups.create_engine(f"sqlite:///{tmp_path / f'{i}.db'}")
    assert len(speedups._engines) == 2
    assert speedups.create_engine(f"sqlite:///{tmp_path / '0.db'}") is not first


def test_gradebook_file_replaced_between_two_gradebooks_is_read_afresh(installed, tmp_path):
    """A worker rewrites the same gradebook path for each task: no stale data may survive."""
    db = tmp_path / "gradebook.db"
    url = f"sqlite:///{db}"
    with Gradebook(url, "cnn-course") as gb:
        gb.add_student("alice")
    saved = tmp_path / "alice.db"
    shutil.copy(db, saved)
    with Gradebook(url, "cnn-course") as gb:
        gb.add_student("bob")
        assert sorted(s.id for s in gb.students) == ["alice", "bob"]
    shutil.copy(saved, db)  # the file is replaced under the same URL
    with Gradebook(url, "cnn-course") as gb:
        assert [s.id for s in gb.students] == ["alice"]
        engine = gb.engine
    db.unlink()
    with Gradebook(url, "cnn-course") as gb:  # a new file, created again
        assert gb.engine is engine and gb.students == []


def test_nested_gradebooks_on_one_engine_both_work(installed, tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, "cnn-course") as outer:
        outer.add_student("alice")
        with Gradebook(url, "cnn-course") as inner:
            inner.add_student("bob")
        # the inner close() disposed the shared engine's pool: the outer session still works
        outer.add_student("carol")
        assert sorted(s.id for s in outer.students) == ["alice", "bob", "carol"]


def _metadata(**changes):
    meta = {
        "grade": True, "grade_id": "conv2d-forward-test", "locked": True, "points": 4,
        "schema_version": 3, "solution": False, "task": False,
    }
    meta.update(changes)
    return meta


@pytest.mark.parametrize(
    "meta",
    [
        _metadata(),
        _metadata(points="quatre"),  # wrong type
        _metadata(grade_id=None),  # null id
        {**_metadata(), "surprise": 1},  # unknown key
        {k: v for k, v in _metadata().items() if k != "locked"},  # missing key
    ],
    ids=["valid", "points-type", "null-id", "extra-key", "missing-key"],
)
def test_validation_matches_jsonschema_validate(installed, meta):
    schema = MetadataValidatorV3().schema
    try:
        jsonschema.validate(copy.deepcopy(meta), schema)
        expected = None
    except jsonschema.ValidationError as exc:
        expected = (exc.message, list(exc.path), exc.validator)
    for _ in range(2):  # first call builds the cached validator, second uses it
        try:
            speedups.validate(copy.deepcopy(meta), schema)
            got = None
        except jsonschema.ValidationError as exc:
            got = (exc.message, list(exc.path), exc.validator)
        assert got == expected
    assert len(speedups._validators) == 1


def test_nbgrader_validator_uses_the_cache_and_still_rejects(installed):
    validator = MetadataValidatorV3()
    cell = json.loads(json.dumps({"cell_type": "code", "metadata": {"nbgrader": _metadata()}, "source": ""}))
    from nbformat import from_dict

    validator.validate_cell(from_dict(cell))
    assert len(speedups._validators) == 1
    cell["metadata"]["nbgrader"]["points"] = "quatre"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate_cell(from_dict(cell))


def test_invalid_schema_is_still_refused(installed):
    with pytest.raises(jsonschema.SchemaError):
        speedups.validate({}, {"type": 12})


# -- deferred IRI parser ---------------------------------------------------------------------

#: Valid and invalid IRIs (RFC 3987), absolute and relative: the stand-in must answer as the
#: real parser does for each, through jsonschema's format checkers.
IRIS = [
    "https://example.org/chemin?q=1#frag", "http://例え.テスト/パス", "urn:isbn:0451450523",
    "mailto:étudiant@exemple.fr", "//relative/sans-schéma", "pas un iri", "http://[::1]:80/",
    "http://exa mple.org/", "", "http://example.org/%zz", "ftp://user@host:21/f.txt",
]

_IRI_PROBE = r"""
import json, sys
from autograder.grading import speedups
deferred = speedups.defer_iri_parser()
import jsonschema
from nbgrader.apps.autogradeapp import AutogradeApp  # what a worker's first task imports
built_on_import = "rfc3987_syntax.syntax_helpers" in sys.modules
checker = jsonschema.FormatChecker()
assert {"iri", "iri-reference"} <= set(checker.checkers), sorted(checker.checkers)
iris = json.loads(sys.argv[1])
answers = {fmt: [checker.conforms(x, fmt) for x in iris] for fmt in ("iri", "iri-reference")}
import rfc3987_syntax
direct = [rfc3987_syntax.is_valid_syntax("iri", x) for x in iris]
print(json.dumps({"deferred": deferred, "built_on_import": built_on_import, "answers": answers,
                  "direct": direct, "real_now": "rfc3987_syntax.syntax_helpers" in sys.modules}))
"""


def _iri_probe(**env: str) -> dict:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _IRI_PROBE, json.dumps(IRIS)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_iri_parser_is_built_on_first_use_only_with_the_same_answers():
    deferred, plain = _iri_probe(), _iri_probe(COURSE_NO_SPEEDUPS="1")
    assert deferred["deferred"] and not deferred["built_on_import"]  # importing nbgrader built nothing
    assert not plain["deferred"] and plain["built_on_import"]  # the opt-out is jsonschema's own import
    assert deferred["real_now"]  # the first check loaded the real parser
    assert deferred["answers"] == plain["answers"]
    assert deferred["direct"] == plain["direct"] == plain["answers"]["iri"]
    assert True in plain["answers"]["iri"] and False in plain["answers"]["iri"]  # the samples tell them apart


def test_defer_import_forwards_loads_once_and_keeps_failures(tmp_path, monkeypatch):
    import sys

    (tmp_path / "slowmod.py").write_text(
        "import builtins\nbuiltins.slowmod_loads = getattr(builtins, 'slowmod_loads', 0) + 1\n"
        "def f(x, *, k=0):\n    return ('f', x, k)\nCONST = 7\n"
    )
    (tmp_path / "brokenmod.py").write_text("raise ImportError('cassé')\ndef f():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    for name in ("slowmod", "brokenmod"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delattr(builtins, "slowmod_loads", raising=False)
    try:
        assert speedups.defer_import("slowmod", ("f",))
        assert not speedups.defer_import("slowmod", ("f",))  # already in sys.modules
        from slowmod import f  # what jsonschema does: takes the function, loads nothing

        assert not hasattr(builtins, "slowmod_loads")
        assert f(1, k=2) == ("f", 1, 2) and builtins.slowmod_loads == 1
        assert f(3) == ("f", 3, 0) and builtins.slowmod_loads == 1  # loaded once
        import slowmod

        assert slowmod.CONST == 7 and slowmod.f is not f  # sys.modules now holds the real module

        assert speedups.defer_import("brokenmod", ("f",))
        from brokenmod import f as broken

        with pytest.raises(ImportError, match="cassé"):
            broken()
        with pytest.raises(ImportError, match="cassé"):  # raised again, as a failed import would
            broken()
        assert not speedups.defer_import("absent_module_xyz", ("f",))
        monkeypatch.setenv("COURSE_NO_SPEEDUPS", "1")
        monkeypatch.delitem(sys.modules, "slowmod")
        assert not speedups.defer_import("slowmod", ("f",)) and "slowmod" not in sys.modules
    finally:
        for name in ("slowmod", "brokenmod"):
            sys.modules.pop(name, None)
