"""What `workbench status` and the Overview page show: the counts of the logs and the current
dataset version with its split sizes."""

from __future__ import annotations

from typing import Any

from workbench.store import requests, versions
from workbench.store.connection import Store


def status_counts(store: Store) -> dict[str, Any]:
    """Store counts and the current dataset version's split sizes."""
    with store.session(read_only=True) as session:
        counts: dict[str, Any] = {"database": str(store.path), **requests.log_counts(session),
                                  "dataset_versions": versions.count_versions(session),
                                  "current_version": None}
        version_id = versions.current_version_id(session)
        if version_id is not None:
            counts["current_version"] = versions.version_summary(session, version_id)
    return counts
