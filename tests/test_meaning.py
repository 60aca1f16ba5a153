"""Search by meaning and the map of intents (pipelines/meaning.py): embedding the intents into
the cache, nearest intents by cosine, the PCA map; the map's selection as a label queue; and the
bundled all-MiniLM-L6-v2 finding "b&w", "monochrome" and "black and white" for each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines import curate, ingest, meaning
from pipelines import label_queue as queue
from pipelines.label_queue import QueueConfig, QueueError, QueueReason
from pipelines.meaning import EmbedIntentsConfig, IntentIndex, MeaningError
from tests.conftest import curated_store, make_record
from workbench.app import jobs
from workbench.store import Store
from workbench.store.intent_rows import intent_table

FAKE = "fake-words"          # the fake encoder's name in the cache
WORDS = ("warm", "golden", "sunset", "cold", "blue", "winter", "black", "white", "noir")


class WordEncoder:
    """A stand-in sentence encoder: one dimension per word of WORDS (plus one for any other
    word), counts normalised to unit length. Records every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode(self, sentences: list[str], /, **_: object) -> np.ndarray:
        self.batches.append(list(sentences))
        rows = np.zeros((len(sentences), len(WORDS) + 1), dtype=np.float32)
        for row, sentence in zip(rows, sentences, strict=True):
            for word in sentence.lower().split():
                row[WORDS.index(word) if word in WORDS else len(WORDS)] += 1
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def get_sentence_embedding_dimension(self) -> int:
        return len(WORDS) + 1


def test_run_embeds_the_missing_intents_in_chunks_and_only_once(tmp_path: Path) -> None:
    store = curated_store(tmp_path)              # 18 intents: 3 looks x 6 phrasings
    encoder, events = WordEncoder(), []
    config = EmbedIntentsConfig(encoder=FAKE, chunk=5, batch_size=5)
    assert meaning.coverage(store, FAKE) == (18, 0)
    result = meaning.run(config, store, lambda *event: events.append(event), encoder)
    assert (result.n_intents, result.n_embedded, result.n_cached) == (18, 18, 18)
    assert events == [("embed", 0, 18), ("embed", 5, 18), ("embed", 10, 18),
                      ("embed", 15, 18), ("embed", 18, 18)]
    assert [len(batch) for batch in encoder.batches] == [5, 5, 5, 3]
    again = meaning.run(config, store, None, encoder)
    assert again.n_embedded == 0 and again.n_cached == 18 and len(encoder.batches) == 4
    index = meaning.load_index(store, FAKE)
    assert len(index) == 18 and index.vectors.shape == (18, len(WORDS) + 1)
    assert index.keys == sorted(index.keys)
    assert index.stamp == meaning.cache_state(store, FAKE) == (1, 18, 18)   # ingest 1, 18 requests


def test_search_ranks_by_cosine_with_the_similarity(tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    encoder = WordEncoder()
    meaning.run(EmbedIntentsConfig(encoder=FAKE), store, None, encoder)
    index = meaning.load_index(store, FAKE)
    found = meaning.search(index, meaning.QueryEncoder(encoder), "  NOIR  ", k=6)
    # "noir" is one of the 4 words of "... black and white noir" (black, and, white, noir with
    # "and" counted as other): cosine 1/2 for the bare phrasing; prefixes add other words.
    assert found[0].intent_text == "black and white noir"
    assert found[0].similarity == pytest.approx(1 / 2)
    assert all("noir" in match.intent_text for match in found)
    assert [m.similarity for m in found] == sorted((m.similarity for m in found), reverse=True)
    with pytest.raises(MeaningError, match="type a word"):
        meaning.search(index, meaning.QueryEncoder(encoder), "   ")


def test_nearest_is_exact_with_ties_by_intent_key() -> None:
    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [1, 0]], dtype=np.float32)
    index = IntentIndex("m", ["a", "b", "c", "d"], ["A", "B", "C", "D"], vectors, (4, 4))
    found = meaning.nearest(index, np.array([1, 0], dtype=np.float32), k=3)
    assert [(m.intent_key, round(m.similarity, 6)) for m in found] == [
        ("a", 1.0), ("d", 1.0), ("c", 0.6)]
    assert len(meaning.nearest(index, np.array([0, 1], dtype=np.float32), k=10)) == 4
    with pytest.raises(MeaningError, match="different encoders"):
        meaning.nearest(index, np.ones(3, dtype=np.float32))
    empty = IntentIndex("m", [], [], np.zeros((0, 0), np.float32), (0, 0))
    with pytest.raises(MeaningError, match="embed the intents first"):
        meaning.nearest(empty, np.ones(2, dtype=np.float32))


def test_the_map_is_a_pca_of_a_seeded_sample() -> None:
    rng = np.random.default_rng(0)
    t = rng.standard_normal(500).astype(np.float32)
    # Points spread along (1, 1, 0)/sqrt(2), with a little noise along z: the first direction
    # carries almost all of the variance, and is signed so its largest loading is positive.
    vectors = np.stack([t, t, 0.01 * rng.standard_normal(500)], axis=1).astype(np.float32)
    projection = meaning.fit_projection(vectors)
    assert projection.components[0] == pytest.approx([2 ** -0.5, 2 ** -0.5, 0], abs=1e-3)
    assert projection.explained[0] > 0.999
    xy = projection.apply(vectors)
    assert xy[:, 0] == pytest.approx((t - t.mean()) * 2 ** 0.5, abs=1e-3)
    index = IntentIndex("m", [f"k{i:03d}" for i in range(500)], [f"t{i}" for i in range(500)],
                        vectors, (500, 500))
    drawn = meaning.intent_map(index, size=100, seed=3)
    assert len(drawn.keys) == 100 and drawn.n_total == 500 and drawn.xy.shape == (100, 2)
    assert drawn.keys == meaning.intent_map(index, size=100, seed=3).keys   # seeded
    assert len(meaning.intent_map(index, size=1000).keys) == 500            # all when few
    placed = meaning.place(index, drawn.projection, ["k007", "missing"])
    assert placed == pytest.approx(drawn.projection.apply(vectors[[7]]))


