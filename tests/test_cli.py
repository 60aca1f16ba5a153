"""The `workbench` command, driven in-process through `main([...])` (and once as a subprocess).

The small corpus below is worked out by hand; the comments give every expected number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import make_record
from workbench.cli import build_parser, main
from workbench.tools import ADJUST_KEYS, COLOURS


def full_adjust(**sliders: int) -> dict[str, int]:
    return {key: sliders.get(key, 0) for key in ADJUST_KEYS}


def full_selective(**colours: dict[str, int]) -> dict[str, dict[str, int]]:
    return {c: {"saturation": colours.get(c, {}).get("saturation", 0),
                "luminance": colours.get(c, {}).get("luminance", 0)} for c in COLOURS}


def rec(request_id: str, intent: str, day: int, exports: dict[str, int], **tools: Any) -> dict:
    teacher = {"adjust": None, "selective_adjust": None, "filter": None, **tools}
    return make_record(request_id=request_id, intent=intent,
                       created_at=f"2024-01-{day:02d}T10:00:00Z", teacher=teacher,
                       exports={"adjust": 0, "selective_adjust": 0, "filter": 0, **exports})


GOLDEN = {"name": "warm_Golden", "intensity": 40}
AMBER = {"name": "warm_Amber", "intensity": 60}

# 14 requests, 11 intents.
# - "golden hour", 3 requests, all with some export (none dropped):
#     adjust: {temperature 30} in g1 (1 export) and g2 (1): rate 2/2 = 1.0;
#             {temperature 50} in g3 (0): rate 0/1 = 0          -> temperature 30
#     filter: warm_Golden 40 in g1 (1) and g2 (0): rate 1/2 = 0.5;
#             warm_Amber 60 in g3 (1): rate 1/1 = 1.0          -> warm_Amber 60
#     selective_adjust: unused in all three                     -> unused
# - "dead look", 2 requests with zero exports: both dropped, so the intent is not curated.
# - 9 intents with one request each, every used tool exported once: ground truth = that output.
# Curated: 10 intents; dropped 2 requests and 1 intent. With --test-size 3: test 3, train 7.
CORPUS = [
    rec("g1", "golden hour", 1, {"adjust": 1, "filter": 1}, adjust={"temperature": 30},
        filter=GOLDEN),
    rec("g2", "golden hour", 2, {"adjust": 1}, adjust={"temperature": 30}, filter=GOLDEN),
    rec("g3", "golden hour", 3, {"filter": 1}, adjust={"temperature": 50}, filter=AMBER),
    rec("d1", "dead look", 1, {}, adjust={"exposure": 10}),
    rec("d2", "dead look", 2, {}, adjust={"exposure": 10}),
    rec("s1", "cool morning", 4, {"adjust": 1, "filter": 1},
        adjust={"temperature": -35, "exposure": 5}, filter={"name": "cool_Morning", "intensity": 50}),
    rec("s2", "film noir", 4, {"adjust": 1, "filter": 1}, adjust={"contrast": 45},
        filter={"name": "mono_Noir", "intensity": 90}),
    rec("s3", "tropical beach", 4, {"adjust": 1, "selective_adjust": 1}, adjust={"saturation": 30},
        selective_adjust={"cyan": {"saturation": 25}, "blue": {"luminance": 10}}),
    rec("s4", "autumn forest", 4, {"filter": 1}, filter={"name": "nature_Autumn", "intensity": 60}),
    rec("s5", "moody night", 4, {"adjust": 1}, adjust={"exposure": -20}),
    rec("s6", "vintage 70s", 4, {"filter": 1}, filter={"name": "vintage_70s", "intensity": 70}),
    rec("s7", "arctic blue", 4, {"adjust": 1, "selective_adjust": 1}, adjust={"temperature": -60},
        selective_adjust={"blue": {"saturation": 30}}),
    rec("s8", "neon city", 4, {"adjust": 1, "filter": 1}, adjust={"tint": 30},
        filter={"name": "vivid_Neon", "intensity": 80}),
    rec("s9", "soft portrait", 4, {"adjust": 1}, adjust={"contrast": -10}),
]

# intent -> (request_count, adjust, selective_adjust, filter) that curation must choose.
EXPECTED = {
    "golden hour": (3, full_adjust(temperature=30), None, AMBER),
    "cool morning": (1, full_adjust(temperature=-35, exposure=5), None,
                     {"name": "cool_Morning", "intensity": 50}),
    "film noir": (1, full_adjust(contrast=45), None, {"name": "mono_Noir", "intensity": 90}),
    "tropical beach": (1, full_adjust(saturation=30),
                       full_selective(cyan={"saturation": 25}, blue={"luminance": 10}), None),
    "autumn forest": (1, None, None, {"name": "nature_Autumn", "intensity": 60}),
    "moody night": (1, full_adjust(exposure=-20), None, None),
    "vintage 70s": (1, None, None, {"name": "vintage_70s", "intensity": 70}),
    "arctic blue": (1, full_adjust(temperature=-60), full_selective(blue={"saturation": 30}), None),
    "neon city": (1, full_adjust(tint=30), None, {"name": "vivid_Neon", "intensity": 80}),
    "soft portrait": (1, full_adjust(contrast=-10), None, None),
}
assert len(CORPUS) == 14 and len(EXPECTED) == 10


def _subcommands(parser: argparse.ArgumentParser,
                 words: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """Every command, nested ones included, by its words: 'status', 'review', 'review list'."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found[" ".join((*words, name))] = command
                found.update(_subcommands(command, (*words, name)))
    return found


