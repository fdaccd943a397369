"""The grading ledger: one JSON line per graded submission, appended and fsynced.

The ledger lives in the course folder (``.course/ledger.jsonl``). Every grader that writes
grades (``course grade``, and later the hardened serial grader) appends one record per
submission *after* the gradebook and the autograded files are written, so a record means
"these grades are in the gradebook". A grader killed with ``kill -9`` leaves at worst a torn
last line, which readers skip: that submission simply has no record and is graded again.

Record keys (a plain ``dict``, JSON-serialisable; readers must ignore unknown keys):

``assignment``, ``student``
    ids as nbgrader knows them.
``status``
    ``"graded"`` (nbgrader finished the submission), ``"incomplete"`` (nbgrader ran but
    reported an error: some grades may be missing) or ``"failed"`` (not graded: the task died or
    raised; the gradebook holds the submission's rows, without new grades).
``reason``
    why the status is not ``"graded"`` (one line), else ``None``.
``submission``
    :func:`digest_files` of the submitted files.
``setup``
    digest of what the grades depend on besides the submission (sources, gradebook
    definition of the assignment, ``nbgrader_config.py``, the ``autograder`` and ``solutions``
    code): change any of them and the next run grades everything again.
``notebooks``
    ``{notebook: {"score", "max_score", "cells": {grade_id: auto_score}, "cell_time_s"}}``.
``flags``
    ``{notebook: [French flag, …]}`` when a TA should look (``cellule de test restaurée :
    <grade_id>``: a test cell the student deleted or moved, graded at its release position).
``duration_s``, ``worker``, ``time`` (UTC, ISO 8601), ``run`` (id of the grading run);
``log`` (the end of nbgrader's log) when the status is not ``graded``.

Only :meth:`Ledger.append`, :meth:`Ledger.records` and :meth:`Ledger.latest` are API.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Where the ledger lives, relative to the course root.
LEDGER_PATH = Path(".course") / "ledger.jsonl"

#: Statuses a record may carry; only ``graded`` lets a later run skip the submission.
STATUSES = ("graded", "incomplete", "failed")


def digest_files(files: Mapping[str, bytes]) -> str:
    """SHA-256 over ``{relative path: content}``, independent of the mapping's order."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(name.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


class Ledger:
    """An append-only JSON-lines file, safe against ``kill -9`` and concurrent appenders.

    Args:
        path: the ledger file (created with its folder on the first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_course(cls, course: Path) -> Ledger:
        """The ledger of the course folder ``course``."""
        return cls(Path(course) / LEDGER_PATH)

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``record`` (``time`` added when absent) and fsync it; returns what was written."""
        entry = dict(record)
        entry.setdefault("time", datetime.now(UTC).isoformat(timespec="milliseconds"))
        if entry.get("status") not in STATUSES:
            raise ValueError(f"ledger status must be one of {STATUSES}, not {entry.get('status')!r}")
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A previous writer killed mid-line left no newline: start on a fresh line so this
            # record stays readable (the torn fragment is skipped by readers).
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # make the new directory entry itself durable
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return entry

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable record, oldest first (torn or foreign lines are skipped)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for raw in fh:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict) and "student" in entry and "assignment" in entry:
                    yield entry

    def latest(self, assignment: str) -> dict[str, dict[str, Any]]:
        """``{student: last record}`` for ``assignment``."""
        out: dict[str, dict[str, Any]] = {}
        for entry in self.records():
            if entry["assignment"] == assignment:
                out[entry["student"]] = entry
        return out
