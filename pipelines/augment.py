"""Augmentation round (SPEC 6): mine a student's errors, paraphrase, deduplicate, queue for review.

    mine        the run predicts its own training split; an evaluation of kind 'mining' stores
                per intent and tool whether the paper's rule flags it (wrong filter, cosine
                below the mean); a `MiningStrategy` then picks the source intents from it, most
                wrong first: the paper's rule (mean), a margin below the mean, the worst k% by
                one loss over the three tools (`metrics.intent_losses`), or every intent of the
                weak slices (`workbench.slices`: k-means clusters scored with the paper's
                metrics)
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
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipelines import evaluate, review
from workbench import dedup
from workbench.ann import persisted_index
from workbench.dedup import Decision, deduplicate
from workbench.embeddings import Encoder, embedding_dimension
from workbench.errors import WorkbenchError
from workbench.log_records import intent_key
from workbench.metrics import (
    IntentScore,
    flagged_for_augmentation,
    intent_losses,
    mean_cosines,
    score_intent,
)
from workbench.paraphrase import ParaphraseError, Paraphraser, ParaphraseResult
from workbench.progress import Progress
from workbench.slices import DEFAULT_GAP, Slice, SlicesResult, build_slices
from workbench.store import Store, embeddings, runs
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


class MiningStrategy(str, Enum):
    """How mining turns a student's training-split evaluation into source intents."""

    MEAN = "mean"        # the paper's rule (kept for the replication)
    MARGIN = "margin"    # below the tool's mean by more than `margin`
    WORST = "worst"      # the worst `worst_percent` % of training intents by one per-intent loss
    SLICES = "slices"    # clusters of training intents well below the student's average


class NothingToAugment(WorkbenchError):
    """Mining flagged no training intent: there is nothing to paraphrase."""


@dataclass(frozen=True)
class MiningConfig:
    strategy: MiningStrategy = MiningStrategy.MEAN
    margin: float = 0.1            # margin
    worst_percent: float = 20.0    # worst
    clusters: int | None = None    # slices: k for k-means; None: chosen from the training size
    slice_gap: float = 0.05        # slices: flag clusters whose Overall is at least this below
                                   # the student's

    def __post_init__(self) -> None:
        try:
            strategy = MiningStrategy(self.strategy)
        except ValueError:
            names = ", ".join(member.value for member in MiningStrategy)
            raise WorkbenchError(f"unknown mining strategy {self.strategy!r}; "
                                 f"choose one of {names}") from None
        object.__setattr__(self, "strategy", strategy)
        if not 0 <= self.margin <= 2:
            raise WorkbenchError(f"the mining margin must be in [0, 2] (a cosine difference), "
                                 f"got {self.margin}")
        if not 0 < self.worst_percent <= 100:
            raise WorkbenchError(f"worst_percent must be in (0, 100], got {self.worst_percent}")
        if self.clusters is not None and self.clusters < 2:
            raise WorkbenchError(f"slices need at least 2 clusters, got {self.clusters}")
        if not 0 <= self.slice_gap <= 1:
            raise WorkbenchError(f"slice_gap must be in [0, 1] (an Overall difference), "
                                 f"got {self.slice_gap}")


@dataclass(frozen=True)
class AugmentConfig:
    run_id: str | None = None          # whose errors to mine; None: the latest run
    sources: tuple[str, ...] = ()      # intent keys to paraphrase instead of mining (the app)
    n: int = 5                         # candidates asked for per source intent
    threshold: float = 0.9             # drop a candidate at or above this cosine
    paraphraser: ParaphraserChoice = ParaphraserChoice.AUTO
    limit: int | None = None           # at most this many source intents (most wrong first)
    auto_approve: bool = False         # approve every kept candidate and commit a new version
    seed: int = 0                      # the offline paraphraser's and the slices' k-means
    encoder: str | None = None         # dedup embeddings; None: all-MiniLM-L6-v2
    version: int | None = None         # with `sources`: the version they come from
    skip_decided: bool = True          # drop texts already rejected, approved, pending or in a
                                       # version; experiments turn it off so each arm stands alone
    mining: MiningConfig = MiningConfig()   # which training intents mining sends on

    def __post_init__(self) -> None:
        if self.n < 1:
            raise WorkbenchError(f"n must be at least 1, got {self.n}")
        if not 0 < self.threshold <= 1:
            raise WorkbenchError(f"the dedup threshold must be in (0, 1], got {self.threshold}")
        if self.limit is not None and self.limit < 1:
            raise WorkbenchError(f"limit must be at least 1, got {self.limit}")
        if self.run_id is not None and self.sources:
            raise WorkbenchError("give a run to mine or source intents, not both")
        if not isinstance(self.mining, MiningConfig):
            raise WorkbenchError(f"mining must be a MiningConfig, got {type(self.mining).__name__}")