SUBCOMMANDS = _subcommands(build_parser())
GROUPS = {"review": {"list", "approve", "reject", "pending", "commit"}, "experiment": {"rq1", "rq2"},
          "reality-check": {"create", "render", "annotate", "report", "list"},
          "jobs": {"list", "show", "cancel"},
          "labels": {"list", "show", "set", "export", "stats", "commit"}}


@pytest.fixture(autouse=True)
def _no_default_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Anything that forgets --db lands in tmp_path, never in the project's data folder.
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "default" / "workbench.duckdb"))
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "2")


def write_jsonl(path: Path, records: Sequence[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wb.duckdb"


@pytest.fixture
def ingested(tmp_path: Path, db: Path, cli) -> Path:
    """The corpus ingested into `db`."""
    code, out, _ = cli("ingest", write_jsonl(tmp_path / "corpus.jsonl", CORPUS), "--db", db)
    assert code == 0, out
    return db


@pytest.fixture
def curated(ingested: Path, cli) -> Path:
    code, out, err = cli("curate", "--db", ingested, "--test-size", 3, "--seed", 13)
    assert code == 0, (out, err)
    return ingested


def squash(text: str) -> str:
    return "".join(text.split())


# --------------------------------------------------------------------------- help


def test_the_parser_has_the_documented_subcommands() -> None:
    assert set(SUBCOMMANDS) >= {"demo", "ingest", "curate", "status", "versions", "export",
                                "quarantine"}
    for group, actions in GROUPS.items():
        assert {name.split(" ", 1)[1] for name in SUBCOMMANDS
                if name.startswith(group + " ")} == actions


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_help_exits_0_with_its_description(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    description = SUBCOMMANDS[name].description
    assert description and description.strip()
    with pytest.raises(SystemExit) as exit_info:
        main([*name.split(), "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"workbench {name}" in out  # the usage line
    assert squash(description) in squash(out)  # argparse rewraps the text
    assert "%%" not in out  # an escape meant for argparse's %-formatting, printed as is
    assert "--db" in out


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name.split()[0] in out


def test_app_launches_streamlit_on_the_database_without_importing_the_pages(
        cli, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: dict[str, Any] = {}

    class FakeServer:
        returncode = 0

        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            launched.update(command=command, env=env)

        def poll(self) -> int:
            return 0

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    for name in [m for m in sys.modules if m.startswith("workbench.app")]:
        monkeypatch.delitem(sys.modules, name)
    code, out, _ = cli("app", "--db", db, "--port", 8642)
    assert code == 0
    command = launched["command"]
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == Path(__file__).resolve().parent.parent / "workbench/app/main.py"
    assert command[command.index("--server.port") + 1] == "8642"
    assert launched["env"]["WORKBENCH_DB"] == str(db.resolve())
    assert "http://127.0.0.1:8642" in out
    assert not [m for m in sys.modules if m.startswith("workbench.app")]


# --------------------------------------------------------------------------- nested commands


@pytest.mark.parametrize("argv", [
    ["review", "list", "--note", "x"],            # --note is commit's
    ["review", "list", "--by", "ana"],            # --by is approve's, reject's and commit's
    ["review", "commit", "--status", "all"],      # --status is list's
    ["review", "commit", "--json"],               # commit prints text only
    ["review", "approve", "--offset", "3"],
    ["reality-check", "list", "--n", "3"],        # --n is create's
    ["reality-check", "report", "1", "--annotator", "ana"],
    ["reality-check", "create", "--out", "x"],    # --out is render's
    ["jobs", "list", "20240101"],                 # list takes no job id
    ["jobs", "show", "20240101", "--json"],
    ["experiment", "rq1", "--fraction", "0.5"],   # --fraction is rq2's
    ["experiment", "rq1", "--control"],
    ["review"],                                   # a group needs its action
])
def test_a_flag_is_refused_where_it_means_nothing(argv: list[str], db: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--db", str(db)])
    assert refused.value.code == 2
    assert "error: " in capsys.readouterr().err
    assert not db.exists()


def test_flags_are_taken_where_they_mean_something() -> None:
    parse = build_parser().parse_args
    args = parse(["review", "commit", "--note", "n", "--no-rebase", "--augmentation", "2"])
    assert (args.action, args.note, args.rebase, args.augmentation) == ("commit", "n", False, 2)
    args = parse(["review", "approve", "3", "4", "--by", "ana"])
    assert (args.ids, args.by, args.all_pending) == ([3, 4], "ana", False)
    args = parse(["reality-check", "annotate", "2", "--annotator", "bo"])
    assert (args.check, args.annotator, args.answers) == (2, "bo", None)
    args = parse(["experiment", "rq2", "--fraction", "0.25", "--quick", "--json"])
    assert (args.fraction, args.quick, args.json) == (0.25, True, True)
    # --db is the group's as well as the action's: either place works, the action's wins.
    assert parse(["jobs", "--db", "a.duckdb", "list"]).db == Path("a.duckdb")
    assert parse(["jobs", "list", "--db", "b.duckdb"]).db == Path("b.duckdb")
    assert parse(["jobs", "--db", "a.duckdb", "list", "--db", "b.duckdb"]).db == Path("b.duckdb")
    assert parse(["jobs", "list"]).db is None


def test_only_reading_actions_open_the_database_read_only() -> None:
    parse = build_parser().parse_args
    reading = {" ".join(argv[:2]) for argv in (
        ["review", "list"], ["reality-check", "list"], ["reality-check", "report", "1"],
        ["jobs", "list"], ["jobs", "show", "j"], ["jobs", "cancel", "j"])
        if parse(argv).read_only}
    assert reading == {"review list", "reality-check list", "reality-check report", "jobs list",
                       "jobs show", "jobs cancel"}
    for argv in (["review", "commit"], ["review", "approve", "1"], ["reality-check", "create"],
                 ["reality-check", "render", "1"], ["reality-check", "annotate", "1",
                                                    "--annotator", "a"]):
        assert not parse(argv).read_only, argv


# Defaults come from the config dataclasses and choices from the registries: changing a default
# there changes the command (the parser restates no number).
@pytest.mark.parametrize("module,config,field,value,argv", [
    ("pipelines.augment", "AugmentConfig", "n", 7, ["augment"]),
    ("pipelines.augment", "AugmentConfig", "threshold", 0.77, ["augment"]),
    ("pipelines.augment", "AugmentConfig", "seed", 7, ["augment"]),
    ("pipelines.experiments", "RQ2Config", "fraction", 0.77, ["experiment", "rq2"]),
    ("pipelines.experiments", "RQ2Config", "n", 7, ["experiment", "rq2"]),
    ("pipelines.demo", "DemoRunConfig", "requests", 777, ["demo"]),
    ("pipelines.demo", "DemoRunConfig", "seed", 7, ["demo"]),
    ("pipelines.curate", "CurateConfig", "test_size", 77, ["curate"]),
    ("pipelines.curate", "CurateConfig", "seed", 7, ["curate"]),
    ("pipelines.reality_check", "CheckConfig", "n", 7, ["reality-check", "create"]),
    ("pipelines.render", "RenderConfig", "max_side", 777, ["render", "x", "--out", "x.png"]),
])
def test_defaults_are_the_config_dataclasses(module: str, config: str, field: str, value: Any,
                                             argv: list[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import importlib

    owner = importlib.import_module(module)
    monkeypatch.setattr(owner, config, functools.partial(getattr(owner, config), **{field: value}))
    assert getattr(build_parser().parse_args(argv), field) == value


def test_student_choices_come_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import models

    monkeypatch.setattr(models, "STUDENT_KINDS", ("heads", "tiny"))
    parse = build_parser().parse_args
    assert parse(["train", "--student", "tiny"]).student == "tiny"
    assert parse(["experiment", "rq1", "--students", "tiny"]).students == ["tiny"]
    with pytest.raises(SystemExit):
        parse(["train", "--student", "retrieval"])


def test_the_output_helper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli.output import emit

    class Result:
        def to_dict(self) -> dict[str, Any]:
            return {"when": Path("a"), "n": 2}

    emit(argparse.Namespace(json=True), Result(), lambda: ["never made"])
    assert json.loads(capsys.readouterr().out) == {"when": "a", "n": 2}
    emit(argparse.Namespace(json=False), Result(), lambda: ["one \x1b[2J", "two"])
    assert capsys.readouterr().out == "one \\x1b[2J\ntwo\n"
    emit(argparse.Namespace(), [1], lambda: "text", out=tmp_path / "t.txt")   # no --json flag
    assert (tmp_path / "t.txt").read_text() == "text\n"
    assert capsys.readouterr().err == f"wrote {tmp_path / 't.txt'}\n"


# --------------------------------------------------------------------------- ingest


def test_ingest_a_good_file_exits_0_and_prints_the_summary(tmp_path: Path, db: Path, cli) -> None:
    path = write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    code, out, _ = cli("ingest", path, "--db", db)
    assert code == 0
    assert f"{path}: read 14, ingested 14, duplicates 0, quarantined 0 (ok)" in out
    # Ingesting it again is a harmless no-op: still 0, everything a duplicate.
    code, out, _ = cli("ingest", path, "--db", db)
    assert code == 0
    assert f"{path}: read 14, ingested 0, duplicates 14, quarantined 0 (ok)" in out


def test_ingest_json_output(tmp_path: Path, db: Path, cli) -> None:
    # 3 good lines + 1 malformed line.
    path = write_jsonl(tmp_path / "a.jsonl", CORPUS[:3] + ["{nope"])
    code, out, _ = cli("ingest", path, "--db", db, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["totals"] == {"read": 4, "ingested": 3, "duplicates": 0, "quarantined": 1}
    [summary] = result["files"]
    assert summary["source_file"] == str(path) and summary["error"] is None


def test_ingest_with_some_bad_records_exits_0_and_points_at_quarantine(
        tmp_path: Path, db: Path, cli) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [CORPUS[0], "{nope"])
    code, out, _ = cli("ingest", path, "--db", db)
    assert code == 0
    assert f"{path}: read 2, ingested 1, duplicates 0, quarantined 1 (ok)" in out
    assert "workbench quarantine" in out


def test_ingest_an_all_bad_file_exits_1(tmp_path: Path, db: Path, cli) -> None:
    bad = make_record(request_id="b2", teacher={"adjust": {"temperature": 150}})
    path = write_jsonl(tmp_path / "bad.jsonl", ["{nope", bad])
    code, out, _ = cli("ingest", path, "--db", db)
    assert code == 1
    assert f"{path}: read 2, ingested 0, duplicates 0, quarantined 2" in out


def test_ingest_a_missing_file_exits_1(tmp_path: Path, db: Path, cli) -> None:
    missing = tmp_path / "nope.jsonl"
    code, out, _ = cli("ingest", missing, "--db", db)
    assert code == 1
    assert f"{missing}: read 0, ingested 0, duplicates 0, quarantined 0" in out
    assert "no such file" in out
    assert not db.exists()


def test_ingest_an_empty_file_exits_1(tmp_path: Path, db: Path, cli) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out, _ = cli("ingest", empty, "--db", db)
    assert code == 1
    assert f"{empty}: read 0" in out and "no records" in out


def test_ingest_several_files_prints_totals_and_fails_if_one_fails(
        tmp_path: Path, db: Path, cli) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", CORPUS[:5])     # 5 good
    b = write_jsonl(tmp_path / "b.jsonl", CORPUS[3:8])    # d1, d2 again + 3 new
    missing = tmp_path / "nope.jsonl"
    code, out, _ = cli("ingest", a, b, missing, "--db", db)
    assert code == 1
    assert "total: read 10, ingested 8, duplicates 2, quarantined 0" in out


# --------------------------------------------------------------------------- status


def test_status_on_a_missing_database_exits_2_and_says_what_to_run(
        tmp_path: Path, cli) -> None:
    missing = tmp_path / "none" / "wb.duckdb"
    code, _, err = cli("status", "--db", missing)
    assert code == 2
    assert str(missing) in err
    assert "workbench ingest" in err or "workbench demo" in err
    assert err.startswith("error:") and "Traceback" not in err
    assert not missing.exists() and not missing.parent.exists()


def test_status_uses_workbench_db_by_default(tmp_path: Path, cli,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "env.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(missing))
    code, _, err = cli("status")
    assert code == 2 and str(missing) in err


def test_status_json_after_ingest_only(ingested: Path, cli) -> None:
    code, out, _ = cli("status", "--db", ingested, "--json")
    assert code == 0
    counts = json.loads(out)
    assert (counts["requests"], counts["intents"], counts["quarantined"], counts["ingests"],
            counts["dataset_versions"], counts["current_version"]) == (14, 11, 0, 1, 0, None)
    code, out, _ = cli("status", "--db", ingested)
    assert code == 0 and "workbench curate" in out


def test_curate_then_status_json(ingested: Path, cli) -> None:
    code, out, _ = cli("curate", "--db", ingested, "--test-size", 3, "--seed", 13, "--json")
    assert code == 0
    result = json.loads(out)
    # 14 requests, 2 of them (dead look) with zero exports; 10 intents left, 3 test, 7 train.
    assert {k: result[k] for k in ("version_id", "requests", "requests_dropped", "intents",
                                   "intents_dropped", "train", "test", "test_r_5")} == {
        "version_id": 1, "requests": 14, "requests_dropped": 2, "intents": 10,
        "intents_dropped": 1, "train": 7, "test": 3, "test_r_5": 0}
    assert result["test_r_3"] in (0, 1)  # only golden hour has 3 requests

    code, out, _ = cli("status", "--db", ingested, "--json")
    assert code == 0
    counts = json.loads(out)
    assert counts["database"] == str(ingested)
    # The store keeps every request and intent (dead look included); curation made version 1.
    assert (counts["requests"], counts["intents"], counts["quarantined"], counts["ingests"],
            counts["dataset_versions"]) == (14, 11, 0, 1, 1)
    version = counts["current_version"]
    assert (version["version_id"], version["created_by"], version["n_train"], version["n_test"],
            version["test_r_5"]) == (1, "curation", 7, 3, 0)
    assert version["test_r_3"] == result["test_r_3"]

    code, out, _ = cli("versions", "--db", ingested)
    assert code == 0
    assert "*" in out and "curation" in out


def test_status_once_through_a_subprocess_with_workbench_db(ingested: Path) -> None:
    env = {**os.environ, "WORKBENCH_DB": str(ingested)}
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "status", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ingested.parent,
                          check=False)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts["database"] == str(ingested)
    assert (counts["requests"], counts["intents"]) == (14, 11)


# --------------------------------------------------------------------------- export


def check_rows(rows: list[dict], split: str) -> None:
    for row in rows:
        request_count, adjust, selective, filter_ = EXPECTED[row["intent"]]
        assert row["split"] == split
        assert (row["request_count"], row["adjust"], row["selective_adjust"], row["filter"]) == \
            (request_count, adjust, selective, filter_), row["intent"]
        assert row["origin"] == "logs" and row["source_intent"] is None


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_round_trips_through_jsonl_and_parquet(curated: Path, tmp_path: Path, cli) -> None:
    out_jsonl, out_parquet = tmp_path / "test.jsonl", tmp_path / "test.parquet"
    code, out, _ = cli("export", "--db", curated, "--split", "test", "--out", out_jsonl)
    assert code == 0
    assert f"wrote 3 rows of dataset version 1 (test) to {out_jsonl}" in out
    code, _, _ = cli("export", "--db", curated, "--split", "test", "--out", out_parquet)
    assert code == 0
    code, _, _ = cli("export", "--db", curated, "--split", "train", "--out",
                     tmp_path / "train.jsonl")
    assert code == 0

    test_rows = read_jsonl(out_jsonl)
    train_rows = read_jsonl(tmp_path / "train.jsonl")
    assert len(test_rows) == 3 and len(train_rows) == 7
    test_intents = {r["intent"] for r in test_rows}
    train_intents = {r["intent"] for r in train_rows}
    assert not test_intents & train_intents
    assert test_intents | train_intents == set(EXPECTED)  # "dead look" is in neither
    check_rows(test_rows, "test")
    check_rows(train_rows, "train")

    parquet_rows = pq.read_table(out_parquet).to_pylist()
    assert sorted(parquet_rows, key=lambda r: r["intent"]) == \
        sorted(test_rows, key=lambda r: r["intent"])

    # status's r_3 count agrees with the exported test rows.
    counts = json.loads(cli("status", "--db", curated, "--json")[1])
    assert counts["current_version"]["test_r_3"] == \
        sum(r["request_count"] >= 3 for r in test_rows)


def test_export_all_has_every_curated_intent(curated: Path, tmp_path: Path, cli) -> None:
    out_path = tmp_path / "all.jsonl"
    code, out, _ = cli("export", "--db", curated, "--out", out_path)
    assert code == 0 and "wrote 10 rows" in out
    rows = read_jsonl(out_path)
    assert sorted(r["split"] for r in rows) == ["test"] * 3 + ["train"] * 7
    assert sorted(r["intent"] for r in rows) == sorted(EXPECTED)


def test_export_all_is_test_then_train_each_by_intent(curated: Path, tmp_path: Path, cli) -> None:
    out_path = tmp_path / "all.jsonl"
    assert cli("export", "--db", curated, "--out", out_path)[0] == 0
    rows = read_jsonl(out_path)
    assert [r["split"] for r in rows] == ["test"] * 3 + ["train"] * 7
    for split in ("test", "train"):
        intents = [r["intent"] for r in rows if r["split"] == split]
        assert intents == sorted(intents)


def test_export_an_unknown_version_exits_2(curated: Path, tmp_path: Path, cli) -> None:
    out_path = tmp_path / "x.jsonl"
    code, _, err = cli("export", "--db", curated, "--version", 99, "--out", out_path)
    assert code == 2
    assert "99" in err and "version" in err
    assert not out_path.exists()


def test_export_before_any_curation_exits_2(ingested: Path, tmp_path: Path, cli) -> None:
    code, _, err = cli("export", "--db", ingested, "--out", tmp_path / "x.jsonl")
    assert code == 2 and "workbench curate" in err


def test_export_to_an_unknown_format_exits_2(curated: Path, tmp_path: Path, cli) -> None:
    out_path = tmp_path / "x.txt"
    code, _, err = cli("export", "--db", curated, "--out", out_path)
    assert code == 2
    assert "x.txt" in err and ".jsonl" in err and ".parquet" in err
    assert not out_path.exists()


# --------------------------------------------------------------------------- curate errors


def test_curate_a_test_size_larger_than_the_intents_exits_2(ingested: Path, cli) -> None:
    code, _, err = cli("curate", "--db", ingested, "--test-size", 50)
    assert code == 2
    assert "50" in err and "10 intents" in err and "--test-size" in err
    assert json.loads(cli("status", "--db", ingested, "--json")[1])["dataset_versions"] == 0


def test_curate_a_fractional_count_exits_2(ingested: Path, cli) -> None:
    code, _, err = cli("curate", "--db", ingested, "--test-size", 2.5)
    assert code == 2 and "2.5" in err


def test_curate_an_empty_database_exits_2(tmp_path: Path, cli) -> None:
    code, _, err = cli("curate", "--db", tmp_path / "nothing.duckdb")
    assert code == 2 and "error:" in err


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_curate_rejects_a_bad_test_size_at_parse_time(value: str, db: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["curate", "--db", str(db), "--test-size", value])
    assert exit_info.value.code == 2
    assert "--test-size" in capsys.readouterr().err


# --------------------------------------------------------------------------- quarantine


def test_quarantine_lists_the_reasons(tmp_path: Path, db: Path, cli) -> None:
    hot = make_record(request_id="hot", teacher={"adjust": {"temperature": 150}})
    fake = make_record(request_id="fake", teacher={"filter": {"name": "sepia_Fake",
                                                              "intensity": 5}})
    # line 1 good, line 2 slider 150, line 3 unknown filter.
    path = write_jsonl(tmp_path / "a.jsonl", [CORPUS[0], hot, fake])
    assert cli("ingest", path, "--db", db)[0] == 0

    code, out, _ = cli("quarantine", "--db", db)
    assert code == 0
    lines = out.splitlines()
    [hot_line] = [line for line in lines if f"{path} line 2:" in line]
    assert "teacher.adjust.temperature" in hot_line and "150" in hot_line
    [fake_line] = [line for line in lines if f"{path} line 3:" in line]
    assert "teacher.filter.name" in fake_line and "sepia_Fake" in fake_line
    assert sum(line.strip().startswith("raw:") for line in lines) == 2

    code, out, _ = cli("quarantine", "--db", db, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["location"], r["source_file"]) for r in rows] == \
        [("line 2", str(path)), ("line 3", str(path))]
    assert rows[0]["raw"] == json.dumps(hot)

    code, out, _ = cli("quarantine", "--db", db, "--limit", 1, "--offset", 1)
    assert code == 0 and "line 3" in out and "line 2" not in out


def test_quarantine_when_there_is_nothing(ingested: Path, cli) -> None:
    code, out, _ = cli("quarantine", "--db", ingested)
    assert code == 0 and "no quarantined records" in out
