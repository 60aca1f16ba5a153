"""Train / predict / evaluate a run end to end on a tiny hand-made dataset (retrieval student)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import evaluate, predict, train
from tests.conftest import curated_store
from workbench.errors import StoreReadOnlyError, WorkbenchError
from workbench.store import Store, runs
from workbench.tools import parse_answer


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, train.TrainResult]:
    store = curated_store(tmp_path_factory.mktemp("train"))
    return store, train.run(train.TrainConfig(student="retrieval"), store)


def test_run_is_recorded_with_its_data(trained):
    store, result = trained
    row = runs.find_run(store, result.run_id[:12])
    assert (row["student"], row["version_id"], row["n_train"]) == ("retrieval", 1, 15)
    assert Path(row["artifact_path"]).is_dir() and row["size_bytes"] > 0
    assert json.loads(row["config"])["batch_size"] > 0
    assert runs.find_run(store, None)["run_id"] == result.run_id


def test_predict_writes_valid_answers(trained, tmp_path: Path):
    store, result = trained
    intents = tmp_path / "in.jsonl"
    intents.write_text('{"intent": "warm golden sunset please"}\n{"intent": "noir black and white"}\n')
    out = tmp_path / "out.jsonl"
    predict.run(predict.PredictConfig(inp=intents, out=out, run=result.run_id), store)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["intent"] for line in lines] == ["warm golden sunset please",
                                                 "noir black and white"]
    answers = [parse_answer({k: v for k, v in line.items() if k != "intent"}) for line in lines]
    assert answers[0].filter.name == "warm_Golden" and answers[1].filter.name == "mono_Noir"


def test_predict_names_bad_lines(trained, tmp_path: Path):
    store, _ = trained
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"intent": "ok"}\nnot json\n{"text": "x"}\n')
    with pytest.raises(WorkbenchError, match="2 bad line"):
        predict.run(predict.PredictConfig(inp=bad, out=tmp_path / "o.jsonl"), store)


def test_evaluate_a_run(trained):
    store, result = trained
    evaluation = evaluate.evaluate_run(result.run_id, None, store)
    assert (evaluation.kind, evaluation.source, evaluation.version_id) == ("run", result.run_id, 1)
    # Every test intent is a paraphrase of a training look: the nearest neighbour is right.
    assert evaluation.subsets[0].tools["filter"].quality == 1.0


def test_failed_training_leaves_nothing(trained, monkeypatch):
    store, _ = trained
    from workbench.students.retrieval import RetrievalStudent

    def broken(self, data, progress=None):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(RetrievalStudent, "train", broken)
    before = len(runs.list_runs(store))
    folders = set((store.path.parent / "runs").iterdir())
    with pytest.raises(RuntimeError):
        train.run(train.TrainConfig(student="retrieval"), store)
    assert len(runs.list_runs(store)) == before
    assert set((store.path.parent / "runs").iterdir()) == folders


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_killed_trains_leftovers_are_removed_when_train_next_starts(trained, monkeypatch,
                                                                       capsys):
    store, result = trained
    root = store.path.parent / "runs"

    def folder(name: str, owner: Path | None = None) -> Path:
        path = root / name
        path.mkdir()
        (path / "student.json").write_text("{}")
        if owner is not None:
            (path / train.OWNER_FILE).write_text(str(owner.resolve()) + "\n")
        return path

    dead_saving = folder(f".saving-20240101-000000-heads-abcd-{_dead_pid()}")
    live_saving = folder(f".saving-20240101-000000-heads-abce-{os.getpid()}")  # saving now
    unrecorded = folder("20240101-000000-heads-0bad", owner=store.path)   # killed after rename
    other_db = folder("20240101-000000-heads-0bee", owner=store.path.parent / "other.duckdb")
    unowned = folder("20240101-000000-heads-0bef")           # made before runs carried a note
    from workbench.students.retrieval import RetrievalStudent

    def stop(self, data, progress=None):
        raise RuntimeError("stop after the start-up")

    monkeypatch.setattr(RetrievalStudent, "train", stop)
    with pytest.raises(RuntimeError, match="stop after"):
        train.run(train.TrainConfig(student="retrieval"), store)
    assert not dead_saving.exists() and not unrecorded.exists()
    assert live_saving.exists() and other_db.exists() and unowned.exists()
    assert Path(runs.find_run(store, result.run_id)["artifact_path"]).is_dir()
    err = capsys.readouterr().err
    assert f"removed {dead_saving}" in err and f"removed {unrecorded}" in err
    assert str(live_saving) not in err and str(other_db) not in err
    for path in (live_saving, other_db, unowned):
        shutil.rmtree(path)


def test_the_model_is_renamed_into_place_with_its_row(trained, monkeypatch):
    store, _ = trained
    root = store.path.parent / "runs"
    before = set(root.iterdir())
    runs_before = len(runs.list_runs(store))

    def refuse(source, target):
        assert Path(source).name.startswith(".saving-") and Path(source).is_dir()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train.os, "rename", refuse)
    with pytest.raises(OSError, match="No space"):
        train.run(train.TrainConfig(student="retrieval"), store)
    assert len(runs.list_runs(store)) == runs_before   # the row was rolled back
    assert set(root.iterdir()) == before                # and no folder is left
    monkeypatch.undo()
    done = train.run(train.TrainConfig(student="retrieval"), store)
    assert done.artifact_path == root / done.run_id and done.artifact_path.is_dir()
    assert (done.artifact_path / train.OWNER_FILE).read_text().strip() == \
        str(store.path.resolve())
    assert not [path for path in root.iterdir() if path.name.startswith(".saving-")]


def test_unwritable_runs_folder_fails_before_training(trained, monkeypatch):
    store, _ = trained
    root = store.path.parent / "runs"
    from workbench.students.retrieval import RetrievalStudent

    trained_at_all = []
    monkeypatch.setattr(RetrievalStudent, "train",
                        lambda self, data, progress=None: trained_at_all.append(1))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == root
                        else real_access(path, mode, **kw))
    with pytest.raises(StoreReadOnlyError, match=f"cannot save models into {root}"):
        train.run(train.TrainConfig(student="retrieval"), store)
    assert trained_at_all == []


def test_unknown_student_and_run(trained):
    store, _ = trained
    with pytest.raises(WorkbenchError, match="unknown student"):
        train.run(train.TrainConfig(student="gpt5"), store)
    with pytest.raises(WorkbenchError, match="no training run"):
        runs.find_run(store, "nope")


def test_rq1_trains_and_evaluates_each_student_with_one_shared_encoder(tmp_path, monkeypatch):
    from pipelines import experiments
    from workbench import embeddings

    store = curated_store(tmp_path, second_outputs=True)
    loads = []
    real = embeddings.load_encoder
    monkeypatch.setattr(embeddings, "load_encoder",
                        lambda *args, **kwargs: loads.append(args) or real(*args, **kwargs))
    directions = tmp_path / "directions.jsonl"
    directions.write_text('{"request": "make it darker", "expect": {"brightness": "down"}}\n'
                          '{"request": "warmer", "expect": {"warmth": "up"}}\n')
    result = experiments.rq1(experiments.RQ1Config(
        students=("retrieval", "heads"),
        student_configs={"heads": {"epochs": 5, "hidden": 16, "device": "cpu"}},
        directions=directions), store)
    labels = [row.label for row in result.rows]
    assert labels == ["Teacher self-consistency (ceiling)", "Constant mean answer (floor)",
                      "retrieval student", "heads student"]
    assert len(loads) == 1
    for row in result.rows[2:]:
        assert row.run is not None and row.evaluation.source == row.run.run_id
    # Beside the table: the floor and every student checked on the direction set, the ceiling
    # not (there is no teacher to ask).
    assert result.rows[0].directions is None
    assert [row.directions.n for row in result.rows[1:] if row.directions] == [2, 2, 2]
    assert result.to_dict()["direction_set"] == str(directions)
    assert result.to_dict()["rows"][3]["directions"]["n"] == 2
