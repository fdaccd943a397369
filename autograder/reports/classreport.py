"""The class report: one self-contained HTML page per assignment, PNG plots beside it.

For the teaching team: how the class did on each notebook (score histograms and statistics),
which failure codes came up most (the misconceptions to address in class), how long grading
took, and which submissions need a human look (zero, ungraded, late, internal errors).
Every number comes from the gradebook or the autograded notebooks; the tables carry ``data-*``
attributes so that tests can read them back.
"""

from __future__ import annotations

import html
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from autograder.reports.gradebook import FLAGS, AssignmentData, describe

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ccc;padding:.25rem .55rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}code{font-size:.92em}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}.muted{color:#777}
.flag{background:#fff3cd}td.txt,th.txt{text-align:left}
"""


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def histogram_edges(max_score: float) -> list[float]:
    """Bins of one point up to 20 points, 20 equal bins beyond (the last bin includes the max)."""
    import numpy as np

    if max_score <= 0:
        return [0.0, 1.0]
    if max_score <= 20 and float(max_score).is_integer():
        return [float(x) for x in np.arange(0, max_score + 1)]
    return [float(x) for x in np.linspace(0, max_score, 21)]


def histogram(values: list[float], max_score: float) -> tuple[list[float], list[int]]:
    import numpy as np

    edges = histogram_edges(max_score)
    counts, _ = np.histogram(np.clip(values, 0, edges[-1]), bins=edges)
    return edges, [int(c) for c in counts]


def failure_codes(data: AssignmentData) -> list[dict]:
    """Failure codes across the class, most widespread first.

    Each entry: ``code``, ``students`` (how many students hit it), ``occurrences`` (how many
    times in all), ``cells`` (graded cells where it appeared).
    """
    students: dict[str, set[str]] = defaultdict(set)
    occurrences: Counter[str] = Counter()
    cells: dict[str, set[str]] = defaultdict(set)
    for rec in data.submissions.values():
        for nb in rec.notebooks.values():
            for cell, codes in nb.codes.items():
                for code in codes:
                    students[code].add(rec.student)
                    occurrences[code] += 1
                    cells[code].add(f"{nb.name}/{cell}")
    rows = [
        {"code": c, "students": len(students[c]), "occurrences": occurrences[c], "cells": sorted(cells[c])}
        for c in students
    ]
    return sorted(rows, key=lambda r: (-r["students"], -r["occurrences"], r["code"]))


def _plot_histogram(path: Path, values: list[float], max_score: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges, counts = histogram(values, max_score)
    fig, ax = plt.subplots(figsize=(5.2, 3.2), dpi=100)
    widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color="#4c72b0", edgecolor="white")
    ax.set_xlim(0, edges[-1])
    ax.set_xlabel("score (points)")
    ax.set_ylabel("soumissions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _plot_codes(path: Path, rows: list[dict], n_students: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[:12][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(rows) + 1.2), dpi=100)
    ax.barh([r["code"] for r in rows], [r["students"] for r in rows], color="#c44e52")
    ax.set_xlabel(f"étudiants concernés (sur {n_students})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Codes d'échec les plus fréquents", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_report(data: AssignmentData, out: Path, course: Path | None = None) -> Path:
    """Write ``index.html`` and its PNG plots into ``out`` (an existing, empty folder)."""
    e = html.escape
    graded = data.graded()
    parts: list[str] = []
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>Rapport de classe — <code>{e(data.name)}</code></h1>")
    where = f" — cours <code>{e(str(course))}</code>" if course else ""
    due = data.duedate.strftime("%Y-%m-%d %H:%M") if data.duedate else "aucune"
    parts.append(f'<p class="muted">Généré le {now}{where}. Échéance : {e(due)}.</p>')

    totals = [s.score for s in graded]
    summary = describe(totals)
    parts.append("<h2>Vue d'ensemble</h2>")
    parts.append('<table id="summary"><tr><th>indicateur</th><th>valeur</th></tr>')
    for key, label, value in (
        ("students", "étudiants inscrits (carnet de notes)", len(data.students)),
        ("submissions", "soumissions", len(data.submissions)),
        ("graded", "soumissions notées", len(graded)),
        ("max_score", "barème", data.max_score),
        ("mean", "moyenne (après pénalité de retard)", summary["mean"]),
        ("median", "médiane", summary["median"]),
        ("min", "minimum", summary["min"]),
        ("max", "maximum", summary["max"]),
    ):
        shown = _fmt(float(value)) if isinstance(value, float) else _fmt(value)
        raw = "" if value is None else f"{float(value):.12g}"
        parts.append(f'<tr data-key="{key}" data-value="{raw}"><td>{e(label)}</td><td>{shown}</td></tr>')
    parts.append("</table>")

    # ---- score distributions ---------------------------------------------------------------
    parts.append("<h2>Distribution des scores</h2><div class=\"plots\">")
    tables: list[str] = []
    series = [(nb, [s.notebooks[nb].score for s in data.submissions.values()
                    if nb in s.notebooks and s.notebooks[nb].score is not None], mx)
              for nb, mx in data.notebooks.items()]
    if len(data.notebooks) > 1 or any(s.late_penalty > 0 for s in graded):
        series.append(("__total__", totals, data.max_score))
    for name, values, max_score in series:
        label = "total du devoir, après pénalité" if name == "__total__" else f"notebook {name}, score brut"
        image = f"hist-{_slug(name)}.png"
        stats = describe(values)
        _plot_histogram(out / image, values, max_score,
                        f"{label} — n={stats['n']}, moyenne {_fmt(stats['mean'])} / {_fmt(max_score)}")
        parts.append(f'<figure><img src="{image}" alt="histogramme des scores, {e(label)}" '
                     f'width="520" height="320"><figcaption>{e(label)}</figcaption></figure>')
        edges, counts = histogram(values, max_score)
        rows = "".join(
            f'<tr data-low="{a:g}" data-high="{b:g}" data-count="{c}"><td>[{a:g}, {b:g}{"]" if i == len(counts) - 1 else "["}</td><td>{c}</td></tr>'
            for i, (a, b, c) in enumerate(zip(edges, edges[1:], counts, strict=False))
        )
        stat_cells = "".join(
            f'<td data-stat="{k}" data-value="{"" if stats[k] is None else f"{float(stats[k]):.12g}"}">{_fmt(stats[k] if k == "n" else (None if stats[k] is None else float(stats[k])))}</td>'
            for k in ("n", "mean", "median", "min", "max")
        )
        tables.append(
            f'<h3>{e(label)} (sur {_fmt(max_score)})</h3>'
            f'<table class="stats" data-notebook="{e(name)}"><tr><th>n</th><th>moyenne</th><th>médiane</th><th>min</th><th>max</th></tr><tr>{stat_cells}</tr></table>'
            f'<details><summary>effectifs par classe de score</summary><table class="histogram" data-notebook="{e(name)}">'
            f'<tr><th>score</th><th>soumissions</th></tr>{rows}</table></details>'
        )
    parts.append("</div>")
    parts.extend(tables)

    # ---- failure codes ---------------------------------------------------------------------
    codes = failure_codes(data)
    parts.append("<h2>Codes d'échec les plus fréquents</h2>")
    parts.append('<p class="muted">Une erreur partagée par beaucoup d\'étudiants est une notion à reprendre en cours. '
                 "Codes lus dans les retours des cellules de test (« Non tenté » exclu).</p>")
    if codes:
        _plot_codes(out / "codes.png", codes, len(data.submissions))
        parts.append('<div class="plots"><figure><img src="codes.png" alt="codes d\'échec les plus fréquents"></figure></div>')
        parts.append('<table id="codes"><tr><th>code</th><th>étudiants</th><th>occurrences</th><th class="txt">cellules</th></tr>')
        for r in codes:
            parts.append(
                f'<tr data-code="{e(r["code"])}" data-students="{r["students"]}" data-occurrences="{r["occurrences"]}">'
                f'<td><code>{e(r["code"])}</code></td><td>{r["students"]}</td><td>{r["occurrences"]}</td>'
                f'<td class="txt">{e(", ".join(r["cells"]))}</td></tr>'
            )
        parts.append("</table>")
    else:
        parts.append('<p id="codes-none">Aucun code d\'échec relevé.</p>')

    # ---- time to grade ---------------------------------------------------------------------
    parts.append("<h2>Temps de notation</h2>")
    timed = [(s.student, nb.name, nb.duration_s) for s in data.submissions.values()
             for nb in s.notebooks.values() if nb.duration_s is not None]
    if timed:
        parts.append('<p class="muted">Durée d\'exécution de chaque notebook pendant l\'autograde '
                     "(du début de la première cellule à la fin de la dernière, démarrage du noyau exclu).</p>")
        parts.append('<table id="timing"><tr><th>notebook</th><th>notebooks chronométrés</th><th>médiane (s)</th><th>max (s)</th><th>total (s)</th></tr>')
        for nb in data.notebooks:
            d = [t for _, name, t in timed if name == nb]
            if not d:
                continue
            st = describe(d)
            parts.append(f'<tr data-notebook="{e(nb)}" data-n="{len(d)}" data-median="{st["median"]:.3f}" data-max="{st["max"]:.3f}" data-total="{sum(d):.3f}">'
                         f'<td>{e(nb)}</td><td>{len(d)}</td><td>{st["median"]:.1f}</td><td>{st["max"]:.1f}</td><td>{sum(d):.1f}</td></tr>')
        parts.append("</table>")
        slowest = sorted(timed, key=lambda t: -t[2])[:5]
        parts.append("<p>Les plus longs : " + ", ".join(f"{e(s)}/{e(n)} ({t:.1f} s)" for s, n, t in slowest) + ".</p>")
    else:
        parts.append('<p id="timing-none">Non enregistré (aucun notebook autogradé ne porte de temps d\'exécution).</p>')

    # ---- flagged submissions ---------------------------------------------------------------
    parts.append("<h2>Soumissions signalées</h2>")
    flagged = [(s.student, s.flags) for s in sorted(data.submissions.values(), key=lambda s: s.student) if s.flags]
    flagged += [(student, ["not_in_gradebook"]) for student in data.not_in_gradebook]
    if flagged:
        parts.append('<table id="flagged"><tr><th>étudiant</th><th class="txt">motif</th></tr>')
        for student, flags in flagged:
            parts.append(f'<tr data-student="{e(student)}" data-flags="{" ".join(flags)}"><td>{e(student)}</td>'
                         f'<td class="txt">{e(" ; ".join(FLAGS[f] for f in flags))}</td></tr>')
        parts.append("</table>")
    else:
        parts.append('<p id="flagged-none">Aucune.</p>')

    # ---- all scores ------------------------------------------------------------------------
    parts.append("<h2>Toutes les soumissions</h2>")
    head = "".join(f"<th>{e(nb)} (/{_fmt(mx)})</th>" for nb, mx in data.notebooks.items())
    parts.append(f'<table id="scores"><tr><th>étudiant</th><th>rendu le</th>{head}<th>pénalité</th><th>total (/{_fmt(data.max_score)})</th></tr>')
    for s in sorted(data.submissions.values(), key=lambda s: s.student):
        when = s.timestamp.strftime("%Y-%m-%d %H:%M") if s.timestamp else "—"
        cells = ""
        for nb in data.notebooks:
            rec = s.notebooks.get(nb)
            value = None if rec is None else rec.score
            cells += f'<td data-notebook="{e(nb)}" data-score="{"" if value is None else f"{value:.12g}"}">{_fmt(value)}</td>'
        total = s.score
        cls = ' class="flag"' if s.flags else ""
        parts.append(f'<tr data-student="{e(s.student)}"{cls}><td>{e(s.student)}</td><td>{when}</td>{cells}'
                     f'<td data-penalty="{s.late_penalty:.12g}">{_fmt(s.late_penalty)}</td>'
                     f'<td class="total" data-score="{"" if total is None else f"{total:.12g}"}">{_fmt(total)}</td></tr>')
    parts.append("</table>")

    page = (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>Rapport — {e(data.name)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def index_page(entries: list[tuple[str, int, float | None]]) -> str:
    """The ``index.html`` linking the per-assignment reports: (assignment, submissions, mean)."""
    e = html.escape
    rows = "".join(
        f'<tr data-assignment="{e(name)}"><td><a href="{e(name)}/index.html">{e(name)}</a></td><td>{n}</td><td>{_fmt(mean)}</td></tr>'
        for name, n, mean in entries
    )
    page = (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>Rapports de classe</title>'
            f"<style>{CSS}</style></head><body><h1>Rapports de classe</h1>"
            f"<table><tr><th>devoir</th><th>soumissions</th><th>moyenne</th></tr>{rows}</table></body></html>\n")
    return page
