"""Datasets page: empty databases, versions with lineage, the diff between two versions
(counts worked out by hand), and the export download."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from pipelines import ingest
from tests.conftest import curated_store, make_record
from workbench.store import Store
from workbench.store.versions import (
    DatasetRow,
    Origin,
    create_version,
    diff_versions,
    lineage_order,
    subsample_version,
    version_lineage,
    version_rows,
)


def _augmented(key: str, source: DatasetRow) -> DatasetRow:
    return replace(source, intent_key=key, intent_text=key, split="train", request_count=0,
                   origin="augmentation", source_intent_key=source.intent_key)


def four_versions(folder: Path) -> Store:
    """v1: the tiny curated world (15 train, 3 test).
    v2: 40% of v1's training split, seed 0 (6 train, 3 test), parent 1.
    v3: v1 plus 3 augmented training intents, 2 from round 1 and 1 from round 2, parent 1.
    v4 (current): v1 with one training intent moved to test, one adjust and one filter ground
    truth changed (on two other intents), parent 1."""
    store = curated_store(folder)
    with store.atomic() as session:
        subsample_version(session, 1, 0.4, seed=0)
        rows = [DatasetRow(**row) for row in version_rows(session, 1)]
        train = [row for row in rows if row.split == "train"]
        extra = [_augmented(f"augmented {i}", train[i]) for i in range(3)]
        create_version(session, rows + extra, Origin.AUGMENTATION, "3 approved", {}, parent_id=1)
        now = datetime.now(UTC)
        for round_id in (1, 2):
            session.execute("INSERT INTO augmentations (augmentation_id, created_at, version_id, "
                            "paraphraser, config, summary) VALUES (?, ?, 1, 'offline', '{}', "
                            "'{}')", [round_id, now])
        for round_id, row, committed in [(1, extra[0], 3), (1, extra[1], 3), (2, extra[2], 3),
                                         (2, _augmented("still pending", train[3]), None)]:
            session.execute("INSERT INTO candidates (augmentation_id, source_intent_key, "
                            "intent_key, intent_text, adjust, filter, status, "
                            "committed_version_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [round_id, row.source_intent_key, row.intent_key, row.intent_text,
                             row.adjust, row.filter,
                             "approved" if committed else "pending", committed])
        changed = list(rows)
        changed[-1] = replace(train[-1], split="test")                       # moved
        changed[-2] = replace(train[-2], adjust='{"temperature":99}')        # adjust changed
        changed[-3] = replace(train[-3], filter=None)                         # filter changed
        create_version(session, changed, Origin.CURATION, "hand-edited", {}, parent_id=1)
    return store


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the page hands to the download button (the callable runs when clicked)."""
    seen: dict[str, Any] = {}
    original = MediaFileManager.add_deferred

    def spy(self: MediaFileManager, data_callable: Any, mimetype: Any, coordinates: str,
            file_name: str | None = None, **kwargs: Any) -> str:
        seen.update(data=data_callable, mimetype=mimetype, file_name=file_name)
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return seen


