"""The embedding cache: the table `embeddings`, unit sentence embeddings by model and exact
text, so dedup never embeds the same text twice; and the reads that search intents by meaning
(each intent's cached embedding, and which intents have none yet)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.store.connection import Session


def cached_vectors(session: Session, model: str, texts: Sequence[str]) -> dict[str, Any]:
    """{text: vector (D,) float32} of the texts the cache holds for `model`."""
    import numpy as np
    import pyarrow as pa

    if not texts:
        return {}
    session.register("wanted_texts", pa.table({"text": pa.array(list(texts), pa.string())}))
    try:
        table = session.arrow("SELECT e.text, e.vector FROM embeddings e "
                              "JOIN wanted_texts w USING (text) WHERE e.model = ?", [model])
    finally:
        session.unregister("wanted_texts")
    if not table.num_rows:
        return {}
    vectors = table.column("vector").combine_chunks()
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = flat.reshape(table.num_rows, -1)                             # (N, D)
    return dict(zip(table.column("text").to_pylist(), matrix, strict=True))


def cache_vectors(session: Session, model: str, texts: Sequence[str], vectors: Any) -> None:
    """Add embeddings (N, D) of `texts` to the cache; a text another writer cached meanwhile is
    left as it is.

    Another round (another job, another process) may embed the same texts between this one's
    read of the cache and this write: its rows win, and this write still succeeds.
    """
    import pyarrow as pa

    session.register("new_embeddings", pa.table({
        "text": list(texts), "vector": pa.array(list(vectors), type=pa.list_(pa.float32()))}))
    try:
        session.execute("INSERT INTO embeddings (model, text, vector) "
                        "SELECT ?, text, vector FROM new_embeddings ON CONFLICT DO NOTHING",
                        [model])
    finally:
        session.unregister("new_embeddings")


# ------------------------------------------------------------------------------ intents by meaning
# An intent's embedding is the cached vector of its text (`intents.intent_text`, the text
# augmentation embeds too), so both fill one cache.

def intent_embedding_counts(session: Session, model: str) -> tuple[int, int]:
    """(intents, intents whose text has an embedding cached for `model`)."""
    row = session.first(
        "SELECT count(*) AS n, count(e.text) AS cached FROM intents i "
        "LEFT JOIN (SELECT text FROM embeddings WHERE model = ?) e ON e.text = i.intent_text",
        [model])
    return (0, 0) if row is None else (int(row["n"]), int(row["cached"]))


def cached_count(session: Session, model: str) -> int:
    """How many texts the cache holds for `model` (a cheap count that grows whenever texts are
    embedded, so an in-memory copy of the intent vectors can tell that it is stale)."""
    return int(session.value("SELECT count(*) FROM embeddings WHERE model = ?", [model]))


def intents_without_embedding(session: Session, model: str) -> list[str]:
    """The texts of the intents that have no embedding cached for `model`, most requested
    first (so a partly embedded corpus already covers the intents that matter most)."""
    return [row["intent_text"] for row in session.query(
        "SELECT i.intent_text FROM intents i JOIN intent_stats s USING (intent_key) "
        "WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = ? "
        "AND e.text = i.intent_text) ORDER BY s.request_count DESC, i.intent_key", [model])]


def intent_vectors(session: Session, model: str) -> tuple[list[str], list[str], Any]:
    """Every intent with a cached embedding for `model`: (intent keys, intent texts, vectors
    (N, D) float32), by intent key."""
    import numpy as np

    table = session.arrow(
        "SELECT i.intent_key, i.intent_text, e.vector FROM intents i "
        "JOIN embeddings e ON e.model = ? AND e.text = i.intent_text ORDER BY i.intent_key",
        [model])
    if not table.num_rows:
        return [], [], np.zeros((0, 0), dtype=np.float32)
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    matrix = np.ascontiguousarray(flat.reshape(table.num_rows, -1), dtype=np.float32)  # (N, D)
    return (table.column("intent_key").to_pylist(), table.column("intent_text").to_pylist(),
            matrix)
