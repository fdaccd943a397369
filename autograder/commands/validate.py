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

from autograder.feedback import FEEDBACK_HEADER, fr_number
from autograder.student_setup import SETUP_CELL_ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", type=Path, help="le notebook à vérifier (.ipynb)")
    parser.add_argument("--timeout", type=int, default=300, help="secondes permises par cellule (300 par défaut)")
    parser.add_argument("--quiet", action="store_true", help="n'afficher que le total")


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _stderr(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr")


def _errors(cell) -> list[tuple[str, str]]:
    return [(o.get("ename", ""), o.get("evalue", "")) for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _sections(nb) -> list[str | None]:
    """For each cell, the title of the section it sits in (the last `#` or `##` heading above it)."""
    titles: list[str | None] = []
    title = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith(("# ", "## ")):
                    title = line.lstrip("#").strip() or title
        titles.append(title)
    return titles


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
        self.sections = _sections(nb)

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text, flush=True)

    def on_cell_executed(self, cell, cell_index: int, execute_reply=None, **_) -> None:
        meta = cell.metadata.get("nbgrader", {})
        errors = _errors(cell)
        if cell.cell_type != "code":
            return
        if not meta.get("grade"):
            if cell.get("id") == SETUP_CELL_ID:  # the setup cell: what is missing, if anything
                for line in _stdout(cell).rstrip().splitlines():
                    self.say(f"  {line}")
            section = self.sections[cell_index] if cell_index < len(self.sections) else None
            where = f"section « {section} »" if section else "début du notebook"
            for ename, evalue in errors:
                if ename == "NotImplementedError":
                    self.not_written += 1
                    self.say(f"  ({where} : une cellule appelle une fonction pas encore écrite — NotImplementedError)")
                else:
                    self.say(f"  ⚠ {where}, une cellule s'est arrêtée sur une erreur : {ename}: {evalue}")
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
        self.say(f"\nQuestion {self.question} — cellule {meta.get('grade_id', cell_index + 1)} : {fr_number(score)} / {fr_number(points)}")
        for line in feedback.splitlines():
            self.say(f"  {line}")
        self.say(f"  → cumul : {fr_number(self.earned)} / {fr_number(self.seen)} (sur {fr_number(self.total)} au total)")


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
        hint = _in_french(suggest(path.name, nearby))
        raise usage_error(f"{args.notebook} n'existe pas{hint}")
    if path.suffix != ".ipynb":
        raise usage_error(f"{args.notebook} n'est pas un notebook (il faut un fichier .ipynb)")
    try:
        import nbclient  # noqa: F401
        import nbformat
    except ImportError:
        raise usage_error(
            "il faut nbclient et ipykernel pour exécuter le notebook : pip install 'cnn-course[student]'"
        ) from None
    try:
        nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same answer to a student
        raise usage_error(
            f"{args.notebook} ne peut pas être lu comme un notebook : fichier abîmé ou qui n'est pas "
            f"un notebook Jupyter ({type(exc).__name__}). Reprenez votre dernière version enregistrée."
        ) from None
    if not args.quiet:
        print(f"Validation de {path.name} : exécution complète dans un noyau neuf (le fichier n'est pas modifié)…", flush=True)
    try:
        rep = validate(path, args.timeout, args.quiet)
    except Exception as exc:  # noqa: BLE001 - kernel death, missing kernel: one line for the student
        print(f"course validate: le notebook n'a pas pu s'exécuter jusqu'au bout : {_run_failure(exc)}", file=sys.stderr)
        return 1
    if rep.question == 0:
        print(f"Aucune cellule notée dans {path.name}.")
        return 0
    tail = " Les tests cachés s'ajoutent à la notation : ce total est indicatif."
    print(f"{'' if args.quiet else chr(10)}Total provisoire : {fr_number(rep.earned)} / {fr_number(rep.total)} points ({rep.question} question(s)).{'' if args.quiet else tail}")
    return 0


def _in_french(hint: str) -> str:
    """The CLI's `` (did you mean X?)`` as a student reads it."""
    prefix = " (did you mean "
    if hint.startswith(prefix) and hint.endswith("?)"):
        return f" (vouliez-vous dire {hint[len(prefix):-2]} ?)"
    return hint


def _run_failure(exc: BaseException) -> str:
    """Why the notebook could not run to its end, in French (the exception's name for the staff)."""
    name = type(exc).__name__
    if name == "NoSuchKernel":
        return ("le noyau Jupyter que demande le notebook n'est pas installé ici "
                "(pip install ipykernel, ou choisissez un autre noyau dans JupyterLab) (NoSuchKernel).")
    if name == "DeadKernelError":
        return ("le noyau s'est arrêté en cours de route (mémoire épuisée, plantage, `os._exit`…) : "
                "relancez le notebook cellule par cellule pour trouver laquelle (DeadKernelError).")
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return f"le noyau n'a pas répondu à temps ({name})."
    return f"erreur inattendue ({name})."
