"""`course validate NOTEBOOK`: run a notebook like a student and print the feedback per question.

Student-side: needs nbclient and a Jupyter kernel, not nbgrader nor ``solutions``. The notebook
runs top to bottom in a fresh kernel started in its own folder (as "Restart and run all" would
do, but without stopping at an error); the file itself is never modified. After each graded
cell, the French feedback of its visible checks is printed with the points earned so far.
Hidden tests only run at grading time, so the total is provisional.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from autograder.feedback import FEEDBACK_HEADER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", type=Path, help="the notebook to validate (.ipynb)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell (default 300)")
    parser.add_argument("--quiet", action="store_true", help="print only the final total")


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _stderr(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr")


def _errors(cell) -> list[tuple[str, str]]:
    return [(o.get("ename", ""), o.get("evalue", "")) for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def cell_score(cell) -> float | None:
    """The score nbgrader would read: first execute_result parsed as a float (None if none)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            try:
                return float(out.get("data", {}).get("text/plain", ""))
            except ValueError:
                return None
    return None


class Reporter:
    """Prints each graded cell's feedback as soon as it has run."""

    def __init__(self, nb, quiet: bool) -> None:
        self.nb = nb
        self.quiet = quiet
        self.total = sum(float(c.metadata.get("nbgrader", {}).get("points", 0) or 0)
                         for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
        self.earned = 0.0
        self.seen = 0.0
        self.question = 0
        self.not_written = 0

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text, flush=True)

    def on_cell_executed(self, cell, cell_index: int, execute_reply=None, **_) -> None:
        meta = cell.metadata.get("nbgrader", {})
        errors = _errors(cell)
        if cell.cell_type != "code":
            return
        if not meta.get("grade"):
            for ename, evalue in errors:
                if ename == "NotImplementedError":
                    self.not_written += 1
                    self.say(f"  (cellule {cell_index + 1} : appelle une fonction pas encore écrite — NotImplementedError)")
                else:
                    self.say(f"  ⚠ cellule {cell_index + 1} : {ename}: {evalue}")
            return
        points = float(meta.get("points", 0) or 0)
        self.question += 1
        score = cell_score(cell)
        text = _stdout(cell)
        start = text.find(FEEDBACK_HEADER)
        feedback = text[start:].rstrip() if start >= 0 else text.rstrip()
        if errors:
            ename, evalue = errors[0]
            score = 0.0
            feedback = (feedback + "\n" if feedback else "") + f"⚠ la cellule s'est arrêtée sur une erreur : {ename}: {evalue}"
        elif _stderr(cell).strip():
            score = 0.0
            feedback += "\n⚠ cette cellule écrit sur stderr : à la notation, nbgrader lui donnerait 0."
        elif score is None:
            score = 0.0
            feedback += "\n⚠ pas de score lisible en fin de cellule."
        score = min(max(score, 0.0), points)
        self.earned += score
        self.seen += points
        self.say(f"\nQuestion {self.question} — cellule {meta.get('grade_id', cell_index + 1)} : {score:g} / {points:g}")
        for line in feedback.splitlines():
            self.say(f"  {line}")
        self.say(f"  → cumul : {self.earned:g} / {self.seen:g} (sur {self.total:g} au total)")


def validate(path: Path, timeout: int = 300, quiet: bool = False) -> Reporter:
    """Execute ``path`` in a fresh kernel (a copy in memory) and report graded cells."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    reporter = Reporter(nb, quiet)
    kernel = nb.metadata.get("kernelspec", {}).get("name") or "python3"
    client = NotebookClient(
        nb,
        timeout=timeout,
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_executed=reporter.on_cell_executed,
    )
    # The kernel's own log lines (e.g. ipykernel's transport warning) are not for the student.
    client.execute(stderr=subprocess.DEVNULL)
    return reporter


def run(args: argparse.Namespace) -> int:
    from autograder.cli import suggest
    from autograder.reports.common import usage_error

    path: Path = args.notebook.expanduser().resolve()
    if not path.is_file():
        nearby = [p.name for p in path.parent.glob("*.ipynb")] if path.parent.is_dir() else []
        raise usage_error(f"{args.notebook} does not exist{suggest(path.name, nearby)}")
    if path.suffix != ".ipynb":
        raise usage_error(f"{args.notebook} is not a notebook (.ipynb)")
    try:
        import nbclient  # noqa: F401
        import nbformat
    except ImportError:
        raise usage_error("needs nbclient and ipykernel: pip install 'cnn-course[student]'") from None
    try:
        nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same answer to a student
        raise usage_error(f"{args.notebook} cannot be read as a notebook ({type(exc).__name__})") from None
    if not args.quiet:
        print(f"Validation de {path.name} : exécution complète dans un noyau neuf (le fichier n'est pas modifié)…", flush=True)
    try:
        rep = validate(path, args.timeout, args.quiet)
    except Exception as exc:  # noqa: BLE001 - kernel death, missing kernel: one line for the student
        print(f"course validate: le notebook n'a pas pu s'exécuter jusqu'au bout ({type(exc).__name__}: {exc})".splitlines()[0], file=sys.stderr)
        return 1
    if rep.question == 0:
        print(f"Aucune cellule notée dans {path.name}.")
        return 0
    tail = " Les tests cachés s'ajoutent à la notation : ce total est indicatif."
    print(f"{'' if args.quiet else chr(10)}Total provisoire : {rep.earned:g} / {rep.total:g} points ({rep.question} question(s)).{'' if args.quiet else tail}")
    return 0
