"""Dataset versions side by side (the Datasets page): the lineage tree with what each
augmentation version took from which rounds, and the diff between two versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.datasets import resolve_version
from workbench.store import Session
from workbench.tools import TOOLS

SPLITS = ("train", "test")


def version_lineage(session: Session) -> list[dict]:
    """Every version (oldest first) with its lineage: parent, created_by, created_at, note,
    n_train, n_test; `depth` (0 for a root, parent's + 1 below); and, from the candidates
    committed into it, `candidates` (how many) and `rounds` ([(augmentation_id, candidates)])."""
    versions = session.query(
        "SELECT version_id, parent_id, created_by, created_at, note, n_train, n_test "
        "FROM dataset_versions ORDER BY version_id")
    committed: dict[int, list[tuple[int, int]]] = {}
    for row in session.query(
            "SELECT committed_version_id AS version_id, augmentation_id, count(*) AS n "
            "FROM candidates WHERE committed_version_id IS NOT NULL "
            "GROUP BY ALL ORDER BY version_id, augmentation_id"):
        committed.setdefault(row["version_id"], []).append((row["augmentation_id"], row["n"]))
    depth: dict[int, int] = {}
    for version in versions:  # a parent is always older, so it has its depth already
        parent = version["parent_id"]
        depth[version["version_id"]] = depth.get(parent, -1) + 1 if parent is not None else 0
        rounds = committed.get(version["version_id"], [])
        version.update(depth=depth[version["version_id"]], rounds=rounds,
                       candidates=sum(n for _, n in rounds))
    return versions


def lineage_order(versions: list[dict]) -> list[dict]:
    """The versions in tree order (each parent followed by its children, oldest first), for an
    indented tree; a version whose parent is missing is shown as a root."""
    known = {version["version_id"] for version in versions}
    children: dict[int | None, list[dict]] = {}
    for version in versions:
        parent = version["parent_id"] if version["parent_id"] in known else None
        children.setdefault(parent, []).append(version)
    ordered: list[dict] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        version = stack.pop()
        ordered.append(version)
        stack.extend(reversed(children.get(version["version_id"], [])))
    return ordered


@dataclass(frozen=True)
class VersionDiff:
    old: int
    new: int
    added: dict[str, int]       # split -> intents in the new version's split, not the old one's
    removed: dict[str, int]     # split -> intents in the old version's split, not the new one's
    changed: dict[str, int]     # tool -> intents in both whose ground truth differs
    moved: int                  # intents in both, in a different split (also in added/removed)
    sample: list[dict[str, Any]]  # change, split, tool, intent, old, new (a few of each kind)

    @property
    def unchanged(self) -> bool:
        return not (any(self.added.values()) or any(self.removed.values())
                    or any(self.changed.values()))


# Both versions' rows side by side, one row per intent in either (a = old, b = new). Tool
# columns are named from TOOLS, never from input.
_JOINED = ("WITH a AS (SELECT * FROM dataset_rows WHERE version_id = ?), "
           "b AS (SELECT * FROM dataset_rows WHERE version_id = ?), "
           "j AS (SELECT intent_key, coalesce(b.intent_text, a.intent_text) AS intent, "
           "a.split AS old_split, b.split AS new_split, "
           + ", ".join(f"a.{tool} AS old_{tool}, b.{tool} AS new_{tool}" for tool in TOOLS)
           + " FROM a FULL OUTER JOIN b USING (intent_key)) ")
_ADDED = "new_split IS NOT NULL AND old_split IS DISTINCT FROM new_split"
_REMOVED = "old_split IS NOT NULL AND new_split IS DISTINCT FROM old_split"
_BOTH = "old_split IS NOT NULL AND new_split IS NOT NULL"


def diff_versions(session: Session, old: int, new: int, sample_size: int = 20) -> VersionDiff:
    """What changed from version `old` to version `new`: intents added and removed per split,
    intents whose ground truth changed per tool, and up to `sample_size` rows of each kind.
    Two queries (the counts, the sample), each one pass over both versions' rows."""
    old, new = resolve_version(session, old), resolve_version(session, new)
    counts = session.first(
        _JOINED + "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {_ADDED} AND new_split = '{split}') AS added_{split}, "
                    f"count(*) FILTER (WHERE {_REMOVED} AND old_split = '{split}') "
                    f"AS removed_{split}" for split in SPLITS)
        + f", count(*) FILTER (WHERE {_BOTH} AND old_split != new_split) AS moved, "
        + ", ".join(f"count(*) FILTER (WHERE {_BOTH} AND old_{tool} IS DISTINCT FROM "
                    f"new_{tool}) AS changed_{tool}" for tool in TOOLS)
        + " FROM j", [old, new]) or {}
    kinds = [(f"SELECT 0 AS kind, 'added' AS change, new_split AS split, NULL AS tool, intent, "
              f"NULL AS old, NULL AS new, intent_key FROM j WHERE {_ADDED}"),
             (f"SELECT 1, 'removed', old_split, NULL, intent, NULL, NULL, intent_key FROM j "
              f"WHERE {_REMOVED}")]
    kinds += [f"SELECT {2 + i}, 'ground truth changed', new_split, '{tool}', intent, old_{tool}, "
              f"new_{tool}, intent_key FROM j WHERE {_BOTH} AND old_{tool} IS DISTINCT FROM "
              f"new_{tool}" for i, tool in enumerate(TOOLS)]
    sample = session.query(
        _JOINED + ", kinds AS (" + " UNION ALL ".join(kinds) + ") "
        "SELECT change, split, tool, intent, old, new FROM kinds "
        "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY intent_key) <= ? "
        "ORDER BY kind, intent_key", [old, new, sample_size])
    return VersionDiff(
        old=old, new=new,
        added={split: int(counts.get(f"added_{split}") or 0) for split in SPLITS},
        removed={split: int(counts.get(f"removed_{split}") or 0) for split in SPLITS},
        changed={tool: int(counts.get(f"changed_{tool}") or 0) for tool in TOOLS},
        moved=int(counts.get("moved") or 0), sample=sample)