def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("datasets", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_logs_without_a_version_say_how_to_make_one(page, tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(make_record()) + "\n")
    store = Store(tmp_path / "w.duckdb")
    ingest.ingest_file(logs, store)
    at = page("datasets", store.path).run()
    assert not at.exception
    assert "workbench curate" in at.info[0].body and not at.dataframe


def test_one_version_lists_it_and_says_a_diff_needs_two(page, tmp_path: Path,
                                                        downloads: dict) -> None:
    store = curated_store(tmp_path)
    at = page("datasets", store.path).run()
    assert not at.exception and not at.warning
    versions = at.dataframe[0].value
    assert list(versions["version"]) == [1] and list(versions["created by"]) == ["curation"]
    assert (versions["train"][0], versions["test"][0], versions["current"][0]) == (15, 3, "✓")
    assert any("Only one version" in info.body for info in at.info)
    assert at.download_button[0].label == "Download 18 rows as JSONL"


def test_versions_show_lineage_and_the_rounds_their_candidates_came_from(page,
                                                                         tmp_path: Path) -> None:
    store = four_versions(tmp_path)
    at = page("datasets", store.path).run()
    assert not at.exception
    versions = at.dataframe[0].value.set_index("version")
    assert list(versions.index) == [4, 3, 2, 1]
    assert [versions.loc[v, "parent"] for v in (1, 2, 3, 4)] == ["—", "1", "1", "1"]
    assert list(versions["created by"]) == ["curation", "augmentation", "subsample", "curation"]
    assert (versions.loc[2, "train"], versions.loc[2, "test"]) == (6, 3)
    assert (versions.loc[3, "train"], versions.loc[3, "augmentation candidates"],
            versions.loc[3, "from rounds"]) == (18, 3, "round 1: 2, round 2: 1")
    assert versions.loc[4, "current"] == "✓" and versions.loc[1, "from rounds"] == "—"
    assert versions.loc[1, "augmentation candidates"] == 0
    assert at.get("plotly_chart")


def test_lineage_is_ordered_as_a_tree(tmp_path: Path) -> None:
    store = four_versions(tmp_path)
    with store.session() as session:
        versions = version_lineage(session)
    assert [(v["version_id"], v["depth"], v["candidates"]) for v in versions] \
        == [(1, 0, 0), (2, 1, 0), (3, 1, 3), (4, 1, 0)]
    assert versions[2]["rounds"] == [(1, 2), (2, 1)]
    tree: list[dict] = [{"version_id": 1, "parent_id": None}, {"version_id": 2, "parent_id": 1},
            {"version_id": 3, "parent_id": None}, {"version_id": 4, "parent_id": 2},
            {"version_id": 5, "parent_id": 1}, {"version_id": 6, "parent_id": 99}]
    assert [v["version_id"] for v in lineage_order(tree)] == [1, 2, 4, 5, 3, 6]


def test_diff_versions_counts_and_samples(tmp_path: Path) -> None:
    store = four_versions(tmp_path)
    with store.session() as session:
        diff = diff_versions(session, 1, 4, sample_size=5)
        same = diff_versions(session, 2, 2)
        back = diff_versions(session, 2, 1, sample_size=4)
    assert (diff.added, diff.removed, diff.moved) == ({"train": 0, "test": 1},
                                                      {"train": 1, "test": 0}, 1)
    assert diff.changed == {"adjust": 1, "selective_adjust": 0, "filter": 1}
    assert [(row["change"], row["tool"]) for row in diff.sample] == [
        ("added", None), ("removed", None), ("ground truth changed", "adjust"),
        ("ground truth changed", "filter")]
    assert diff.sample[0]["intent"] == diff.sample[1]["intent"]   # the moved intent
    assert diff.sample[3]["new"] is None and diff.sample[3]["old"] is not None
    assert same.unchanged and not diff.unchanged
    assert back.added == {"train": 9, "test": 0} and len(back.sample) == 4   # capped


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_diff_counts_added_removed_moved_and_changed_intents(page, tmp_path: Path) -> None:
    store = four_versions(tmp_path)
    at = page("datasets", store.path).run()   # default: the current version (4) vs its parent
    assert (at.selectbox(key="datasets_diff_old").value,
            at.selectbox(key="datasets_diff_new").value) == (1, 4)
    metrics = _metrics(at)
    assert (metrics["Added to train"], metrics["Added to test"], metrics["Removed from train"],
            metrics["Removed from test"], metrics["Moved to the other split"]) \
        == ("0", "1", "1", "0", "1")
    assert (metrics["Ground truth changed: Adjust"],
            metrics["Ground truth changed: Selective Adjust"],
            metrics["Ground truth changed: Filter"]) == ("1", "0", "1")
    sample = at.dataframe[1].value
    assert sorted(zip(sample["change"], sample["split"], sample["tool"])) == [
        ("added", "test", ""), ("ground truth changed", "train", "Adjust"),
        ("ground truth changed", "train", "Filter"), ("removed", "train", "")]
    assert "temperature +99" in set(sample["new"])
    assert (sample["old"] != "").sum() == 2   # both changes are shown, old and new

    at.selectbox(key="datasets_diff_new").set_value(2).run()   # v1 -> v2: 9 of 15 train gone
    metrics = _metrics(at)
    assert (metrics["Removed from train"], metrics["Added to train"],
            metrics["Removed from test"]) == ("9", "0", "0")
    at.selectbox(key="datasets_diff_new").set_value(3).run()   # v1 -> v3: 3 augmentations
    metrics = _metrics(at)
    assert (metrics["Added to train"], metrics["Removed from train"]) == ("3", "0")
    assert set(at.dataframe[1].value["intent"]) == {"augmented 0", "augmented 1", "augmented 2"}
    at.selectbox(key="datasets_diff_old").set_value(3).run()
    assert any("two different versions" in info.body for info in at.info)


def test_export_downloads_the_versions_rows(page, tmp_path: Path, downloads: dict) -> None:
    store = four_versions(tmp_path)
    at = page("datasets", store.path).run()
    at.selectbox(key="datasets_export_version").set_value(2).run()   # 6 train + 3 test
    assert at.download_button[0].label == "Download 9 rows as JSONL"
    assert downloads["file_name"] == "dataset-v2-all.jsonl"
    lines = downloads["data"]().decode().splitlines()
    assert len(lines) == 9
    records = [json.loads(line) for line in lines]
    assert [r["split"] for r in records].count("test") == 3
    assert set(records[0]) == {"intent", "split", "request_count", "adjust", "selective_adjust",
                               "filter", "origin", "source_intent", "label_id",
                               "label_source"}

    at.selectbox(key="datasets_export_split").set_value(
        at.selectbox(key="datasets_export_split").options[1])   # train
    at.selectbox(key="datasets_export_format").set_value("parquet").run()
    assert at.download_button[0].label == "Download 6 rows as Parquet"
    assert downloads["file_name"] == "dataset-v2-train.parquet"
    table = pq.read_table(io.BytesIO(downloads["data"]()))
    assert table.num_rows == 6 and set(table.column("split").to_pylist()) == {"train"}


def test_the_demo_corpus_is_labelled_synthetic(page, tmp_path: Path) -> None:
    from pipelines import curate

    logs = tmp_path / "synthetic-demo-logs.jsonl"   # the demo's file name marks it synthetic
    logs.write_text("".join(json.dumps(make_record(request_id=f"r{i}", intent=f"look {i}"))
                            + "\n" for i in range(3)))
    store = Store(tmp_path / "w.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=1, seed=0), store)
    at = page("datasets", store.path).run()
    assert not at.exception
    assert "synthetic" in at.warning[0].body