@dataclass(frozen=True)
class AugmentResult:
    augmentation_id: int
    version_id: int
    run_id: str | None
    mining_evaluation_id: int | None
    paraphraser: str
    n_flagged: int                     # training intents the strategy picked (0 with sources)
    n_sources: int                     # intents sent to the paraphraser
    n_generated: int
    n_kept: int
    dropped: dict[str, int]            # by reason
    n_failed: int                      # source intents the paraphraser failed on
    committed_version_id: int | None = None
    flagged_by_tool: dict[str, int] = field(default_factory=dict)   # of those, per tool
                                       # flagged (paper's rule; margin's for `margin`)
    first_failure: str | None = None   # the paraphraser's first error, when n_failed > 0
    strategy: str = MiningStrategy.MEAN.value   # the mining strategy ("sources" for a round
                                                # given its source intents)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------- mining

def worst_count(n_intents: int, percent: float) -> int:
    """How many intents "the worst `percent` %" of `n_intents` is: rounded half up (25% of 10
    is 3, 24% is 2), and at least 1 when there are intents. The percent is read as written
    (decimal, not binary), so 14.5% of 200 is exactly 29."""
    if n_intents <= 0:
        return 0
    exact = Fraction(n_intents) * Fraction(str(percent)) / 100
    return max(1, math.floor(exact + Fraction(1, 2)))


def margin_flags(scores: Sequence[IntentScore], margin: float) -> dict[str, set[str]]:
    """The paper's rule with a margin: adjust and selective_adjust flag an intent whose cosine
    is below the tool's mean by more than `margin` (cosine < mean - margin); the filter flags
    as the paper's rule does (a wrong name, or used on one side only). margin 0 is the paper's
    rule exactly."""
    means = mean_cosines(scores)
    shifted = {tool: None if mean is None else mean - margin for tool, mean in means.items()}
    return flagged_for_augmentation(scores, shifted)


def _by_flags(flags: dict[str, set[str]]) -> dict[str, int]:
    """{intent key: how many tools flag it}."""
    counts: Counter[str] = Counter()
    for keys in flags.values():
        counts.update(keys)
    return dict(counts)


def _tool_counts(flags: dict[str, set[str]], chosen: Sequence[str]) -> dict[str, int]:
    """{tool: how many of `chosen` it flags} (tools that flag none of them are absent)."""
    wanted = set(chosen)
    return {tool: len(keys & wanted) for tool, keys in flags.items() if keys & wanted}


@dataclass(frozen=True)
class MiningSelection:
    """What a strategy sends on: source intent keys, most wrong first, and how many of them
    each tool flags (by the paper's rule, or with the margin for `margin`)."""

    sources: list[str]
    by_tool: dict[str, int]


