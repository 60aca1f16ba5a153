"""Error analysis for the app's Errors and Augmentation pages: a student's evaluations, per tool
the intents it gets most wrong (cosine gap, wrong filters), one intent's teacher and student
parameters side by side, and the small listings the Augmentation page needs (runs, rounds,
which selected intents are training intents). Every query takes bound parameters.

Teacher answers are the ground truth in `dataset_rows` of the evaluation's version; student
answers are the evaluation's `evaluation_predictions`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.store import Session
from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    TOOLS,
    Answer,
    adjust_vector,
    answer_from_json,
    selective_adjust_vector,
)

# Evaluations of a student run: on the test split ('run', from `workbench evaluate --run`) and
# on its own training split ('mining', from `workbench augment`).
STUDENT_EVALUATION_KINDS: tuple[str, ...] = ("run", "mining")

# Per tool, how its intents are ranked (fixed SQL, chosen by name: never built from input).
# Vector tools: the largest cosine gap (the tool's mean cosine minus this intent's) first.
# Filter: wrong ones first, then the largest intensity error.
_ORDER = {
    "adjust": "s.cosine_gap DESC NULLS LAST, s.intent_key",
    "selective_adjust": "s.cosine_gap DESC NULLS LAST, s.intent_key",
    "filter": "s.flagged DESC, s.intensity_error DESC NULLS LAST, s.intent_key",
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def escape_markdown(text: str) -> str:
    """`text` with every character that Streamlit's markdown gives a meaning backslash-escaped,
    so data (intents, error messages quoting them) shows as written in st.error / st.markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _check_tool(tool: str) -> None:
    if tool not in TOOLS:
        raise WorkbenchError(f"unknown tool {tool!r}; choose one of {', '.join(TOOLS)}")


# ------------------------------------------------------------------------------- evaluations

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


def evaluation_label(evaluation: dict[str, Any]) -> str:
    """One line naming an evaluation: '#3 · run 2024…-heads-1a2b (heads) · version 1 test ·
    2024-11-25 16:48'."""
    student = f" ({evaluation['student']})" if evaluation.get("student") else ""
    created = evaluation["created_at"]
    when = created.strftime("%Y-%m-%d %H:%M") if hasattr(created, "strftime") else str(created)
    return (f"#{evaluation['evaluation_id']} · run {evaluation['run_id']}{student} · "
            f"version {evaluation['version_id']} {evaluation['split']} · {when}")


def tool_errors(session: Session, evaluation_id: int, tool: str, *, only_flagged: bool = False,
                limit: int = 25, offset: int = 0) -> list[dict[str, Any]]:
    """One page of an evaluation's intents for one tool, worst first (see `_ORDER`).

    Each row: intent_key, intent_text, teacher_used, student_used, cosine, cosine_gap,
    similarity, intensity_error, flagged, and the filter names and intensities of both sides
    (None where a side did not use the filter)."""
    _check_tool(tool)
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
    _check_tool(tool)
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


# ----------------------------------------------------------------------------- one intent

@dataclass(frozen=True)
class IntentDetail:
    """One intent of an evaluation: the teacher's ground truth, the student's answer, and the
    stored scores per tool (teacher_used, student_used, cosine, cosine_gap, similarity,
    intensity_error, flagged)."""

    intent_key: str
    intent_text: str
    split: str
    teacher: Answer
    student: Answer
    scores: dict[str, dict[str, Any]]


def intent_detail(session: Session, evaluation_id: int, intent_key: str) -> IntentDetail | None:
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
    return IntentDetail(
        intent_key, row["intent_text"], row["split"],
        answer_from_json(row["t_adjust"], row["t_selective_adjust"], row["t_filter"]),
        answer_from_json(row["s_adjust"], row["s_selective_adjust"], row["s_filter"]),
        scores)


