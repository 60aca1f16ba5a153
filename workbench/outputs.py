"""Output files the commands write (--out): checked before the work, written atomically.

An output path must never land on the database: not the file itself, not any other DuckDB file
(recognised by its header), not a database's `.wal` or holder note, and nothing inside the
folders the workbench keeps beside a database (`runs/`, `jobs/`, `reality_checks/`, and the
nearest-neighbour indexes in `<database name>.ann/`). Every file is written to a temporary name
in the same folder and renamed into place, so an error leaves either the old file or the new
one, never half of one and no temporary file. An output folder written as a whole (a
partitioned export) is built in a temporary folder beside it and renamed into place the same
way. A missing folder above the output is created.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from workbench.errors import OutputPathError

DUCKDB_MAGIC = b"DUCK"           # bytes 8..12 of every DuckDB database file
MANAGED_FOLDERS = ("runs", "jobs", "reality_checks")   # beside the database, ours to write


def is_duckdb_file(path: Path) -> bool:
    """Whether `path` is a regular file that starts like a DuckDB database."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _database_files(db: Path) -> list[Path]:
    real = _real(db)
    return [real, real.with_name(real.name + ".wal"), real.with_name(real.name + ".holder.json"),
            real.with_name(f".{real.name}.building")]


def _beside_a_database(out: Path) -> bool:
    """`x.duckdb.wal` or `x.duckdb.holder.json` next to a DuckDB file `x.duckdb`."""
    for suffix in (".wal", ".holder.json"):
        if out.name.endswith(suffix) and is_duckdb_file(out.with_name(out.name[:-len(suffix)])):
            return True
    return False


def folder_problem(out: Path) -> str | None:
    """Why no file can be made at `out` (judged by the nearest folder above it that exists),
    or None."""
    for parent in Path(out).parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"the folder {parent} is not writable"
            return None
    return None


def writable_problem(path: Path) -> str | None:
    """Why `path` (a file, or a folder to be created) cannot be written, or None if it can.

    A missing path is judged by the nearest folder above it that exists."""
    path = Path(path)
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    return folder_problem(path)


def check_output_file(out: Path, db: Path | None = None) -> Path:
    """`out` if a command may write it; `OutputPathError` saying why not otherwise.

    `db` is the database the command works on (its files and folders are refused)."""
    out = Path(out)
    real = _real(out)
    if out.exists() or out.is_symlink():
        if out.is_dir():
            raise OutputPathError(f"--out {out} is a folder; give a file name")
        if not out.is_file():
            raise OutputPathError(f"--out {out} is not a regular file (a device or a pipe); "
                                  "give a file name")
        if is_duckdb_file(out):
            raise OutputPathError(f"--out {out} is a DuckDB database; refusing to write over it. "
                                  "Give another file name")
    if _beside_a_database(real):
        raise OutputPathError(f"--out {out} belongs to a DuckDB database beside it; refusing to "
                              "write over it. Give another file name")
    if db is not None:
        if real in _database_files(db):
            raise OutputPathError(f"--out {out} is the database {db} (or one of its files); "
                                  "refusing to write over it. Give another file name")
        check_not_managed(out, db)
    problem = folder_problem(out)
    if problem:
        raise OutputPathError(f"cannot write --out {out}: {problem}")
    return out


def managed_folders(db: Path) -> list[Path]:
    """The folders the workbench keeps beside the database `db`: `runs/`, `jobs/`,
    `reality_checks/` and `<db name>.ann/` (its nearest-neighbour indexes)."""
    real = _real(db)
    return [*(real.parent / name for name in MANAGED_FOLDERS), real.with_name(real.name + ".ann")]


def check_not_managed(out: Path, db: Path, flag: str = "--out") -> None:
    """Refuse `out` inside a folder the workbench keeps beside the database."""
    real = _real(out)
    for folder in managed_folders(db):
        if _inside(real, folder):
            raise OutputPathError(
                f"{flag} {out} is inside {folder}, which the workbench manages for the "
                f"database {db}; write somewhere else")


