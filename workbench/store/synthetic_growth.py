"""Growing a database's logs synthetically, in SQL, for the app benchmark at ten million
requests (`benchmarks/app_benchmark.py --grow`, issue 17): loading that many through the Python
ingest would take hours here. Each copy repeats the original logs with new request ids and
intent keys (the copy's number appended: "golden hour ~3"); the copies' intents join the
training split of the curated version, so its test split and evaluations stay as they were.
Never used on a real database: the copies are recorded as an ingest whose file name says
SYNTHETIC, so the app shows its synthetic-data notice."""

from __future__ import annotations

from workbench.store.connection import Session


def curated_version(session: Session) -> int | None:
    """The first version curation made (the one the copies extend), or None."""
    found = session.value("SELECT min(version_id) FROM dataset_versions "
                          "WHERE created_by = 'curation'")
    return None if found is None else int(found)


def add_copy(session: Session, number: int, ingest_id: int, source_file: str,
             version_id: int | None) -> None:
    """Copy `number` (1, 2, ...) of the requests of earlier ingests than `ingest_id`, their
    intents and stats, and (with a version) their rows and ground-truth choices in it."""
    suffix = f" ~{number}"
    session.execute(
        "INSERT INTO requests SELECT * REPLACE (request_id || ? AS request_id, "
        "intent_key || ? AS intent_key, intent_text || ? AS intent_text, ? AS ingest_id, "
        "? AS source_file) FROM requests WHERE ingest_id < ?",
        [f"~{number}", suffix, suffix, ingest_id, source_file, ingest_id])
    session.execute(
        "INSERT INTO intents SELECT * REPLACE (intent_key || ? AS intent_key, "
        "intent_text || ? AS intent_text, ? AS ingest_id) FROM intents WHERE ingest_id < ?",
        [suffix, suffix, ingest_id, ingest_id])
    # intent_stats has no ingest id: the originals are the keys without a copy's suffix.
    session.execute(
        "INSERT INTO intent_stats SELECT * REPLACE (intent_key || ? AS intent_key) "
        "FROM intent_stats WHERE NOT contains(intent_key, ' ~')", [suffix])
    if version_id is None:
        return
    session.execute(
        "INSERT INTO dataset_rows SELECT * REPLACE (intent_key || ? AS intent_key, "
        "intent_text || ? AS intent_text, 'train' AS split) FROM dataset_rows "
        "WHERE version_id = ? AND NOT contains(intent_key, ' ~')", [suffix, suffix, version_id])
    session.execute(
        "INSERT INTO ground_truth_choices SELECT * REPLACE (intent_key || ? AS intent_key) "
        "FROM ground_truth_choices WHERE version_id = ? AND NOT contains(intent_key, ' ~')",
        [suffix, version_id])


def recount_training_split(session: Session, version_id: int) -> None:
    """Set the version's n_train to its training rows (after copies were added)."""
    session.execute("UPDATE dataset_versions SET n_train = (SELECT count(*) FROM dataset_rows "
                    "WHERE version_id = ? AND split = 'train') WHERE version_id = ?",
                    [version_id, version_id])


def has_ingest_named(session: Session, source_file: str) -> bool:
    """Whether an ingest of this (file) name is recorded: the growth finished."""
    return bool(session.value("SELECT count(*) FROM ingests WHERE source_file = ?",
                              [source_file]))
