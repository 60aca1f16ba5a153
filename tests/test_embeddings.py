"""Bulk embedding: the ONNX Runtime twin gives the encoder's own vectors, and only takes over
where it can and where it pays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from workbench import embeddings


@pytest.fixture(scope="module")
def encoder() -> Any:
    return embeddings.load_encoder()


TEXTS = [f"make picture {i} {'a lot warmer' if i % 3 else 'darker, with crushed blacks'}"
         for i in range(40)] + ["golden hour", "b&w", "an intent " + "much longer " * 30]


def test_the_twin_embeds_as_the_encoder_does(encoder: Any, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setattr(embeddings, "BULK_FROM", 10**9)
    by_torch = embeddings.embed(encoder, TEXTS, batch_size=16)
    monkeypatch.setattr(embeddings, "BULK_FROM", 1)
    seen: list[tuple[str, int, int]] = []
    by_onnx = embeddings.embed(encoder, TEXTS, batch_size=16,
                               progress=lambda stage, done, total: seen.append(
                                   (stage, done, total)))
    assert embeddings.bulk_twin(encoder) is not None          # ONNX Runtime is a dependency
    assert by_onnx.dtype == np.float32 and by_onnx.shape == by_torch.shape == (len(TEXTS), 384)
    assert np.abs(by_onnx - by_torch).max() < 1e-5
    assert np.allclose(np.linalg.norm(by_onnx, axis=1), 1, atol=1e-6)
    assert seen == [("embed", 16, 43), ("embed", 32, 43), ("embed", 43, 43)]


def test_few_texts_and_stand_in_encoders_keep_the_encoders_own_path(
        encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    class StandIn:
        """Not a sentence-transformer: no twin can be made of it."""

        def encode(self, sentences: list[str], **_: Any) -> Any:
            calls.append(len(sentences))
            return np.tile(np.eye(1, 4, dtype=np.float32), (len(sentences), 1))

        def get_sentence_embedding_dimension(self) -> int:
            return 4

    monkeypatch.setattr(embeddings, "BULK_FROM", 1)
    assert embeddings.bulk_twin(StandIn()) is None
    assert embeddings.embed(StandIn(), ["a", "b", "c"], batch_size=2).shape == (3, 4)
    assert calls == [2, 1]
    assert embeddings.embed(StandIn(), []).shape == (0, 4)

    monkeypatch.setattr(embeddings, "BULK_FROM", 1_000)     # below it: never exported
    monkeypatch.setattr(embeddings, "bulk_twin", lambda _: pytest.fail("exported for 3 texts"))
    assert embeddings.embed(encoder, ["a", "b", "c"]).shape == (3, 384)
