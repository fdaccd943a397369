"""Subcommands of `course` that drive nbgrader (release, grade, demo)."""
