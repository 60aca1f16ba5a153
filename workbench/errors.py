"""User-facing errors. The CLI turns each into one clear message and a non-zero exit."""


class WorkbenchError(Exception):
    """Something the user can fix; the message says what and how."""


class StoreMissingError(WorkbenchError):
    """The database file does not exist yet."""


class StoreBusyError(WorkbenchError):
    """Another process held the database file for longer than the lock timeout."""


class IngestError(WorkbenchError):
    """A whole input file could not be ingested (missing, unreadable, unknown format)."""


class CurationError(WorkbenchError):
    """Curation or splitting cannot produce a dataset version from what is in the store."""


class VersionNotFoundError(WorkbenchError):
    """A dataset version that does not exist was named."""
