"""The augmentation round end to end on the tiny world: mine, paraphrase (a scripted paraphraser,
then the offline one), dedup, review, commit a version; lineage and the embedding cache."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipelines import augment, review, train
from tests.conftest import curated_store
from workbench import embeddings
from workbench.errors import WorkbenchError
from workbench.paraphrase import ParaphraseResult
from workbench.paraphrase.offline import OfflineParaphraser
from workbench.progress import Progress
from workbench.store import Store
from workbench.store.candidates import committed_into
from workbench.store.versions import version_rows


class Scripted:
    """Answers from a table; an intent it has no entry for fails, like an unparseable reply."""

    name = "scripted"

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.asked: list[str] = []

    def paraphrase(self, intents: Sequence[str], n: int,
                   progress: Progress | None = None) -> list[ParaphraseResult]:
        self.asked += intents
        return [ParaphraseResult(text, tuple(self.table[text][:n])) if text in self.table
                else ParaphraseResult(text, (), error="unparseable reply: no JSON")
                for text in intents]


@pytest.fixture(scope="module")
def encoder() -> Any:
    from workbench.embeddings import load_encoder

    return load_encoder()


@pytest.fixture
def world(tmp_path: Path) -> tuple[Store, dict[str, dict]]:
    store = curated_store(tmp_path)
    with store.session() as session:
        rows = {row["intent_key"]: row for row in version_rows(session, 1)}
    return store, rows


def train_keys(rows: dict[str, dict]) -> list[str]:
    return sorted(key for key, row in rows.items() if row["split"] == "train")


def test_sources_are_paraphrased_deduplicated_and_queued(world, encoder) -> None:
    store, rows = world
    test_text = next(row["intent_text"] for row in rows.values() if row["split"] == "test")
    source, failing = train_keys(rows)[:2]
    scripted = Scripted({rows[source]["intent_text"]: [
        "a sunny honey glow",                  # new
        rows[source]["intent_text"].upper(),   # the source itself: never a candidate
        test_text + "!",                       # a test intent: leakage, dropped
        "a sunny  honey glow.",                # near the first candidate
        "icy polar chill"]})                   # new
    result = augment.run(augment.AugmentConfig(sources=(source, failing), n=5, threshold=0.9),
                         store, encoder=encoder, paraphraser=scripted)
    assert (result.n_sources, result.n_generated, result.n_kept, result.n_failed) == (2, 4, 2, 1)
    assert result.dropped == {"near_test": 1, "near_candidate": 1}
    candidates = review.list_candidates(store, review.ReviewFilter(
        augmentation_id=result.augmentation_id, uncommitted=False))
    by_text = {c["intent_text"]: c for c in candidates}
    assert by_text["a sunny honey glow"]["status"] == "pending"
    leaked = by_text[test_text + "!"]
    assert (leaked["status"], leaked["drop_reason"], leaked["nearest_kind"],
            leaked["nearest_text"]) == ("dropped", "near_test", "test", test_text)
    near = by_text["a sunny  honey glow."]
    assert (near["drop_reason"], near["nearest_text"]) == ("near_candidate", "a sunny honey glow")
    # Every candidate carries its source's ground truth and shows the source text.
    for candidate in candidates:
        assert candidate["source_text"] == rows[source]["intent_text"]
        assert [candidate[t] for t in ("adjust", "selective_adjust", "filter")] == \
               [rows[source][t] for t in ("adjust", "selective_adjust", "filter")]
    with store.session() as session:
        assert session.query("SELECT source_intent_key, error FROM paraphrase_failures") == [
            {"source_intent_key": failing, "error": "unparseable reply: no JSON"}]


def test_review_and_commit_make_a_child_version_with_lineage(world, encoder) -> None:
    store, rows = world
    source = train_keys(rows)[0]
    scripted = Scripted({rows[source]["intent_text"]: ["a sunny honey glow", "icy polar chill",
                                                       "dusty old photograph"]})
    result = augment.run(augment.AugmentConfig(sources=(source,), n=3), store, encoder=encoder,
                         paraphraser=scripted)
    ids = [c["candidate_id"] for c in review.list_candidates(
        store, review.ReviewFilter(augmentation_id=result.augmentation_id))]
    assert review.set_status(store, review.ReviewFilter(candidate_ids=tuple(ids[:2])),
                             review.Status.APPROVED, by="ana") == 2
    assert review.set_status(store, review.ReviewFilter(candidate_ids=(ids[2],)),
                             review.Status.REJECTED, by="ben") == 1
    version_id = review.commit(store, result.augmentation_id, by="ana",
                               note="two good ones").version_id
    with store.session() as session:
        version = session.first("SELECT * FROM dataset_versions WHERE version_id = ?",
                                [version_id])
        new_rows = {row["intent_key"]: row for row in version_rows(session, version_id)}
        lineage = committed_into(session, version_id)
        reviewed = session.query("SELECT reviewed_by, reviewed_at FROM candidates "
                                 "ORDER BY candidate_id")
    assert (version["parent_id"], version["created_by"], version["note"]) == \
           (1, "augmentation", "two good ones")
    assert version["n_train"] == len(train_keys(rows)) + 2
    assert {k: r for k, r in new_rows.items() if r["split"] == "test"} == \
           {k: r for k, r in rows.items() if r["split"] == "test"}
    added = [row for row in new_rows.values() if row["origin"] == "augmentation"]
    assert sorted(row["intent_text"] for row in added) == ["a sunny honey glow",
                                                           "icy polar chill"]
    assert all(row["source_intent_key"] == source and row["filter"] == rows[source]["filter"]
               for row in added)
    assert [row["intent_text"] for row in lineage] == ["a sunny honey glow", "icy polar chill"]
    assert [r["reviewed_by"] for r in reviewed] == ["ana", "ana", "ben"]
    assert all(r["reviewed_at"] is not None for r in reviewed)
    # Committed candidates are done: nothing more to commit, and they cannot be re-reviewed.
    with pytest.raises(WorkbenchError, match="no approved candidates"):
        review.commit(store, result.augmentation_id, by="ana")
    with pytest.raises(WorkbenchError, match=f"cannot review {ids[0]} .*in version"):
        review.set_status(store, review.ReviewFilter(candidate_ids=(ids[0],)),
                          review.Status.REJECTED, by="ana")


def test_dropped_and_unknown_candidates_cannot_be_approved(world, encoder) -> None:
    store, rows = world
    source = train_keys(rows)[0]
    text = rows[source]["intent_text"]
    result = augment.run(augment.AugmentConfig(sources=(source,)), store, encoder=encoder,
                         paraphraser=Scripted({text: [text + "!"]}))
    assert result.dropped == {"near_train": 1}
    [dropped] = review.list_candidates(store, review.ReviewFilter(
        augmentation_id=result.augmentation_id))
    with pytest.raises(WorkbenchError, match=f"cannot review {dropped['candidate_id']} "
                                             r"\(dropped\)"):
        review.set_status(store, review.ReviewFilter(candidate_ids=(dropped["candidate_id"],)),
                          review.Status.APPROVED, by="ana")
    with pytest.raises(WorkbenchError, match="no candidate 999"):
        review.set_status(store, review.ReviewFilter(candidate_ids=(999,)),
                          review.Status.APPROVED, by="ana")
    with pytest.raises(WorkbenchError, match="not in the training split"):
        augment.run(augment.AugmentConfig(sources=("no such intent",)), store, encoder=encoder,
                    paraphraser=Scripted({}))


def test_mining_flags_a_weak_students_errors_and_auto_approve_commits(world, encoder,
                                                                      monkeypatch) -> None:
    store, rows = world
    # A heads student trained for one epoch is wrong on much of its training data.
    run = train.run(train.TrainConfig(student="heads", student_config={
        "epochs": 1, "hidden": 8, "device": "cpu"}), store, encoder=encoder)
    embedded: list[int] = []  # sizes of the texts the encoder was asked to embed
    original = embeddings.embed
    monkeypatch.setattr(embeddings, "embed", lambda enc, texts, *a, **k: (
        embedded.append(len(texts)), original(enc, texts, *a, **k))[1])

    result = augment.run(augment.AugmentConfig(run_id=run.run_id, n=4, auto_approve=True),
                         store, encoder=encoder, paraphraser=OfflineParaphraser(seed=3))
    with store.session() as session:
        evaluation = session.first("SELECT kind, split, source FROM evaluations "
                                   "WHERE evaluation_id = ?", [result.mining_evaluation_id])
        flagged = session.value("SELECT count(DISTINCT intent_key) FROM evaluation_scores "
                                "WHERE evaluation_id = ? AND flagged",
                                [result.mining_evaluation_id])
        version = session.first("SELECT * FROM dataset_versions WHERE version_id = ?",
                                [result.committed_version_id])
    assert evaluation == {"kind": "mining", "split": "train", "source": run.run_id}
    assert 0 < result.n_flagged == flagged == result.n_sources
    assert result.n_kept > 0 and result.committed_version_id is not None
    assert version["parent_id"] == 1
    assert version["n_train"] == len(train_keys(rows)) + result.n_kept
    assert sum(result.flagged_by_tool.values()) >= result.n_flagged
    # Train and test texts were embedded once; a second round reuses the cache for them.
    first_round = sum(embedded)
    assert first_round == len(rows) + result.n_generated
    embedded.clear()
    augment.run(augment.AugmentConfig(sources=(train_keys(rows)[0],), n=2), store,
                encoder=encoder, paraphraser=Scripted({rows[train_keys(rows)[0]]["intent_text"]:
                                                       ["a brand new phrasing"]}))
    assert embedded == [1]


def test_settings_are_checked() -> None:
    for settings, message in [({"n": 0}, "n must be"), ({"threshold": 1.5}, "threshold"),
                              ({"limit": 0}, "limit"),
                              ({"run_id": "x", "sources": ("a",)}, "not both")]:
        with pytest.raises(WorkbenchError, match=message):
            augment.AugmentConfig(**settings)


def test_the_cli_round_trip_augment_review_commit(world, capsys) -> None:
    from workbench.cli import main

    store, rows = world
    db = str(store.path)
    source = rows[train_keys(rows)[0]]["intent_text"]

    def cli(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = cli("augment", "--db", db, "--intent", source, "--paraphraser", "offline",
                         "--n", 4, "--no-progress")
    assert code == 0, err
    assert "augmentation 1 (offline): 1 source intents, 4 candidates" in out
    code, out, _ = cli("review", "list", "--db", db, "--json")
    pending = json.loads(out)
    assert pending and all(c["status"] == "pending" and c["source_text"] == source
                           for c in pending)
    code, _, err = cli("review", "approve", "--db", db)
    assert code == 2 and "name candidate ids, or --all-pending" in err
    code, out, _ = cli("review", "reject", pending[0]["candidate_id"], "--db", db, "--by", "ben")
    assert (code, out.splitlines()[0]) == (0, "rejected 1 candidate(s)")
    code, out, _ = cli("review", "approve", "--all-pending", "--db", db, "--by", "ana")
    assert out.splitlines()[0] == f"approved {len(pending) - 1} candidate(s)"
    code, out, _ = cli("review", "commit", "--db", db, "--note", "from the terminal")
    committed = "committed the approved candidates as dataset version 2 (now the current version)"
    assert (code, out.strip()) == (0, committed)
    with store.session() as session:
        assert session.value("SELECT n_train FROM dataset_versions WHERE version_id = 2") == \
            len(train_keys(rows)) + len(pending) - 1


def test_rq2_runs_every_arm_on_one_test_split(world, encoder) -> None:
    """The tiny world's version of tests/test_rq2.py: lineage and the pointer, seed by seed."""
    from pipelines import experiments
    from workbench.store.versions import current_version_id

    store, rows = world
    result = experiments.rq2(experiments.RQ2Config(
        student="heads", student_config={"epochs": 1, "hidden": 8, "device": "cpu",
                                         "runtime": "torch"},
        fraction=0.5, n=3, seeds=2, rounds=1, strategies=(augment.MiningStrategy.MEAN,),
        paraphraser=augment.ParaphraserChoice.OFFLINE), store)
    n_train = len(train_keys(rows))
    arms = {arm.key: arm for arm in result.arms}
    assert list(arms) == ["full", "low", "mined:mean", "control:mean", "iterative"]
    with store.session() as session:
        versions = {row["version_id"]: row for row in session.query(
            "SELECT version_id, parent_id, created_by FROM dataset_versions")}
        tests = {version: sorted(r["intent_key"] for r in version_rows(session, version)
                                 if r["split"] == "test") for version in versions}
        assert current_version_id(session) == 1  # the experiment put the pointer back
    for i in range(2):
        full, low = arms["full"].trials[i], arms["low"].trials[i]
        mined, control = arms["mined:mean"].trials[i], arms["control:mean"].trials[i]
        assert (full.train_size, low.train_size) == (n_train, round(0.5 * n_train))
        assert versions[low.version_id]["parent_id"] == 1
        assert versions[low.version_id]["created_by"] == "subsample"
        assert versions[mined.version_id]["parent_id"] == low.version_id
        assert versions[control.version_id]["parent_id"] == low.version_id
        assert control.augmentations == mined.augmentations
        assert mined.train_size == low.train_size + mined.augmentations
        assert arms["iterative"].trials[i] == mined          # one round: the mined arm
    assert len({tuple(keys) for keys in tests.values()}) == 1  # one test split throughout


