"""Augmentation round (SPEC 6): mine a student's errors, paraphrase, deduplicate, queue for review.

    mine        the run predicts its own training split; an evaluation of kind 'mining' stores
                per intent and tool whether it is flagged (wrong filter, cosine below the mean)
    paraphrase  the offline paraphraser or an OpenAI-compatible LLM writes n new intents each
    dedup       embeddings (cached in DuckDB by text) against test, train and kept candidates
    history     a candidate a curator already decided on (rejected, approved, still pending) or
                that is already in a dataset version is dropped with that reason, not proposed
                again (checked inside the round's write, so two rounds at once see each other)
    queue       kept candidates wait as 'pending'; with auto_approve they are approved and
                committed into a new dataset version at once

The store is closed while the student predicts and while the paraphraser works; each write is
one short transaction, and the round itself (candidates, failures, summary) is written in one.
A round in which the paraphraser failed on every source intent stores nothing and raises
`ParaphraseError`; one with some failures stores them and counts them in the result.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pipelines import evaluate, review
from workbench.dedup import Decision, deduplicate
from workbench.embeddings import Encoder, embedding_dimension
from workbench.errors import WorkbenchError
from workbench.log_records import intent_key
from workbench.paraphrase import ParaphraseError, Paraphraser, ParaphraseResult
from workbench.progress import Progress
from workbench.store import Store, embeddings, evaluations, runs
from workbench.store.candidates import NewCandidate, decided_candidates, record_round
from workbench.store.versions import Split, resolve_version, version_rows
from workbench.tools import answer_from_json


class History(str, Enum):
    """Why a candidate is not proposed again (the `dropped` counts use these names)."""

    IN_VERSION = "already_in_version"
    REJECTED = "already_rejected"
    APPROVED = "already_approved"
    PENDING = "already_pending"


class ParaphraserChoice(str, Enum):
    AUTO = "auto"          # the LLM when an endpoint is configured, else offline
    OFFLINE = "offline"
    LLM = "llm"


@dataclass(frozen=True)
class AugmentConfig:
    run_id: str | None = None          # whose errors to mine; None: the latest run
    sources: tuple[str, ...] = ()      # intent keys to paraphrase instead of mining (the app)
    n: int = 5                         # candidates asked for per source intent
    threshold: float = 0.9             # drop a candidate at or above this cosine
    paraphraser: ParaphraserChoice = ParaphraserChoice.AUTO
    limit: int | None = None           # at most this many source intents (most-flagged first)
    auto_approve: bool = False         # approve every kept candidate and commit a new version
    seed: int = 0                      # for the offline paraphraser
    encoder: str | None = None         # dedup embeddings; None: all-MiniLM-L6-v2
    version: int | None = None         # with `sources`: the version they come from
    skip_decided: bool = True          # drop texts already rejected, approved, pending or in a
                                       # version; experiments turn it off so each arm stands alone

    def __post_init__(self) -> None:
        if self.n < 1:
            raise WorkbenchError(f"n must be at least 1, got {self.n}")
        if not 0 < self.threshold <= 1:
            raise WorkbenchError(f"the dedup threshold must be in (0, 1], got {self.threshold}")
        if self.limit is not None and self.limit < 1:
            raise WorkbenchError(f"limit must be at least 1, got {self.limit}")
        if self.run_id is not None and self.sources:
            raise WorkbenchError("give a run to mine or source intents, not both")


@dataclass(frozen=True)
class AugmentResult:
    augmentation_id: int
    version_id: int
    run_id: str | None
    mining_evaluation_id: int | None
    paraphraser: str
    n_flagged: int                     # training intents flagged by mining (0 with sources)
    n_sources: int                     # intents sent to the paraphraser
    n_generated: int
    n_kept: int
    dropped: dict[str, int]            # by reason
    n_failed: int                      # source intents the paraphraser failed on
    committed_version_id: int | None = None
    flagged_by_tool: dict[str, int] = field(default_factory=dict)
    first_failure: str | None = None   # the paraphraser's first error, when n_failed > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------- mining

def mine(run_id: str | None, store: Store, encoder: Encoder | None = None,
         progress: Progress | None = None) -> tuple[dict, int, list[str], dict[str, int]]:
    """Evaluate a run on its own training split and return (run, evaluation id, flagged intent
    keys most-flagged first, flags per tool)."""
    run, student = runs.load_run(store, run_id, encoder)
    with store.session() as session:
        rows = version_rows(session, run["version_id"], Split.TRAIN)
    if not rows:
        raise WorkbenchError(f"dataset version {run['version_id']} has no training rows")
    if progress:
        progress("predict", 0, len(rows))
    predictions = student.predict([row["intent_text"] for row in rows])
    if progress:
        progress("predict", len(rows), len(rows))
    samples = [evaluate.Sample(row["intent_key"], row["intent_key"], row["request_count"],
                               answer_from_json(row["adjust"], row["selective_adjust"],
                                                row["filter"]), answer)
               for row, answer in zip(rows, predictions, strict=True)]
    with store.atomic() as session:
        result = evaluate.evaluate_samples(session, samples, evaluate.EvaluationKind.MINING,
                                           run["run_id"], run["version_id"], Split.TRAIN)
        flagged = evaluations.flagged_intents(session, result.evaluation_id)
        by_tool = evaluations.flags_by_tool(session, result.evaluation_id)
    return run, result.evaluation_id, flagged, by_tool


# ------------------------------------------------------------------------------ embedding cache

def cached_embeddings(store: Store, encoder: Encoder, model: str, texts: Sequence[str],
                      progress: Progress | None = None) -> Any:
    """Unit embeddings (N, D) float32 for `texts`, computing and caching only unseen ones."""
    import numpy as np

    from workbench.embeddings import embed

    unique = list(dict.fromkeys(texts))
    found: dict[str, Any] = {}
    if unique:
        with store.session() as session:
            found = embeddings.cached_vectors(session, model, unique)
    missing = [text for text in unique if text not in found]
    if missing:
        computed = embed(encoder, missing, progress=progress)                     # (M, D)
        with store.atomic() as session:
            embeddings.cache_vectors(session, model, missing, computed)
        found.update(zip(missing, computed, strict=True))
    if not texts:
        return np.zeros((0, embedding_dimension(encoder)), dtype=np.float32)
    return np.stack([found[text] for text in texts]).astype(np.float32)


# ---------------------------------------------------------------------------------- paraphraser

def make_paraphraser(choice: ParaphraserChoice, store: Store, seed: int = 0) -> Paraphraser:
    """The configured LLM (environment or .streamlit/secrets.toml) or the offline paraphraser."""
    from workbench.llm import LLMClient, llm_config
    from workbench.paraphrase.llm import LLMParaphraser
    from workbench.paraphrase.offline import OfflineParaphraser

    if choice is ParaphraserChoice.OFFLINE:
        return OfflineParaphraser(seed=seed)
    config = llm_config()
    if config is None:
        if choice is ParaphraserChoice.LLM:
            raise WorkbenchError(
                "no LLM endpoint is configured: set WORKBENCH_LLM_BASE_URL and "
                "WORKBENCH_LLM_MODEL (and WORKBENCH_LLM_API_KEY), or use --paraphraser offline")
        return OfflineParaphraser(seed=seed)
    return LLMParaphraser(LLMClient(config, store))


# ------------------------------------------------------------------------------------ the round

def run(config: AugmentConfig, store: Store, progress: Progress | None = None,
        encoder: Encoder | None = None, paraphraser: Paraphraser | None = None) -> AugmentResult:
    """One augmentation round. `encoder` and `paraphraser` may be passed in (experiments, tests).

    Raises `ParaphraseError` (and stores nothing) when the paraphraser failed on every source
    intent."""
    from workbench.embeddings import load_encoder, model_path

    mining_id: int | None = None
    by_tool: dict[str, int] = {}
    if config.sources:
        with store.session() as session:
            version_id = resolve_version(session, config.version)
        run_row: dict | None = None
        source_keys = list(dict.fromkeys(intent_key(key) for key in config.sources))
        n_flagged = 0
    else:
        encoder = encoder if encoder is not None else load_encoder(config.encoder)
        run_row, mining_id, source_keys, by_tool = mine(config.run_id, store, encoder, progress)
        version_id = run_row["version_id"]
        n_flagged = len(source_keys)
    if config.limit is not None:
        source_keys = source_keys[:config.limit]

    with store.session() as session:
        rows = version_rows(session, version_id, Split.ALL)
    by_key = {row["intent_key"]: row for row in rows}
    unknown = [key for key in source_keys if by_key.get(key, {}).get("split") != "train"]
    if unknown:
        raise WorkbenchError(f"{len(unknown)} source intent(s) are not in the training split of "
                             f"version {version_id}: {', '.join(map(repr, unknown[:5]))}")
    if not source_keys:
        raise WorkbenchError("nothing to augment: mining flagged no training intent")

    texts = [by_key[key]["intent_text"] for key in source_keys]
    if paraphraser is None:
        made = make_paraphraser(config.paraphraser, store, config.seed)
        try:
            results = made.paraphrase(texts, config.n, progress)
        finally:
            close = getattr(made, "close", None)
            if close is not None:
                close()
        paraphraser = made
    else:
        results = paraphraser.paraphrase(texts, config.n, progress)
    _raise_if_all_failed(paraphraser.name, results)
    # Loaded only now: a round whose paraphraser failed on everything fails fast.
    encoder = encoder if encoder is not None else load_encoder(config.encoder)

    # Candidates in order; the same text twice (from two sources) is one candidate.
    candidates: list[tuple[str, str, str]] = []          # (source key, key, text)
    seen: set[str] = set()
    failures: list[tuple[str, str]] = []
    for key, result in zip(source_keys, results, strict=True):
        if result.error is not None:
            failures.append((key, result.error))
        for text in result.candidates:
            new_key = intent_key(text)
            if new_key and new_key not in seen and new_key != key:
                seen.add(new_key)
                candidates.append((key, new_key, text.strip()))

    model = config.encoder or model_path(None)
    train_texts = [row["intent_text"] for row in rows if row["split"] == "train"]
    test_texts = [row["intent_text"] for row in rows if row["split"] == "test"]
    train = cached_embeddings(store, encoder, model, train_texts, progress)
    test = cached_embeddings(store, encoder, model, test_texts, progress)
    found = cached_embeddings(store, encoder, model, [text for _, _, text in candidates],
                              progress)
    decisions = deduplicate(found, train, test, config.threshold)

    def neighbour(kind: str | None, index: int | None) -> str | None:
        if kind is None or index is None:
            return None
        texts = {"train": train_texts, "test": test_texts,
                 "candidate": [text for _, _, text in candidates]}[kind]
        return texts[index]

    with store.atomic() as session:
        # Read inside the round's own write: a round running at the same time sees this one.
        history = decided_candidates(session, [key for _, key, _ in candidates]) \
            if config.skip_decided else {}
        outcomes = [_Outcome.of(decision, history.get(key), neighbour)
                    for (_, key, _), decision in zip(candidates, decisions, strict=True)]
        dropped = Counter(outcome.code for outcome in outcomes if outcome.code is not None)
        n_kept = sum(outcome.kept for outcome in outcomes)
        augmentation_id = record_round(
            session, datetime.now(UTC), None if run_row is None else run_row["run_id"],
            version_id, mining_id, paraphraser.name, json.dumps(asdict(config), default=str),
            {"flagged": n_flagged, "sources": len(source_keys), "generated": len(candidates),
             "kept": n_kept, "dropped": dict(dropped), "failed": len(failures)},
            [NewCandidate(source, key, text, by_key[source]["adjust"],
                          by_key[source]["selective_adjust"], by_key[source]["filter"],
                          outcome.kept, outcome.reason, outcome.nearest_text,
                          outcome.nearest_kind, outcome.similarity)
             for (source, key, text), outcome in zip(candidates, outcomes, strict=True)],
            failures)

    committed = None
    if config.auto_approve and n_kept:
        review.set_status(store, review.ReviewFilter(augmentation_id=augmentation_id,
                                                     status=review.Status.PENDING),
                          review.Status.APPROVED, by="auto-approve")
        committed = review.commit(store, augmentation_id, by="auto-approve",
                                  note=f"augmentation {augmentation_id}, auto-approved").version_id
    return AugmentResult(augmentation_id, version_id, None if run_row is None else
                         run_row["run_id"], mining_id, paraphraser.name, n_flagged,
                         len(source_keys), len(candidates), n_kept, dict(dropped),
                         len(failures), committed, by_tool,
                         failures[0][1] if failures else None)


def _raise_if_all_failed(name: str, results: Sequence[ParaphraseResult]) -> None:
    """ParaphraseError when there were source intents and the paraphraser failed on each."""
    errors = [result.error for result in results
              if result.error is not None and not result.candidates]
    if not results or len(errors) < len(results):
        return
    said = f"the first failure: {errors[0]}"
    if errors[-1] != errors[0]:
        said += f"; the last: {errors[-1]}"
    raise ParaphraseError(
        f"the paraphraser {name} failed on all {len(results)} source intent(s), so no round was "
        f"stored ({said}). Check the endpoint (Settings > Test connection in the app) and try "
        "again, or use the offline paraphraser")


@dataclass(frozen=True)
class _Outcome:
    """What becomes of one candidate: dedup's decision, overridden by the review history."""

    kept: bool
    code: str | None                   # for the counts: a DropReason or History value
    reason: str | None                 # stored in candidates.drop_reason
    nearest_text: str | None
    nearest_kind: str | None
    similarity: float | None

    @classmethod
    def of(cls, decision: Decision, earlier: dict | None,
           neighbour: Callable[[str | None, int | None], str | None]) -> _Outcome:
        # A near-test drop keeps its reason: it is the leakage guard, whatever else applies.
        if earlier is not None and (decision.reason is None
                                    or decision.reason.value != "near_test"):
            code, reason = _history_reason(earlier)
            return cls(False, code.value, reason, earlier["intent_text"], None, None)
        reason_code = None if decision.reason is None else decision.reason.value
        return cls(decision.kept, reason_code, reason_code,
                   neighbour(decision.nearest_kind, decision.nearest_index),
                   decision.nearest_kind, decision.similarity)


def _history_reason(earlier: dict) -> tuple[History, str]:
    number = f"candidate #{earlier['candidate_id']}"
    if earlier["committed_version_id"] is not None:
        return (History.IN_VERSION,
                f"already in dataset version {earlier['committed_version_id']} ({number})")
    code = {"rejected": History.REJECTED, "approved": History.APPROVED,
            "pending": History.PENDING}[earlier["status"]]
    return code, f"already {earlier['status']} ({number})"

