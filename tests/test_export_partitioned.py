"""`workbench export --partitioned DIR`: a Hive-partitioned Parquet dataset of dataset versions
that pyarrow.dataset and DuckDB (as Spark and Ray would) read back as one table with `version`
and `split` columns; built beside DIR and swapped in; an existing DIR replaced only when it is an
earlier export; never inside the folders the workbench keeps beside the database.

The world: tests/conftest.py's tiny curated world (version 1: 15 train and 3 test intents), and a
version 2 committed from two labels (a curator's selective adjust on one intent, a teacher's
answer for an intent in no log, added to train). Expected rows come from the store's row and
label queries, never from the export code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipelines import export
from pipelines import labels as L
from tests.conftest import curated_store
from workbench.errors import OutputPathError
from workbench.outputs import check_output_file, check_output_tree
from workbench.store import Store
from workbench.store.labels import version_row_labels
from workbench.store.versions import (
    DatasetRow,
    Origin,
    Split,
    create_version,
    version_rows,
)

SUNSET = "warm golden sunset"
NEW = "lavender fields at dawn"
COLUMNS = ["intent", "request_count", "adjust", "selective_adjust", "filter", "origin",
           "source_intent", "label_id", "label_source"]


@pytest.fixture
def world(tmp_path: Path) -> Store:
    store = curated_store(tmp_path)
    L.set_label(store, SUNSET, {"selective_adjust": {"red": {"saturation": 20, "luminance": -10}}},
                "curator", "ann")
    L.set_label(store, NEW, {"adjust": {"tint": 15}}, "teacher", "m-a")
    L.commit(L.CommitConfig(precedence=("curator", "teacher", "curation"),
                            add_new_intents=True), store)
    return store


def expected(store: Store, version: int, split: str) -> list[dict[str, Any]]:
    """The version's rows of one split, by intent, as the export should write them (in an
    order of its own: compare sorted)."""
    def load(text: str | None) -> Any:
        return None if text is None else json.loads(text)

    with store.session(read_only=True) as session:
        rows = version_rows(session, version, Split(split))
        labels = version_row_labels(session, version)
    return by_intent([
        {"intent": row["intent_text"], "request_count": row["request_count"],
         "adjust": load(row["adjust"]), "selective_adjust": load(row["selective_adjust"]),
         "filter": load(row["filter"]), "origin": row["origin"],
         "source_intent": row["source_intent_key"],
         "label_id": labels[row["intent_key"]]["label_id"],
         "label_source": labels[row["intent_key"]]["source"]
         or f"export-rate choice (version {version})"} for row in rows])


def read_pyarrow(folder: Path) -> list[dict[str, Any]]:
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()


def read_duckdb(folder: Path) -> list[dict[str, Any]]:
    with duckdb.connect() as connection:
        relation = connection.sql(f"SELECT * FROM read_parquet('{folder}/**/*.parquet', "
                                  "hive_partitioning = true)")
        names = relation.columns
        return [dict(zip(names, row)) for row in relation.fetchall()]


def by_partition(rows: list[dict[str, Any]]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    found: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        row = dict(row)
        found.setdefault((int(row.pop("version")), row.pop("split")), []).append(row)
    return found


def by_intent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: row["intent"])


def hidden_siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


# ------------------------------------------------------------------------------ the data

def test_the_world_has_two_versions_with_different_labels(world: Store) -> None:
    v2 = {row["intent"]: row for row in expected(world, 2, "train") + expected(world, 2, "test")}
    assert len(v2) == 19 and v2[NEW]["origin"] == "labels"
    assert v2[NEW]["label_source"] == "teacher:m-a"
    assert v2[SUNSET]["label_source"] == "curator:ann"
    assert v2[SUNSET]["selective_adjust"]["red"] == {"saturation": 20, "luminance": -10}
    assert len(expected(world, 1, "train")) + len(expected(world, 1, "test")) == 18


def test_all_versions_read_back_as_one_table_with_pyarrow_and_duckdb(world: Store, tmp_path: Path,
                                                                     cli) -> None:
    out = tmp_path / "dataset"
    code, text, err = cli("export", "--db", world.path, "--partitioned", out, "--all-versions")
    assert code == 0, err
    assert text.splitlines()[0] == (f"wrote 37 rows of dataset versions 1, 2 (train, test) to "
                                    f"{out}, Parquet partitioned by version and split")
    assert "  version=2/split=train: 16 rows in 1 file" in text.splitlines()
    want = {(v, s): expected(world, v, s) for v in (1, 2) for s in ("train", "test")}
    for rows in (read_pyarrow(out), read_duckdb(out)):
        assert set(rows[0]) == {*COLUMNS, "version", "split"}
        found = by_partition(rows)
        assert set(found) == set(want)
        for key, rows_here in found.items():
            assert by_intent(rows_here) == want[key], key
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["_workbench_export.json"] + [
        f"version={v}/split={s}/part-00000.parquet" for v in (1, 2) for s in ("test", "train")]
    manifest = json.loads((out / export.MANIFEST).read_text())
    assert (manifest["versions"], manifest["splits"], manifest["rows"]) == ([1, 2],
                                                                            ["train", "test"], 37)
    assert manifest["database"] == str(world.path.resolve())
    assert {(p["version"], p["split"]): p["rows"] for p in manifest["partitions"]} == \
        {key: len(rows) for key, rows in want.items()}
    assert hidden_siblings(out) == []


def test_rows_match_todays_parquet_export_without_the_partition_columns(
        world: Store, tmp_path: Path, cli) -> None:
    out = tmp_path / "dataset"
    assert cli("export", "--db", world.path, "--partitioned", out, "--version", 2)[0] == 0
    assert cli("export", "--db", world.path, "--out", tmp_path / "v2.parquet", "--version", 2)[0] \
        == 0
    single = pq.read_table(tmp_path / "v2.parquet").to_pylist()
    found = by_partition(read_pyarrow(out))
    for split in ("train", "test"):
        assert by_intent(found[(2, split)]) == by_intent(
            [{k: v for k, v in row.items() if k != "split"} for row in single
             if row["split"] == split])


def test_the_current_version_by_default_and_the_chosen_versions_and_split(
        world: Store, tmp_path: Path, cli) -> None:
    assert cli("export", "--db", world.path, "--partitioned", tmp_path / "a")[0] == 0
    assert set(by_partition(read_pyarrow(tmp_path / "a"))) == {(2, "train"), (2, "test")}
    code, _, err = cli("export", "--db", world.path, "--partitioned", tmp_path / "b",
                       "--version", 1, "--version", 2, "--split", "test")
    assert code == 0, err
    assert set(by_partition(read_duckdb(tmp_path / "b"))) == {(1, "test"), (2, "test")}
    assert not (tmp_path / "b" / "version=1" / "split=train").exists()


def test_an_empty_split_is_one_empty_file_with_the_schema(world: Store, tmp_path: Path,
                                                          cli) -> None:
    with world.atomic() as session:
        train = [DatasetRow(**row) for row in version_rows(session, 1, Split.TRAIN)]
        version = create_version(session, train, Origin.SUBSAMPLE, "train only", {}, parent_id=1)
    out = tmp_path / "dataset"
    code, text, _ = cli("export", "--db", world.path, "--partitioned", out, "--version", version)
    assert code == 0 and f"  version={version}/split=test: 0 rows in 1 file" in text
    empty = pq.read_table(out / f"version={version}" / "split=test" / "part-00000.parquet")
    assert (empty.num_rows, empty.schema.names) == (0, COLUMNS)
    found = by_partition(read_pyarrow(out))
    assert list(found) == [(version, "train")]
    assert by_intent(found[(version, "train")]) == expected(world, version, "train")


def test_big_partitions_are_split_into_part_files_and_row_groups(
        world: Store, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "ROWS_PER_FILE", 4)
    monkeypatch.setattr(export, "BATCH_ROWS", 3)
    out = tmp_path / "dataset"
    code, text, _ = cli("export", "--db", world.path, "--partitioned", out, "--version", 1)
    assert code == 0 and "  version=1/split=train: 15 rows in 4 files" in text
    train = out / "version=1" / "split=train"
    parts = sorted(train.iterdir())
    assert [p.name for p in parts] == [f"part-0000{i}.parquet" for i in range(4)]
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [4, 4, 4, 3]
    for part in parts:   # each record batch of at most 3 rows is a row group
        metadata = pq.ParquetFile(part).metadata
        assert all(metadata.row_group(i).num_rows <= 3 for i in range(metadata.num_row_groups))
    # Together the files hold the partition's rows, each once.
    assert by_intent([row for part in parts for row in pq.read_table(part).to_pylist()]) == \
        expected(world, 1, "train")
    manifest = json.loads((out / export.MANIFEST).read_text())
    assert manifest["rows_per_file"] == 4
    assert next(p for p in manifest["partitions"] if p["split"] == "train")["files"] == \
        [f"version=1/split=train/part-0000{i}.parquet" for i in range(4)]


def test_json_output(world: Store, tmp_path: Path, cli) -> None:
    out = tmp_path / "dataset"
    code, text, _ = cli("export", "--db", world.path, "--partitioned", out, "--split", "train",
                        "--all-versions", "--json")
    assert code == 0
    result = json.loads(text)
    assert result == {
        "out": str(out), "versions": [1, 2], "splits": ["train"], "rows": 31, "replaced": False,
        "partitions": [{"version": v, "split": "train", "rows": n,
                        "files": [f"version={v}/split=train/part-00000.parquet"]}
                       for v, n in ((1, 15), (2, 16))]}
    code, text, _ = cli("export", "--db", world.path, "--out", tmp_path / "x.jsonl", "--json")
    assert code == 0
    assert json.loads(text) == {"version_id": 2, "split": "all", "rows": 19,
                                "out": str(tmp_path / "x.jsonl")}


# ------------------------------------------------------------------------------ safety

def test_an_earlier_export_is_replaced_whole(world: Store, tmp_path: Path, cli) -> None:
    out = tmp_path / "dataset"
    assert cli("export", "--db", world.path, "--partitioned", out, "--all-versions")[0] == 0
    code, text, _ = cli("export", "--db", world.path, "--partitioned", out, "--version", 1,
                        "--json")
    assert code == 0 and json.loads(text)["replaced"] is True
    assert sorted(p.name for p in out.iterdir()) == ["_workbench_export.json", "version=1"]
    assert set(by_partition(read_pyarrow(out))) == {(1, "train"), (1, "test")}
    assert hidden_siblings(out) == []
    # An empty folder (made by the user for it) is fine too.
    (tmp_path / "made").mkdir()
    assert cli("export", "--db", world.path, "--partitioned", tmp_path / "made")[0] == 0
    assert (tmp_path / "made" / export.MANIFEST).exists()


def test_a_failed_export_leaves_the_earlier_one(world: Store, tmp_path: Path, cli,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "dataset"
    assert cli("export", "--db", world.path, "--partitioned", out, "--version", 1)[0] == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = export._write_partition
    calls = []

    def fail_on_the_third(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(export, "_write_partition", fail_on_the_third)
    code, _, err = cli("export", "--db", world.path, "--partitioned", out, "--all-versions")
    assert code == 2 and err == f"error: cannot write {out}: No space left on device\n"
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert hidden_siblings(out) == []


def test_what_a_killed_export_left_is_tidied_by_the_next(world: Store, tmp_path: Path,
                                                          cli) -> None:
    out = tmp_path / "dataset"
    assert cli("export", "--db", world.path, "--partitioned", out, "--version", 1)[0] == 0
    dead = 2**22 + 12345                                  # beyond pid_max here: no such process
    # Killed between its two renames: the earlier export waits under the hidden old name.
    out.rename(tmp_path / f".dataset.{dead}-abcdef.old")
    (tmp_path / f".dataset.{dead}-123456.tmp" / "version=1").mkdir(parents=True)
    assert cli("export", "--db", world.path, "--partitioned", out, "--version", 2)[0] == 0
    assert set(by_partition(read_pyarrow(out))) == {(2, "train"), (2, "test")}
    assert hidden_siblings(out) == []


def test_another_folders_leftovers_are_left_alone(world: Store, tmp_path: Path, cli) -> None:
    dead = 2**22 + 12345
    # "[1]" is a glob pattern that matches "1": the leftovers of "export1" are not ours.
    theirs = tmp_path / f".export1.{dead}-abcdef.old"
    (theirs / "version=9").mkdir(parents=True)
    out = tmp_path / "export[1]"
    assert cli("export", "--db", world.path, "--partitioned", out, "--version", 1)[0] == 0
    assert theirs.is_dir() and set(by_partition(read_pyarrow(out))) == {(1, "train"), (1, "test")}


def test_a_folder_that_is_not_an_earlier_export_is_refused(world: Store, tmp_path: Path,
                                                           cli) -> None:
    mine = tmp_path / "mine"
    (mine / "deep").mkdir(parents=True)
    (mine / "deep" / "notes.txt").write_text("keep me")
    code, _, err = cli("export", "--db", world.path, "--partitioned", mine)
    assert code == 2 and f"--partitioned {mine} exists and is not a partitioned export" in err
    assert len(err.strip().splitlines()) == 1
    assert (mine / "deep" / "notes.txt").read_text() == "keep me"
    # An earlier export that someone added a file to is not replaced either.
    out = tmp_path / "dataset"
    assert cli("export", "--db", world.path, "--partitioned", out)[0] == 0
    (out / "version=2" / "README.md").write_text("my notes")
    code, _, err = cli("export", "--db", world.path, "--partitioned", out)
    assert code == 2 and "files the export did not write (version=2/README.md)" in err
    assert (out / "version=2" / "README.md").read_text() == "my notes"
    # A file, and a link to a folder, are refused as well.
    (tmp_path / "file").write_text("x")
    os.symlink(out, tmp_path / "link")
    for target, says in ((tmp_path / "file", "is a file, not a folder"),
                         (tmp_path / "link", "is a symbolic link")):
        code, _, err = cli("export", "--db", world.path, "--partitioned", target)
        assert code == 2 and says in err, err
    assert (tmp_path / "file").read_text() == "x"
    assert hidden_siblings(mine) == [] and hidden_siblings(out) == []


@pytest.mark.parametrize("where", ["runs/export", "jobs/1/export", "reality_checks/x",
                                   "w.duckdb.ann/export", "w.duckdb", "w.duckdb.wal", "."])
def test_never_onto_the_database_or_the_folders_beside_it(where: str, world: Store,
                                                          cli) -> None:
    target = world.path.parent / where
    existed = target.exists()
    code, _, err = cli("export", "--db", world.path, "--partitioned", target)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert ("manages" in err or "DuckDB database" in err or "is the database" in err
            or "holds the database" in err), err
    assert target.exists() == existed
    with duckdb.connect(str(world.path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM dataset_versions").fetchall() == [(2,)]


def test_the_ann_folder_beside_the_database_is_protected_for_every_out(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    index = tmp_path / "w.duckdb.ann" / "model" / "train"
    with pytest.raises(OutputPathError, match="w.duckdb.ann, which the workbench manages"):
        check_output_file(index / "rows.jsonl", db)
    with pytest.raises(OutputPathError, match="w.duckdb.ann, which the workbench manages"):
        check_output_tree(index, db, flag="--partitioned")
    # Another database's .ann folder is just a folder for this one.
    assert check_output_file(tmp_path / "other.duckdb.ann" / "rows.jsonl", db)


def test_several_versions_need_partitioned(world: Store, tmp_path: Path, cli) -> None:
    for extra in (["--version", "1", "2"], ["--all-versions"]):
        code, _, err = cli("export", "--db", world.path, "--out", tmp_path / "x.parquet", *extra)
        assert code == 2 and "--partitioned" in err
    assert not (tmp_path / "x.parquet").exists()
