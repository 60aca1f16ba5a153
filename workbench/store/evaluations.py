"""Evaluations (SPEC 5): the tables `evaluations`, `evaluation_predictions` and
`evaluation_scores`, and the error analysis read from them.

An evaluation is written once (`record_evaluation`). Teacher answers are the ground truth in
`dataset_rows` of the evaluation's dataset version; student answers are the evaluation's
`evaluation_predictions`. Every query takes bound parameters.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workbench.describe import check_tool
from workbench.errors import WorkbenchError
from workbench.store.connection import Session
from workbench.tools import Answer, answer_from_json

# Evaluations of a student run: on the test split ('run', from `workbench evaluate --run`) and
# on its own training split ('mining', from `workbench augment`).
STUDENT_EVALUATION_KINDS: tuple[str, ...] = ("run", "mining")

# Per tool, how its intents are ranked (fixed SQL, chosen by name: never built from input).
# Vector tools: the lowest signed cosine first, so the most opposed answers (-1) come before
# unrelated ones (0); within one evaluation and tool that is also the largest cosine gap (the
# tool's mean cosine minus this intent's). Evaluations stored before cosines were signed hold
# a negative cosine as 0, so there opposed and unrelated answers still tie.
# Filter: wrong ones first, then the largest intensity error.
_VECTOR_ORDER = "s.cosine ASC NULLS LAST, s.intent_key"
_ORDER = {
    "adjust": _VECTOR_ORDER,
    "selective_adjust": _VECTOR_ORDER,
    "filter": "s.flagged DESC, s.intensity_error DESC NULLS LAST, s.intent_key",
}


# ------------------------------------------------------------------------------ writing

def record_evaluation(session: Session, *, created_at: datetime, version_id: int, split: str,
                      kind: str, source: str, predictions_sha: str, summary: dict[str, Any],
                      predictions: dict[str, list], scores: dict[str, list]) -> int:
    """Store one evaluation: its summary, its predictions (columns sample_id, intent_key and one
    per tool) and its scores (columns of `evaluation_scores`). Returns its id."""
    evaluation_id = int(session.value(
        "INSERT INTO evaluations (created_at, version_id, split, kind, source, predictions_sha, "
        "summary) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING evaluation_id",
        [created_at, version_id, split, kind, source, predictions_sha, json.dumps(summary)]))
    session.insert("evaluation_predictions", predictions, extra={"evaluation_id": evaluation_id})
    session.insert("evaluation_scores", scores, extra={"evaluation_id": evaluation_id})
    return evaluation_id


# ------------------------------------------------------------------------------ summaries

def count_evaluations(session: Session, kind: str) -> int:
    return int(session.value("SELECT count(*) FROM evaluations WHERE kind = ?", [kind]))


def latest_evaluations(session: Session, version_id: int | None = None,
                       limit: int = 8) -> list[dict[str, Any]]:
    """The newest evaluation per source on test splits (runs, files, ceiling, floor), newest
    first, with the summary parsed."""
    rows = session.query(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY kind, source ORDER BY "
        "created_at DESC) AS rank FROM evaluations WHERE split = 'test' "
        "AND (? IS NULL OR version_id = ?)) WHERE rank = 1 ORDER BY created_at DESC LIMIT ?",
        [version_id, version_id, limit])
    for row in rows:
        row["summary"] = json.loads(row["summary"])
        row.pop("rank", None)
    return rows


def runs_with_latest_evaluation(session: Session) -> list[dict[str, Any]]:
    """Every training run with its newest test-split evaluation (None when not evaluated yet),
    newest run first; summaries parsed; `processes`: how many processes trained it (the run's
    config says under `accelerate launch`; 1 otherwise)."""
    rows = session.query(
        "SELECT r.run_id, r.student, r.version_id, r.n_train, r.started_at, r.duration_s, "
        "r.device, r.size_bytes, r.note, coalesce(TRY_CAST(json_extract(TRY_CAST(r.config AS "
        "JSON), '$.processes') AS INTEGER), 1) AS processes, e.evaluation_id, e.version_id AS evaluated_version, "
        "e.summary FROM runs r LEFT JOIN (SELECT *, row_number() OVER (PARTITION BY source "
        "ORDER BY created_at DESC) AS rank FROM evaluations WHERE kind = 'run' "
        "AND split = 'test') e ON e.source = r.run_id AND e.rank = 1 "
        "ORDER BY r.started_at DESC")
    for row in rows:
        row["summary"] = None if row["summary"] is None else json.loads(row["summary"])
    return rows


def student_evaluations(session: Session, kind: str = "run") -> list[dict[str, Any]]:
    """Evaluations of student runs of one kind ('run': test split; 'mining': training split),
    newest first: evaluation_id, created_at, version_id, split, kind, run_id, student, n_intents,
    summary (parsed)."""
    if kind not in STUDENT_EVALUATION_KINDS:
        raise WorkbenchError(f"unknown evaluation kind {kind!r}; choose one of "
                             f"{', '.join(STUDENT_EVALUATION_KINDS)}")
    rows = session.query(
        "SELECT e.evaluation_id, e.created_at, e.version_id, e.split, e.kind, "
        "e.source AS run_id, r.student, e.summary, "
        "(SELECT count(*) FROM evaluation_predictions p "
        " WHERE p.evaluation_id = e.evaluation_id) AS n_intents "
        "FROM evaluations e LEFT JOIN runs r ON r.run_id = e.source "
        "WHERE e.kind = ? ORDER BY e.created_at DESC, e.evaluation_id DESC", [kind])
    for row in rows:
        row["summary"] = json.loads(row["summary"])
    return rows


def evaluation_row(session: Session, evaluation_id: int) -> dict[str, Any] | None:
    """One evaluation's row (evaluation_id, created_at, version_id, split, kind, source,
    summary parsed), or None when there is none of that id."""
    row = session.first("SELECT evaluation_id, created_at, version_id, split, kind, source, "
                        "summary FROM evaluations WHERE evaluation_id = ?", [evaluation_id])
    if row is not None:
        row["summary"] = json.loads(row["summary"])
    return row


def latest_mining_evaluation(session: Session, run_id: str) -> dict[str, Any] | None:
    """The newest mining evaluation (the run on its own training split) of a run, as
    `evaluation_row`, or None when the run was never mined."""
    found = session.first("SELECT evaluation_id FROM evaluations WHERE kind = 'mining' "
                          "AND source = ? ORDER BY created_at DESC, evaluation_id DESC LIMIT 1",
                          [run_id])
    return None if found is None else evaluation_row(session, int(found["evaluation_id"]))


# ------------------------------------------------------------------------------ flagged intents

def flagged_intents(session: Session, evaluation_id: int) -> list[str]:
    """The intents an evaluation flags for augmentation, most-flagged first."""
    return [row["intent_key"] for row in session.query(
        "SELECT intent_key, count(*) AS n FROM evaluation_scores "
        "WHERE evaluation_id = ? AND flagged GROUP BY intent_key "
        "ORDER BY n DESC, intent_key", [evaluation_id])]


def flags_by_tool(session: Session, evaluation_id: int) -> dict[str, int]:
    """{tool: intents the evaluation flags for that tool} (tools that flag none are absent)."""
    return {row["tool"]: row["n"] for row in session.query(
        "SELECT tool, count(*) AS n FROM evaluation_scores "
        "WHERE evaluation_id = ? AND flagged GROUP BY tool", [evaluation_id])}


def tool_errors(session: Session, evaluation_id: int, tool: str, *, only_flagged: bool = False,
                limit: int = 25, offset: int = 0) -> list[dict[str, Any]]:
    """One page of an evaluation's intents for one tool, worst first (see `_ORDER`).

    Each row: intent_key, intent_text, teacher_used, student_used, cosine (signed),
    cosine_gap, similarity, intensity_error, flagged, and the filter names and intensities of
    both sides (None where a side did not use the filter)."""
    check_tool(tool)
    rows = session.query(
        "SELECT s.intent_key, coalesce(d.intent_text, s.intent_key) AS intent_text, "
        "s.teacher_used, s.student_used, s.cosine, s.cosine_gap, s.similarity, "
        "s.intensity_error, s.flagged, d.filter AS teacher_filter, p.filter AS student_filter "
        "FROM evaluation_scores s JOIN evaluations e USING (evaluation_id) "
        "LEFT JOIN dataset_rows d ON d.version_id = e.version_id AND d.intent_key = s.intent_key "
        "LEFT JOIN evaluation_predictions p ON p.evaluation_id = s.evaluation_id "
        "AND p.sample_id = s.sample_id "
        "WHERE s.evaluation_id = ? AND s.tool = ? AND (NOT ? OR s.flagged) "
        "ORDER BY " + _ORDER[tool] + " LIMIT ? OFFSET ?",
        [evaluation_id, tool, only_flagged, limit, offset])
    for row in rows:
        for side in ("teacher", "student"):
            found = row.pop(f"{side}_filter")
            call = None if found is None else json.loads(found)
            row[f"{side}_filter"] = None if call is None else call["name"]
            row[f"{side}_intensity"] = None if call is None else call["intensity"]
    return rows


def count_tool_errors(session: Session, evaluation_id: int, tool: str,
                      only_flagged: bool = False) -> int:
    """How many rows `tool_errors` has in all (for paging)."""
    check_tool(tool)
    return int(session.value(
        "SELECT count(*) FROM evaluation_scores WHERE evaluation_id = ? AND tool = ? "
        "AND (NOT ? OR flagged)", [evaluation_id, tool, only_flagged]))


def filter_confusions(session: Session, evaluation_id: int,
                      limit: int = 10) -> list[dict[str, Any]]:
    """The most frequent wrong filters: (teacher name, student name, intents), most first.
    A name is None where that side used no filter."""
    rows = session.query(
        "SELECT d.filter AS teacher, p.filter AS student "
        "FROM evaluation_scores s JOIN evaluations e USING (evaluation_id) "
        "LEFT JOIN dataset_rows d ON d.version_id = e.version_id AND d.intent_key = s.intent_key "
        "LEFT JOIN evaluation_predictions p ON p.evaluation_id = s.evaluation_id "
        "AND p.sample_id = s.sample_id "
        "WHERE s.evaluation_id = ? AND s.tool = 'filter' AND s.flagged", [evaluation_id])

    def name(found: str | None) -> str | None:
        return None if found is None else str(json.loads(found)["name"])

    counts = Counter((name(row["teacher"]), name(row["student"])) for row in rows)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0][0]), str(item[0][1])))
    return [{"teacher": teacher, "student": student, "intents": n}
            for (teacher, student), n in ranked[:limit]]


def ranked_intents(session: Session, evaluation_id: int) -> list[dict[str, Any]]:
    """Every intent of an evaluation, worst first: by how many tools flag it, then by its
    largest cosine gap. Rows: intent_key, intent_text, n_flagged, max_gap."""
    return session.query(
        "SELECT s.intent_key, any_value(coalesce(d.intent_text, s.intent_key)) AS intent_text, "
        "count(*) FILTER (WHERE s.flagged) AS n_flagged, max(s.cosine_gap) AS max_gap "
        "FROM evaluation_scores s JOIN evaluations e USING (evaluation_id) "
        "LEFT JOIN dataset_rows d ON d.version_id = e.version_id AND d.intent_key = s.intent_key "
        "WHERE s.evaluation_id = ? GROUP BY s.intent_key "
        "ORDER BY n_flagged DESC, max_gap DESC NULLS LAST, s.intent_key", [evaluation_id])


# ------------------------------------------------------------------------------ one intent

@dataclass(frozen=True)
class EvaluatedIntent:
    """One intent of an evaluation: the teacher's ground truth, the student's answer, and the
    stored scores per tool (teacher_used, student_used, cosine, cosine_gap, similarity,
    intensity_error, flagged)."""

    intent_key: str
    intent_text: str
    split: str
    teacher: Answer
    student: Answer
    scores: dict[str, dict[str, Any]]


def evaluated_intent(session: Session, evaluation_id: int,
                     intent_key: str) -> EvaluatedIntent | None:
    """The teacher's and the student's answers for one intent of an evaluation, or None when
    the evaluation did not score that intent."""
    row = session.first(
        "SELECT d.intent_text, d.split, d.adjust AS t_adjust, "
        "d.selective_adjust AS t_selective_adjust, d.filter AS t_filter, "
        "p.adjust AS s_adjust, p.selective_adjust AS s_selective_adjust, p.filter AS s_filter "
        "FROM evaluation_predictions p JOIN evaluations e USING (evaluation_id) "
        "JOIN dataset_rows d ON d.version_id = e.version_id AND d.intent_key = p.intent_key "
        "WHERE p.evaluation_id = ? AND p.sample_id = ?", [evaluation_id, intent_key])
    if row is None:
        return None
    scores = {score.pop("tool"): score for score in session.query(
        "SELECT tool, teacher_used, student_used, cosine, cosine_gap, similarity, "
        "intensity_error, flagged FROM evaluation_scores "
        "WHERE evaluation_id = ? AND sample_id = ?", [evaluation_id, intent_key])}
    return EvaluatedIntent(
        intent_key, row["intent_text"], row["split"],
        answer_from_json(row["t_adjust"], row["t_selective_adjust"], row["t_filter"]),
        answer_from_json(row["s_adjust"], row["s_selective_adjust"], row["s_filter"]),
        scores)


# ------------------------------------------------------------------------------ the label queue

def intent_disagreement(session: Session, evaluation_id: int) -> list[dict[str, Any]]:
    """Per intent of an evaluation, how far the student is from the ground truth in the paper's
    terms, summed over the three tools (0 = the same answer): for adjust and
    selective_adjust 1 - cosine (an unused tool as the zero vector), for the filter 1 when one
    side used it and the other did not or the names differ, else 0. The cosine is signed, so
    an opposite answer counts up to 2 per vector tool and the sum lies in [0, 5] (evaluations
    stored before issue 15 hold negative cosines as 0: at most 3 there). Rows: intent_key,
    disagreement, n_flagged; most disagreeing first."""
    return session.query(
        "SELECT intent_key, sum(CASE WHEN tool = 'filter' THEN (CASE "
        "WHEN teacher_used AND student_used THEN 1 - similarity "
        "WHEN teacher_used = student_used THEN 0 ELSE 1 END) "
        "ELSE 1 - coalesce(cosine, 0) END) AS disagreement, "
        "count(*) FILTER (WHERE flagged) AS n_flagged FROM evaluation_scores "
        "WHERE evaluation_id = ? GROUP BY intent_key "
        "ORDER BY disagreement DESC, intent_key", [evaluation_id])


# ------------------------------------------------------------------------------ comparing runs

BASELINE_KINDS: tuple[str, ...] = ("self_consistency", "baseline")   # the ceiling, the floor


def evaluation_intent_scores(session: Session, evaluation_id: int) -> list[dict[str, Any]]:
    """Every stored per-intent, per-tool score of one evaluation (sample_id, intent_key, tool,
    teacher_used, student_used, similarity, cosine, intensity_error), ordered by sample and
    tool: what the paper's scores are recomputed from, e.g. on bootstrap resamples."""
    return session.query(
        "SELECT sample_id, intent_key, tool, teacher_used, student_used, similarity, cosine, "
        "intensity_error FROM evaluation_scores WHERE evaluation_id = ? "
        "ORDER BY sample_id, tool", [evaluation_id])


def latest_baselines(session: Session, version_id: int | None = None) -> dict[str, dict[str, Any]]:
    """The newest ceiling ('self_consistency') and floor ('baseline') evaluations on the test
    split of `version_id` (None: of the newest version that has any), by kind, summaries parsed;
    a kind never computed there is absent."""
    rows = session.query(
        "SELECT * FROM evaluations WHERE split = 'test' AND kind IN (?, ?) "
        "AND version_id = coalesce(?, (SELECT max(version_id) FROM evaluations "
        "WHERE split = 'test' AND kind IN (?, ?))) "
        "ORDER BY created_at DESC, evaluation_id DESC",
        [*BASELINE_KINDS, version_id, *BASELINE_KINDS])
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["kind"] not in found:
            row["summary"] = json.loads(row["summary"])
            found[row["kind"]] = row
    return found
