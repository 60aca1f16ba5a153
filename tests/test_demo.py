"""`workbench demo` at the paper's scale: the numbers the foundation issue promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import demo
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store.status import status_counts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, demo.DemoResult]:
    store = Store(tmp_path_factory.mktemp("demo") / "w.duckdb")
    return store, demo.run(demo.DemoRunConfig(), store)


def test_paper_scale_counts(built):
    store, result = built
    counts = status_counts(store)
    # The poster: 9,252 unique intents, 27,756 rows; 1,000 test intents, 8,252 training.
    assert (counts["requests"], counts["intents"], counts["quarantined"]) == (27_756, 9_252, 0)
    version = counts["current_version"]
    assert (version["n_train"], version["n_test"]) == (8_252, 1_000)
    # r_3 and r_5 test subsets of a few hundred intents.
    assert 150 <= version["test_r_5"] < version["test_r_3"] <= 600
    assert "SYNTHETIC" in version["note"]
    assert result.corpus_path.name.startswith("synthetic-")


def test_tool_usage_near_the_paper(built):
    store, _ = built
    usage = store.query("SELECT count(adjust) / count(*) AS adjust, count(selective_adjust) / "
                        "count(*) AS selective, count(filter) / count(*) AS filter "
                        "FROM dataset_rows WHERE split = 'train'")[0]
    # Poster, training set: adjust 7570/8252, selective 2647/8252, filter 5448/8252.
    assert usage["adjust"] == pytest.approx(7570 / 8252, abs=0.03)
    assert usage["selective"] == pytest.approx(2647 / 8252, abs=0.03)
    assert usage["filter"] == pytest.approx(5448 / 8252, abs=0.03)


def test_existing_database_is_not_overwritten(built):
    store, _ = built
    with pytest.raises(WorkbenchError, match="--replace"):
        demo.run(demo.DemoRunConfig(), store)


def test_a_failed_replace_keeps_the_old_database(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    demo.run(demo.DemoRunConfig(requests=600, test_size=0.1), store)
    before = status_counts(store)
    # 600 requests make 200 intents: 1,000 test intents cannot be held out, so curation fails
    # after the corpus was generated and ingested.
    with pytest.raises(WorkbenchError, match="test size"):
        demo.run(demo.DemoRunConfig(requests=600, test_size=1000, replace=True), store)
    assert status_counts(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "synthetic-demo-logs-600.jsonl", "w.duckdb"]


def test_replace_builds_a_new_database(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    demo.run(demo.DemoRunConfig(requests=600, test_size=0.1), store)
    demo.run(demo.DemoRunConfig(requests=900, test_size=0.1, replace=True), store)
    assert status_counts(store)["requests"] == 900


def test_a_small_demo_keeps_the_papers_test_share(tmp_path: Path):
    # 1,000 test intents would leave a 3,000-request corpus (about 1,000 intents) no training set.
    store = Store(tmp_path / "small.duckdb")
    result = demo.run(demo.DemoRunConfig(requests=3000), store)
    share = result.curate.test / result.curate.intents
    assert abs(share - 1000 / 9252) < 0.01
    assert result.curate.train > 0
