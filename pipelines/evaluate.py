"""Offline evaluation (SPEC 5) of predictions on a dataset version's test split, stored in DuckDB.

Three sources of predictions share one path (`evaluate_samples`):
- a predictions file (JSONL: `intent` plus the three tools in the log contract's teacher shape);
- the teacher against itself (`self_consistency`): every distinct teacher output of a test intent
  that is not the chosen ground truth, scored against it: how noisy the teacher is, and so the
  ceiling a student can be expected to reach;
- a trivial floor (`constant_answer`): one answer for every intent, the training split's mean.
Nothing is stored from an evaluation that fails validation.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError, listing
from workbench.log_readers import LogFormat, read_records
from workbench.log_records import intent_key
from workbench.metrics import (
    IntentScore,
    SubsetScore,
    flagged_for_augmentation,
    mean_cosines,
    score_intent,
    subset_score,
)
from workbench.store import Session, Store, evaluations, requests, runs
from workbench.store.versions import (
    Split,
    count_test_intents_trained_on,
    resolve_version,
    version_rows,
)
from workbench.tools import (
    ADJUST_KEYS,
    COLOURS,
    TOOLS,
    Answer,
    ToolValidationError,
    adjust_vector,
    answer_from_json,
    parse_answer,
    selective_adjust_vector,
)

SUBSETS: tuple[tuple[str, int], ...] = (("All", 1), ("r_3", 3), ("r_5", 5))
EXPORT_METADATA = frozenset({"split", "request_count", "origin", "source_intent", "label_id",
                             "label_source"})


class PredictionsError(WorkbenchError):
    """A predictions file that cannot be evaluated; the message names the records."""


class EvaluationKind(str, Enum):
    PREDICTIONS = "predictions"
    RUN = "run"
    SELF_CONSISTENCY = "self_consistency"
    BASELINE = "baseline"
    MINING = "mining"              # a run on its own training split, for augmentation flags


@dataclass(frozen=True)
class Sample:
    """One prediction to score: usually one per intent; several per intent for self-consistency."""

    sample_id: str
    intent_key: str
    request_count: int
    truth: Answer
    prediction: Answer


@dataclass(frozen=True)
class EvaluationResult:
    evaluation_id: int
    version_id: int
    split: str
    kind: str
    source: str
    n_samples: int
    subsets: list[SubsetScore]

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation_id": self.evaluation_id, "version_id": self.version_id,
                "split": self.split, "kind": self.kind, "source": self.source,
                "n_samples": self.n_samples, "subsets": [subset_to_dict(s) for s in self.subsets]}


def subset_to_dict(subset: SubsetScore) -> dict[str, Any]:
    return {"name": subset.name, "n_intents": subset.n_intents, "overall": subset.overall,
            "tools": {tool: {key: getattr(score, key) for key in (
                "n", "tp", "fp", "fn", "tn", "precision", "recall", "selection", "quality",
                "final", "intensity_error")} for tool, score in subset.tools.items()}}


# ---------------------------------------------------------------------------- predictions file

def read_predictions(path: Path) -> dict[str, tuple[Answer, str]]:
    """{intent key: (answer, 'line N')}; raises PredictionsError listing every bad record."""
    if not path.exists():
        raise PredictionsError(f"{path}: no such file")
    problems: list[str] = []
    found: dict[str, tuple[Answer, str]] = {}
    for raw in read_records(path, LogFormat.JSONL):
        where = f"{path.name} {raw.location}"
        if raw.record is None:
            problems.append(f"{where}: {raw.problem}")
            continue
        text = raw.record.get("intent")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: 'intent' must be a non-empty string")
            continue
        # `workbench export` rows are accepted as they are; any other key is an error, so
        # a misspelt tool name cannot silently count as "tool not used".
        tools = {key: value for key, value in raw.record.items()
                 if key != "intent" and key not in EXPORT_METADATA}
        try:
            answer = parse_answer(tools)
        except ToolValidationError as error:
            problems.append(f"{where} ({text!r}): {error}")
            continue
        key = intent_key(text)
        if key in found:
            problems.append(f"{where}: intent {text!r} already predicted on {found[key][1]}")
            continue
        found[key] = (answer, raw.location)
    if problems:
        raise PredictionsError(listing(f"{path}: {len(problems)} bad prediction record(s)",
                                        problems))
    if not found:
        raise PredictionsError(f"{path}: the file holds no predictions")
    return found


def _truth_rows(session: Session, version_id: int, split: Split) -> list[dict]:
    rows = version_rows(session, version_id, split)
    if not rows:
        raise WorkbenchError(f"dataset version {version_id} has no {split.value} rows")
    return rows


def _truth(row: dict) -> Answer:
    return answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])


def samples_from_predictions(rows: list[dict], predictions: dict[str, tuple[Answer, str]],
                             version_id: int) -> list[Sample]:
    """Match predictions to the split's intents: every intent exactly once, nothing extra."""
    keys = {row["intent_key"] for row in rows}
    missing = sorted(keys - set(predictions))
    extra = sorted(set(predictions) - keys)
    problems = []
    if missing:
        problems.append(listing(f"{len(missing)} test intent(s) of version {version_id} have no "
                                 "prediction", [repr(k) for k in missing]))
    if extra:
        problems.append(listing(
            f"{len(extra)} predicted intent(s) are not in the test split of version {version_id}",
            [f"{k!r} ({predictions[k][1]})" for k in extra]))
    if problems:
        raise PredictionsError("\n".join(problems))
    return [Sample(row["intent_key"], row["intent_key"], row["request_count"], _truth(row),
                   predictions[row["intent_key"]][0]) for row in rows]


