"""Search intents by meaning, and the 2-D map of the intents.

Every intent's all-MiniLM-L6-v2 embedding lives in the embedding cache (`store.embeddings`, the
same rows augmentation's dedup reads and writes). `run` embeds the intents that have none yet,
most requested first, in chunks that are each written in one short transaction, so a cancelled
or killed run keeps what it finished and the next run goes on from there.

A search embeds the query and ranks the intents by cosine: one (N, D) x (D,) float32 product over
the unit vectors held in memory (`IntentIndex`), then a partial sort. That is exact, needs no
index to build or keep in step with the cache, and at 333,333 intents x 384 (512 MB) takes tens
of milliseconds on two cores (benchmarks/meaning_benchmark.py).

The map projects the vectors onto their first two principal components (PCA by the eigenvectors
of the covariance of at most `MAP_POINTS` sampled intents), so similar intents land close
together; the sample keeps the plot light at any corpus size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.store import Store, embeddings, requests

DEFAULT_CHUNK = 2048        # intents embedded, then cached in one transaction
DEFAULT_RESULTS = 20        # nearest intents a search returns
MAP_POINTS = 20_000         # at most this many intents are drawn on the map


class MeaningError(WorkbenchError):
    """A search or map that cannot be made (no embeddings yet, an empty query)."""


@dataclass(frozen=True)
class EmbedIntentsConfig:
    encoder: str | None = None       # None: the bundled all-MiniLM-L6-v2 (as augmentation)
    batch_size: int = 256
    chunk: int = DEFAULT_CHUNK


@dataclass(frozen=True)
class EmbedIntentsResult:
    model: str
    n_intents: int                   # intents in the logs
    n_embedded: int                  # embedded by this run
    n_cached: int                    # intents with an embedding now
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_name(encoder: str | None = None) -> str:
    """The cache's name for an encoder choice, as augmentation names it (the bundled model's
    path by default), so search and dedup share one cache."""
    from workbench.embeddings import model_path

    return encoder or model_path(None)


def coverage(store: Store, encoder: str | None = None) -> tuple[int, int]:
    """(intents, intents with a cached embedding)."""
    with store.session(read_only=True) as session:
        return embeddings.intent_embedding_counts(session, model_name(encoder))


def run(config: EmbedIntentsConfig, store: Store, progress: Progress | None = None,
        encoder: Encoder | None = None) -> EmbedIntentsResult:
    """Embed and cache every intent that has no embedding yet (stage "embed")."""
    from workbench.embeddings import load_encoder

    if config.chunk < 1 or config.batch_size < 1:
        raise MeaningError("chunk and batch_size must be at least 1")
    started = time.monotonic()
    model = model_name(config.encoder)
    with store.session(read_only=True) as session:
        missing = embeddings.intents_without_embedding(session, model)
    if progress is not None:
        progress("embed", 0, len(missing))
    if missing:
        _embed_and_cache(store, model, missing,
                         encoder if encoder is not None else load_encoder(config.encoder),
                         config, progress)
    n_intents, n_cached = coverage(store, config.encoder)
    return EmbedIntentsResult(model, n_intents, len(missing), n_cached,
                              round(time.monotonic() - started, 3))


def _embed_and_cache(store: Store, model: str, texts: Sequence[str], encoder: Encoder,
                     config: EmbedIntentsConfig, progress: Progress | None) -> None:
    """Embed the texts chunk by chunk, caching each chunk in its own short transaction."""
    from workbench.embeddings import embed

    for start in range(0, len(texts), config.chunk):
        chunk = texts[start:start + config.chunk]
        vectors = embed(encoder, chunk, config.batch_size)                 # (n, D)
        with store.atomic() as session:
            embeddings.cache_vectors(session, model, chunk, vectors)
        if progress is not None:
            progress("embed", start + len(chunk), len(texts))


# ------------------------------------------------------------------------------ search

@dataclass(frozen=True)
class IntentIndex:
    """The cached intent embeddings held in memory: row i is intent keys[i] (texts[i])."""

    model: str
    keys: list[str]
    texts: list[str]
    vectors: np.ndarray          # (N, D) float32, unit rows
    stamp: tuple[int, ...]       # `cache_state` when loaded: a different one means it is stale

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Match:
    intent_key: str
    intent_text: str
    similarity: float            # cosine of the query and the intent, in [-1, 1]


def cache_state(store: Store, encoder: str | None = None) -> tuple[int, ...]:
    """(newest ingest, requests, texts cached for the model): three cheap counts (about a
    millisecond at 1M requests) that change whenever logs are ingested or texts embedded, so a
    page can tell whether what it holds in memory is still current."""
    with store.session(read_only=True) as session:
        return (*requests.logs_state(session),
                embeddings.cached_count(session, model_name(encoder)))


def load_index(store: Store, encoder: str | None = None) -> IntentIndex:
    """Every intent's cached embedding, in memory (488 MB at 333,333 intents)."""
    model = model_name(encoder)
    with store.session(read_only=True) as session:
        stamp = (*requests.logs_state(session), embeddings.cached_count(session, model))
        keys, texts, vectors = embeddings.intent_vectors(session, model)
    return IntentIndex(model, keys, texts, vectors, stamp)


