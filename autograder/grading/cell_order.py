"""Put graded and locked cells back at their release position before a submission runs.

A student may delete a test cell (``dd`` in Jupyter) or move it. nbgrader's own repair,
``OverwriteCells.add_missing_cells``, re-inserts a deleted test cell after the cell that preceded
it in the gradebook's *row order*, which is not the notebook's order: SQL gives no order without
``ORDER BY``, and ``course grade``'s template gradebook holds its cells sorted by name. A cell put
back before the function it tests fails with a ``NameError``, and a moved test cell runs wherever
the student left it. Either way correct work loses its points.

:func:`place_cells` instead follows the order of the release notebook (what the student
received; the source notebook or the gradebook when there is none):

- *anchors* are the cells the student owns and that stay where the student put them (solution
  cells, including manually graded answers);
- *fixed* cells are those grading owns (locked cells: graded test cells, read-only code or
  markdown, tasks). One that sits between the anchors that surround it in the release is left
  where it is (the student may have added cells it needs in between); one outside that span is
  moved, and a missing one is rebuilt from the gradebook, both placed just before the next cell
  of the release that follows it in the submission (so after whatever the student added after
  the preceding cell), or right after the preceding one when the student reordered their cells.

The placed cells carry ``metadata.course.restored`` (``"missing"`` or ``"moved"``); the grade pass
(:class:`autograder.grading.preprocessors.GuardedExecute`) turns it into a note on the cell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

#: Key of the course's own cell metadata (sanitising drops any such key a submission carries).
COURSE_KEY = "course"


def grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def notebook_order(path: Path) -> list[str] | None:
    """The grade_ids of the notebook at ``path`` in cell order; None when it cannot be read."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return None
    out = []
    for cell in cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") if isinstance(cell, dict) else None
        if isinstance(gid, str) and gid not in out:
            out.append(gid)
    return out


def release_order(candidates: Iterable[Path], known: list[str]) -> list[str]:
    """The order of ``known`` grade_ids as in the first readable notebook of ``candidates``.

    Ids the notebook lacks keep their relative order from ``known`` and go after the cell
    that precedes them there (the gradebook's order: nbgrader's own guess).
    """
    order: list[str] | None = None
    for path in candidates:
        order = notebook_order(path)
        if order:
            break
    if not order:
        return list(known)
    wanted = set(known)
    result = [gid for gid in order if gid in wanted]
    for i, gid in enumerate(known):
        if gid in result:
            continue
        before = next((known[j] for j in range(i - 1, -1, -1) if known[j] in result), None)
        result.insert(0 if before is None else result.index(before) + 1, gid)
    return result


def place_cells(
    nb: NotebookNode,
    order: list[str],
    fixed: set[str],
    restorable: set[str],
    make_cell: Callable[[str], NotebookNode],
) -> dict[str, str]:
    """Move and restore the cells of ``nb`` to their release positions, in place.

    Args:
        nb: the submitted notebook (after sanitising: one cell per grade_id at most).
        order: every grade_id of the release, in release order.
        fixed: the grade_ids grading owns (locked cells), moved back when out of place.
        restorable: the grade_ids rebuilt with ``make_cell`` when missing (fixed cells and
            manually graded answers; a missing plain solution cell is the student's choice).
        make_cell: builds the released cell of a grade_id (from the gradebook).

    Returns:
        ``{grade_id: "missing" | "moved"}`` for every cell placed.
    """
    rank = {gid: i for i, gid in enumerate(order)}
    positions = {gid: i for i, cell in enumerate(nb.cells) if (gid := grade_id(cell)) in rank}
    anchors = [gid for gid in order if gid not in fixed and gid in positions]

    def surrounding(gid: str, present: Iterable[str]) -> tuple[str | None, str | None]:
        before = after = None
        for other in present:
            if rank[other] < rank[gid]:
                before = other
            elif rank[other] > rank[gid] and after is None:
                after = other
        return before, after

    placed: dict[str, str] = {}
    for gid in order:
        if gid not in fixed or gid not in positions:
            continue
        before, after = surrounding(gid, anchors)
        pos = positions[gid]
        low = positions[before] if before is not None else -1
        high = positions[after] if after is not None else len(nb.cells)
        if not (low < pos and (pos < high or high < low)):
            placed[gid] = "moved"
    for gid in order:
        if gid not in positions and gid in restorable:
            placed[gid] = "missing"
    if not placed:
        return {}

    moved = {grade_id(c): c for c in nb.cells if placed.get(grade_id(c)) == "moved"}
    nb.cells = [c for c in nb.cells if placed.get(grade_id(c)) != "moved"]
    for gid in order:
        if gid not in placed:
            continue
        cell = moved.get(gid) or make_cell(gid)
        cell.setdefault("metadata", NotebookNode()).setdefault(COURSE_KEY, NotebookNode())["restored"] = placed[gid]
        now = {g: i for i, c in enumerate(nb.cells) if (g := grade_id(c)) in rank}
        before, after = surrounding(gid, sorted(now, key=rank.__getitem__))
        low = now[before] if before is not None else -1
        high = now[after] if after is not None else len(nb.cells)
        nb.cells.insert(high if high > low else low + 1, cell)
    return placed


def restored(cell: NotebookNode) -> str | None:
    """``"missing"``/``"moved"`` for a cell :func:`place_cells` placed, else None."""
    value: Any = cell.get("metadata", {}).get(COURSE_KEY, {}).get("restored")
    return value if value in ("missing", "moved") else None
