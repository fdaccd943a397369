"""The guard's scan of protected modules and its certificates (autograder/grading/guard.py).

Each scenario runs in a fresh interpreter (the guard installs an audit hook for the process's
life and the scenarios tamper with NumPy), from a temporary working directory as a grading
kernel does. "Student" functions are compiled with a notebook cell's file name, as IPython
does. After every step the scan's answer is compared with the per-item scan it replaces.
End to end (real nbgrader, sandboxed kernel, rebinding attacks): tests/test_hostile.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = f"""
import os, sys, types
sys.path.insert(0, {str(ROOT)!r})
from autograder.grading import guard
guard.install()
import numpy as np, numpy.testing, numpy._globals

def student(source, name):
    ns = {{"__name__": "__main__", "np": np}}
    exec(compile(source, "<ipython-input-7-0123456789ab>", "exec"), ns)
    return ns[name]

def per_item():
    '''The scan before certificates: every attribute of every protected module.'''
    found = []
    for name in list(sys.modules):
        module = sys.modules.get(name)
        if module is None or name.split(".")[0] not in guard.PROTECTED:
            continue
        try:
            items = list(vars(module).items())
        except TypeError:
            continue
        found += [f"{{name}}.{{a}}" for a, v in items if guard._callable(v) and guard._foreign(v)]
    return sorted(found)

def scan():
    guard._CWD.clear()
    got = sorted(f"{{n}}.{{a}}" for n, _, found in guard._protected_student_callables() for a, _ in found)
    assert got == per_item(), (got, per_item())
    return got

