"""The benchmarks run end to end and print their figures (targets are read, never asserted).

DESIGN.md §6: speed targets live in benchmarks, not in timed tests. What is asserted here is
what a benchmark's figures rest on: every set-up graded every submission, the course's set-ups
left identical gradebooks, and each figure the closing notes quote is printed.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from autograder.grading import pipeline

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_bench_grading_prints_every_figure_on_identical_gradebooks(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "bench", "grading", "--submissions", "2",
         "--dir", str(tmp_path / "bench")],
        env=pipeline.env_with_venv(), capture_output=True, text=True, timeout=1200,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-3000:]
    for label in ("serial nbgrader autograde", "course grade --workers 1", "course grade --workers 2",
                  "serial, no kernel ahead", "plain nbgrader (no config)"):
        row = re.search(rf"^{re.escape(label)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)"
                        r"\s+([\d.]+)\s+([\d.]+)$", out, re.M)
        assert row, f"no figures for {label!r}:\n{out}"
        assert float(row.group(1)) > 0 and float(row.group(4)) > 0  # wall time, cell time
        assert float(row.group(6)) > 0 and float(row.group(7)) > 0  # cores used, CPU s per notebook
    assert "gradebooks identical to serial nbgrader (row by row): yes" in out
    # Honest submissions score alike with or without the course's hardening.
    assert "plain nbgrader's: identical" in out
    assert re.search(r"2 workers / serial throughput: [\d.]+ \(target ≥ 1\.8\)", out)
    assert re.search(r"ceiling for 2 workers at perfect scaling \(serial's CPU spread over \d cores\): [\d.]+", out)
    assert re.search(r"overhead beyond cell execution, 1 worker: -?[\d.]+ s per notebook", out)
    for run in ("serial", "workers-1", "workers-2", "serial-cold", "serial-plain"):
        graded = list((tmp_path / "bench" / run / "autograded").glob("*/m3-fundamentals/convolution.ipynb"))
        assert len(graded) == 2, run


def test_bench_grading_refuses_too_small_a_class(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "bench", "grading", "--submissions", "1"],
        env=pipeline.env_with_venv(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "--submissions must be at least 2" in proc.stderr


def test_bench_grading_rounds_report_medians_of_the_chosen_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "bench", "grading", "--submissions", "2", "--runs", "workers-2",
         "--rounds", "2", "--dir", str(tmp_path / "bench")],
        env=pipeline.env_with_venv(), capture_output=True, text=True, timeout=1200,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-3000:]
    assert "medians over 2 rounds" in out
    for label in ("serial nbgrader autograde", "course grade --workers 2"):
        walls = re.search(rf"^  {re.escape(label)}\s+([\d.]+) ([\d.]+)$", out, re.M)
        assert walls, f"no per-round walls for {label!r}:\n{out}"
    assert re.search(r"^  2 workers / serial, per round: [\d.]+ [\d.]+$", out, re.M)
    assert "course grade --workers 1" not in out and "plain nbgrader" not in out  # not chosen
    assert "gradebooks identical to serial nbgrader (row by row): yes" in out
    assert re.search(r"2 workers / serial throughput: [\d.]+ \(target ≥ 1\.8\)$", out, re.M)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--runs", "serial,workers-3"], "unknown run(s) workers-3"), (["--rounds", "0"], "--rounds must be at least 1")],
)
def test_bench_grading_refuses_bad_runs_or_rounds(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "bench", "grading", *args],
        env=pipeline.env_with_venv(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr


def test_bench_cluster_prints_the_idle_cpu_of_both_settings():
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "bench", "cluster", "--workers", "1", "--seconds", "1"],
        env=pipeline.env_with_venv(), capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-3000:]
    for label in ("Dask's defaults", "course (QUIET_CLUSTER)"):
        row = re.search(rf"^{re.escape(label)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
        assert row, f"no figures for {label!r}:\n{out}"
        driver, workers, total = map(float, row.groups())
        assert total == pytest.approx(driver + workers, abs=0.15)


def test_bench_notebooks_prints_cpu_per_notebook_and_the_class_time(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "bench", "notebooks", "--module", "m1-intro", "--students", "2",
         "--dir", str(tmp_path / "bench")],
        env=pipeline.env_with_venv(), capture_output=True, text=True, timeout=1200,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-3000:]
    row = re.search(r"^m1-intro\s+cnn_vs_dense\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert row and float(row.group(1)) > 0 and float(row.group(3)) > 0, out
    assert re.search(r"class of 2 student\(s\) × 1 notebook\(s\) \(1 assignment\(s\)\), `course grade --all` "
                     r"on \d+ core\(s\): [\d.]+ s, [\d.]+ CPU s per notebook", out), out
