"""The embedding cache: the table `embeddings`, unit sentence embeddings by model and exact
text, so dedup never embeds the same text twice."""

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
