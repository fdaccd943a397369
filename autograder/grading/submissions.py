"""Unreadable and misnamed submissions under plain ``nbgrader autograde`` (nbgrader_config.py).

nbgrader fails a whole submission when it cannot read a notebook (invalid JSON, empty file,
binary or non-UTF-8 bytes): its exporter raises before any preprocessor runs, the autograded
folder is removed and the gradebook keeps grades of ``None`` with no reason. A submission whose
only notebook has the wrong name fails the same way ("No notebooks found"). Two hooks close this
for every entry point that uses the course config (``nbgrader autograde``, ``course grade``):

- :func:`expect_assignment_notebooks` (``Autograde.pre_convert_hook``) adds the path of every
  notebook of the assignment that the submission lacks, so that nbgrader converts it too;
- :class:`SubmissionExporter` (``Autograde.exporter_class``) reads a submitted file and, when it
  is missing, too large or not a notebook, returns a *placeholder* notebook instead: a single
  marked markdown cell stating the reason (in French: the student reads it in the feedback).

The sanitize pass then restores every graded and locked cell from the gradebook, in release order
(:class:`~autograder.grading.preprocessors.RestoreCellPositions`), and :class:`~autograder.grading.preprocessors.GuardedExecute`
recognises the mark: it starts no kernel and gives each test cell 0 with the reason as its error
output. The submission ends up in the gradebook with 0 everywhere and a reason a TA can read in
the formgrader, the feedback and ``course report``; the run goes on with the next student.
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat import NotebookNode
from traitlets import Integer

#: First line of the placeholder's only cell (an HTML comment: invisible when rendered).
UNREADABLE_MARK = "<!-- course:unreadable-submission -->"
_MiB = 1 << 20


def placeholder(reason: str) -> NotebookNode:
    """The notebook graded in place of an unreadable one: the mark and the reason. The sanitize
    pass puts the assignment's graded and locked cells after it, in release order
    (:class:`autograder.grading.preprocessors.RestoreCellPositions`)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            f"{UNREADABLE_MARK}\n**Rendu illisible, non corrigé.** {reason}"
        )
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def unreadable_reason(nb: NotebookNode) -> str | None:
    """The reason stored in a placeholder notebook, None for any other notebook."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return None
    source = nb.cells[0].source
    if not source.startswith(UNREADABLE_MARK):
        return None
    return source[len(UNREADABLE_MARK):].strip().replace("**Rendu illisible, non corrigé.** ", "")


def _siblings(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.parent.iterdir() if p.suffix == ".ipynb" and p != path)
    except OSError:
        return []


def read_problem(path: Path, max_bytes: int) -> tuple[NotebookNode | None, str | None]:
    """``(notebook, None)`` when ``path`` reads as a notebook, else ``(None, reason in French)``."""
    name = f"« {path.name} »"
    if not path.exists():
        found = _siblings(path)
        also = (
            " Fichier(s) trouvé(s) à la place : " + ", ".join(f"« {f} »" for f in found) + "."
            if found
            else ""
        )
        return None, (
            f"Le fichier {name} est absent du rendu.{also} Renommez votre notebook exactement "
            f"{name} et rendez le devoir à nouveau."
        )
    size = path.stat().st_size
    if size == 0:
        return None, f"Le fichier {name} est vide (0 octet) : enregistrez le notebook avant de rendre."
    if size > max_bytes:
        return None, (
            f"Le fichier {name} pèse {size / _MiB:.0f} Mio, au-delà de la limite de "
            f"{max_bytes / _MiB:.0f} Mio (des sorties trop volumineuses ?). Effacez les sorties "
            "(Kernel > Restart Kernel and Clear Outputs), enregistrez et rendez à nouveau."
        )
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        return None, f"Le fichier {name} n'est pas un notebook : c'est un fichier binaire."
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (
            f"Le fichier {name} n'est pas encodé en UTF-8 (octet 0x{raw[exc.start]:02x} à la "
            f"position {exc.start}) : ce n'est pas un notebook enregistré par Jupyter."
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, (
            f"Le fichier {name} n'est pas un notebook Jupyter valide (JSON invalide : {exc}). "
            "Il a sans doute été tronqué ou modifié hors de Jupyter."
        )
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, f"Le fichier {name} est du JSON mais pas un notebook Jupyter (ni « cells » ni « worksheets »)."
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for odd documents
        return None, f"Le fichier {name} n'est pas un notebook lisible par Jupyter ({type(exc).__name__} : {exc})."
    return nb, None


class SubmissionExporter(NotebookExporter):
    """nbconvert's NotebookExporter that never fails on a submitted file (see module doc)."""

    max_bytes = Integer(
        100 * _MiB, help="Largest submitted notebook read; a larger one is graded 0 with a reason."
    ).tag(config=True)

    def from_filename(self, filename: str, resources: dict | None = None, **kw: t.Any):
        nb, reason = read_problem(Path(filename), self.max_bytes)
        if nb is None:
            self.log.error("Unreadable submission %s: %s", filename, reason)
            nb = placeholder(reason or "")
        resources = self._init_resources(resources)
        path = Path(filename)
        resources.setdefault("metadata", {})
        resources["metadata"].setdefault("name", path.stem)
        resources["metadata"].setdefault("path", str(path.parent))
        return self.from_notebook_node(nb, resources, **kw)


def expect_assignment_notebooks(assignment: str, student: str, notebooks: list[str]) -> None:
    """``Autograde.pre_convert_hook``: add the assignment's notebooks missing from a submission.

    nbgrader passes its own list of the submission's notebook paths: appending to it makes
    nbgrader convert (through :class:`SubmissionExporter`: a placeholder with the reason) the
    notebooks the student did not submit under their exact name.
    """
    if not notebooks:
        return
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps.autogradeapp import AutogradeApp

    if not AutogradeApp.initialized():
        return
    coursedir = AutogradeApp.instance().coursedir
    folder = Path(notebooks[0]).parent
    assignment_id = folder.name
    try:
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            names = [n.name for n in gb.find_assignment(assignment_id).notebooks]
    except MissingEntry:
        return
    present = {Path(p).stem for p in notebooks}
    for name in names:
        if name not in present:
            notebooks.append(os.path.join(str(folder), f"{name}.ipynb"))
    notebooks.sort()
