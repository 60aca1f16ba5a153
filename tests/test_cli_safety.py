"""The CLI never harms the database through --out, never prints raw control characters, never
shows a traceback, and reads through read-only sessions (issue 11: items 2, 7, 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import curated_store, make_record
from workbench import cli as cli_module
from workbench.cli import data as data_commands
from workbench.cli.output import write_or_print
from workbench.errors import OutputPathError
from workbench.outputs import check_output_file, is_duckdb_file, write_atomic
from workbench.store import Store, migrations
from workbench.terminal import printable

ROOT = Path(__file__).resolve().parent.parent
ESC_AND_BIDI = "\x1b[2J\x1b]0;pwned\x07evil \u202egnp.exe\u202c"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def _no_default_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "default" / "workbench.duckdb"))
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "2")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return curated_store(tmp_path).path


def _intact(path: Path) -> None:
    assert is_duckdb_file(path)
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM dataset_versions").fetchall() == [(1,)]


# --------------------------------------------------------------------------- item 2: --out

@pytest.mark.parametrize("command", [
    ["render", "warm golden sunset"], ["gallery"], ["baselines"], ["export"],
    ["evaluate", "--run"], ["predict", "--in", "in.jsonl"], ["experiment", "rq1"]])
def test_out_never_writes_over_the_database(command: list[str], db: Path, cli) -> None:
    before = db.read_bytes()
    code, _, err = cli(*command, "--db", db, "--out", db)
    assert code == 2 and "refusing to write over" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before
    _intact(db)


def test_out_never_writes_over_another_duckdb_file_or_the_databases_files(
        db: Path, tmp_path: Path, cli) -> None:
    other = tmp_path / "elsewhere" / "other.db"   # any name: the header tells
    other.parent.mkdir()
    with duckdb.connect(str(other)) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
    targets = [other, db.with_name(db.name + ".wal"), db.with_name(db.name + ".holder.json"),
               db.parent / "runs" / "table.txt", db.parent / "jobs" / "x" / "table.txt"]
    for target in targets:
        code, _, err = cli("baselines", "--db", db, "--out", target)
        assert code == 2 and "Traceback" not in err, (target, err)
        assert ("DuckDB" in err or "manages" in err or "is the database" in err), err
    assert is_duckdb_file(other)
    assert not (db.parent / "runs" / "table.txt").exists()
    # A .wal beside some other database is refused too, by the header of its database.
    assert "belongs to a DuckDB database" in str(_refusal(other.with_name("other.db.wal")))


def _refusal(path: Path) -> OutputPathError:
    with pytest.raises(OutputPathError) as caught:
        check_output_file(path)
    return caught.value


@pytest.mark.parametrize("make", ["folder", "device", "under_a_file"])
def test_unwritable_out_is_one_line_not_a_traceback(make: str, db: Path, tmp_path: Path,
                                                    cli) -> None:
    target = {"folder": tmp_path, "device": Path("/dev/full"),
              "under_a_file": tmp_path / "a.txt" / "b.md"}[make]
    (tmp_path / "a.txt").write_text("x")
    code, _, err = cli("baselines", "--db", db, "--out", target)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_missing_folder_above_out_is_created(db: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "new" / "deeper" / "rows.jsonl"
    code, _, err = cli("export", "--db", db, "--out", out)
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 18   # 3 looks x 6 phrasings


def test_outputs_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    out.write_text("old\n")

    def half_then_fail(path: Path) -> None:
        path.write_text("half a tab")
        raise RuntimeError("the writer broke")

    with pytest.raises(RuntimeError):
        write_atomic(out, half_then_fail)
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.md"]

    def disk_full(path: Path) -> None:
        path.write_text("x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputPathError, match=f"cannot write {out}: No space left on device"):
        write_atomic(out, disk_full)
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.md"]
    write_atomic(out, lambda path: path.write_text("new\n"))
    assert out.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_reality_check_render_refuses_a_duckdb_file_as_its_folder(db: Path, cli) -> None:
    code, _, err = cli("reality-check", "render", "1", "--db", db, "--out", db)
    assert code == 2 and "DuckDB database, not a folder" in err
    _intact(db)


# --------------------------------------------------------------------------- item 7: escapes

def test_printable_escapes_controls_and_bidi_overrides() -> None:
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("x\u202ey\u2066z\u2069") == "x\\u202ey\\u2066z\\u2069"
    assert printable("a\x7f\x9b\x00\tb") == "a\\x7f\\x9b\\x00\\x09b"
    assert printable("one\ntwo\r") == "one\\x0atwo\\x0d"
    assert printable("one\ntwo\r", newlines=True) == "one\ntwo\\x0d"
    assert printable("golden hour ☀ é 日本") == "golden hour ☀ é 日本"


UNSAFE = {*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_printable_output_never_holds_an_unsafe_character(text: str) -> None:
    escaped = printable(text)
    assert not [c for c in escaped if ord(c) in UNSAFE]
    kept = printable(text, newlines=True)
    assert not [c for c in kept if ord(c) in UNSAFE - {0x0A}]
    assert kept.count("\n") == text.count("\n")


def test_quarantine_and_versions_print_escapes_not_raw_controls(tmp_path: Path, cli) -> None:
    db = tmp_path / "q.duckdb"
    logs = tmp_path / "logs.jsonl"
    good = [json.dumps(make_record(request_id=name, intent=name)) for name in ("a a", "b b")]
    logs.write_text("\n".join(good) + "\n" + "{\"bad\": \"" + ESC_AND_BIDI + "\"\n")
    assert cli("ingest", logs, "--db", db)[0] == 0
    code, out, _ = cli("quarantine", "--db", db)
    assert code == 0 and "raw:" in out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out
    assert cli("curate", "--db", db, "--test-size", "0.5", "--note", ESC_AND_BIDI)[0] == 0
    for command in ("versions", "status"):
        code, out, _ = cli(command, "--db", db)
        assert code == 0 and "\x1b" not in out and "\u202e" not in out
        assert "\\x1b]0;pwned\\x07" in out


def test_error_messages_and_tables_are_escaped(tmp_path: Path, cli, capsys) -> None:
    code, _, err = cli("status", "--db", tmp_path / f"{ESC_AND_BIDI}.duckdb")
    assert code == 2 and "\x1b" not in err and "\u202e" not in err and "\\x1b[2J" in err
    write_or_print(f"Title {ESC_AND_BIDI}\nrow", None)
    out = capsys.readouterr().out
    assert out.startswith("Title \\x1b[2J") and "\nrow\n" in out and "\x1b" not in out


# --------------------------------------------------------------------------- item 8

def test_reading_commands_work_beside_another_reading_process(db: Path, tmp_path: Path,
                                                              cli) -> None:
    # A process holding the file read-only lets readers in and keeps writers out: so these
    # commands succeed only if they open the file read-only.
    reader = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time, duckdb\n"
                                "c = duckdb.connect(sys.argv[1], read_only=True)\n"
                                "print('ok', flush=True)\ntime.sleep(30)"), str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ok"
        for command in (["status"], ["versions"], ["quarantine"], ["runs"],
                        ["export", "--out", tmp_path / "rows.jsonl"], ["review", "list"],
                        ["reality-check", "list"]):
            code, _, err = cli(*command, "--db", db)
            assert code == 0, (command, err)
        code, _, err = cli("curate", "--db", db, "--test-size", "3")   # a writer waits, then:
        assert code == 2 and f"process {reader.pid}" in err
    finally:
        reader.kill()
        reader.wait()


def test_a_write_command_checks_access_before_its_work(db: Path, tmp_path: Path, cli,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import ingest

    started = []
    monkeypatch.setattr(ingest, "run", lambda *args, **kwargs: started.append(args))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False
                        if Path(path) == db.parent and mode & os.W_OK
                        else real_access(path, mode, **kw))
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(make_record()) + "\n")
    code, _, err = cli("ingest", logs, "--db", db)
    assert code == 2 and f"the folder {db.parent} is not writable" in err
    assert len(err.strip().splitlines()) == 1 and started == []
    # Reading still works.
    assert cli("status", "--db", db)[0] == 0


def test_db_under_an_existing_file_is_one_line(tmp_path: Path, cli) -> None:
    (tmp_path / "file.txt").write_text("x")
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(make_record()) + "\n")
    for command in (["ingest", logs], ["status"], ["demo", "--requests", "10"]):
        code, _, err = cli(*command, "--db", tmp_path / "file.txt" / "w.duckdb")
        assert code == 2 and "Traceback" not in err, (command, err)


def test_a_database_from_a_newer_workbench_is_refused(db: Path, cli) -> None:
    future = max(number for number, _, _ in migrations()) + 1
    with duckdb.connect(str(db)) as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (?, 'later', now())", [future])
    for command in ("status", "curate"):
        code, _, err = cli(command, "--db", db)
        assert code == 2 and f"schema version {future}, newer than this workbench" in err


def test_an_unexpected_error_is_one_line_and_a_report_file(db: Path, tmp_path: Path, cli,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def broken(args: Any, store: Store) -> int:
        raise ZeroDivisionError("a bug in \x1b[31mthe code")

    monkeypatch.setattr(data_commands, "cmd_status", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    code, _, err = cli("status", "--db", db)
    assert code == cli_module.EXIT_INTERNAL_ERROR == 70
    [line] = err.strip().splitlines()
    assert line.startswith("internal error: ZeroDivisionError: a bug in \\x1b[31mthe code; "
                           "details written to ")
    report = Path(line.rsplit("details written to ", 1)[1])
    assert report.parent == tmp_path / "temp" / "workbench-errors"
    assert "Traceback" in report.read_text() and "ZeroDivisionError" in report.read_text()


def test_the_installed_command_shows_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "status", "--db",
                           str(tmp_path / "x.txt" / "w.duckdb")], capture_output=True, text=True,
                          check=False, cwd=ROOT, env={**os.environ, "WORKBENCH_LOCK_TIMEOUT": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions (chmod has no effect)")
def test_a_read_only_database_file_can_be_read_but_not_written(db: Path, cli) -> None:
    db.chmod(0o444)
    try:
        for command in ("status", "versions", "runs", "quarantine"):
            assert cli(command, "--db", db)[0] == 0, command
        code, _, err = cli("curate", "--db", db, "--test-size", "3")
        assert code == 2 and "not writable" in err
    finally:
        db.chmod(0o644)


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions (chmod has no effect)")
def test_a_read_only_folder_stops_ingest_before_it_stages(db: Path, tmp_path: Path, cli) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(make_record(request_id="new")) + "\n")
    db.parent.chmod(0o555)
    try:
        code, _, err = cli("ingest", logs, "--db", db)
        assert code == 2 and "not writable" in err and "Traceback" not in err
        assert cli("status", "--db", db)[0] == 0
    finally:
        db.parent.chmod(0o755)
