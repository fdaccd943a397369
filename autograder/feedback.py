"""Check results, partial scores and the French feedback a student reads.

The grading contract (DESIGN.md §3): a graded test cell ends with ``grader.score()``, a plain
Python ``float`` equal to ``points × fraction of checks passed``. nbgrader parses that
``execute_result``; any stderr output or error would score the cell 0, so everything a check
runs is silenced (Python warnings, ``sys.stderr`` and the process' file descriptor 2, where
TensorFlow's C++ logger writes) and feedback goes to stdout only.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not_attempted"
ERROR = "error"

#: Marker that starts every feedback block, so tools can find it in a cell's stdout.
FEEDBACK_HEADER = "── Résultats"


class CheckFailure(Exception):
    """Raised by a check when the student's code is wrong.

    Attributes:
        code: stable failure code, e.g. ``conv.padding`` (tests and reports key on it).
        message: French explanation: what was checked → what was seen → what to try.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


class NotAttempted(Exception):
    """Raised when the student's function is still nbgrader's stub."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def fail(code: str, message: str) -> None:
    """Raise a :class:`CheckFailure` (reads better inside checks than ``raise``)."""
    raise CheckFailure(code, message)


@dataclass
class CheckResult:
    """Outcome of one check."""

    name: str
    status: str
    weight: float = 1.0
    code: str | None = None
    message: str = ""
    hidden: bool = False

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@contextlib.contextmanager
def silenced() -> Iterator[io.StringIO]:
    """Swallow warnings, ``sys.stdout``/``sys.stderr`` and file descriptor 2.

    Yields the captured Python-level text (useful to tests); what C libraries write to fd 2 is
    discarded. Used around every check, because any stderr output zeroes an nbgrader cell.
    """
    captured = io.StringIO()
    saved_fd = None
    tmp = None
    try:
        sys.stderr.flush()
    except Exception:  # a student may have replaced sys.stderr with anything
        pass
    try:
        tmp = tempfile.TemporaryFile()
        saved_fd = os.dup(2)
        os.dup2(tmp.fileno(), 2)
    except OSError:
        saved_fd = None
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
        ):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        if tmp is not None:
            tmp.close()


class Grader:
    """Runs the checks of one graded cell and computes its score.

    Example (the body of a test cell)::

        g = conv.public_conv2d_forward(conv2d_forward, points=4)
        ### BEGIN HIDDEN TESTS
        conv.hidden_conv2d_forward(g, conv2d_forward, seed=7)
        ### END HIDDEN TESTS
        g.score()
    """

    def __init__(self, grade_id: str, points: float, title: str | None = None) -> None:
        self.grade_id = grade_id
        self.points = float(points)
        self.title = title or grade_id
        self.results: list[CheckResult] = []
        self._hidden = False
        guard = _guard()
        if guard is not None:  # grading kernel: the guard keeps its own copy of every outcome
            guard.register_grader(id(self), grade_id, self.points)

    def hidden(self) -> Grader:
        """Mark the checks that follow as hidden (their messages stay generic on values)."""
        self._hidden = True
        return self

    def check(
        self,
        check: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        weight: float = 1.0,
        **kwargs: Any,
    ) -> CheckResult:
        """Run ``check(*args, **kwargs)`` and record its outcome; never raises."""
        label = name or getattr(check, "label", None) or check.__name__
        result = self._run(check, args, kwargs, label, weight)
        self._record(result)
        return result

    def deepen(self, name: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run hidden cases of an already recorded visible check, as the *same* check.

        A hidden case of an aspect the visible part already checks must not cost a second check
        (one bug, one lost check, whose code names it). When the visible check named ``name``
        passed, ``check`` runs and, if it fails, its result (marked hidden) replaces it; when the
        visible check failed, the hidden cases add nothing. When no check has that name, the
        result is appended.
        """
        index = next((i for i, r in enumerate(self.results) if r.name == name), None)
        if index is not None and not self.results[index].passed:
            return
        hidden, self._hidden = self._hidden, True
        try:
            result = self._run(check, args, kwargs, name, 1.0)
        finally:
            self._hidden = hidden
        if index is None:
            self._record(result)
        elif not result.passed:
            result.weight = self.results[index].weight
            self._record(result, index)

    def _record(self, result: CheckResult, index: int | None = None) -> None:
        """Append (or replace at ``index``) a result; the grading guard gets its own copy first."""
        guard = _guard()
        if guard is not None:
            guard.record_result(id(self), index, result.passed, float(result.weight))
        if index is None:
            self.results.append(result)
        else:
            self.results[index] = result

    def _run(
        self, check: Callable[..., Any], args: tuple, kwargs: dict, label: str, weight: float
    ) -> CheckResult:
        result = CheckResult(label, PASSED, weight, hidden=self._hidden)
        try:
            with silenced():
                check(*args, **kwargs)
        except CheckFailure as exc:
            result = CheckResult(label, FAILED, weight, exc.code, exc.message, self._hidden)
        except NotAttempted as exc:
            result = CheckResult(
                label,
                NOT_ATTEMPTED,
                weight,
                "not_attempted",
                f"`{exc.what}` n'est pas encore écrite (elle lève `NotImplementedError`).",
                self._hidden,
            )
        except BaseException as exc:  # noqa: BLE001 - a check must never break the cell
            if isinstance(exc, KeyboardInterrupt):
                raise
            result = CheckResult(
                label,
                ERROR,
                weight,
                "internal.error",
                "La vérification n'a pas pu s'exécuter "
                f"({type(exc).__name__}: {_short(exc)}). Cette vérification compte 0 ; "
                "si votre code n'y est pour rien, signalez-le à l'équipe pédagogique.",
                self._hidden,
            )
            if os.environ.get("COURSE_DEBUG"):
                traceback.print_exc(file=sys.stdout)
        return result

    @property
    def fraction(self) -> float:
        total = sum(r.weight for r in self.results)
        if total <= 0:
            return 0.0
        return sum(r.weight for r in self.results if r.passed) / total

    @property
    def codes(self) -> list[str]:
        """Failure codes of the checks that did not pass, in order."""
        return [r.code for r in self.results if not r.passed and r.code]

    def report(self) -> str:
        """French feedback for the student, one line per check."""
        lines = [f"{FEEDBACK_HEADER} : {self.title} ──"]
        if self.results and all(r.status == NOT_ATTEMPTED for r in self.results):
            lines.append(
                "Non tenté : écrivez votre code à la place de `raise NotImplementedError()`, "
                "puis relancez cette cellule."
            )
        for r in self.results if not lines[1:] else []:
            mark = {PASSED: "✓", FAILED: "✗", NOT_ATTEMPTED: "·", ERROR: "!"}[r.status]
            scope = " (test caché)" if r.hidden else ""
            line = f"{mark} {r.name}{scope}"
            if not r.passed:
                line += f" [{r.code}] : {r.message}"
            lines.append(line)
        earned = self.points * self.fraction
        lines.append(f"Score : {_fmt(earned)} / {_fmt(self.points)}")
        return "\n".join(lines)

    def score(self) -> float:
        """Print the feedback and return the points earned as a plain ``float``.

        A plain ``float`` (never a NumPy scalar, whose repr nbgrader cannot parse and would
        then award full marks), rounded so that its repr is short and stable.
        """
        print(self.report())
        sys.stdout.flush()
        value = float(round(self.points * self.fraction, 4))
        guard = _guard()
        if guard is not None:  # grading kernel: the client checks the cell shows this value
            guard.record_score(self.grade_id, value, id(self))
        return value


def _guard() -> Any:
    """The grading guard when this runs in a grading kernel (never imported elsewhere)."""
    return sys.modules.get("autograder.grading.guard")


def _fmt(x: float) -> str:
    return fr_number(x)


def fr_number(x: float, spec: str = "g") -> str:
    """``x`` formatted with ``spec`` in French typography, for French text.

    A decimal comma (« 2,25 / 3 », « ≥ 0,80 », « 1,2e-05 ») and a space before the percent
    sign (« 78,0 % »). Code shown to the student (``momentum=0.1``) keeps Python's notation.
    """
    text = format(x, spec)
    if spec.endswith("%"):
        text = text[:-1] + " %"
    return text.replace(".", ",")


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_exception(exc: BaseException) -> str:
    """One line naming an exception raised by student code and where it happened."""
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    student = [f for f in tb if "autograder" not in f.filename and "site-packages" not in f.filename]
    if student:
        frame = student[-1]
        where = f" (ligne {frame.lineno} : `{(frame.line or '').strip()}`)"
    return f"{type(exc).__name__}: {_short(exc)}{where}"
