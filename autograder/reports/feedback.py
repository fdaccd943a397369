"""Student feedback without hidden tests: an nbgrader preprocessor and a leak audit.

nbgrader's ``generate_feedback`` renders the autograded notebook, whose graded test cells were
restored from the gradebook with their hidden tests (nbgrader issues #917, #1363). Put
:class:`HideHiddenTests` first in ``GenerateFeedback.preprocessors`` and each locked cell shows
its release version instead (the hidden part stripped), outputs lose any line that quotes a
hidden line and tracebacks of graded cells shrink to their last line. Solution cells keep the
student's own code and every check's message stays: that is the feedback.

:func:`leaks` is the audit `course feedback` runs on every HTML file before publishing it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List, Unicode

#: Regions of a source cell that students never see (nbgrader's delimiters).
HIDDEN_REGIONS = (("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"), ("BEGIN MARK SCHEME", "END MARK SCHEME"))
#: Lines shorter than this (``)``, ``else:``…) are too common to be told apart from others.
MIN_LINE = 12
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def hidden_region_lines(source: str, regions=HIDDEN_REGIONS) -> list[str]:
    """Stripped lines of ``source`` inside hidden regions, long enough to be recognisable."""
    lines: list[str] = []
    inside = False
    for line in source.splitlines():
        if any(begin in line for begin, _ in regions):
            inside = True
            continue
        if any(end in line for _, end in regions):
            inside = False
            continue
        stripped = line.strip()
        if inside and len(stripped) >= MIN_LINE and not stripped.startswith("#"):
            lines.append(stripped)
    return lines


def strip_hidden_regions(source: str, regions=HIDDEN_REGIONS) -> str:
    """``source`` without its hidden regions (delimiter lines included), like the release."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        if any(begin in line for begin, _ in regions):
            inside = True
        elif any(end in line for _, end in regions):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _is_locked(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("locked") or (meta.get("grade") and not meta.get("solution")))


def _scrub(text: str, hidden: list[str]) -> str:
    if not hidden or not text:
        return text
    kept = [ln for ln in text.splitlines(keepends=True) if not any(h in _ANSI.sub("", ln) for h in hidden)]
    return "".join(kept)


def sanitize_notebook(nb, release_nb=None, regions=HIDDEN_REGIONS):
    """Make an autograded notebook (a NotebookNode, changed in place) safe to show its student.

    Args:
        nb: the autograded notebook.
        release_nb: the release notebook of the same name, if available: locked cells then take
            its source, matched by ``grade_id``; otherwise hidden regions are cut out.
        regions: (begin, end) delimiter pairs of what students never see.
    """
    release_sources = {}
    if release_nb is not None:
        for cell in release_nb.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid:
                release_sources[gid] = cell.source
    hidden: list[str] = []
    for cell in nb.cells:
        hidden += hidden_region_lines(cell.source, regions)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if _is_locked(cell):
            gid = meta.get("grade_id")
            released = release_sources.get(gid)
            cell.source = released if released is not None else strip_hidden_regions(cell.source, regions)
        if cell.cell_type != "code":
            continue
        graded = bool(meta.get("grade"))
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                out["text"] = _scrub(out.get("text", ""), hidden)
            elif kind == "error":
                out["evalue"] = _scrub(str(out.get("evalue", "")), hidden)
                if graded:  # a graded cell's traceback quotes the cell, hidden part included
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out['evalue']}"]
                else:
                    out["traceback"] = [_scrub(t, hidden) for t in out.get("traceback", [])]
            elif kind in ("execute_result", "display_data"):
                data = out.get("data", {})
                for mime, value in list(data.items()):
                    if isinstance(value, str):
                        data[mime] = _scrub(value, hidden)
                    elif isinstance(value, list):
                        data[mime] = _scrub("".join(value), hidden)
    return nb


class HideHiddenTests(NbGraderPreprocessor):
    """Show students the release version of locked cells in feedback (nbgrader #917).

    For ``GenerateFeedback.preprocessors``, before ``GetGrades``::

        c.GenerateFeedback.preprocessors = [
            "autograder.reports.feedback.HideHiddenTests",
            "nbgrader.preprocessors.GetGrades",
            "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        ]
    """

    release_directory = Unicode(
        "release",
        help="Folder (relative to the course root, the working directory during conversion) "
        "holding release/<assignment>/<notebook>.ipynb; when a notebook is not there, hidden "
        "regions are cut out of the autograded cells instead.",
    ).tag(config=True)

    regions = List(
        [list(r) for r in HIDDEN_REGIONS],
        help="(begin, end) delimiter pairs of the regions students never see.",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        import nbformat

        info = resources.get("nbgrader", {})
        release_nb = None
        path = Path(self.release_directory) / str(info.get("assignment", "")) / f"{info.get('notebook', '')}.ipynb"
        if info.get("assignment") and path.is_file():
            release_nb = nbformat.read(str(path), as_version=4)
        sanitize_notebook(nb, release_nb, tuple(tuple(r) for r in self.regions))
        return nb, resources


def html_text(page: str) -> str:
    """Visible text of an HTML page (tags removed, entities decoded): what a reader sees.

    Syntax highlighting splits code into ``<span>`` tokens; searching the text, not the markup,
    finds a quoted line whatever its highlighting.
    """
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", page)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def leaks(page: str, hidden: list[str]) -> list[str]:
    """The hidden lines that can be read in ``page`` (HTML)."""
    text = html_text(page)
    return [line for line in hidden if line in text]


def gradebook_hidden_lines(url: str, assignment: str) -> dict[str, list[str]]:
    """``{notebook: hidden lines}`` from the source cells nbgrader stored in the gradebook."""
    from nbgrader.api import Gradebook

    out: dict[str, list[str]] = {}
    with Gradebook(url) as gb:
        for nb in gb.find_assignment(assignment).notebooks:
            lines: list[str] = []
            for cell in nb.source_cells:
                lines += hidden_region_lines(cell.source or "")
            out[nb.name] = lines
    return out


def notebook_hidden_lines(source_nb: Path) -> list[str]:
    """Hidden lines of a source notebook file."""
    nb = json.loads(Path(source_nb).read_text(encoding="utf-8"))
    lines: list[str] = []
    for cell in nb.get("cells", []):
        lines += hidden_region_lines("".join(cell.get("source", "")))
    return lines