# ---------------------------------------------------------------------------- scoring and storing

def score_samples(samples: list[Sample]) -> tuple[list[SubsetScore], list[IntentScore],
                                                  dict[str, set[str]], dict[str, float | None]]:
    """Subsets All / r_3 / r_5, per-sample scores, augmentation flags and the mean cosines."""
    per_sample = [(sample, score_intent(sample.sample_id, sample.truth, sample.prediction))
                  for sample in samples]
    subsets = [subset_score(name, [score for sample, scores in per_sample
                                   if sample.request_count >= k for score in scores],
                            n_intents=len({s.intent_key for s in samples if s.request_count >= k}))
               for name, k in SUBSETS]
    flat = [score for _, scores in per_sample for score in scores]
    means = mean_cosines(flat)
    return subsets, flat, flagged_for_augmentation(flat, means), means


def _hash(samples: list[Sample]) -> str:
    digest = hashlib.sha1()
    for sample in sorted(samples, key=lambda s: s.sample_id):
        digest.update(sample.sample_id.encode())
        digest.update(json.dumps(sample.prediction.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()


def evaluate_samples(session: Session, samples: list[Sample], kind: EvaluationKind, source: str,
                     version_id: int, split: Split) -> EvaluationResult:
    """Score and store one evaluation inside the caller's transaction."""
    subsets, scores, flags, means = score_samples(samples)
    by_id = {sample.sample_id: sample for sample in samples}
    summary = {"subsets": [subset_to_dict(s) for s in subsets], "mean_cosine": means,
               "flagged": {tool: len(keys) for tool, keys in flags.items()}}
    predictions: dict[str, list[Any]] = {
        "sample_id": [s.sample_id for s in samples],
        "intent_key": [s.intent_key for s in samples],
        **{tool: [s.prediction.tool_json(tool) for s in samples] for tool in TOOLS},
    }

    # similarity, cosine and the gap are signed (SPEC 5): an opposite answer stores cosine -1,
    # so the Errors page lists it before an unrelated one (0) and the flag rule sees it as such.
    def gap(score: IntentScore) -> float | None:
        mean = means.get(score.tool)
        return None if mean is None or score.cosine is None else mean - score.cosine

    scores_columns: dict[str, list[Any]] = {
        "sample_id": [s.intent_key for s in scores],
        "intent_key": [by_id[s.intent_key].intent_key for s in scores],
        "tool": [s.tool for s in scores],
        "teacher_used": [s.teacher_used for s in scores],
        "student_used": [s.student_used for s in scores],
        "similarity": [s.similarity for s in scores],
        "cosine": [s.cosine for s in scores],
        "cosine_gap": [gap(s) for s in scores],
        "intensity_error": [s.intensity_error for s in scores],
        "flagged": [s.intent_key in flags[s.tool] for s in scores],
    }
    evaluation_id = evaluations.record_evaluation(
        session, created_at=datetime.now(UTC), version_id=version_id, split=split.value,
        kind=kind.value, source=source, predictions_sha=_hash(samples), summary=summary,
        predictions=predictions, scores=scores_columns)
    return EvaluationResult(evaluation_id, version_id, split.value, kind.value, source,
                            len(samples), subsets)


@dataclass(frozen=True)
class EvaluateConfig:
    predictions: Path
    version: int | None = None


@dataclass(frozen=True)
class EvaluateRunConfig:
    """Evaluate a training run on a dataset version's test split."""

    run_id: str | None = None          # None: the latest run
    version: int | None = None         # None: the version the run was trained on


def run(config: EvaluateConfig, store: Store) -> EvaluationResult:
    """Evaluate a predictions file on a version's test split and store the evaluation."""
    predictions = read_predictions(Path(config.predictions))  # validated before the store opens
    with store.atomic() as session:
        version_id = resolve_version(session, config.version)
        rows = _truth_rows(session, version_id, Split.TEST)
        samples = samples_from_predictions(rows, predictions, version_id)
        return evaluate_samples(session, samples, EvaluationKind.PREDICTIONS,
                                str(config.predictions), version_id, Split.TEST)


def evaluate_run(run_id: str | None, version: int | None, store: Store,
                 encoder: Encoder | None = None) -> EvaluationResult:
    """Predict the test split with a student run (store closed meanwhile), then store the scores.

    The version defaults to the one the run was trained on, so its test split never leaked."""
    run, student = runs.load_run(store, run_id, encoder)
    with store.session() as session:
        version_id = resolve_version(session, version if version is not None
                                     else run["version_id"])
        rows = _truth_rows(session, version_id, Split.TEST)
        leaked = count_test_intents_trained_on(session, version_id, run["version_id"])
    if leaked:
        raise WorkbenchError(
            f"run {run['run_id']} was trained on version {run['version_id']}, whose training "
            f"split holds {leaked} of the test intents of version {version_id}; evaluating there "
            "would report training data as test results")
    predictions = student.predict([row["intent_text"] for row in rows])
    samples = [Sample(row["intent_key"], row["intent_key"], row["request_count"], _truth(row),
                      answer) for row, answer in zip(rows, predictions, strict=True)]
    with store.atomic() as session:
        return evaluate_samples(session, samples, EvaluationKind.RUN, run["run_id"], version_id,
                                Split.TEST)


# ---------------------------------------------------------------------------- ceiling and floor

def self_consistency_samples(session: Session, version_id: int) -> list[Sample]:
    """Every distinct teacher output of a test intent that differs from its ground truth."""
    rows = {row["intent_key"]: row for row in _truth_rows(session, version_id, Split.TEST)}
    outputs = requests.distinct_outputs(session, list(rows))
    samples: list[Sample] = []
    counter: Counter[str] = Counter()
    for output in outputs:
        row = rows[output["intent_key"]]
        truth = _truth(row)
        answer = answer_from_json(output["adjust"], output["selective_adjust"], output["filter"])
        if answer == truth:
            continue
        counter[row["intent_key"]] += 1
        samples.append(Sample(f"{row['intent_key']}#{counter[row['intent_key']]}",
                              row["intent_key"], row["request_count"], truth, answer))
    return samples


def constant_answer(train_rows: list[dict]) -> Answer:
    """The floor's one answer for every intent: each tool the training split ever uses, with the
    mean of its parameters over the intents that use it (rounded), and for the filter the most
    common name at the median intensity of that name. Always using every tool keeps every score
    defined, and a mean vector is a far stronger constant for cosine quality than the most
    common exact vector, so the floor is not a straw man."""
    answer: dict[str, Any] = {}
    for tool in ("adjust", "selective_adjust"):
        used = [_truth(row) for row in train_rows if row[tool] is not None]
        if used:
            vectors = [adjust_vector(a) if tool == "adjust" else selective_adjust_vector(a)
                       for a in used]
            mean = [round(sum(column) / len(used)) for column in zip(*vectors, strict=True)]
            if tool == "adjust":
                answer[tool] = dict(zip(ADJUST_KEYS, mean, strict=True))
            else:
                answer[tool] = {colour: {"saturation": mean[2 * i], "luminance": mean[2 * i + 1]}
                                for i, colour in enumerate(COLOURS)}
    filters = [json.loads(row["filter"]) for row in train_rows if row["filter"] is not None]
    if filters:
        # most_common breaks count ties by first occurrence; rows come sorted by intent.
        name = Counter(f["name"] for f in filters).most_common(1)[0][0]
        intensities = sorted(f["intensity"] for f in filters if f["name"] == name)
        answer["filter"] = {"name": name, "intensity": intensities[len(intensities) // 2]}
    return parse_answer(answer)


@dataclass(frozen=True)
class BaselinesResult:
    self_consistency: EvaluationResult
    constant: EvaluationResult
    constant_answer: Answer


def baselines(version: int | None, store: Store) -> BaselinesResult:
    """The teacher's self-consistency (ceiling) and the constant predictor (floor), stored."""
    with store.atomic() as session:
        version_id = resolve_version(session, version)
        consistency = self_consistency_samples(session, version_id)
        if not consistency:
            raise WorkbenchError(f"no test intent of version {version_id} has more than one "
                                 "distinct teacher output; there is no self-consistency to measure")
        ceiling = evaluate_samples(session, consistency, EvaluationKind.SELF_CONSISTENCY,
                                   "teacher self-consistency", version_id, Split.TEST)
        constant = constant_answer(_truth_rows(session, version_id, Split.TRAIN))
        test_rows = _truth_rows(session, version_id, Split.TEST)
        floor = evaluate_samples(session, [
            Sample(row["intent_key"], row["intent_key"], row["request_count"], _truth(row),
                   constant) for row in test_rows],
            EvaluationKind.BASELINE, "constant: the training split's mean answer",
            version_id, Split.TEST)
    return BaselinesResult(ceiling, floor, constant)
