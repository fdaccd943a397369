"""Hardened nbgrader preprocessors, registered in nbgrader_config.py.

- :class:`StripExecutionControls` (sanitize pass): a submission's cell metadata and tags can
  steer nbclient (``skip-execution`` leaves a test cell without output, which nbgrader scores as
  full marks; ``raises-exception`` changes error handling). Only nbgrader's own metadata is kept.
- :class:`RestoreCellPositions` (sanitize pass): deleted or moved test cells (and other locked
  cells) go back to their release position (:mod:`autograder.grading.cell_order`); the grade
  pass notes it on each such test cell (``RESTORED_PREFIX``).
- :class:`GuardedExecute` (grade pass, replaces nbgrader's ``Execute``): runs the guard before
  each graded test cell, verifies after it that the one score shown is the one the check library
  computed, survives kernel deaths and stuck kernels (restart, replay the ungraded cells before,
  go on), and caps output size. A placeholder for an unreadable submission
  (:mod:`autograder.grading.submissions`) is not run: every test cell gets 0 with the reason.
  Each notebook runs in a kernel started while the previous one ran
  (:mod:`autograder.grading.kernel_pool`, ``prestart_kernel``).
"""

from __future__ import annotations

import ast
import contextlib
import typing as t
from pathlib import Path

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors.execute import Execute
from traitlets import Bool, Integer

from autograder.grading import cell_order
from autograder.grading.submissions import unreadable_reason

GUARD_MODULE = "autograder.grading.guard"
#: ename of the error output that zeroes a cell, so reports can find every such decision.
GUARD_ENAME = "CourseGuardError"
FLAG_PREFIX = "⚠ Signalé pour relecture"
#: Start of the stdout note (never scored) on a test cell that grading put back at its release
#: position because the student deleted or moved it; reports and the ledger look for it.
RESTORED_PREFIX = "⚠ Cellule de test restaurée"