def parameter_table(teacher: Answer, student: Answer, tool: str) -> list[dict[str, Any]]:
    """Teacher and student side by side for one tool, one row per parameter.

    adjust: the 14 sliders; selective_adjust: the 12 values ('red.saturation', ...); integers,
    None on a side that did not use the tool, and `difference` = student - teacher with an unused
    tool counted as zeros (as the cosine counts it). filter: rows 'name' and 'intensity' as text
    (None on a side that used no filter); the difference says 'same' or 'different' for the name
    and gives student - teacher for the intensity when both used a filter."""
    _check_tool(tool)
    if tool == "filter":
        t, s = teacher.filter, student.filter
        name_difference = "same" if (t and t.name) == (s and s.name) else "different"
        intensity = None if t is None or s is None else f"{s.intensity - t.intensity:+d}"
        return [
            {"parameter": "name", "teacher": None if t is None else t.name,
             "student": None if s is None else s.name, "difference": name_difference},
            {"parameter": "intensity", "teacher": None if t is None else str(t.intensity),
             "student": None if s is None else str(s.intensity), "difference": intensity},
        ]
    if tool == "adjust":
        names: Sequence[str] = ADJUST_KEYS
        vectors = adjust_vector(teacher), adjust_vector(student)
    else:
        names = [f"{colour}.{channel}" for colour in COLOURS for channel in COLOUR_CHANNELS]
        vectors = selective_adjust_vector(teacher), selective_adjust_vector(student)
    used = teacher.uses(tool), student.uses(tool)
    return [{"parameter": name,
             "teacher": t_value if used[0] else None,
             "student": s_value if used[1] else None,
             "difference": s_value - t_value}
            for name, t_value, s_value in zip(names, *vectors, strict=True)]


# ----------------------------------------------------------------------------- augmentation

def classify_sources(session: Session, version_id: int,
                     keys: Sequence[str]) -> dict[str, list[str]]:
    """Split intent keys by where they are in a version: 'train', 'test', or 'unknown' (not in
    the version at all). Order is kept; only training intents may be paraphrased."""
    found = {row["intent_key"]: row["split"] for row in session.query(
        "SELECT intent_key, split FROM dataset_rows WHERE version_id = ? "
        "AND list_contains(?, intent_key)", [version_id, list(keys)])}
    result: dict[str, list[str]] = {"train": [], "test": [], "unknown": []}
    for key in dict.fromkeys(keys):
        result[found.get(key, "unknown")].append(key)
    return result


def version_exists(session: Session, version_id: int | None) -> bool:
    return version_id is not None and session.value(
        "SELECT count(*) FROM dataset_versions WHERE version_id = ?", [version_id]) > 0


def intent_texts(session: Session, version_id: int, keys: Sequence[str]) -> dict[str, str]:
    """{intent key: display text} for the keys found in a version."""
    return {row["intent_key"]: row["intent_text"] for row in session.query(
        "SELECT intent_key, intent_text FROM dataset_rows WHERE version_id = ? "
        "AND list_contains(?, intent_key)", [version_id, list(keys)])}


def student_runs(session: Session) -> list[dict[str, Any]]:
    """Training runs, newest first: run_id, student, version_id, n_train, started_at, note."""
    return session.query(
        "SELECT run_id, student, version_id, n_train, started_at, note FROM runs "
        "ORDER BY started_at DESC, run_id DESC")


def augmentation_rounds(session: Session) -> list[dict[str, Any]]:
    """Augmentation rounds, newest first, with the summary parsed and the candidates counted by
    status: pending, approved, rejected, dropped (all, committed or not), and committed (in a
    version already) and approved_uncommitted (what a commit would add)."""
    rows = session.query(
        "SELECT a.augmentation_id, a.created_at, a.run_id, a.version_id, a.paraphraser, "
        "a.summary, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'pending') AS pending, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'approved') AS approved, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'rejected') AS rejected, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'dropped') AS dropped, "
        "count(c.candidate_id) FILTER (WHERE c.committed_version_id IS NOT NULL) AS committed, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'approved' "
        "AND c.committed_version_id IS NULL) AS approved_uncommitted "
        "FROM augmentations a LEFT JOIN candidates c USING (augmentation_id) "
        "GROUP BY ALL ORDER BY a.created_at DESC, a.augmentation_id DESC")
    for row in rows:
        row["summary"] = json.loads(row["summary"])
    return rows


def round_label(round_: dict[str, Any]) -> str:
    """'Round 2 · mined run X · version 1 · offline · 2024-11-25 18:02' (or 'hand-picked')."""
    created = round_["created_at"]
    when = created.strftime("%Y-%m-%d %H:%M") if hasattr(created, "strftime") else str(created)
    origin = f"mined run {round_['run_id']}" if round_["run_id"] else "hand-picked intents"
    return (f"Round {round_['augmentation_id']} · {origin} · version {round_['version_id']} · "
            f"{round_['paraphraser']} · {when}")