assert scan() == [] and guard._state["certified"], "first scan certifies the clean modules"
assert scan() == []
"""


def _run(tmp_path: Path, body: str) -> None:
    script = tmp_path / "scenario.py"
    script.write_text(PRELUDE + textwrap.dedent(body) + "\nprint('OK')\n")
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stderr[-3000:]


SCENARIOS = {
    "rebinding": """
        original = np.allclose
        np.allclose = student("def allclose(*a, **k):\\n    return True\\n", "allclose")
        assert scan() == ["numpy.allclose"]
        found = guard.before_test_cell()
        assert any("numpy.allclose" in f for f in found["neutralised"]), found
        assert np.allclose is original and scan() == []
    """,
    "code_swap": """
        fake = student("def assert_allclose(*a, **k):\\n    return None\\n", "assert_allclose")
        np.testing.assert_allclose.__code__ = fake.__code__  # same object, same namespaces
        assert scan() == ["numpy.testing._private.utils.assert_allclose", "numpy.testing.assert_allclose"]
        assert "`numpy.testing.assert_allclose` remplacé" in guard.after_test_cell()["tampered"]
    """,
    "class_swap": """
        Callable = student("class Callable:\\n    def __call__(self, *a):\\n        return True\\n", "Callable")
        numpy._globals._NoValue.__class__ = Callable  # was not callable: now runs student code
        assert "numpy._globals._NoValue" in scan()
    """,
    "working_directory": """
        os.chdir(os.path.dirname(np.testing.__file__))  # its files now count as the submission's
        assert any(f.startswith("numpy.testing.") for f in scan())
    """,
    "module_replaced": """
        fake = types.ModuleType("numpy.testing")
        fake.assert_allclose = student("def assert_allclose(*a, **k):\\n    return None\\n", "assert_allclose")
        sys.modules["numpy.testing"] = fake
        assert scan() == ["numpy.testing.assert_allclose"]
    """,
    "module_imported_later": """
        import numpy.polynomial.hermite as hermite
        hermite.hermval = student("def hermval(*a):\\n    return 0\\n", "hermval")
        assert scan() == ["numpy.polynomial.hermite.hermval"]
    """,
    "entry_added_and_removed": """
        np.helper = student("def helper():\\n    return 0\\n", "helper")
        assert scan() == ["numpy.helper"]
        del np.helper
        assert scan() == []
        vars(np)["allclose"] = student("def allclose(*a, **k):\\n    return True\\n", "allclose")
        assert scan() == ["numpy.allclose"]
    """,
    "same_object_under_an_equal_name": """
        # A value whose __eq__ says yes to everything must not pass for the original.
        Liar = student("class Liar:\\n    def __eq__(self, o):\\n        return True\\n    __hash__ = None\\n"
                       "    def __call__(self, *a):\\n        return True\\n", "Liar")
        np.isclose = Liar()
        assert scan() == ["numpy.isclose"]
    """,
    "library_metadata_only": """
        # Documented difference: a change that alters no call is seen by the per-item scan
        # only; the certified scan rescans the module as soon as its namespace changes.
        np.testing.assert_allclose.__module__ = "__main__"
        assert "numpy.testing.assert_allclose" in per_item()
        guard._CWD.clear()
        assert not [n for n, _, _ in guard._protected_student_callables()]
        np.testing.extra = 1  # any change of the namespace: full scan of that module
        guard._CWD.clear()
        assert [n for n, _, _ in guard._protected_student_callables()] == ["numpy.testing"]
    """,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_certified_scan_finds_what_the_per_item_scan_finds(tmp_path, name):
    _run(tmp_path, SCENARIOS[name])


CODE_SWAPS = {
    # numpy.allclose is a dispatcher: its Python implementation is in no module's namespace.
    "student_code_into_a_hidden_implementation": """
        implementation = np.allclose._implementation
        original = implementation.__code__
        fake = student("def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):\\n    return True\\n", "allclose")
        implementation.__code__ = fake.__code__
        assert np.allclose(0.0, 1.0) is True
        assert scan() == []  # no module attribute shows it: the audit hook does
        tampered = guard.after_test_cell()["tampered"]
        assert tampered == ["code de `numpy._core.numeric.allclose` remplacé par l'étudiant"], tampered
        found = guard.before_test_cell()
        assert "code de `numpy._core.numeric.allclose` remplacé par l'étudiant (restauré)" in found["neutralised"], found
        assert implementation.__code__ is original and not np.allclose(0.0, 1.0)
        assert guard.after_test_cell()["tampered"] == [] and guard.before_test_cell()["neutralised"] == []
    """,
    "library_code_put_in_by_the_student": """
        implementation = np.allclose._implementation
        donor = np.testing.assert_allclose  # library code, given by the student's cell
        exec(compile("implementation.__code__ = donor.__code__", "<ipython-input-8-0123456789ab>", "exec"))
        assert any("numpy._core.numeric.allclose" in f for f in guard.after_test_cell()["tampered"])
        guard.before_test_cell()
        assert implementation.__code__ is not donor.__code__
    """,
    "the_student_swapping_its_own_functions": """
        mine = student("def f():\\n    return 1\\n", "f")
        other = student("def g():\\n    return 2\\n", "g")
        mine.__code__ = other.__code__
        assert guard.after_test_cell()["tampered"] == [] and guard.before_test_cell()["neutralised"] == []
    """,
    "a_library_swapping_its_own_code": """
        def library_a():
            return 1
        def library_b():
            return 2
        library_a.__code__ = library_b.__code__  # this scenario's file is not the submission's
        assert guard.after_test_cell()["tampered"] == [] and guard.before_test_cell()["neutralised"] == []
    """,
}


@pytest.mark.parametrize("name", sorted(CODE_SWAPS))
def test_code_swaps_by_the_student_are_reported_and_undone(tmp_path, name):
    _run(tmp_path, CODE_SWAPS[name])


def test_a_function_swapped_twice_gets_its_library_code_back(tmp_path):
    _run(tmp_path, """
        implementation = np.allclose._implementation
        original = implementation.__code__
        one = student("def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):\\n    return True\\n", "allclose")
        two = student("def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):\\n    return 1\\n", "allclose")
        implementation.__code__ = one.__code__
        implementation.__code__ = two.__code__
        found = guard.before_test_cell()
        assert found["neutralised"] == ["code de `numpy._core.numeric.allclose` remplacé par l'étudiant (restauré)"], found
        assert implementation.__code__ is original
    """)


def test_a_flood_of_swaps_blocks_every_later_test_cell(tmp_path):
    """Past MAX_SWAPS the rest are not recorded: a library swap hidden behind the flood is never
    seen, so every test cell from then on scores 0 (not only the next one); honest swaps below
    the limit block nothing (the scenarios above)."""
    _run(tmp_path, """
        mine = student("def f():\\n    return 1\\n", "f")
        other = student("def g():\\n    return 2\\n", "g")
        for _ in range(guard.MAX_SWAPS + 1):
            mine.__code__ = other.__code__
        implementation = np.allclose._implementation
        fake = student("def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):\\n    return True\\n", "allclose")
        implementation.__code__ = fake.__code__  # not recorded: past the limit
        assert guard._TOO_MANY_SWAPS in guard.after_test_cell()["tampered"]
        assert guard._TOO_MANY_SWAPS in guard.before_test_cell()["blocking"]
        assert np.allclose(0.0, 1.0) is True  # still swapped, and no record says so
        for _ in range(2):  # later test cells
            assert guard._TOO_MANY_SWAPS in guard.after_test_cell()["tampered"]
            assert guard._TOO_MANY_SWAPS in guard.before_test_cell()["blocking"]
    """)