def is_graded_test(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def zero_cell(cell: NotebookNode, reason: str) -> None:
    """Put an error output first: nbgrader scores a cell 0 when it meets an error before any
    ``execute_result`` (it stops at the first of the two), and the reason is shown."""
    cell.outputs.insert(
        0, NotebookNode(output_type="error", ename=GUARD_ENAME, evalue=reason, traceback=[f"{GUARD_ENAME}: {reason}"])
    )


def flag_cell(cell: NotebookNode, findings: list[str]) -> None:
    """A stdout note (never scored) listing what was neutralised, for a human to review."""
    text = f"{FLAG_PREFIX} : " + " ; ".join(findings) + "\n"
    cell.outputs.append(NotebookNode(output_type="stream", name="stdout", text=text))


def gradebook_cells(resources: dict) -> dict[str, dict] | None:
    """What the gradebook holds of each released cell of the notebook being converted.

    ``{grade_id: {grade, solution, task, locked, points, cell_type, source, checksum}}`` in the
    gradebook's row order; None when the gradebook does not know the notebook.
    """
    info = resources.get("nbgrader", {})
    if not info.get("db_url"):
        return None
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            grades = {c.name: c.max_score for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name for c in notebook.task_cells}
            return {
                c.name: {
                    "grade": c.name in grades,
                    "solution": c.name in solutions,
                    "task": c.name in tasks,
                    "locked": bool(c.locked),
                    "points": grades.get(c.name),
                    "cell_type": c.cell_type,
                    "source": c.source or "",
                    "checksum": c.checksum,
                }
                for c in notebook.source_cells
            }
    except MissingEntry:
        return None


class StripExecutionControls(NbGraderPreprocessor):
    """Keep only what grading trusts in a submission's metadata.

    - every cell metadata key but ``nbgrader`` is dropped (tags such as ``skip-execution``,
      ``jupyter``, ``execution``…) and notebook metadata is reduced to kernelspec/language;
    - each cell's nbgrader flags (grade, solution, locked, points, task) are reset to the
      gradebook's values for its ``grade_id``: flipping ``grade`` to false on a test cell would
      otherwise make nbgrader fail the whole submission ("Inconsistent checksums"), and raising
      ``points`` would change the maximum; nbgrader metadata with a ``grade_id`` the gradebook
      does not know (a forged test cell) is removed, so the cell runs as plain code.
    """

    keep_notebook_keys = ("kernelspec", "language_info")

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        for key in list(nb.metadata):
            if key not in self.keep_notebook_keys:
                del nb.metadata[key]
        self._truth = gradebook_cells(resources)
        self._seen: set[str] = set()
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        meta = cell.metadata.get("nbgrader")
        cell.metadata = NotebookNode({"nbgrader": meta} if meta is not None else {})
        if meta is None:
            return cell, resources
        # A copied graded cell: only the first keeps its nbgrader identity (nbgrader's own
        # DeduplicateIds would leave `{}`, on which OverwriteCells fails the whole notebook).
        grade_id = meta.get("grade_id")
        if grade_id in self._seen:
            self.log.warning("Removing nbgrader metadata of duplicated cell %r", grade_id)
            del cell.metadata["nbgrader"]
            return cell, resources
        self._seen.add(grade_id)
        if self._truth is None:
            return cell, resources
        truth = self._truth.get(meta.get("grade_id"))
        if truth is None:
            if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
                self.log.warning("Removing nbgrader metadata of unknown cell %r", meta.get("grade_id"))
            del cell.metadata["nbgrader"]
            return cell, resources
        for key in ("grade", "solution", "locked", "task"):
            if bool(meta.get(key, False)) != truth[key]:
                self.log.warning("Cell %s: restoring nbgrader flag %r", meta["grade_id"], key)
            meta[key] = truth[key]
        if truth["grade"]:
            meta["points"] = truth["points"]
        else:
            meta.pop("points", None)
        return cell, resources


def _course_directory(config: t.Any) -> t.Any:
    """The CourseDirectory of the running nbgrader app (its command line included)."""
    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.coursedir import CourseDirectory

    if AutogradeApp.initialized():
        return AutogradeApp.instance().coursedir
    return CourseDirectory(config=config)


class RestoreCellPositions(NbGraderPreprocessor):
    """Deleted or moved graded/locked cells back at their release position (sanitize pass).

    Replaces nbgrader's ``OverwriteCells.add_missing_cells`` (off in nbgrader_config.py), which
    places a deleted test cell by the gradebook's row order and leaves a moved one where it is:
    see :mod:`autograder.grading.cell_order`. Runs after ``OverwriteCells`` (a moved locked
    cell has its released source back by then); the order comes from the release notebook, else
    the source notebook, else the gradebook.
    """

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        source = gradebook_cells(resources)
        if source is None:
            return nb, resources
        fixed = {g for g, c in source.items() if (c["locked"] or c["task"] or c["grade"]) and not c["solution"]}
        restorable = fixed | {g for g, c in source.items() if c["grade"] and c["solution"]}

        def make_cell(gid: str) -> NotebookNode:
            c = source[gid]
            meta = {"grade_id": gid, "grade": c["grade"], "solution": c["solution"], "locked": c["locked"],
                    "task": c["task"], "schema_version": 3, "checksum": c["checksum"]}
            if c["grade"]:
                meta["points"] = c["points"]
            make = nbformat.v4.new_code_cell if c["cell_type"] == "code" else nbformat.v4.new_markdown_cell
            return make(c["source"], metadata={"nbgrader": meta})

        info = resources["nbgrader"]
        coursedir = _course_directory(self.config)
        assignment, name = info["assignment"], info["notebook"]
        candidates = [
            Path(coursedir.format_path(step, ".", assignment)) / f"{name}.ipynb"
            for step in (coursedir.release_directory, coursedir.source_directory)
        ]
        order = cell_order.release_order(candidates, list(source))
        placed = cell_order.place_cells(nb, order, fixed, restorable, make_cell)
        for gid, how in placed.items():
            self.log.warning("Cell %s %s: put back at its release position", gid,
                             "missing from the submission" if how == "missing" else "moved by the student")
        return nb, resources


#: What the note on a placed test cell says, by what the student did to it.
RESTORED_NOTE = {
    "missing": "cette cellule manquait dans votre rendu ; elle a été remise à sa place d'origine et "
               "corrigée normalement. Ne supprimez pas les cellules de test.",
    "moved": "cette cellule avait été déplacée ; elle a été exécutée à sa place d'origine et "
             "corrigée normalement. Ne déplacez pas les cellules de test.",
}


def note_restored(cell: NotebookNode) -> None:
    """The stdout note (never scored) on a graded cell that :class:`RestoreCellPositions` placed."""
    how = cell_order.restored(cell)
    if how is not None and is_graded_test(cell):
        cell.outputs.append(
            NotebookNode(output_type="stream", name="stdout", text=f"{RESTORED_PREFIX} : {RESTORED_NOTE[how]}\n")
        )


class GuardedExecute(Execute):
    """nbgrader's Execute with the course's guard, output checks and kernel-death recovery."""

    guard = Bool(True, help="Run the in-kernel guard around graded test cells.").tag(config=True)
    max_output_chars = Integer(
        200_000, help="Longest text kept from one output of a cell; the rest is cut (output bombs)."
    ).tag(config=True)
    max_image_chars = Integer(
        4_000_000,
        help="Largest base64 image (PNG, JPEG…) kept in one output; a larger one is replaced by a "
        "note (a cut image is a broken one).",
    ).tag(config=True)
    prestart_kernel = Bool(
        True,
        help="Start the next notebook's kernel while this one runs (autograder.grading.kernel_pool).",
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: t.Any = None, km: t.Any = None):
        self._course_dead: str | None = None
        self._course_replay: list[str] = []
        unreadable = unreadable_reason(nb)
        if unreadable is not None:
            # The submitted file could not be read (submissions.SubmissionExporter): the graded
            # cells are the gradebook's, put back by RestoreCellPositions; nothing to run.
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
                    if is_graded_test(cell):
                        zero_cell(cell, f"Rendu illisible : {unreadable}")
            return nb, resources
        if km is not None or not self.prestart_kernel or not self.kernel_name:
            return super().preprocess(nb, resources, km)
        from autograder.grading import kernel_pool

        extra = list(self.extra_arguments)
        if self.ipython_hist_file and not any(a.startswith("--HistoryManager.hist_file") for a in extra):
            extra.append(f"--HistoryManager.hist_file={self.ipython_hist_file}")
        key = kernel_pool.launch_key(self.kernel_name, extra, self.kernel_manager_class)
        kernel = kernel_pool.take(self._course_kernel_manager, extra, key)
        try:
            path = (resources or {}).get("metadata", {}).get("path")
            if path:
                kernel_pool.stage(Path(path), kernel.workdir)
            return super().preprocess(nb, resources, kernel.km)
        finally:
            if self.kc is not None:
                with contextlib.suppress(Exception):
                    self.kc.stop_channels()
            kernel.discard()

    def _course_kernel_manager(self) -> t.Any:
        return self.kernel_manager_class(kernel_name=self.kernel_name, config=self.config)

    # -- guard calls ----------------------------------------------------------------------

    def _guard(self, expression: str) -> t.Any:
        """Evaluate ``guard.<expression>`` through user_expressions (no input transformers)."""
        assert self.kc is not None
        msg_id = self.kc.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={"r": f"__import__('{GUARD_MODULE}', fromlist=['_']).{expression}"},
        )
        reply = self.wait_for_reply(msg_id)
        result = (reply or {}).get("content", {}).get("user_expressions", {}).get("r", {})
        if result.get("status") != "ok":
            self.log.warning("Course guard %s failed: %s: %s", expression, result.get("ename"), result.get("evalue"))
            return None
        try:
            return ast.literal_eval(result["data"]["text/plain"])
        except (KeyError, ValueError, SyntaxError) as exc:
            self.log.warning("Course guard %s returned an unreadable value (%s)", expression, exc)
            return None

    # -- cells ----------------------------------------------------------------------------

    def preprocess_cell(self, cell: NotebookNode, resources: t.Any, index: int):
        if cell.cell_type != "code":
            return cell, resources
        if self._course_dead is not None:
            cell.outputs = []
            if is_graded_test(cell):
                zero_cell(cell, f"Cellule non exécutée : {self._course_dead}")
            note_restored(cell)
            return cell, resources
        graded = is_graded_test(cell) and self.guard
        findings: dict[str, list[str]] | None = {}
        try:
            if graded:
                findings = self._guard("before_test_cell()")
            cell, resources = super().preprocess_cell(cell, resources, index)
        except Exception as exc:  # noqa: BLE001 - dead/stuck kernel, broken channel (fork bomb)
            died = isinstance(exc, DeadKernelError)
            reason = (
                "le noyau Python s'est arrêté pendant cette cellule (mémoire épuisée, `os._exit`, "
                "plantage ou limite de ressources atteinte)"
                if died
                else f"le noyau ne répond plus ({type(exc).__name__})"
            )
            zero_cell(cell, reason[0].upper() + reason[1:] + ".")
            note_restored(cell)
            self._recover(reason)
            return cell, resources
        self._cap_outputs(cell)
        if graded:
            self._verify(cell, findings)
        elif cell.source.strip():
            self._course_replay.append(cell.source)
        note_restored(cell)
        return cell, resources

    def _cap_outputs(self, cell: NotebookNode) -> None:
        limit = self.max_output_chars
        for out in cell.outputs:
            if out.get("output_type") == "stream" and len(out.get("text", "")) > limit:
                out["text"] = out["text"][:limit] + f"\n… [sortie coupée à {limit} caractères]\n"
            data = out.get("data", {})
            for mime, value in list(data.items()):
                if not isinstance(value, str):
                    continue
                if mime.startswith("image/") and mime != "image/svg+xml":
                    # base64: cut, it would no longer decode; whole, or not at all.
                    if len(value) > self.max_image_chars:
                        del data[mime]
                        data["text/plain"] = (
                            f"[image de {len(value) * 3 // 4 // 1024} Kio retirée : au-delà de "
                            f"{self.max_image_chars * 3 // 4 // 1024} Kio]"
                        )
                elif len(value) > limit:
                    data[mime] = value[:limit] + "…"

    def _verify(self, cell: NotebookNode, findings: dict[str, list[str]] | None) -> None:
        """Zero the cell unless it shows exactly the score the check library computed."""
        after = self._guard("after_test_cell()")
        if not isinstance(findings, dict) or not isinstance(after, dict):
            zero_cell(cell, "la garde de correction n'a pas pu s'exécuter avant ou après cette cellule")
            return
        scores = after.get("scores", [])
        neutralised, blocking = findings.get("neutralised", []), findings.get("blocking", [])
        # Whatever changed *during* the checks was done by the student's code while it was
        # being graded: the cell cannot be trusted.
        blocking = blocking + [f"pendant les vérifications : {f}" for f in after.get("tampered", [])]
        if neutralised or blocking:
            flag_cell(cell, neutralised + blocking)
        if blocking:
            zero_cell(cell, "environnement de correction modifié et non restaurable : " + " ; ".join(blocking))
            return
        if any(o.output_type == "error" for o in cell.outputs):
            return  # nbgrader gives 0 already
        shown = [o for o in cell.outputs if o.output_type == "execute_result"]
        texts = [o.get("data", {}).get("text/plain", "") for o in shown]
        if len(shown) != 1 or not scores:
            zero_cell(
                cell,
                f"sortie de score inattendue ({len(shown)} résultat(s) affiché(s), "
                f"{len(scores)} score(s) calculé(s)) : possible falsification",
            )
            return
        if texts[0].strip() != repr(float(scores[-1][1])):
            zero_cell(cell, "le score affiché diffère du score calculé par les vérifications : possible falsification")

    def _recover(self, reason: str) -> None:
        """Restart the kernel and replay the ungraded cells run so far; else stop here."""
        try:
            assert self.km is not None
            if self.kc is not None:
                self.kc.stop_channels()
            run_sync(self.km.restart_kernel)(now=True)
            run_sync(self.async_start_new_kernel_client)()
            for source in self._course_replay:
                msg_id = self.kc.execute(source, silent=True, store_history=False)
                self.wait_for_reply(msg_id)
        except Exception as exc:  # noqa: BLE001 - anything here means: no more execution
            self._course_dead = f"{reason} ; redémarrage impossible ({type(exc).__name__})"
