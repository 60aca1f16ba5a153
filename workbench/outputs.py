"""Output files the commands write (--out): checked before the work, written atomically.

An output path must never land on the database: not the file itself, not any other DuckDB file
(recognised by its header), not a database's `.wal` or holder note, and nothing inside the
folders the workbench keeps beside a database (`runs/`, `jobs/`, `reality_checks/`). Every file
is written to a temporary name in the same folder and renamed into place, so an error leaves
either the old file or the new one, never half of one and no temporary file. A missing folder
above the output is created.
"""

from __future__ import annotations

import os
import secrets
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


def check_not_managed(out: Path, db: Path) -> None:
    """Refuse `out` inside a folder the workbench keeps beside the database."""
    real, home = _real(out), _real(db).parent
    for name in MANAGED_FOLDERS:
        if _inside(real, home / name):
            raise OutputPathError(
                f"--out {out} is inside {home / name}, which the workbench manages for the "
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
