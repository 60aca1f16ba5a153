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


def plotly_spec(at, key: str) -> tuple[dict, dict]:
    """(figure, config) of the Plotly chart with `key`, as the page sent them."""
    import json

    [chart] = [chart for chart in at.get("plotly_chart") if key in chart.proto.id]
    return json.loads(chart.proto.spec), json.loads(chart.proto.config or "{}")


def plotly_values(values) -> list[float]:
    """A trace's numbers, also when Plotly sent them as a typed array (dtype + base64)."""
    import base64

    import numpy as np

    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def test_evaluations_on_an_older_version_are_listed_with_their_version(page,
                                                                       tmp_path: Path) -> None:
    from pipelines import curate, evaluate

    store = curated_store(tmp_path, second_outputs=True)
    evaluate.baselines(None, store)                     # the ceiling and the floor on version 1
    curate.run(curate.CurateConfig(test_size=3, seed=1), store)          # version 2: none yet
    at = page("overview", store.path).run()
    assert not at.exception
    assert not any("No evaluations yet" in info.body for info in at.info)
    assert any("None on the current version 2 yet; the latest below are on version 1"
               in info.body for info in at.info)
    table = at.dataframe[0].value
    assert set(table["version"]) == {1}
    assert set(table["kind"]) == {"self_consistency", "baseline"}

    evaluate.baselines(None, store)                     # now on version 2 too: only those
    at = page("overview", store.path).run()
    assert not any("None on the current version" in info.body for info in at.info)
    assert set(at.dataframe[0].value["version"]) == {2}


def test_the_export_rate_histogram_reads_on_a_log_scale_without_a_toolbar(page,
                                                                          tmp_path: Path) -> None:
    import numpy as np

    store = curated_store(tmp_path)
    at = page("overview", store.path).run()
    figure, config = plotly_spec(at, "export_rates")
    assert figure["layout"]["yaxis"]["type"] == "log"
    assert config == {"displayModeBar": False}
    assert np.nansum(plotly_values(figure["data"][0]["y"])) == 18   # no empty bin drawn            # every intent is in a bin
    at.toggle(key="export_rates_log").set_value(False).run()
    figure, _ = plotly_spec(at, "export_rates")
    assert figure["layout"]["yaxis"].get("type", "linear") == "linear"
    assert sum(plotly_values(figure["data"][0]["y"])) == 18
