"""Reality checks: the tables `reality_checks` (one drawn sample of a run's test intents),
`reality_samples` (each sample with the teacher's and the student's answer) and
`reality_answers` (each annotator's two yes/no answers per sample)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workbench.store.connection import Session
from workbench.tools import TOOLS, Answer, answer_from_json


@dataclass(frozen=True)
class CheckSample:
    sample_no: int
    intent_key: str
    intent_text: str
    request_count: int
    stratum: str
    tools_agreeing: int
    teacher: Answer
    student: Answer


def record_check(session: Session, *, created_at: datetime, run_id: str, version_id: int,
                 seed: int, image: str, note: str, config: dict[str, Any],
                 strata: dict[str, Any], samples: Sequence[CheckSample]) -> int:
    """Store a check and its numbered samples. Returns the check's id."""
    check_id = int(session.value(
        "INSERT INTO reality_checks (created_at, run_id, version_id, n_samples, seed, image, "
        "note, config, strata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING check_id",
        [created_at, run_id, version_id, len(samples), seed, image, note,
         json.dumps(config, sort_keys=True), json.dumps(strata)]))
    plain = [name for name in CheckSample.__dataclass_fields__
             if name not in ("teacher", "student")]
    session.insert("reality_samples", {
        **{name: [getattr(s, name) for s in samples] for name in plain},
        **{f"teacher_{tool}": [s.teacher.tool_json(tool) for s in samples] for tool in TOOLS},
        **{f"student_{tool}": [s.student.tool_json(tool) for s in samples] for tool in TOOLS},
    }, extra={"check_id": check_id})
    return check_id


def check_row(session: Session, check_id: int) -> dict | None:
    return session.first("SELECT * FROM reality_checks WHERE check_id = ?", [check_id])


def check_samples(session: Session, check_id: int) -> list[CheckSample]:
    """A check's samples in their numbered order."""
    rows = session.query("SELECT * FROM reality_samples WHERE check_id = ? ORDER BY sample_no",
                         [check_id])
    return [CheckSample(
        row["sample_no"], row["intent_key"], row["intent_text"], row["request_count"],
        row["stratum"], row["tools_agreeing"],
        answer_from_json(*(row[f"teacher_{tool}"] for tool in TOOLS)),
        answer_from_json(*(row[f"student_{tool}"] for tool in TOOLS))) for row in rows]


def list_checks(session: Session) -> list[dict]:
    """Every check with its answer counts, oldest first (JSON-ready values)."""
    rows = session.query(
        "SELECT c.check_id, c.created_at, c.run_id, c.version_id, c.n_samples, c.seed, "
        "c.image, c.note, c.render_dir, c.strata, "
        "count(DISTINCT a.annotator) AS n_annotators, count(a.annotator) AS n_answers, "
        "count(DISTINCT a.sample_no) AS n_judged "
        "FROM reality_checks c LEFT JOIN reality_answers a USING (check_id) "
        "GROUP BY ALL ORDER BY c.check_id")
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
        row["strata"] = json.loads(row["strata"])
    return rows


def set_render_dir(session: Session, check_id: int, folder: str) -> None:
    """Where the check's images were rendered last."""
    session.execute("UPDATE reality_checks SET render_dir = ? WHERE check_id = ?",
                    [folder, check_id])


def sample_numbers(session: Session, check_id: int) -> set[int]:
    return {row["sample_no"] for row in session.query(
        "SELECT sample_no FROM reality_samples WHERE check_id = ?", [check_id])}


def record_answers(session: Session, check_id: int, annotator: str,
                   answers: Iterable[tuple[int, bool, bool]], at: datetime) -> None:
    """(sample_no, relevant, mimics) of one annotator; answering a sample again replaces the
    earlier answer."""
    for number, relevant, mimics in answers:
        session.execute("INSERT OR REPLACE INTO reality_answers VALUES (?, ?, ?, ?, ?, ?)",
                        [check_id, number, annotator, relevant, mimics, at])


def answered_samples(session: Session, check_id: int, annotator: str) -> set[int]:
    """The sample numbers `annotator` has answered."""
    return {row["sample_no"] for row in session.query(
        "SELECT sample_no FROM reality_answers WHERE check_id = ? AND annotator = ?",
        [check_id, annotator])}


def check_answers(session: Session, check_id: int) -> list[dict]:
    """Every answer of a check: sample_no, annotator, relevant, mimics."""
    return session.query("SELECT sample_no, annotator, relevant, mimics "
                         "FROM reality_answers WHERE check_id = ?", [check_id])
