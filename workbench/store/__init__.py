"""The store: the DuckDB file and the only package with SQL (and the only importer of duckdb).

`connection` opens the file, takes the locks and applies the migrations in the top-level `db/`;
every other module owns one group of tables and is the only place with SQL for them, as typed
functions named for what they return. Everything else calls those functions.
"""

from workbench.store.connection import (
    DEFAULT_DB_PATH,
    DEFAULT_LOCK_TIMEOUT_S,
    Holder,
    Session,
    Store,
    default_db_path,
    default_label,
    holder_path,
    migrations,
    read_holder,
    schema_version,
    waiting_path,
)

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_LOCK_TIMEOUT_S",
    "Holder",
    "Session",
    "Store",
    "default_db_path",
    "default_label",
    "holder_path",
    "migrations",
    "read_holder",
    "schema_version",
    "waiting_path",
]