# ------------------------------------------------------------------- failures, races, history

def test_a_round_where_the_paraphraser_failed_on_everything_raises_and_stores_nothing(
        world, monkeypatch) -> None:
    from workbench import embeddings as embeddings_module
    from workbench.paraphrase import ParaphraseError

    store, rows = world
    sources = tuple(train_keys(rows)[:2])
    # Fails fast: the encoder is not even loaded for a round with nothing to deduplicate.
    monkeypatch.setattr(embeddings_module, "load_encoder",
                        lambda *a, **k: pytest.fail("the encoder was loaded"))
    with pytest.raises(ParaphraseError, match="failed on all 2 source intent") as raised:
        augment.run(augment.AugmentConfig(sources=sources), store, paraphraser=Scripted({}))
    assert isinstance(raised.value, WorkbenchError)
    assert "unparseable reply: no JSON" in str(raised.value)
    with store.session() as session:
        assert session.value("SELECT count(*) FROM augmentations") == 0
        assert session.value("SELECT count(*) FROM candidates") == 0


def test_a_round_with_some_failures_says_how_many_and_the_first(world, encoder) -> None:
    store, rows = world
    good, bad = train_keys(rows)[:2]
    result = augment.run(augment.AugmentConfig(sources=(good, bad)), store, encoder=encoder,
                         paraphraser=Scripted({rows[good]["intent_text"]: ["icy polar chill"]}))
    assert (result.n_sources, result.n_failed, result.n_kept) == (2, 1, 1)
    assert result.first_failure == "unparseable reply: no JSON"


