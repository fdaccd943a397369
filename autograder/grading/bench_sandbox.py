"""Benchmark: what hardening costs per notebook (`python -m autograder.grading.bench_sandbox`).

Grades the same N correct submissions of m3-fundamentals/convolution three times with real
``nbgrader autograde``:

1. plain nbgrader (its default preprocessors and kernel, the course's timeouts only);
2. the project config without the sandbox (``COURSE_UNSAFE=1``: guard, sanitising and
   verification on, kernel outside bubblewrap);
3. the project config as used for grading (bubblewrap sandbox, limits, IPC transport).

Prints seconds per notebook for each and the differences: (3) − (2) is the sandbox's cost,
(3) − (1) the whole hardening's. Target (DESIGN.md §6): sandbox ≤ 0.5 s per notebook.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from autograder.grading import pipeline

PLAIN_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "cnn-course-bench"
c.Execute.timeout = 300
"""


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


def run(n: int) -> dict[str, float]:
    """Seconds per notebook for the three set-ups."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        for label, env, plain in (
            ("plain nbgrader", {}, True),
            ("project config, unsandboxed", {"COURSE_UNSAFE": "1"}, False),
            ("project config, sandboxed", {"COURSE_UNSAFE": "0"}, False),
        ):
            course = pipeline.make_course(Path(tmp) / label.replace(" ", "-").replace(",", ""), ["m3-fundamentals"], notebooks=["convolution"])
            if plain:
                (course / "nbgrader_config.py").write_text(PLAIN_CONFIG)
            pipeline.generate(course, "m3-fundamentals")
            source = course / "source" / "m3-fundamentals" / "convolution.ipynb"
            for i in range(n):
                pipeline.submit(course, "m3-fundamentals", f"s{i:02d}", {"convolution": source})
            out[label] = _grade(course, env) / n
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4, help="submissions per set-up (default 4)")
    args = parser.parse_args(argv)
    figures = run(args.n)
    for label, seconds in figures.items():
        print(f"{label:<32} {seconds:6.2f} s / notebook")
    sandbox = figures["project config, sandboxed"] - figures["project config, unsandboxed"]
    hardening = figures["project config, sandboxed"] - figures["plain nbgrader"]
    print(f"{'sandbox overhead':<32} {sandbox:+6.2f} s / notebook (target <= 0.5)")
    print(f"{'whole hardening overhead':<32} {hardening:+6.2f} s / notebook")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
