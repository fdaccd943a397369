"""Student feedback without hidden tests: an nbgrader preprocessor and a leak audit.

nbgrader's ``generate_feedback`` renders the autograded notebook, whose graded test cells were
restored from the gradebook with their hidden tests (nbgrader issues #917, #1363). Put
:class:`HideHiddenTests` first in ``GenerateFeedback.preprocessors`` and each locked cell shows
its release version instead (the hidden part stripped), outputs lose any line that quotes a
hidden line and tracebacks of graded cells shrink to their last line. Solution cells keep the
student's own code and every check's message stays: that is the feedback.

:func:`leaks` is the audit `course feedback` runs on every HTML file before publishing it.

Pages work offline: nbgrader's feedback template loads MathJax from a CDN, so without a network
a student sees raw TeX. The course's template (``templates/feedback/course_feedback.html.j2``,
selected by :func:`exporter_config`) inlines MathJax 3 from an installed package instead
(:func:`offline_mathjax`), only in pages that hold a formula. Inlined rather than copied beside
the page: ``nbgrader release_feedback`` copies each ``.html`` file alone (renamed to its hash),
so a page must carry everything it needs. MathJax 3's single-file ``tex-svg-full.js`` (every TeX
extension: nothing loaded on demand) with SVG output, which needs no web font (Chromium refuses
fonts to pages opened from disk). :func:`remote_urls` lists what a page would still fetch.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

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


# ---- Offline pages: MathJax inlined ------------------------------------------------------------

#: The course's templates; ``feedback/`` there is searched before nbgrader's ``feedback/``.
TEMPLATES = Path(__file__).with_name("templates")
#: The page template: nbgrader's feedback page with MathJax inlined.
TEMPLATE_FILE = "course_feedback.html.j2"
#: Left by ``templates/feedback/mathjax.html.j2`` where nbconvert would load MathJax from a CDN.
MATHJAX_MARKER = "<!-- course: offline MathJax -->"
#: MathJax 3 as one file: TeX input with every extension, SVG output (no web fonts to load).
MATHJAX_COMPONENT = ("mathjax", "static/mathjax/es5/tex-svg-full.js")
#: nbconvert's MathJax 2 settings (base/mathjax.html.j2) in MathJax 3's words; no context menu:
#: its speech and explorer items would load more code, from a CDN.
MATHJAX_CONFIG = """<script>
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
    displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams"
  },
  svg: {fontCache: "global"},
  options: {enableMenu: false}
};
</script>"""
_MATH = re.compile(r"\$|\\\(|\\\[|\\begin\{")
_REMOTE = re.compile(
    r"""<(?:script|link|img|iframe|source|audio|video)\b[^>]*?\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)"""
    r"""|@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"')\s]+)"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')\s]+)""",
    re.IGNORECASE,
)


def nbgrader_templates() -> Path:
    """nbgrader's template folder (``feedback/index.html.j2``, which the course's page extends)."""
    import nbgrader

    return Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"


def exporter_config() -> dict[str, Any]:
    """``HTMLExporter`` settings of offline feedback pages (also in nbgrader_config.py).

    ``extra_template_basedirs`` names nbgrader's folder too: nbgrader adds it only when the
    option is unset.
    """
    return {
        "template_name": "feedback",
        "template_file": TEMPLATE_FILE,
        "extra_template_basedirs": [str(TEMPLATES), str(nbgrader_templates())],
        "filters": {
            "course_offline_mathjax": "autograder.reports.feedback.offline_mathjax",
            "course_number": "autograder.reports.common.fr_number",
        },
    }


def has_math(nb) -> bool:
    """Whether a notebook may show a formula: TeX delimiters in a markdown cell or a text output."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown" and _MATH.search(cell.get("source", "")):
            return True
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for mime in ("text/latex", "text/markdown", "text/html"):
                value = data.get(mime, "")
                if _MATH.search(value if isinstance(value, str) else "".join(value)):
                    return True
    return False


@functools.cache
def mathjax_script() -> str:
    """MathJax's configuration and its code, as inline ``<script>`` elements.

    Raises:
        RuntimeError: the MathJax package is not installed (a page would need the network).
    """
    package, rel = MATHJAX_COMPONENT
    spec = importlib.util.find_spec(package)
    path = Path(list(spec.submodule_search_locations)[0]) / rel if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise RuntimeError(
            f"MathJax is not installed ({package}/{rel} not found): install the course's staff "
            "extra (pip install -e '.[staff]', it pins django-static-mathjax)"
        )
    code = path.read_text(encoding="utf-8")
    # Inside <script>, `</script` would end the element and `<!--` changes how the HTML parser
    # reads on; MathJax has them only in strings and regular expressions, where \x3C is `<`.
    code = code.replace("</script", "\\x3C/script").replace("<!--", "\\x3C!--")
    return f"{MATHJAX_CONFIG}\n<script>/* MathJax 3 ({rel}, Apache-2.0), inlined */\n{code}\n</script>"


def offline_mathjax(head: str, nb) -> str:
    """Jinja filter: the page head with MathJax inlined where nbconvert would load it from a CDN.

    Pages without a formula get no MathJax at all (it weighs 2.2 MB).

    Raises:
        ValueError: the marker is missing (the template no longer calls ``mathjax()``) or the
            head still names a remote URL: publish nothing rather than pages that need the network.
    """
    if MATHJAX_MARKER not in head:
        raise ValueError("feedback template: no MathJax marker in the page head (see templates/feedback/mathjax.html.j2)")
    head = head.replace(MATHJAX_MARKER, mathjax_script() if has_math(nb) else "")
    remote = remote_urls(head)
    if remote:
        raise ValueError(f"feedback template: the page head loads {remote[0]} from the network")
    return head


def remote_urls(page: str) -> list[str]:
    """URLs of scripts, stylesheets, images, frames, fonts a page would fetch from the network.

    Inline scripts are not read (MathJax's own code names URLs it never fetches here).
    """
    markup = re.sub(r"(?is)(<script\b[^>]*>).*?</script>", r"\1</script>", page)
    return [next(g for g in m.groups() if g) for m in _REMOTE.finditer(markup)]
