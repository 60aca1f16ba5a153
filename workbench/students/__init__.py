"""The students (SPEC 8): make one by kind from a settings dict, or load a saved one.

Each kind lives in its own module, imported only when asked for, so importing this package
stays cheap (no torch). A saved student is a folder with `student.json` ({"kind", "config"}).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.students.base import Student, TrainingData

STUDENT_KINDS: tuple[str, ...] = ("retrieval", "heads", "seq2seq")
DEFAULT_STUDENT = "heads"       # the fast, real-time one: what a form offers first
CONFIG_FILE = "student.json"

__all__ = ["DEFAULT_STUDENT", "STUDENT_KINDS", "Student", "TrainingData", "load_student", "make_student"]


def _classes(kind: str) -> tuple[Any, type]:
    """(student class, config class) of a kind."""
    if kind == "retrieval":
        from workbench.students.retrieval import RetrievalConfig, RetrievalStudent

        return RetrievalStudent, RetrievalConfig
    if kind == "heads":
        from workbench.students.heads import HeadsConfig, HeadsStudent

        return HeadsStudent, HeadsConfig
    if kind == "seq2seq":
        from workbench.students.seq2seq import Seq2SeqConfig, Seq2SeqStudent

        return Seq2SeqStudent, Seq2SeqConfig
    raise WorkbenchError(f"unknown student {kind!r}; choose one of {', '.join(STUDENT_KINDS)}")


def make_student(kind: str, config: dict[str, Any] | None = None,
                 encoder: Encoder | None = None) -> Student:
    """A new, untrained student. `config` holds settings to change from the defaults; an unknown
    or invalid setting is an error that names it. `encoder` shares an already loaded
    sentence encoder (it is not modified)."""
    student_class, config_class = _classes(kind)
    settings = dict(config or {})
    known = [f.name for f in fields(config_class)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise WorkbenchError(f"unknown setting(s) {', '.join(unknown)} for the {kind} student; "
                             f"its settings are {', '.join(known)}")
    try:
        student: Student = student_class(config_class(**settings), encoder=encoder)
    except ValueError as error:
        raise WorkbenchError(f"{kind} student: {error}") from None
    return student


def load_student(folder: Path, encoder: Encoder | None = None) -> Student:
    """The student saved in `folder`, of the kind its student.json names."""
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        raise WorkbenchError(f"{folder} holds no saved student (no {CONFIG_FILE})")
    try:
        kind = json.loads(path.read_text())["kind"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise WorkbenchError(f"{path} is not a student description: {error}") from None
    student_class, _ = _classes(kind)
    loaded: Student = student_class.load(Path(folder), encoder=encoder)
    return loaded