def test_the_intent_table_gives_numbers_split_and_tools(tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    with store.session() as session:
        inside = intent_table(session, 1).to_pylist()
        outside = intent_table(session, None).to_pylist()
    assert len(inside) == 18 and [r["intent_key"] for r in inside] == sorted(
        r["intent_key"] for r in inside)
    row = next(r for r in inside if r["intent_key"] == "black and white noir")
    assert (row["request_count"], row["export_rate"]) == (1, 1.0)
    assert row["split"] in ("train", "test") and row["uses_filter"]
    assert row["uses_selective_adjust"] is False
    assert {(r["split"], r["uses_adjust"]) for r in outside} == {(None, None)}


def test_a_map_selection_is_a_label_queue_in_the_order_picked(tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    picked = ("very cold blue winter", "black and white noir", "not an intent",
              "black and white noir")
    selection = queue.select(store, QueueConfig(QueueReason.SELECTED, selection=picked))
    assert [e.intent_key for e in selection.entries] == ["very cold blue winter",
                                                         "black and white noir"]
    assert {e.why for e in selection.entries} == {"selected on the map"}
    with pytest.raises(QueueError, match="lasso a region of the map"):
        queue.select(store, QueueConfig(QueueReason.SELECTED))


def test_the_embedding_job_kind_builds_its_config() -> None:
    config = jobs.build_config(jobs.JobKind.EMBED_INTENTS, {"chunk": 100})
    assert config == EmbedIntentsConfig(chunk=100)


# ------------------------------------------------------------------------------ the real model

# Three ways of saying black and white among other looks; HF_HUB_OFFLINE=1 (tests/conftest.py),
# so the bundled model is the only one that can load.
GREYS = ("monochrome look", "make it monochrome", "b&w", "b&w vibes", "black and white style",
         "warm black and white")
OTHERS = ("golden hour", "warm sunset glow", "cold blue winter", "teal and orange",
          "vintage film", "bright and airy", "moody dark forest", "pastel spring colours",
          "neon night city", "tropical beach", "desaturated autumn", "sepia tone")


def grey_world(folder: Path) -> Store:
    """The intents above, one request each, ingested and curated."""
    logs = folder / "grey-logs.jsonl"
    logs.write_text("".join(json.dumps(make_record(request_id=f"r{i}", intent=text)) + "\n"
                            for i, text in enumerate(GREYS + OTHERS)))
    store = Store(folder / "grey.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=2, seed=0), store)
    return store


@pytest.fixture(scope="module")
def query_encoder(tmp_path_factory: pytest.TempPathFactory) -> meaning.QueryEncoder:
    return meaning.load_query_encoder(None, tmp_path_factory.mktemp("onnx"))


def test_b_and_w_monochrome_and_black_and_white_find_each_other(
        tmp_path: Path, query_encoder: meaning.QueryEncoder) -> None:
    store = grey_world(tmp_path)
    meaning.run(EmbedIntentsConfig(), store, None, query_encoder.encoder)
    index = meaning.load_index(store)
    assert len(index) == len(GREYS) + len(OTHERS)

    def top(query: str, k: int = 5) -> list[str]:
        return [m.intent_text for m in meaning.search(index, query_encoder, query, k)]

    assert any("monochrome" in t or "b&w" in t for t in top("black and white"))
    assert any("black and white" in t or "b&w" in t for t in top("monochrome"))
    assert any("black and white" in t or "monochrome" in t for t in top("b&w"))


def test_the_onnx_twin_embeds_queries_as_the_encoder_does(
        query_encoder: meaning.QueryEncoder) -> None:
    from workbench.embeddings import embed

    assert query_encoder.twin is not None              # ONNX Runtime is a dependency
    torch_vector = embed(query_encoder.encoder, ["black and white"])[0]
    assert query_encoder("black and white") == pytest.approx(torch_vector, abs=1e-5)


def test_only_what_a_text_search_misses_leaves_literal_matches_out(
        tmp_path: Path, query_encoder: meaning.QueryEncoder) -> None:
    store = grey_world(tmp_path)
    meaning.run(EmbedIntentsConfig(), store, None, query_encoder.encoder)
    index = meaning.load_index(store)
    literal = [t for t in GREYS + OTHERS if "black and white" in t]
    found = [m.intent_text for m in meaning.search(index, query_encoder, "Black  and WHITE", k=5,
                                                   beyond_text=True)]
    assert literal and not set(found) & set(literal)
    # with the literal ones out, the other spellings of the look lead
    assert any("monochrome" in t or "b&w" in t for t in found[:3])
    everything = meaning.search(index, query_encoder, "black and white", k=100, beyond_text=True)
    assert len(everything) == len(index) - len(literal)