def select_sources(scores: Sequence[IntentScore], mining: MiningConfig,
                   slices: Sequence[Slice] = ()) -> MiningSelection:
    """The source intents of one strategy, from a mining evaluation's per-intent scores
    (`IntentScore`s of the training split; the intent key is the sample id).

    mean    every intent the paper's rule flags, most-flagged first, then by key (exactly
            the order `flagged_intents` reads back from the store)
    margin  `margin_flags`, most-flagged first, then the larger `intent_losses`, then key
    worst   the `worst_count` intents with the largest loss (ties: more tools flagged by
            the paper's rule, then key); an intent with loss 0 is never sent
    slices  the intents of the flagged `slices` (`workbench.slices.Slice`, worst first), in
            the order each slice lists them
    """
    paper = flagged_for_augmentation(scores, mean_cosines(scores))
    paper_counts = _by_flags(paper)
    strategy = MiningStrategy(mining.strategy)
    if strategy is MiningStrategy.MEAN:
        sources = sorted(paper_counts, key=lambda key: (-paper_counts[key], key))
        return MiningSelection(sources, _tool_counts(paper, sources))
    losses = intent_losses(scores)
    if strategy is MiningStrategy.MARGIN:
        flags = margin_flags(scores, mining.margin)
        counts = _by_flags(flags)
        sources = sorted(counts, key=lambda key: (-counts[key], -losses[key], key))
        return MiningSelection(sources, _tool_counts(flags, sources))
    if strategy is MiningStrategy.WORST:
        ranked = sorted((key for key, loss in losses.items() if loss > 0),
                        key=lambda key: (-losses[key], -paper_counts.get(key, 0), key))
        sources = ranked[:worst_count(len(losses), mining.worst_percent)]
        return MiningSelection(sources, _tool_counts(paper, sources))
    sources = [key for found in slices if found.flagged for key in found.intent_keys]
    return MiningSelection(sources, _tool_counts(paper, sources))


@dataclass(frozen=True)
class Mined:
    """A run's mining: the run row, the stored mining evaluation, the strategy's selection and
    the slices it was chosen from (empty unless the strategy is `slices`)."""

    run: dict
    evaluation_id: int
    selection: MiningSelection
    slices: list[Slice]


def mine(run_id: str | None, store: Store, encoder: Encoder | None = None,
         progress: Progress | None = None, mining: MiningConfig = MiningConfig(),
         seed: int = 0, model: str | None = None) -> tuple[dict, int, list[str], dict[str, int]]:
    """Evaluate a run on its own training split (stored, kind 'mining': the paper's flags per
    intent and tool) and return (run, evaluation id, source intent keys most wrong first by
    `mining`'s strategy, how many of them each tool flags). `seed` seeds the slices' k-means,
    `model` names the encoder in the embedding cache (default: the bundled MiniLM)."""
    found = mine_run(run_id, store, encoder, progress, mining, seed, model)
    return found.run, found.evaluation_id, found.selection.sources, found.selection.by_tool


def mine_run(run_id: str | None, store: Store, encoder: Encoder | None = None,
             progress: Progress | None = None, mining: MiningConfig = MiningConfig(),
             seed: int = 0, model: str | None = None) -> Mined:
    """`mine`, returning the slices too (`workbench slices` and the app show them)."""
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
    scores = [score for sample in samples
              for score in score_intent(sample.sample_id, sample.truth, sample.prediction)]
    found: list[Slice] = []
    if MiningStrategy(mining.strategy) is MiningStrategy.SLICES:
        found = slices_of_rows(store, rows, scores, encoder, model, k=mining.clusters,
                               seed=seed, gap=mining.slice_gap, progress=progress).slices
    return Mined(run, result.evaluation_id, select_sources(scores, mining, found), found)


def slices_of_rows(store: Store, rows: Sequence[dict[str, Any]], scores: Sequence[IntentScore],
                   encoder: Encoder | None = None, model: str | None = None,
                   k: int | None = None, seed: int = 0, gap: float = DEFAULT_GAP,
                   progress: Progress | None = None, run_id: str | None = None,
                   evaluation_id: int | None = None,
                   version_id: int | None = None) -> SlicesResult:
    """The slices (`workbench.slices`) of training rows (`version_rows`: intent_key,
    intent_text) scored by `scores`; embeddings from the cache (computed with `encoder`, or
    `model` loaded, where missing)."""
    from workbench.embeddings import model_path

    model = model or model_path(None)
    keys = [row["intent_key"] for row in rows]
    texts = [row["intent_text"] for row in rows]
    vectors = cached_embeddings(store, encoder, model, texts, progress)           # (N, D)
    if progress:
        progress("cluster", 0, 1)
    used, overall, found = build_slices(keys, texts, vectors, scores, k, seed, gap)
    if progress:
        progress("cluster", 1, 1)
    return SlicesResult(run_id, evaluation_id, version_id, len(keys), used, seed, gap, overall,
                        found)


# ------------------------------------------------------------------------------ embedding cache