def test_every_llm_call_failing_makes_the_cli_exit_2_and_the_job_fail(
        world, tmp_path: Path, monkeypatch, capsys) -> None:
    import socket
    import time

    from workbench.app import jobs
    from workbench.cli import main

    store, rows = world
    with socket.socket() as probe:  # a port nothing listens on: every request is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("WORKBENCH_LLM_BASE_URL", "WORKBENCH_LLM_MODEL", "WORKBENCH_LLM_API_KEY",
                 "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        f'[llm]\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "m"\nmax_retries = 0\n')
    monkeypatch.chdir(tmp_path)
    source = rows[train_keys(rows)[0]]["intent_text"]

    code = main(["augment", "--db", str(store.path), "--intent", source, "--paraphraser", "llm",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "failed on all 1 source intent" in err and "could not connect" in err

    job = jobs.submit(store.path, "augment", {"sources": [source], "paraphraser": "llm"})
    deadline = time.monotonic() + 90
    while not (job := jobs.load_job(job.db, job.id)).finished:
        assert time.monotonic() < deadline, job.log_tail()
        time.sleep(0.2)
    assert (job.status, job.error_type) == (jobs.JobStatus.FAILED, "ParaphraseError"), \
        job.log_tail()
    assert "could not connect" in (job.error or "")
    with store.session() as session:
        assert session.value("SELECT count(*) FROM augmentations") == 0


class FakeEncoder:
    """3-dimensional unit vectors from a hash of the text (lilac's fake embedding)."""

    def encode(self, texts: Sequence[str], **_: Any) -> Any:
        import numpy as np

        vectors = np.array([[1.0 + (hash(t) % 7), 1.0 + (hash(t) % 5), 1.0] for t in texts],
                           dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def get_sentence_embedding_dimension(self) -> int:
        return 3


class RacingEncoder(FakeEncoder):
    """Before embedding, lets another writer cache the same texts: exactly the race of two rounds
    at once, where the other writes between this one's read of the cache and its write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.raced = False

    def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
        if not self.raced:
            self.raced = True
            augment.cached_embeddings(self.store, FakeEncoder(), "fake", list(texts))
        return super().encode(texts, **kwargs)


def test_the_embedding_cache_tolerates_a_concurrent_writer(tmp_path: Path) -> None:
    import numpy as np

    store = Store(tmp_path / "cache.duckdb")
    with store.session(create=True):
        pass
    texts = ["warm dusk", "cold dawn", "warm dusk", "neon night"]
    racing = RacingEncoder(store)

    vectors = augment.cached_embeddings(store, racing, "fake", texts)

    assert racing.raced
    np.testing.assert_allclose(vectors, FakeEncoder().encode(texts), rtol=1e-6)
    assert store.query("SELECT count(*) AS n FROM embeddings") == [{"n": 3}]
    # and both writers' later reads come from the cache
    again = augment.cached_embeddings(store, None, "fake", texts)
    np.testing.assert_allclose(again, vectors, rtol=1e-6)


ROUND_TEXTS = ["a sunny honey glow", "icy polar chill", "dusty old photograph",
               "neon city night", "misty forest dawn"]


def test_a_second_round_never_proposes_what_was_decided_or_committed(world, encoder) -> None:
    store, rows = world
    source = train_keys(rows)[0]
    text = rows[source]["intent_text"]
    first = augment.run(augment.AugmentConfig(sources=(source,), n=10, version=1), store,
                        encoder=encoder, paraphraser=Scripted({text: ROUND_TEXTS}))
    assert first.n_kept == 5
    ids = {c["intent_text"]: c["candidate_id"] for c in review.list_candidates(
        store, review.ReviewFilter(augmentation_id=first.augmentation_id))}

    def decide(status: review.Status, *texts: str) -> None:
        review.set_status(store, review.ReviewFilter(
            candidate_ids=tuple(ids[t] for t in texts)), status, by="ana")

    decide(review.Status.REJECTED, "a sunny honey glow")
    decide(review.Status.APPROVED, "icy polar chill", "dusty old photograph")
    committed = review.commit(store, first.augmentation_id, by="ana").version_id
    decide(review.Status.APPROVED, "misty forest dawn")     # approved, not yet committed
    # "neon city night" stays pending

    # The same source again, from the same version; spelled differently (intent identity), and
    # one new text.
    again = ["A Sunny  Honey Glow", "icy polar chill", "DUSTY old photograph",
             "neon city night", "misty forest dawn", "warm desert sunset"]
    second = augment.run(augment.AugmentConfig(sources=(source,), n=10, version=1), store,
                         encoder=encoder, paraphraser=Scripted({text: again}))

    assert (second.n_generated, second.n_kept) == (6, 1)
    assert second.dropped == {"already_rejected": 1, "already_in_version": 2,
                              "already_pending": 1, "already_approved": 1}
    by_text = {c["intent_text"]: c for c in review.list_candidates(store, review.ReviewFilter(
        augmentation_id=second.augmentation_id, uncommitted=False))}
    reasons = {t: (c["status"], c["drop_reason"], c["nearest_text"]) for t, c in by_text.items()}

    def said(how: str, earlier: str) -> tuple[str, str, str]:
        return "dropped", f"{how} (candidate #{ids[earlier]})", earlier

    in_version = f"already in dataset version {committed}"
    assert reasons == {
        "A Sunny  Honey Glow": said("already rejected", "a sunny honey glow"),
        "icy polar chill": said(in_version, "icy polar chill"),
        "DUSTY old photograph": said(in_version, "dusty old photograph"),
        "neon city night": said("already pending", "neon city night"),
        "misty forest dawn": said("already approved", "misty forest dawn"),
        "warm desert sunset": ("pending", None, by_text["warm desert sunset"]["nearest_text"]),
    }

    # An experiment arm stands alone: with skip_decided off, the history does not apply.
    alone = augment.run(augment.AugmentConfig(sources=(source,), n=10, version=1,
                                              skip_decided=False), store, encoder=encoder,
                        paraphraser=Scripted({text: ROUND_TEXTS}))
    assert alone.n_kept == 5 and alone.dropped == {}


class Concurrent(Scripted):
    """A paraphraser during whose work another, identical round runs to the end (two jobs
    started moments apart)."""

    def __init__(self, table: dict[str, list[str]], other: Any) -> None:
        super().__init__(table)
        self.other = other

    def paraphrase(self, intents: Sequence[str], n: int,
                   progress: Progress | None = None) -> list[ParaphraseResult]:
        self.other()
        return super().paraphrase(intents, n, progress)


def test_two_identical_rounds_at_once_propose_each_text_once(world, encoder) -> None:
    store, rows = world
    source = train_keys(rows)[0]
    table = {rows[source]["intent_text"]: ROUND_TEXTS[:3]}
    config = augment.AugmentConfig(sources=(source,), n=3)
    finished: list[augment.AugmentResult] = []
    later = augment.run(config, store, encoder=encoder, paraphraser=Concurrent(
        table, lambda: finished.append(augment.run(config, store, encoder=encoder,
                                                   paraphraser=Scripted(table)))))
    [earlier] = finished
    assert (earlier.n_kept, later.n_kept) == (3, 0)
    assert later.dropped == {"already_pending": 3}
    assert review.count_candidates(store, review.ReviewFilter(status=review.Status.PENDING)) \
        == {"pending": 3}


def test_large_training_sets_are_checked_through_an_index_kept_beside_the_database(
        world, encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench import ann

    monkeypatch.setattr("workbench.dedup.INDEX_FROM", 4)     # 15 training intents: large
    monkeypatch.setattr("workbench.dedup.BUILD_FOR", 2)
    builds: list[int] = []
    real_build = ann.CosineIndex.build.__func__               # type: ignore[attr-defined]
    monkeypatch.setattr(ann.CosineIndex, "build", classmethod(
        lambda cls, rows, **settings: builds.append(len(rows)) or real_build(cls, rows)))
    store, rows = world
    source, other = train_keys(rows)[:2]
    near_train = rows[other]["intent_text"] + "!"
    scripted = Scripted({rows[source]["intent_text"]: [near_train, "a sunny honey glow"]})
    result = augment.run(augment.AugmentConfig(sources=(source,), n=2, threshold=0.9),
                         store, encoder=encoder, paraphraser=scripted)
    folder = augment.index_folder(store, embeddings.model_path(None))
    assert folder.is_dir() and folder.parent.parent.name == store.path.name + ".ann"
    n_train = sum(row["split"] == "train" for row in rows.values())
    assert builds == [n_train]
    by_text = {c["intent_text"]: c for c in review.list_candidates(store, review.ReviewFilter(
        augmentation_id=result.augmentation_id, uncommitted=False))}
    assert (by_text[near_train]["drop_reason"], by_text[near_train]["nearest_text"]) == \
        ("near_train", rows[other]["intent_text"])
    assert by_text["a sunny honey glow"]["status"] == "pending"

    # A round with fewer candidates than BUILD_FOR still uses the index, now that it is there.
    monkeypatch.setattr("workbench.dedup.BUILD_FOR", 10**9)
    again = Scripted({rows[other]["intent_text"]: [rows[source]["intent_text"] + "?"]})
    second = augment.run(augment.AugmentConfig(sources=(other,), n=1, threshold=0.9),
                         store, encoder=encoder, paraphraser=again)
    assert builds == [n_train]                                # loaded, not built again
    (only,) = review.list_candidates(store, review.ReviewFilter(
        augmentation_id=second.augmentation_id, uncommitted=False))
    assert (only["drop_reason"], only["nearest_text"]) == ("near_train",
                                                           rows[source]["intent_text"])
