"""The class report: one self-contained HTML page per assignment, PNG plots beside it.

For the teaching team: how the class did on each notebook (score histograms and statistics)
and on each question (mean, success rate, the failure codes that came up with their French
message: what to teach again), which failure codes came up most across the assignment, how
long grading took, which submissions need a human look and why (not attempted, kernel death,
timeout, tampering, restored test cells, unreadable file, late, zero, ungraded), and a link to
each student's feedback page. Every number comes from the gradebook or the autograded
notebooks and is shown in French (« 2,25 / 3 », « 83 % »); the tables carry ``data-*``
attributes with the raw values so that tests can read them back.
"""

from __future__ import annotations

import html
import os
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from autograder.reports.common import fr_number, fr_percent
from autograder.reports.gradebook import FLAGS, AssignmentData, describe

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ccc;padding:.25rem .55rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}code{font-size:.92em}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}.muted{color:#777}
.flag{background:#fff3cd}td.txt,th.txt{text-align:left}
td ul,td ol{margin:0;padding-left:1.1rem;text-align:left}.bar{display:inline-block;height:.7rem;background:#55a868;vertical-align:middle;margin-right:.3rem}
.msg{color:#555;font-size:.9em}td.rate{white-space:nowrap}
"""
#: What « réussite » means on the page (and in :func:`question_stats`).
SUCCESS_DEFINITION = ("Réussite : part des soumissions notées qui obtiennent tous les points de la question "
                      "(une question réussie à moitié ne compte pas).")
#: Failure codes listed per question.
CODES_PER_QUESTION = 3


def _fmt(x: float | int | None, digits: int = 2) -> str:
    return fr_number(x, digits)


def _raw(x: float | int | None) -> str:
    """A number for a ``data-*`` attribute (tests read it back); empty for None."""
    return "" if x is None else f"{float(x):.12g}"


def _message(text: str) -> str:
    """A check's French message as HTML: escaped, its `names` in ``<code>`` as the student saw them."""
    parts = html.escape(text).split("`")
    if len(parts) % 2 == 0:  # an odd backtick: leave the text as it is
        return html.escape(text)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _date(when: datetime | None) -> str:
    return when.strftime("%d/%m/%Y %H:%M") if when else "—"


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
    times in all), ``cells`` (graded cells where it appeared), ``message`` (the French message
    the checks printed most often with it; messages vary with the case, e.g. shapes).
    """
    students: dict[str, set[str]] = defaultdict(set)
    occurrences: Counter[str] = Counter()
    cells: dict[str, set[str]] = defaultdict(set)
    messages: dict[str, Counter[str]] = defaultdict(Counter)
    for rec in data.submissions.values():
        for nb in rec.notebooks.values():
            for cell, codes in nb.codes.items():
                note = nb.notes.get(cell)
                for code in codes:
                    students[code].add(rec.student)
                    occurrences[code] += 1
                    cells[code].add(f"{nb.name}/{cell}")
                    if note and code in note.messages:
                        messages[code][note.messages[code]] += 1
    rows = [
        {"code": c, "students": len(students[c]), "occurrences": occurrences[c], "cells": sorted(cells[c]),
         "message": messages[c].most_common(1)[0][0] if messages[c] else ""}
        for c in students
    ]
    return sorted(rows, key=lambda r: (-r["students"], -r["occurrences"], r["code"]))


def question_stats(data: AssignmentData) -> list[dict]:
    """One entry per graded cell (question), in notebook order.

    Each entry: ``notebook``, ``question`` (grade cell name without ``-tests``), ``title`` (the
    function named in its feedback), ``max``, ``n`` (submissions with a score on it), ``mean``,
    ``success`` (share of those ``n`` with full marks, see :data:`SUCCESS_DEFINITION`), ``full``,
    ``not_attempted`` (students who left it as the stub) and ``codes`` (failure codes on this
    question, most widespread first: ``code``, ``students``, ``occurrences``, ``message``).
    """
    out = []
    for nb_name, questions in data.questions.items():
        for question, max_score in questions.items():
            scores: list[float] = []
            titles: Counter[str] = Counter()
            not_attempted = 0
            students: dict[str, set[str]] = defaultdict(set)
            occurrences: Counter[str] = Counter()
            messages: dict[str, Counter[str]] = defaultdict(Counter)
            for rec in data.submissions.values():
                nb = rec.notebooks.get(nb_name)
                if nb is None:
                    continue
                score = nb.cells.get(question)
                if score is not None:
                    scores.append(score)
                note = nb.notes.get(question)
                if note is not None:
                    if note.title:
                        titles[note.title] += 1
                    not_attempted += note.not_attempted
                for code in nb.codes.get(question, []):
                    students[code].add(rec.student)
                    occurrences[code] += 1
                    if note is not None and code in note.messages:
                        messages[code][note.messages[code]] += 1
            full = sum(1 for x in scores if x >= max_score - 1e-9)
            codes = sorted(
                ({"code": c, "students": len(s), "occurrences": occurrences[c],
                  "message": messages[c].most_common(1)[0][0] if messages[c] else ""} for c, s in students.items()),
                key=lambda r: (-r["students"], -r["occurrences"], r["code"]),
            )
            out.append({
                "notebook": nb_name, "question": question, "title": titles.most_common(1)[0][0] if titles else "",
                "max": max_score, "n": len(scores), "mean": statistics.fmean(scores) if scores else None,
                "success": full / len(scores) if scores else None, "full": full,
                "not_attempted": not_attempted, "codes": codes,
            })
    return out


def _format_score_axes(ax, max_score: float) -> None:
    """Integer ticks for integer scores (no « 2,5 » between two possible scores) and counts;
    labels in French (decimal comma)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=float(max_score).is_integer()))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    french = FuncFormatter(lambda x, _pos: fr_number(x))
    ax.xaxis.set_major_formatter(french)
    ax.yaxis.set_major_formatter(french)


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
    _format_score_axes(ax, max_score)
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
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlabel(f"étudiants concernés (sur {n_students})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fr_number(x)))
    ax.set_title("Codes d'échec les plus fréquents", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _question_rows(data: AssignmentData) -> list[str]:
    """The « Par question » section: a table per notebook, codes with their message inline."""
    e = html.escape
    stats = question_stats(data)
    parts = ['<h2>Par question</h2>',
             f'<p class="muted" id="success-definition">{e(SUCCESS_DEFINITION)} Moyenne sur les soumissions notées ; '
             f"codes d'échec : les {CODES_PER_QUESTION} plus répandus sur la question, avec le message que les "
             "étudiants ont lu (« Non tenté » exclu).</p>"]
    if not stats:
        parts.append('<p id="questions-none">Aucune question notée dans le carnet de notes.</p>')
        return parts
    parts.append('<table id="questions"><tr><th>notebook</th><th class="txt">question</th><th>barème</th>'
                 '<th>notées</th><th>moyenne</th><th>réussite</th><th>non tentées</th>'
                 "<th class=\"txt\">codes d'échec les plus fréquents</th></tr>")
    for q in stats:
        codes = q["codes"][:CODES_PER_QUESTION]
        items = "".join(
            f'<li data-code="{e(c["code"])}" data-students="{c["students"]}" data-occurrences="{c["occurrences"]}">'
            f'<code>{e(c["code"])}</code> — {c["students"]} étudiant{"s" if c["students"] > 1 else ""}'
            + (f'<br><span class="msg">{_message(c["message"])}</span>' if c["message"] else "") + "</li>"
            for c in codes
        )
        more = len(q["codes"]) - len(codes)
        if more > 0:
            items += f'<li class="muted">… et {more} autre{"s" if more > 1 else ""}</li>'
        title = f'<code>{e(q["title"])}</code> ' if q["title"] and q["title"] != q["question"] else ""
        width = 0 if q["success"] is None else round(60 * q["success"])
        mean = "—" if q["mean"] is None else f'{_fmt(q["mean"])} / {_fmt(q["max"])}'
        parts.append(
            f'<tr data-notebook="{e(q["notebook"])}" data-question="{e(q["question"])}" data-max="{_raw(q["max"])}" '
            f'data-n="{q["n"]}" data-mean="{_raw(q["mean"])}" data-success="{_raw(q["success"])}" '
            f'data-full="{q["full"]}" data-not-attempted="{q["not_attempted"]}">'
            f'<td>{e(q["notebook"])}</td><td class="txt">{title}<span class="muted">{e(q["question"])}</span></td>'
            f'<td>{_fmt(q["max"])}</td><td>{q["n"]}</td><td>{mean}</td>'
            f'<td class="rate"><span class="bar" style="width:{width}px"></span>{fr_percent(q["success"])}</td>'
            f'<td>{q["not_attempted"]}</td>'
            f'<td class="txt">{"<ul>" + items + "</ul>" if items else "—"}</td></tr>'
        )
    parts.append("</table>")
    return parts


def write_report(data: AssignmentData, out: Path, course: Path | None = None, final: Path | None = None) -> Path:
    """Write ``index.html`` and its PNG plots into ``out`` (an existing, empty folder).

    Args:
        data: the assignment, from :func:`autograder.reports.gradebook.load_assignment`.
        out: the folder to write into (a staging folder, see ``common.staged_dir``).
        course: the course folder, named on the page.
        final: where ``out`` will end up (default ``out``): links to the feedback pages are
            relative to it, so the report keeps working when the course folder moves.
    """
    e = html.escape
    final = final or out
    graded = data.graded()
    parts: list[str] = []
    now = datetime.now(UTC).strftime("%d/%m/%Y %H:%M UTC")
    parts.append(f"<h1>Rapport de classe — <code>{e(data.name)}</code></h1>")
    where = f" — cours <code>{e(str(course))}</code>" if course else ""
    due = _date(data.duedate) if data.duedate else "aucune"
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
        parts.append(f'<tr data-key="{key}" data-value="{_raw(value)}"><td>{e(label)}</td><td>{shown}</td></tr>')
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
            f'<tr data-low="{a:g}" data-high="{b:g}" data-count="{c}"><td>[{_fmt(a)} ; {_fmt(b)}{"]" if i == len(counts) - 1 else "["}</td><td>{c}</td></tr>'
            for i, (a, b, c) in enumerate(zip(edges, edges[1:], counts, strict=False))
        )
        stat_cells = "".join(
            f'<td data-stat="{k}" data-value="{_raw(stats[k])}">{_fmt(stats[k] if k == "n" else (None if stats[k] is None else float(stats[k])))}</td>'
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

    # ---- per question ----------------------------------------------------------------------
    parts.extend(_question_rows(data))

    # ---- failure codes ---------------------------------------------------------------------
    codes = failure_codes(data)
    parts.append("<h2>Codes d'échec les plus fréquents</h2>")
    parts.append('<p class="muted">Une erreur partagée par beaucoup d\'étudiants est une notion à reprendre en cours. '
                 "Codes lus dans les retours des cellules de test (« Non tenté » exclu), avec le message le plus "
                 "souvent affiché.</p>")
    if codes:
        _plot_codes(out / "codes.png", codes, len(data.submissions))
        parts.append('<div class="plots"><figure><img src="codes.png" alt="codes d\'échec les plus fréquents"></figure></div>')
        parts.append('<table id="codes"><tr><th>code</th><th>étudiants</th><th>occurrences</th><th class="txt">cellules</th>'
                     '<th class="txt">message</th></tr>')
        for r in codes:
            parts.append(
                f'<tr data-code="{e(r["code"])}" data-students="{r["students"]}" data-occurrences="{r["occurrences"]}">'
                f'<td><code>{e(r["code"])}</code></td><td>{r["students"]}</td><td>{r["occurrences"]}</td>'
                f'<td class="txt">{e(", ".join(r["cells"]))}</td><td class="txt msg">{_message(r["message"])}</td></tr>'
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
                         f'<td>{e(nb)}</td><td>{len(d)}</td><td>{_fmt(st["median"], 1)}</td><td>{_fmt(st["max"], 1)}</td><td>{_fmt(sum(d), 1)}</td></tr>')
        parts.append("</table>")
        slowest = sorted(timed, key=lambda t: -t[2])[:5]
        parts.append("<p>Les plus longs : " + ", ".join(f"{e(s)}/{e(n)} ({_fmt(t, 1)} s)" for s, n, t in slowest) + ".</p>")
    else:
        parts.append('<p id="timing-none">Non enregistré (aucun notebook autogradé ne porte de temps d\'exécution).</p>')

    # ---- flagged submissions ---------------------------------------------------------------
    parts.append("<h2>Soumissions signalées</h2>")
    flagged = [(s.student, s.flags, s.flag_details) for s in sorted(data.submissions.values(), key=lambda s: s.student) if s.flags]
    flagged += [(student, ["not_in_gradebook"], {}) for student in data.not_in_gradebook]
    if flagged:
        parts.append('<table id="flagged"><tr><th>étudiant</th><th class="txt">motifs</th></tr>')
        for student, flags, details in flagged:
            items = "".join(
                f'<li data-flag="{f}"><strong>{e(FLAGS[f])}</strong>'
                + (f'<br><span class="msg">{e(" ; ".join(details[f]))}</span>' if details.get(f) else "") + "</li>"
                for f in flags
            )
            parts.append(f'<tr data-student="{e(student)}" data-flags="{" ".join(flags)}"><td>{e(student)}</td>'
                         f'<td class="txt"><ul>{items}</ul></td></tr>')
        parts.append("</table>")
    else:
        parts.append('<p id="flagged-none">Aucune.</p>')

    # ---- all scores ------------------------------------------------------------------------
    parts.append("<h2>Toutes les soumissions</h2>")
    head = "".join(f"<th>{e(nb)} (/{_fmt(mx)})</th>" for nb, mx in data.notebooks.items())
    parts.append(f'<table id="scores"><tr><th>étudiant</th><th>rendu le</th>{head}<th>pénalité</th><th>total (/{_fmt(data.max_score)})</th>'
                 '<th class="txt">retour (HTML)</th></tr>')
    for s in sorted(data.submissions.values(), key=lambda s: s.student):
        cells = ""
        links = []
        for nb in data.notebooks:
            rec = s.notebooks.get(nb)
            value = None if rec is None else rec.score
            cells += f'<td data-notebook="{e(nb)}" data-score="{_raw(value)}">{_fmt(value)}</td>'
            if rec is not None and rec.feedback_page is not None:
                href = Path(os.path.relpath(rec.feedback_page, final)).as_posix()
                links.append(f'<a href="{e(href)}" data-feedback="{e(nb)}">{e(nb)}</a>')
        total = s.score
        cls = ' class="flag"' if s.flags else ""
        stamp = f' data-timestamp="{s.timestamp.isoformat()}"' if s.timestamp else ' data-timestamp=""'
        parts.append(f'<tr data-student="{e(s.student)}"{cls}><td>{e(s.student)}</td><td class="when"{stamp}>{_date(s.timestamp)}</td>{cells}'
                     f'<td data-penalty="{s.late_penalty:.12g}">{_fmt(s.late_penalty)}</td>'
                     f'<td class="total" data-score="{_raw(total)}">{_fmt(total)}</td>'
                     f'<td class="txt links">{", ".join(links) or "—"}</td></tr>')
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
