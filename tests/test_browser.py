"""A real browser: headless Chromium (Debian's) driven by Playwright, on JupyterLab and the report.

JupyterLab with the nbgrader extension runs on 127.0.0.1 with a token, over a student's copy of
the m3 convolution release notebook (one function right, one wrong, one more written, two
stubs). The browser runs all cells and the test reads what a student sees: the French feedback
of the visible checks (« Résultats », « Non tenté », the failure code), the Sobel figure, and
nbgrader's Validate dialog. Then it opens a class report and checks that its plots load.
Screenshots go to the test's folder and to ``artifacts/browser/`` (gitignored).

Skipped only when Chromium is not installed (``apt-get install -y chromium``); Playwright drives
Debian's binary (``executable_path``), never a downloaded browser.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from graded_class import ASSIGNMENT, NOTEBOOK, synthetic_course

from autograder.cli import main
from autograder.grading import pipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = pipeline.COURSE_ROOT / "artifacts" / "browser"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Chromium is not installed (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _save(page_or_locator, shots: Path, name: str, **kwargs) -> None:
    path = shots / name
    page_or_locator.screenshot(path=str(path), **kwargs)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, ARTIFACTS / name)


def run_all_cells(page) -> None:
    """Run > Run All Cells, again if the click was lost (a loaded machine, a menu still opening)."""
    started = ("() => Array.from(document.querySelectorAll('.jp-InputArea-prompt'))"
               ".some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))")
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        item = page.locator(".lm-Menu .lm-Menu-itemLabel").filter(has_text=re.compile(r"^Run All Cells$")).first
        item.wait_for(state="visible", timeout=30_000)
        item.click()
        try:
            page.wait_for_function(started, timeout=30_000)
            return
        except Exception:  # noqa: BLE001 - nothing started: close any menu and try again
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start the notebook")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on loopback over a student's folder; yields (base url, token)."""
    work = tmp_path / "student"
    work.mkdir()
    source = pipeline.COURSE_ROOT / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    release = pipeline.COURSE_ROOT / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    answers = pipeline.solution_sources(source)
    nb = pipeline.fill_solutions(release, {
        "correlate1d": answers["correlate1d"],
        "convolve1d": answers["convolve1d"].replace("np.asarray(k)[::-1]", "k"),  # forgot the flip
        "correlate2d": answers["correlate2d"],
    })
    nbformat.write(nb, str(work / f"{NOTEBOOK}.ipynb"))
    # A private Jupyter home: no user settings, no news or update checks (no network).
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = pipeline.env_with_venv()
    env.update(HOME=str(tmp_path / "home"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"), JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"))
    env.pop("COURSE_ROOT", None)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}"]
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "jupyterlab.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not start in 120 s"
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of the server started above, kernels included
            proc.wait()
        log.close()


def test_student_runs_the_notebook_in_jupyterlab_and_sees_the_feedback(lab, browser, tmp_path):
    base, token = lab
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{NOTEBOOK}.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=120_000)
    menus = [m.inner_text() for m in page.locator(".lm-MenuBar-itemLabel").all()]
    assert "Nbgrader" in menus  # the nbgrader extension is loaded
    try:
        run_all_cells(page)
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".some(e => e.textContent.includes('Résultats : conv2d_backward'))", timeout=300_000)
    except Exception:
        _save(page, shots, "lab-failure.png", full_page=True)
        raise
    outputs = page.evaluate("Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.textContent)")
    text = "\n".join(outputs)
    assert "Résultats : correlate1d" in text and "Score : 1 / 1" in text
    assert "[conv1d.flip]" in text  # the wrong function: its failure code and French message
    assert text.count("Non tenté") == 2  # conv2d_forward and conv2d_backward are still stubs
    assert not any("Error" in o and "Traceback" in o for o in outputs)
    images = page.evaluate("Array.from(document.querySelectorAll('.jp-OutputArea-output img')).map(i => i.naturalWidth)")
    assert images and all(w > 0 for w in images)  # the Sobel figure rendered
    _save(page, shots, "lab-notebook.png", full_page=True)
    cell = page.locator(".jp-Cell", has_text="Résultats : convolve1d").last
    cell.scroll_into_view_if_needed()
    _save(cell, shots, "lab-feedback-convolve1d.png")
    cell = page.locator(".jp-Cell", has_text="Résultats : conv2d_forward").last
    cell.scroll_into_view_if_needed()
    _save(cell, shots, "lab-feedback-not-attempted.png")

    # nbgrader's own Validate button: it lists the cells that did not earn full marks.
    page.locator(".jp-Toolbar-item", has_text="Validate").first.click()
    page.wait_for_function("() => { const d = document.querySelector('.jp-Dialog');"
                           " return d && d.textContent.includes('Validation Results') }", timeout=180_000)
    dialog = page.locator(".jp-Dialog").text_content()
    assert "public_convolve1d" in dialog and "public_conv2d_forward" in dialog
    assert "public_correlate1d" not in dialog and "public_correlate2d" not in dialog
    _save(page, shots, "lab-validate.png")
    assert sorted(p.name for p in shots.iterdir()) == sorted(
        ["lab-notebook.png", "lab-feedback-convolve1d.png", "lab-feedback-not-attempted.png", "lab-validate.png"])