class QueryEncoder:
    """Embeds one query at a time: with the ONNX twin of the sentence encoder when it could be
    exported (about 4 ms a query on two cores, against 18 ms p50 and over 100 ms p95 in torch),
    else with the encoder itself. The same unit vectors either way (to 1e-6)."""

    def __init__(self, encoder: Encoder, twin: Any = None):
        self.encoder = encoder
        self.twin = twin                 # an `OnnxEncoder`, or None

    def __call__(self, query: str) -> np.ndarray:
        """The query's unit embedding (D,); a clear error for an empty query."""
        from workbench.embeddings import embed

        text = " ".join(query.split())
        if not text:
            raise MeaningError("type a word or phrase to search for")
        if self.twin is not None:
            return np.asarray(self.twin.encode([text])[0], dtype=np.float32)
        return np.asarray(embed(self.encoder, [text])[0], dtype=np.float32)


def load_query_encoder(encoder: str | None = None, folder: Path | None = None) -> QueryEncoder:
    """The sentence encoder for queries; with `folder`, its ONNX twin is exported there (about
    2 s, once) and used when ONNX Runtime is installed."""
    from workbench import onnx_encoder
    from workbench.embeddings import load_encoder

    loaded = load_encoder(encoder)
    twin = None
    if folder is not None and onnx_encoder.save_twin(loaded, folder):
        twin = onnx_encoder.load_twin(folder, loaded, "cpu")
    found = QueryEncoder(loaded, twin)
    found("warm up")                     # the first call of either runtime is slow
    return found


def nearest(index: IntentIndex, query: np.ndarray, k: int = DEFAULT_RESULTS,
            skip: np.ndarray | None = None) -> list[Match]:
    """The k intents most similar to the unit vector `query` (D,), most similar first; ties by
    intent key. `skip` (N,) bool leaves those intents out."""
    if not len(index):
        raise MeaningError("no intent has an embedding yet: embed the intents first")
    if query.shape != (index.vectors.shape[1],):
        raise MeaningError(f"the query has {query.shape[-1]} dimensions and the intents "
                           f"{index.vectors.shape[1]}: they come from different encoders")
    scores = index.vectors @ query                                         # (N,)
    candidates = len(index)
    if skip is not None:
        scores = np.where(skip, -np.inf, scores)
        candidates -= int(skip.sum())
    k = max(0, min(k, candidates))
    if k == 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]          # best first; rows are in key order
    return [Match(index.keys[i], index.texts[i], float(scores[i])) for i in top]


def search(index: IntentIndex, encode: Callable[[str], np.ndarray], query: str,
           k: int = DEFAULT_RESULTS, beyond_text: bool = False) -> list[Match]:
    """The k intents nearest in meaning to the query text (`encode`: a `QueryEncoder`). With
    `beyond_text`, only intents whose text does not contain the query (ignoring case and
    spacing): what a text search would miss, such as "monochrome" for "black and white"."""
    skip = None
    if beyond_text:
        needle = " ".join(query.casefold().split())
        skip = np.fromiter((needle in " ".join(text.casefold().split()) for text in index.texts),
                           dtype=bool, count=len(index))
    return nearest(index, encode(query), k, skip)


# ------------------------------------------------------------------------------ the map

@dataclass(frozen=True)
class Projection:
    """A linear map of the embeddings to 2-D: (x - mean) @ components.T."""

    mean: np.ndarray             # (D,)
    components: np.ndarray       # (2, D), unit rows
    explained: tuple[float, float]   # share of the sample's variance along each axis

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """(M, D) -> (M, 2)."""
        return ((vectors - self.mean) @ self.components.T).astype(np.float32)


def fit_projection(vectors: np.ndarray) -> Projection:
    """PCA of the rows (M, D): the two directions of largest variance. Each axis is signed so
    that its largest loading is positive, so the same data always gives the same picture."""
    if len(vectors) == 0:
        raise MeaningError("no intent has an embedding yet: embed the intents first")
    x = vectors.astype(np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    covariance = centred.T @ centred / max(len(x) - 1, 1)                  # (D, D)
    values, vectors_ = np.linalg.eigh(covariance)                          # ascending
    order = np.argsort(values)[::-1][:2]
    components = vectors_[:, order].T                                      # (2, D)
    if components.shape[0] < 2:
        components = np.vstack([components, np.zeros_like(components)])[:2]
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float(values.sum())
    shares = [float(values[i]) / total if total > 0 else 0.0 for i in order]
    shares += [0.0] * (2 - len(shares))
    return Projection(mean.astype(np.float32), components.astype(np.float32),
                      (shares[0], shares[1]))


@dataclass(frozen=True)
class IntentMap:
    """The intents drawn on the map: a seeded sample of at most `MAP_POINTS`, their 2-D
    positions, and the projection (to place other intents, such as a search's results)."""

    keys: list[str]
    texts: list[str]
    xy: np.ndarray               # (M, 2)
    n_total: int                 # intents with an embedding (the sample is drawn from them)
    projection: Projection


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of a seeded sample of `size` of n rows (all of them when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def intent_map(index: IntentIndex, size: int = MAP_POINTS, seed: int = 0) -> IntentMap:
    """The map: a seeded sample of the intents projected by a PCA fitted on the sample."""
    if not len(index):
        raise MeaningError("no intent has an embedding yet: embed the intents first")
    rows = sample_rows(len(index), size, seed)
    sampled = index.vectors[rows]                                          # (M, D)
    projection = fit_projection(sampled)
    return IntentMap([index.keys[i] for i in rows], [index.texts[i] for i in rows],
                     projection.apply(sampled), len(index), projection)


def place(index: IntentIndex, projection: Projection, keys: Sequence[str]) -> np.ndarray:
    """Map positions (M, 2) of the given intents (keys without an embedding are left out)."""
    position = {key: i for i, key in enumerate(index.keys)}
    rows = [position[key] for key in keys if key in position]
    return projection.apply(index.vectors[rows]) if rows else np.zeros((0, 2), np.float32)
