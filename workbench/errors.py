"""User-facing errors. The CLI turns each into one clear message and a non-zero exit."""


MAX_LISTED = 10   # problems an error message lists before "... and N more"


def listing(headline: str, items: list[str]) -> str:
    """A headline and its first MAX_LISTED items, one per indented line, then how many more."""
    more = f"\n  ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return headline + ":\n  " + "\n  ".join(items[:MAX_LISTED]) + more


class WorkbenchError(Exception):
    """Something the user can fix; the message says what and how."""


class StoreMissingError(WorkbenchError):
    """The database file does not exist yet."""


class StoreBusyError(WorkbenchError):
    """Another process held the database file for longer than the lock timeout.

    `holder` describes the process that holds it when it left a note (what it is doing, its
    pid, for how long), else None; `waited_s` is how long we waited."""

    def __init__(self, message: str, holder: str | None = None, waited_s: float = 0.0):
        super().__init__(message)
        self.holder = holder
        self.waited_s = waited_s


class StoreReadOnlyError(WorkbenchError):
    """A command that writes was pointed at a database (or folder) it cannot write."""


class SchemaTooNewError(WorkbenchError):
    """The database was written by a newer workbench: its schema has migrations we do not know."""


class OutputPathError(WorkbenchError):
    """An output path (--out) cannot or must not be written."""


class IngestError(WorkbenchError):
    """A whole input file could not be ingested (missing, unreadable, unknown format)."""


class CurationError(WorkbenchError):
    """Curation or splitting cannot produce a dataset version from what is in the store."""


class VersionNotFoundError(WorkbenchError):
    """A dataset version that does not exist was named."""