def check_output_folder(out: Path, db: Path | None = None) -> Path:
    """`out` if a command may write files into it (it is created if missing)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        what = "a DuckDB database" if is_duckdb_file(out) else "a file"
        raise OutputPathError(f"--out {out} is {what}, not a folder; give a folder for the images")
    if db is not None and _real(out) in _database_files(db):
        raise OutputPathError(f"--out {out} is the database {db}; give a folder for the images")
    problem = folder_problem(out / "x") if out.exists() else folder_problem(out)
    if problem:
        raise OutputPathError(f"cannot write into --out {out}: {problem}")
    return out


def check_output_tree(out: Path, db: Path | None = None, flag: str = "--out") -> Path:
    """`out` if a command may put a folder of its own there, replacing it as a whole; else
    `OutputPathError` saying why not.

    Refused: a file (a DuckDB database above all), a symbolic link, the database's files, a
    folder the workbench manages beside it, a folder holding the database, and a place whose
    folder above cannot be written. Whether an existing folder may be replaced is the caller's
    to judge (`replace_folder` asks it)."""
    out = Path(out)
    if out.is_symlink():
        raise OutputPathError(f"{flag} {out} is a symbolic link; give the folder itself, or a "
                              "new folder name")
    if out.exists() and not out.is_dir():
        what = "a DuckDB database" if is_duckdb_file(out) else "a file"
        raise OutputPathError(f"{flag} {out} is {what}, not a folder; refusing to replace it. "
                              "Give a new folder name")
    if db is not None:
        if _real(out) in _database_files(db):
            raise OutputPathError(f"{flag} {out} is the database {db} (or one of its files); "
                                  "refusing to write over it. Give a new folder name")
        check_not_managed(out, db, flag)
        if _inside(_real(db), _real(out)):
            raise OutputPathError(f"{flag} {out} holds the database {db}; refusing to replace "
                                  "it. Give a new folder name")
    problem = folder_problem(out)
    if problem:
        raise OutputPathError(f"cannot write {flag} {out}: {problem}")
    return out


def replace_folder(out: Path, build: Callable[[Path], object],
                   replaceable: Callable[[Path], None]) -> Path:
    """Build a folder by calling `build(temporary)` for an empty temporary folder beside `out`,
    then rename it to `out`.

    An existing `out` is first passed to `replaceable`, which raises when it may not be replaced
    (before the build, and again just before the swap); it is then renamed aside, the new folder
    renamed into place, and the old one removed. An error or a crash leaves the old folder or
    the new one at `out` (between the two renames, none: the old one waits beside it under a
    hidden name), never half of one; a failed build leaves no temporary folder. An `OSError`
    becomes a one-line `OutputPathError`."""
    out = Path(out)
    _tidy_after_crashes(out)
    if out.exists():
        replaceable(out)
    make_folder(out.parent)
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    temporary = out.with_name(f".{out.name}.{token}.tmp")
    old = out.with_name(f".{out.name}.{token}.old")
    try:
        temporary.mkdir()
        build(temporary)
        moved = out.exists()
        if moved:
            replaceable(out)
            os.rename(out, old)
        try:
            os.rename(temporary, out)
        except OSError:
            if moved:
                os.rename(old, out)
            raise
        if moved:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise OutputPathError(f"cannot write {out}: {error.strerror or error}") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return out


def _tidy_after_crashes(out: Path) -> None:
    """What a `replace_folder` killed midway left beside `out` (its process is gone): the
    temporary folder is removed, and an old folder renamed aside just before the kill is put
    back when nothing took its place."""
    from workbench.processes import pid_alive

    if not out.parent.is_dir():
        return
    for leftover in sorted(out.parent.glob(f".{glob.escape(out.name)}.*-*.*")):
        pid, _, kind = leftover.name[len(out.name) + 2:].partition("-")
        if not pid.isdigit() or pid_alive(int(pid)) or not leftover.is_dir():
            continue
        if kind.endswith(".old") and not out.exists():
            os.rename(leftover, out)
        elif kind.endswith((".tmp", ".old")):
            shutil.rmtree(leftover, ignore_errors=True)


def make_folder(folder: Path) -> None:
    """Create `folder` and its parents; `OutputPathError` if a file is in the way or it cannot."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"cannot create the folder {folder}: a file is in the way") \
            from None
    except OSError as error:
        raise OutputPathError(f"cannot create the folder {folder}: "
                              f"{error.strerror or error}") from None


def write_atomic(out: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temporary)` for a temporary file beside `out`, then rename it to `out`.

    The temporary name keeps `out`'s suffix (writers that choose a format by it still work). On
    any error the temporary file is removed; an `OSError` becomes a one-line `OutputPathError`."""
    out = Path(out)
    make_folder(out.parent)
    temporary = out.with_name(f".{out.stem}.{os.getpid()}-{secrets.token_hex(3)}.tmp{out.suffix}")
    try:
        write(temporary)
        os.replace(temporary, out)
    except OSError as error:
        raise OutputPathError(f"cannot write {out}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return out


def write_text_atomic(out: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `out` atomically."""
    return write_atomic(out, lambda path: path.write_text(text, encoding="utf-8"))