def test_class_report_opens_and_its_plots_load(browser, tmp_path):
    course = synthetic_course(tmp_path / "course")
    assert main(["report", ASSIGNMENT, "--course", str(course), "--quiet"]) == 0
    index = course / "reports" / ASSIGNMENT / "index.html"
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    assert "Rapport de classe" in page.locator("h1").inner_text()
    images = page.evaluate("Array.from(document.images).map(i => ({src: i.src, ok: i.complete, w: i.naturalWidth}))")
    assert len(images) == 3  # notebook and total histograms, failure codes
    assert all(i["ok"] and i["w"] > 300 for i in images), images
    shots = tmp_path / "screenshots"
    shots.mkdir()
    _save(page, shots, "class-report.png", full_page=True)


@pytest.mark.notebook
def test_feedback_page_shows_its_formulas_without_the_network(browser, tmp_path):
    """A student's feedback page copied out of the course and opened from disk, every request
    that would leave the machine blocked and recorded: none is made, and MathJax typesets the
    notebook's formulas (it used to come from a CDN: offline, students read raw TeX)."""
    from urllib.parse import urlparse

    from graded_class import demo_class

    page_file = tmp_path / "copied elsewhere" / f"{NOTEBOOK}.html"
    page_file.parent.mkdir()
    shutil.copy2(demo_class().course / "feedback" / "alice" / ASSIGNMENT / f"{NOTEBOOK}.html", page_file)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    remote: list[str] = []

    def stay_local(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")) or urlparse(url).hostname in ("localhost", "127.0.0.1", "::1"):
            route.continue_()
        else:
            remote.append(url)
            route.abort()

    page.route("**/*", stay_local)
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    try:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000)
        page.evaluate("() => MathJax.startup.promise")  # resolved once the page is typeset
    finally:
        assert remote == [], remote
    assert page.locator("mjx-container").count() >= 10  # $x$, $n - m + 1$, the sums…
    assert page.locator("mjx-merror").count() == 0  # no TeX MathJax could not read
    text = page.locator("body").inner_text()
    assert "$x$" not in text and "\\star" not in text  # no raw TeX left
    shots = tmp_path / "screenshots"
    shots.mkdir()
    _save(page, shots, "feedback-formulas.png")


def test_class_report_shows_per_question_figures_of_the_gradebook(browser, tmp_path):
    """What a TA reads in the browser, per question: the mean (« 1,18 / 2 »), the success rate
    (« 55 % ») and the number graded, equal to the gradebook read through nbgrader's API; the
    failure codes with their French message; each flag with its reason; the feedback link opens
    the student's page."""
    import statistics

    from graded_class import (
        FLAGS_ASSIGNMENT,
        FLAGS_CLASS,
        FLAGS_NOTEBOOK,
        FLAGS_QUESTIONS,
        MESSAGES,
        flags_course,
    )
    from nbgrader.api import Gradebook

    course = flags_course(tmp_path / "course")
    assert main(["report", FLAGS_ASSIGNMENT, "--course", str(course), "--quiet"]) == 0
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto((course / "reports" / FLAGS_ASSIGNMENT / "index.html").as_uri())
    page.wait_for_load_state("load")
    shown = page.evaluate("""() => Array.from(document.querySelectorAll('#questions tr[data-question]')).map(tr => ({
        question: tr.dataset.question, cells: Array.from(tr.cells).map(td => td.innerText.trim()),
        codes: Array.from(tr.querySelectorAll('li[data-code]')).map(li => li.innerText)}))""")
    assert [q["question"] for q in shown] == list(FLAGS_QUESTIONS)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for q in shown:
            points = FLAGS_QUESTIONS[q["question"]]
            scores = [g.score for g in (gb.find_grade(f"{q['question']}-tests", FLAGS_NOTEBOOK, FLAGS_ASSIGNMENT, s)
                                        for s in FLAGS_CLASS) if g.auto_score is not None]
            mean = f"{statistics.fmean(scores):.2f}".rstrip("0").rstrip(".").replace(".", ",")
            success = round(100 * sum(x == points for x in scores) / len(scores))
            _notebook, _title, max_shown, n_shown, mean_shown, success_shown = q["cells"][:6]
            assert max_shown == f"{points:g}" and n_shown == str(len(scores))
            assert mean_shown == f"{mean} / {points:g}", q
            assert success_shown.replace("\u00a0", " ") == f"{success} %", q
    codes = {q["question"]: " ".join(q["codes"]) for q in shown}
    assert "conv.padding" in codes["f"] and MESSAGES["conv.padding"].replace("`", "") in codes["f"]
    assert "Réussite : part des soumissions" in page.locator("#success-definition").inner_text()
    kurt = page.locator("#flagged tr[data-student='kurt']").inner_text()
    assert "noyau Python arrêté" in kurt and "s'est arrêté" in kurt
    page.locator("#questions").scroll_into_view_if_needed()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    _save(page.locator("#questions"), shots, "class-report-questions.png")
    page.locator("#scores tr[data-student='ok'] a[data-feedback]").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/feedback/ok/{FLAGS_ASSIGNMENT}/{FLAGS_NOTEBOOK}.html")
    assert "retour de ok" in page.locator("body").inner_text()
