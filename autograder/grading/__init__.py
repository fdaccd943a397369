"""Grading: real nbgrader pipeline helpers, hardened pieces and the parallel grader."""
