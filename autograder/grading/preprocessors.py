"""Hardened nbgrader preprocessors, registered in nbgrader_config.py.

- :class:`StripExecutionControls` (sanitize pass): a submission's cell metadata and tags can
  steer nbclient (``skip-execution`` leaves a test cell without output, which nbgrader scores as
  full marks; ``raises-exception`` changes error handling). Only nbgrader's own metadata is kept.
- :class:`GuardedExecute` (grade pass, replaces nbgrader's ``Execute``): runs the guard before
  each graded test cell, verifies after it that the one score shown is the one the check library
  computed, survives kernel deaths and stuck kernels (restart, replay the ungraded cells before,
  go on), and caps output size.
"""

from __future__ import annotations

import ast
import typing as t

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors.execute import Execute
from traitlets import Bool, Integer

GUARD_MODULE = "autograder.grading.guard"
#: ename of the error output that zeroes a cell, so reports can find every such decision.
GUARD_ENAME = "CourseGuardError"
FLAG_PREFIX = "⚠ Signalé pour relecture"


def is_graded_test(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def zero_cell(cell: NotebookNode, reason: str) -> None:
    """Append an error output: nbgrader scores a cell with an error 0, and shows the reason."""
    cell.outputs.append(
        NotebookNode(output_type="error", ename=GUARD_ENAME, evalue=reason, traceback=[f"{GUARD_ENAME}: {reason}"])
    )


def flag_cell(cell: NotebookNode, findings: list[str]) -> None:
    """A stdout note (never scored) listing what was neutralised, for a human to review."""
    text = f"{FLAG_PREFIX} : " + " ; ".join(findings) + "\n"
    cell.outputs.append(NotebookNode(output_type="stream", name="stdout", text=text))


class StripExecutionControls(NbGraderPreprocessor):
    """Drop every cell metadata key but ``nbgrader`` (tags, ``jupyter``, ``execution``…)."""

    keep_notebook_keys = ("kernelspec", "language_info", "nbgrader")

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        for key in list(nb.metadata):
            if key not in self.keep_notebook_keys:
                del nb.metadata[key]
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        nbgrader_meta = cell.metadata.get("nbgrader")
        cell.metadata = NotebookNode({"nbgrader": nbgrader_meta} if nbgrader_meta is not None else {})
        return cell, resources


class GuardedExecute(Execute):
    """nbgrader's Execute with the course's guard, output checks and kernel-death recovery."""

    guard = Bool(True, help="Run the in-kernel guard around graded test cells.").tag(config=True)
    max_output_chars = Integer(
        200_000, help="Longest text kept from one output of a cell; the rest is cut (output bombs)."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: t.Any = None, km: t.Any = None):
        self._course_dead: str | None = None
        self._course_replay: list[str] = []
        return super().preprocess(nb, resources, km)

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
            return None
        try:
            return ast.literal_eval(result["data"]["text/plain"])
        except (KeyError, ValueError, SyntaxError):
            return None

    # -- cells ----------------------------------------------------------------------------

    def preprocess_cell(self, cell: NotebookNode, resources: t.Any, index: int):
        if cell.cell_type != "code":
            return cell, resources
        if self._course_dead is not None:
            cell.outputs = []
            if is_graded_test(cell):
                zero_cell(cell, f"Cellule non exécutée : {self._course_dead}")
            return cell, resources
        graded = is_graded_test(cell) and self.guard
        findings: dict[str, list[str]] | None = {}
        try:
            if graded:
                findings = self._guard("before_test_cell()")
            cell, resources = super().preprocess_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError, TimeoutError, RuntimeError) as exc:
            died = isinstance(exc, DeadKernelError)
            reason = (
                "le noyau Python s'est arrêté pendant cette cellule (mémoire épuisée, `os._exit`, "
                "plantage ou limite de ressources atteinte)"
                if died
                else f"le noyau ne répond plus ({type(exc).__name__})"
            )
            zero_cell(cell, reason[0].upper() + reason[1:] + ".")
            self._recover(reason)
            return cell, resources
        self._cap_outputs(cell)
        if graded:
            self._verify(cell, findings)
        elif cell.source.strip():
            self._course_replay.append(cell.source)
        return cell, resources

    def _cap_outputs(self, cell: NotebookNode) -> None:
        limit = self.max_output_chars
        for out in cell.outputs:
            if out.get("output_type") == "stream" and len(out.get("text", "")) > limit:
                out["text"] = out["text"][:limit] + f"\n… [sortie coupée à {limit} caractères]\n"
            for mime, value in list(out.get("data", {}).items()):
                if isinstance(value, str) and len(value) > limit:
                    out["data"][mime] = value[:limit] + "…"

    def _verify(self, cell: NotebookNode, findings: dict[str, list[str]] | None) -> None:
        """Zero the cell unless it shows exactly the score the check library computed."""
        scores = self._guard("after_test_cell()")
        if not isinstance(findings, dict) or not isinstance(scores, list):
            zero_cell(cell, "la garde de correction n'a pas pu s'exécuter avant ou après cette cellule")
            return
        neutralised, blocking = findings.get("neutralised", []), findings.get("blocking", [])
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
