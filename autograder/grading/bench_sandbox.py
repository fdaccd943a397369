"""Benchmark: what hardening costs per notebook (`python -m autograder.grading.bench_sandbox`).

Grades the same N correct submissions of m3-fundamentals/convolution with real
``nbgrader autograde`` in three set-ups, taking turns (``--rounds``):

1. plain nbgrader (its default preprocessors and kernel, the course's timeouts only);
2. the project config without the sandbox (``COURSE_UNSAFE=1``: guard, sanitising and
   verification on, kernel outside bubblewrap);
3. the project config as used for grading (bubblewrap sandbox, limits, IPC transport).

Prints median seconds per notebook for each, overall and beyond cell execution, and the
differences: (3) − (2) is the sandbox's cost, (3) − (1) the whole hardening's. Target
(DESIGN.md §6): sandbox ≤ 0.5 s per notebook.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from autograder.commands.bench import PLAIN_CONFIG
from autograder.grading import pipeline


def _grade(course: Path, env: dict[str, str]) -> float:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        start = time.perf_counter()
        pipeline.autograde(course, "m3-fundamentals")
        return time.perf_counter() - start
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


MODES = (
    ("plain nbgrader", {}, True),
    ("project config, unsandboxed", {"COURSE_UNSAFE": "1"}, False),
    ("project config, sandboxed", {"COURSE_UNSAFE": "0"}, False),
)


def run(n: int, rounds: int = 3) -> dict[str, dict[str, float]]:
    """Per set-up: median seconds per notebook, overall and beyond cell execution.

    The set-ups take turns (``rounds`` times each, the same ``n`` submissions graded again with
    ``--force``), so that a change of the machine's load hits them alike; cell execution time
    (kernel side, from each notebook's execution metadata) varies with the load far more than
    the sandbox costs, so the cost beyond it is the figure to compare.
    """
    import statistics

    from autograder.commands.bench import cell_seconds

    courses: dict[str, Path] = {}
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        for label, _, plain in MODES:
            course = pipeline.make_course(Path(tmp) / label.replace(" ", "-").replace(",", ""), ["m3-fundamentals"], notebooks=["convolution"])
            if plain:
                (course / "nbgrader_config.py").write_text(PLAIN_CONFIG)
            pipeline.generate(course, "m3-fundamentals")
            source = course / "source" / "m3-fundamentals" / "convolution.ipynb"
            for i in range(n):
                pipeline.submit(course, "m3-fundamentals", f"s{i:02d}", {"convolution": source})
            courses[label] = course
        for _ in range(rounds):
            for label, env, _ in MODES:
                wall = _grade(courses[label], env)
                samples[label].append((wall / n, (wall - cell_seconds(courses[label])) / n))
    return {
        label: {
            "total": statistics.median(t for t, _ in values),
            "beyond_cells": statistics.median(b for _, b in values),
        }
        for label, values in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4, help="submissions per set-up (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per set-up (default 3)")
    args = parser.parse_args(argv)
    figures = run(args.n, args.rounds)
    print(f"{'set-up':<32} {'s / notebook':>12} {'beyond cells':>13}")
    for label, f in figures.items():
        print(f"{label:<32} {f['total']:12.2f} {f['beyond_cells']:13.2f}")
    sandboxed, unsandboxed = figures["project config, sandboxed"], figures["project config, unsandboxed"]
    plain = figures["plain nbgrader"]
    print(f"sandbox overhead beyond cells:    {sandboxed['beyond_cells'] - unsandboxed['beyond_cells']:+.2f} s / notebook (target <= 0.5); "
          f"overall {sandboxed['total'] - unsandboxed['total']:+.2f} (cell time varies with load)")
    print(f"whole hardening beyond cells:     {sandboxed['beyond_cells'] - plain['beyond_cells']:+.2f} s / notebook")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