def cached_embeddings(store: Store, encoder: Encoder | None, model: str, texts: Sequence[str],
                      progress: Progress | None = None) -> Any:
    """Unit embeddings (N, D) float32 for `texts`, computing and caching only unseen ones.

    `encoder` None loads `model` when some text is not cached yet; a read-only store (the app)
    computes those without caching them."""
    import numpy as np

    from workbench.embeddings import embed, load_encoder

    unique = list(dict.fromkeys(texts))
    found: dict[str, Any] = {}
    if unique:
        with store.session() as session:
            found = embeddings.cached_vectors(session, model, unique)
    missing = [text for text in unique if text not in found]
    if missing:
        encoder = encoder if encoder is not None else load_encoder(model)
        computed = embed(encoder, missing, progress=progress)                     # (M, D)
        if not store.read_only:
            with store.atomic() as session:
                embeddings.cache_vectors(session, model, missing, computed)
        found.update(zip(missing, computed, strict=True))
    if not texts:
        encoder = encoder if encoder is not None else load_encoder(model)
        return np.zeros((0, embedding_dimension(encoder)), dtype=np.float32)
    return np.stack([found[text] for text in texts]).astype(np.float32)


def index_folder(store: Store, model: str) -> Path:
    """Where the training intents' nearest-neighbour index for `model` is kept: beside the
    database, `<db>.ann/<model's last path part>-<hash of the model name>/train`."""
    import hashlib
    import re

    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model.rstrip("/")).name)[:60] or "model"
    digest = hashlib.sha256(model.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return store.path.with_name(f"{store.path.name}.ann") / f"{tail}-{digest}" / "train"


def training_side(store: Store, model: str, texts: list[str], vectors: Any,
                  candidates: int) -> tuple[Any, list[str]]:
    """What dedup checks candidates against for the training intents, and the text of each of
    its rows: the index kept beside the database (`index_folder`, `ann.persisted_index`) when
    the training set has at least dedup.INDEX_FROM intents and the index is already there (it is
    extended with the intents added since) or the round has at least dedup.BUILD_FOR candidates
    (building it then pays); else the exact matrix. A read-only store keeps to the matrix."""
    folder = index_folder(store, model)
    if (store.read_only or len(texts) < dedup.INDEX_FROM
            or not (folder.exists() or candidates >= dedup.BUILD_FOR)
            or len(set(texts)) != len(texts)):
        return vectors, texts
    held = persisted_index(folder, texts, vectors)
    return held.index, held.texts


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
    strategy = "sources"
    if config.sources:
        with store.session() as session:
            version_id = resolve_version(session, config.version)
        run_row: dict | None = None
        source_keys = list(dict.fromkeys(intent_key(key) for key in config.sources))
        n_flagged = 0
    else:
        encoder = encoder if encoder is not None else load_encoder(config.encoder)
        mined = mine_run(config.run_id, store, encoder, progress, config.mining, config.seed,
                         config.encoder or model_path(None))
        run_row, mining_id = mined.run, mined.evaluation_id
        source_keys, by_tool = mined.selection.sources, mined.selection.by_tool
        version_id = run_row["version_id"]
        n_flagged = len(source_keys)
        strategy = MiningStrategy(config.mining.strategy).value
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
        raise NothingToAugment("nothing to augment: " + _nothing_flagged(config.mining))

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
    against, against_texts = training_side(store, model, train_texts, train, len(found))
    decisions = deduplicate(found, against, test, config.threshold)

    def neighbour(kind: str | None, index: int | None) -> str | None:
        if kind is None or index is None:
            return None
        texts = {"train": against_texts, "test": test_texts,
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
                         failures[0][1] if failures else None, strategy)


def _nothing_flagged(mining: MiningConfig) -> str:
    """Why a strategy sent no intent, and what to try instead."""
    strategy = MiningStrategy(mining.strategy)
    if strategy is MiningStrategy.SLICES:
        return (f"no slice's Overall is {mining.slice_gap} or more below the student's on its "
                "training split; lower --slice-gap or try --strategy worst")
    if strategy is MiningStrategy.MARGIN:
        return (f"no training intent is more than {mining.margin} below its tool's mean cosine "
                "or has a wrong filter; lower --margin")
    if strategy is MiningStrategy.WORST:
        return "the student answers every training intent exactly as the teacher does"
    return "mining flagged no training intent"


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

