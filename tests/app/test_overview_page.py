"""Overview page: empty database, a small populated one, and what it shows."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import curated_store


def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("overview", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_a_curated_world_shows_counts_usage_and_no_evaluations_yet(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)  # 18 requests, 18 intents, 3 test intents, no evaluations
    at = page("overview", store.path).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "18" and metrics["Intents"] == "18"
    assert (metrics["Train intents"], metrics["Test intents"]) == ("15", "3")
    assert not at.warning  # hand-made data is not labelled synthetic
    assert any("No evaluations yet" in info.body for info in at.info)


def test_the_demo_corpus_is_labelled_synthetic_and_evaluations_are_listed(page,
                                                                           tmp_path: Path) -> None:
    from pipelines import demo, evaluate
    from workbench.store import Store

    store = Store(tmp_path / "demo.duckdb")
    demo.run(demo.DemoRunConfig(requests=600, test_size=0.2), store)
    evaluate.baselines(None, store)
    at = page("overview", store.path).run()
    assert not at.exception
    assert "synthetic" in at.warning[0].body
    table = at.dataframe[0].value
    assert set(table["kind"]) == {"self_consistency", "baseline"}
    assert list(table["test"][:3]) == ["All", "r_3", "r_5"]
