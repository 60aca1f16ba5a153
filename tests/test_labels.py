"""Labels (SPEC 11): storage with provenance, curation labels, versions by precedence, conflicts,
agreement, claims, and the `workbench labels` commands. Every expected answer is written out by
hand from the tiny curated world of tests/conftest.py (three looks in six phrasings each)."""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines import evaluate, export
from pipelines import labels as L
from tests.conftest import curated_store
from workbench.cli import main
from workbench.store import Store
from workbench.store import labels as label_store
from workbench.store.versions import Split, count_versions, list_versions, subsample_version

SUNSET = "warm golden sunset"          # curation: temperature +40, warm_Golden @ 50
WINTER = "cold blue winter"            # curation: temperature -40, cool_Arctic @ 60
NOIR = "black and white noir"          # curation: contrast +40, mono_Noir @ 80
NEW = "lavender fields at dawn"        # in no log, in no version

ZERO = {"exposure": 0, "contrast": 0, "brightness": 0, "highlights": 0, "shadows": 0,
        "saturation": 0, "vibrance": 0, "temperature": 0, "tint": 0, "hue": 0, "bloom": 0,
        "sharpen": 0, "structure": 0, "linearOffset": 0}


def adjust(**values: int) -> dict[str, int]:
    return {**ZERO, **values}


CURATED = {SUNSET: (adjust(temperature=40), {"name": "warm_Golden", "intensity": 50}),
           WINTER: (adjust(temperature=-40), {"name": "cool_Arctic", "intensity": 60}),
           NOIR: (adjust(contrast=40), {"name": "mono_Noir", "intensity": 80})}


@pytest.fixture
def world(tmp_path: Path) -> Store:
    return curated_store(tmp_path)


def exported(store: Store, tmp_path: Path, version: int | None = None) -> dict[str, dict]:
    out = tmp_path / f"export-{version}-{datetime.now().timestamp()}.jsonl"
    export.run(export.ExportConfig(out=out, version=version), store)
    return {row["intent"]: row for row in map(json.loads, out.read_text().splitlines())}


def answer_of(row: dict) -> tuple[Any, Any, Any]:
    return row["adjust"], row["selective_adjust"], row["filter"]


def n_labels(store: Store) -> int:
    with store.session(read_only=True) as session:
        return label_store.count_labels(session, label_store.LabelFilter())


# ------------------------------------------------------------------------------ storage

def test_curation_records_a_label_per_intent_and_every_row_names_it(world: Store,
                                                                     tmp_path: Path) -> None:
    rows = exported(world, tmp_path)
    assert len(rows) == 18
    assert all(row["label_source"] == "curation" and row["label_id"] for row in rows.values())
    assert len({row["label_id"] for row in rows.values()}) == 18       # one label per intent
    sunset = L.labels_of(world, SUNSET)
    assert [(label.kind.value, label.source, label.version_id, label.current)
            for label in sunset] == [("curation", "curation", 1, True)]
    assert sunset[0].answer.to_dict() == {"adjust": CURATED[SUNSET][0], "selective_adjust": None,
                                          "filter": CURATED[SUNSET][1]}
    # Curating again with the same logs reuses the identical labels: 18 labels, not 36.
    from pipelines import curate
    result = curate.run(curate.CurateConfig(test_size=3, seed=2), world)
    assert n_labels(world) == 18
    again = exported(world, tmp_path, result.version_id)
    assert {k: r["label_id"] for k, r in again.items()} == \
        {k: r["label_id"] for k, r in rows.items()}


def test_set_label_keeps_provenance_and_an_intent_in_no_log_can_get_one(world: Store) -> None:
    current = L.current_answer(world, SUNSET)
    assert current is not None and current.source == "curation"
    label = L.set_label(world, SUNSET, {"adjust": {"temperature": -40}}, "curator", "ann",
                        note="cooler", edited_from=current.label_id)
    assert (label.source, label.author, label.note, label.edited_from) == \
        ("curator:ann", "ann", "cooler", current.label_id)
    assert label.answer.to_dict() == {"adjust": adjust(temperature=-40),
                                      "selective_adjust": None, "filter": None}
    new = L.set_label(world, "  Lavender fields at DAWN ", '{"filter": {"name": "mono_Sepia", '
                      '"intensity": 30}}', "teacher", "gpt-4o-mini")
    assert (new.intent_key, new.intent_text, new.source) == \
        (NEW, "Lavender fields at DAWN", "teacher:gpt-4o-mini")
    assert L.current_answer(world, NEW) is None
    shown = L.labels_of(world, SUNSET)
    assert [(x.label_id, x.current, x.wins) for x in shown] == \
        [(label.label_id, False, True), (current.label_id, True, False)]   # newest first
    assert L.get_label(world, label.label_id).answer == label.answer


@pytest.mark.parametrize(("answer", "kind", "author", "edited_from", "named"), [
    ({"adjust": {"temperature": -400}}, "curator", "ann", None, "adjust.temperature"),
    ({"filter": {"name": "warm_Nope", "intensity": 40}}, "curator", "ann", None, "warm_Nope"),
    ({"filter": {"name": "mono_Noir", "intensity": 101}}, "curator", "ann", None,
     "filter.intensity"),
    ({"adjust": {"warmth": 10}}, "curator", "ann", None, "adjust.warmth"),
    ({"selective_adjust": {"red": {"saturation": 1.5}}}, "curator", "ann", None,
     "selective_adjust.red.saturation"),
    ({"blur": {}}, "curator", "ann", None, "blur"),
    ('{"adjust": ', "curator", "ann", None, "not valid JSON"),
    ({"adjust": {"temperature": 10}}, "curator", "  ", None, "name must not be empty"),
    ({"adjust": {"temperature": 10}}, "curation", "ann", None, "curation labels"),
    ({"adjust": {"temperature": 10}}, "oracle", "ann", None, "unknown label kind"),
    ({"adjust": {"temperature": 10}}, "curator", "ann", 999, "no label 999"),
])
def test_a_bad_label_names_the_problem_and_saves_nothing(
        world: Store, answer: Any, kind: str, author: str, edited_from: int | None,
        named: str) -> None:
    before = n_labels(world)
    with pytest.raises(L.LabelError, match="nothing was saved|curation labels|unknown label"
                       ) as error:
        L.set_label(world, SUNSET, answer, kind, author, edited_from=edited_from)
    assert named in str(error.value)
    assert n_labels(world) == before


def test_an_out_of_range_value_names_the_field_and_the_value(world: Store) -> None:
    with pytest.raises(L.LabelError) as error:
        L.set_label(world, SUNSET, {"adjust": {"temperature": -400}}, "curator", "ann")
    assert "adjust.temperature" in str(error.value) and "-400" in str(error.value)


# ------------------------------------------------------------------------------ precedence

def test_precedence_curator_beats_teacher_beats_curation(world: Store, tmp_path: Path) -> None:
    v1_before = exported(world, tmp_path, 1)
    teacher_sunset = L.set_label(world, SUNSET, {"adjust": {"temperature": 10}}, "teacher", "m-a")
    ann_sunset = L.set_label(world, SUNSET, {"adjust": {"temperature": -40}}, "curator", "ann")
    teacher_winter = L.set_label(world, WINTER, {"filter": {"name": "mono_Classic",
                                                            "intensity": 30}}, "teacher", "m-a")
    L.set_label(world, NOIR, {"adjust": {"contrast": 10}}, "curator", "ann")
    bob_noir = L.set_label(world, NOIR, {"adjust": {"contrast": 20}}, "curator", "bob")
    teacher_new = L.set_label(world, NEW, {"adjust": {"tint": 15}}, "teacher", "m-a")

    # Default (SPEC 11): curator, then the export-rate choice; the teacher only when asked.
    first = L.commit(L.CommitConfig(by="tester"), world)
    assert (first.version_id, first.parent_id, first.precedence) == (2, 1, ("curator", "curation"))
    # The new intent has only a teacher's label, and the teacher is no level here: not counted.
    assert (first.rows, first.changed, first.new_added, first.new_skipped) == (18, 2, 0, 0)
    assert first.from_level == {"curator": 2, "curation": 16}
    v2 = exported(world, tmp_path, 2)
    assert answer_of(v2[SUNSET]) == (adjust(temperature=-40), None, None)        # curator
    assert (v2[SUNSET]["label_id"], v2[SUNSET]["label_source"]) == \
        (ann_sunset.label_id, "curator:ann")
    assert answer_of(v2[WINTER]) == (CURATED[WINTER][0], None, CURATED[WINTER][1])  # not teacher
    assert v2[WINTER]["label_source"] == "curation"
    assert answer_of(v2[NOIR]) == (adjust(contrast=20), None, None)             # newest curator
    assert v2[NOIR]["label_id"] == bob_noir.label_id
    assert NEW not in v2
    assert {k: (r["split"], r["label_id"]) for k, r in v2.items() if k not in (SUNSET, NOIR)} \
        == {k: (r["split"], r["label_id"]) for k, r in v1_before.items()
            if k not in (SUNSET, NOIR)}
    assert exported(world, tmp_path, 1) == v1_before                        # v1 never changes

    # Asking for the teacher: it beats the export-rate choice, never a curator.
    second = L.commit(L.CommitConfig(precedence=("curator", "teacher", "curation"),
                                     add_new_intents=True), world)
    assert (second.parent_id, second.changed, second.new_added, second.new_skipped) == (2, 1, 1, 0)
    v3 = exported(world, tmp_path, 3)
    assert answer_of(v3[SUNSET]) == (adjust(temperature=-40), None, None)
    assert v3[SUNSET]["label_id"] != teacher_sunset.label_id
    assert answer_of(v3[WINTER]) == (None, None, {"name": "mono_Classic", "intensity": 30})
    assert v3[WINTER]["label_source"] == "teacher:m-a"
    assert v3[WINTER]["label_id"] == teacher_winter.label_id
    # The new intent joins the training split (never test) with its label.
    assert (v3[NEW]["intent"], v3[NEW]["split"], v3[NEW]["request_count"], v3[NEW]["origin"]) \
        == (NEW, "train", 0, "labels")
    assert v3[NEW]["label_id"] == teacher_new.label_id
    assert sorted(k for k, r in v3.items() if r["split"] == "test") == \
        sorted(k for k, r in v1_before.items() if r["split"] == "test")
    assert exported(world, tmp_path, 2) == v2                               # v2 never changes
    with world.session(read_only=True) as session:
        config = json.loads(next(v["config"] for v in list_versions(session)
                                 if v["version_id"] == 3))
    assert config["precedence"] == ["curator", "teacher", "curation"]
    assert (config["parent"], config["new_added"]) == (2, 1)


def test_newest_wins_within_a_kind_and_a_level_can_name_one_source(world: Store,
                                                                   tmp_path: Path) -> None:
    older = L.set_label(world, WINTER, {"adjust": {"tint": 5}}, "teacher", "model-a")
    newer = L.set_label(world, WINTER, {"adjust": {"tint": 9}}, "teacher", "model-b")
    L.commit(L.CommitConfig(precedence=("teacher", "curation")), world)
    assert exported(world, tmp_path, 2)[WINTER]["label_id"] == newer.label_id
    L.commit(L.CommitConfig(precedence=("teacher:model-a",)), world)
    v3 = exported(world, tmp_path, 3)
    assert (v3[WINTER]["label_id"], answer_of(v3[WINTER])) == \
        (older.label_id, (adjust(tint=5), None, None))


def test_a_commit_that_changes_nothing_makes_no_version(world: Store) -> None:
    L.set_label(world, NEW, {"adjust": {"tint": 15}}, "teacher", "m-a")
    with pytest.raises(L.LabelError, match="add them with --add-new-intents"):
        L.commit(L.CommitConfig(precedence=("curator", "teacher", "curation")), world)
    with world.session(read_only=True) as session:
        assert count_versions(session) == 1
    L.set_label(world, SUNSET, {"adjust": {"temperature": -40}}, "curator", "ann")
    result = L.commit(L.CommitConfig(precedence=("curator", "teacher", "curation")), world)
    assert (result.changed, result.new_added, result.new_skipped) == (1, 0, 1)
    assert "1 skipped (add them with --add-new-intents)" in "\n".join(L.describe_commit(result))


@pytest.mark.parametrize(("text", "expected"), [
    ("curator,teacher,curation", ("curator", "teacher", "curation")),
    (" curator , teacher:gpt-4o ", ("curator", "teacher:gpt-4o", "curation")),
    ("curation,curator", ("curation", "curator")),
])
def test_precedence_parsing(text: str, expected: tuple[str, ...]) -> None:
    assert L.parse_precedence(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("curator,oracle", "unknown precedence level 'oracle'"),
    ("curator,curator", "twice"), ("curation:x", "unknown precedence level"),
    ("teacher:", "unknown precedence level"),
])
def test_bad_precedence(text: str, message: str) -> None:
    with pytest.raises(L.LabelError, match=message):
        L.parse_precedence(text)


def test_versions_from_before_labels_show_the_export_rate_choice(world: Store,
                                                                 tmp_path: Path) -> None:
    # A database curated before migration 007: no labels, no row links.
    with world.atomic() as session:
        session.execute("DELETE FROM dataset_row_labels")
        session.execute("DELETE FROM labels")
    current = L.current_answer(world, SUNSET)
    assert current is not None
    assert (current.label_id, current.source) == (None, "export-rate choice (version 1)")
    rows = exported(world, tmp_path, 1)
    assert {(r["label_id"], r["label_source"]) for r in rows.values()} == \
        {(None, "export-rate choice (version 1)")}
    ann = L.set_label(world, SUNSET, {"adjust": {"temperature": -40}}, "curator", "ann")
    result = L.commit(L.CommitConfig(), world)
    # The 17 rows no label won are recorded as curation labels of version 1's choice.
    assert (result.changed, result.curation_labels) == (1, 17)
    v2 = exported(world, tmp_path, 2)
    assert all(r["label_id"] is not None for r in v2.values())
    assert v2[SUNSET]["label_id"] == ann.label_id
    winter = L.labels_of(world, WINTER)
    assert [(x.source, x.version_id, x.current) for x in winter] == [("curation", 1, True)]
    assert exported(world, tmp_path, 1) == rows                            # v1 as it was


def test_derived_versions_keep_their_parents_labels(world: Store, tmp_path: Path) -> None:
    from workbench.store.versions import DatasetRow, Origin, create_version, version_rows

    v1 = exported(world, tmp_path, 1)
    with world.atomic() as session:
        sub = subsample_version(session, 1, 0.5, seed=3)
        parent_rows = [DatasetRow(**row) for row in version_rows(session, 1)]
        sunset = next(row for row in parent_rows if row.intent_key == SUNSET)
        # An augmentation with its source's answer came from its source's label.
        augmented = create_version(session, [*parent_rows, DatasetRow(
            intent_key="sunset glow", intent_text="sunset glow", split=Split.TRAIN.value,
            request_count=0, adjust=sunset.adjust, selective_adjust=sunset.selective_adjust,
            filter=sunset.filter, origin=Origin.AUGMENTATION.value, source_intent_key=SUNSET)],
            Origin.AUGMENTATION, "test", {}, parent_id=1)
    for version in (sub, augmented):
        rows = exported(world, tmp_path, version)
        assert all(r["label_id"] == v1[k]["label_id"] for k, r in rows.items() if k in v1)
    assert exported(world, tmp_path, augmented)["sunset glow"]["label_id"] == \
        v1[SUNSET]["label_id"]


def test_an_export_with_label_columns_is_still_a_predictions_file(world: Store,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "test.jsonl"
    export.run(export.ExportConfig(out=out, split=Split.TEST), world)
    assert all("label_source" in json.loads(line) for line in out.read_text().splitlines())
    assert len(evaluate.read_predictions(out)) == 3


# ------------------------------------------------------------------------------ conflicts

def test_two_curators_saving_at_once_are_both_kept_and_the_conflict_shows(
        world: Store, tmp_path: Path) -> None:
    base = L.current_answer(world, SUNSET)
    assert base is not None
    barrier = threading.Barrier(2)
    saved: dict[str, L.Label] = {}
    errors: list[BaseException] = []

    def save(name: str, temperature: int) -> None:
        try:
            barrier.wait()
            saved[name] = L.set_label(world, SUNSET, {"adjust": {"temperature": temperature}},
                                      "curator", name, edited_from=base.label_id)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=save, args=args) for args in (("ann", -40), ("bob", -20))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and set(saved) == {"ann", "bob"}
    newest, older = sorted(saved.values(), key=lambda x: (x.created_at, x.label_id),
                           reverse=True)
    shown = {x.label_id: x for x in L.labels_of(world, SUNSET)}
    assert shown[newest.label_id].conflicts_with == (older.label_id,)
    assert shown[older.label_id].conflicts_with == (newest.label_id,)
    assert shown[newest.label_id].wins and not shown[older.label_id].wins
    assert L.stats(world).conflicts == 1
    L.commit(L.CommitConfig(), world)
    assert exported(world, tmp_path, 2)[SUNSET]["label_id"] == newest.label_id
    # Settling it: the loser's author saves a label edited from the winner's.
    settled = L.set_label(world, SUNSET, {"adjust": {"temperature": -30}}, "curator",
                          older.author, edited_from=newest.label_id)
    assert all(not x.conflicts_with for x in L.labels_of(world, SUNSET))
    assert settled.edited_from == newest.label_id


def _row(label_id: int, author: str, temperature: int, minute: int,
         edited_from: int | None = None, kind: str = "curator") -> dict[str, Any]:
    return {"label_id": label_id, "kind": kind, "author": author, "edited_from": edited_from,
            "created_at": datetime(2024, 1, 1, 12, minute, tzinfo=UTC),
            "adjust": json.dumps({"temperature": temperature}), "selective_adjust": None,
            "filter": None}


def test_conflict_rules_by_hand() -> None:
    curation = _row(1, "curation", 40, 0, kind="curation")
    # ann then bob, both from the curation label: bob never saw ann's -> conflict.
    assert L.conflicts([_row(3, "bob", -20, 2, 1), _row(2, "ann", -40, 1, 1), curation]) == \
        {3: {2}, 2: {3}}
    # bob edited from ann's label: no conflict.
    assert L.conflicts([_row(3, "bob", -20, 2, 2), _row(2, "ann", -40, 1, 1), curation]) == {}
    # the same answer: no conflict; the same curator changing their mind: no conflict.
    assert L.conflicts([_row(3, "bob", -40, 2, 1), _row(2, "ann", -40, 1, 1), curation]) == {}
    assert L.conflicts([_row(3, "ann", -20, 2, 1), _row(2, "ann", -40, 1, 1), curation]) == {}
    # ann's label is older than the one bob edited from (he saw it and chose otherwise).
    assert L.conflicts([_row(4, "bob", -20, 3, 3), _row(3, "cat", -30, 2, 2),
                        _row(2, "ann", -40, 1, 1), curation]) == {}
    # a label made from nothing conflicts with any other curator's different label.
    assert L.conflicts([_row(3, "bob", -20, 2), _row(2, "ann", -40, 1, 1)]) == {3: {2}, 2: {3}}


# ------------------------------------------------------------------------------ agreement

def _label(intent: str, kind: str, source: str, adjust_: dict | None,
           filter_: dict | None) -> dict[str, Any]:
    return {"intent_key": intent, "kind": kind, "source": source,
            "author": source.partition(":")[2] or source,
            "adjust": None if adjust_ is None else json.dumps(adjust_),
            "selective_adjust": None, "filter": None if filter_ is None else json.dumps(filter_)}


def test_pair_agreement_by_hand() -> None:
    golden = {"name": "warm_Golden", "intensity": 50}
    rows = [
        _label("i1", "curation", "curation", {"temperature": 40}, golden),
        _label("i1", "teacher", "teacher:m", {"temperature": 40}, {**golden, "intensity": 30}),
        _label("i1", "curator", "curator:ann", {"temperature": -40}, golden),
        _label("i2", "curation", "curation", {"temperature": 30}, None),
        _label("i2", "teacher", "teacher:m", {"exposure": 30},
               {"name": "mono_Noir", "intensity": 10}),
    ]
    pairs = {pair.kinds: pair for pair in L.pair_agreement(rows)}
    assert set(pairs) == {("curation", "teacher"), ("curation", "curator"),
                          ("teacher", "curator")}
    ct = pairs[("curation", "teacher")]
    # i1: same temperature (cosine 1), same filter name; i2: orthogonal sliders (cosine 0),
    # a filter on one side only. selective_adjust unused by both: selection agrees twice.
    assert (ct.comparisons, ct.intents) == (2, 2)
    assert ct.selection == {"adjust": 1.0, "selective_adjust": 1.0, "filter": 0.5}
    assert ct.quality == {"adjust": 0.5, "selective_adjust": None, "filter": 1.0}
    assert ct.both_used == {"adjust": 2, "selective_adjust": 0, "filter": 1}
    cc = pairs[("curation", "curator")]
    # +40 against -40: cosine -1 (kept negative); the same filter name.
    assert (cc.comparisons, cc.quality["adjust"], cc.quality["filter"]) == (1, -1.0, 1.0)


def test_curator_agreement_by_hand() -> None:
    def curator(intent: str, name: str, filter_name: str | None) -> dict[str, Any]:
        return _label(intent, "curator", f"curator:{name}", None,
                      None if filter_name is None else {"name": filter_name, "intensity": 50})

    a, b, c = "mono_Noir", "warm_Golden", "cool_Arctic"
    rows = [curator("i1", "ann", a), curator("i1", "bob", a), curator("i2", "ann", a),
            curator("i2", "bob", b), curator("i3", "ann", b), curator("i3", "bob", b),
            curator("i4", "ann", c), curator("i4", "bob", c), curator("i5", "ann", a)]
    result = L.curator_agreement(rows)
    # See tests/test_agreement.py: [A,A], [A,B], [B,B], [C,C] -> alpha 2/3, kappa 13/21;
    # i5 has one curator and is left out.
    assert (result.intents, result.curators) == (4, 2)
    assert result.percent == pytest.approx(0.75)
    assert result.krippendorff_alpha == pytest.approx(2 / 3)
    assert result.fleiss_kappa == pytest.approx(13 / 21)
    # A third curator on one intent only: kappa is left out, alpha still counts.
    # [A,A,B] and [none,none]: alpha 1/2 (worked out in tests/test_agreement.py).
    uneven = L.curator_agreement([curator("i1", "ann", a), curator("i1", "bob", a),
                                  curator("i1", "cat", b), curator("i2", "ann", None),
                                  curator("i2", "bob", None)])
    assert uneven.fleiss_kappa is None and "different numbers" in (uneven.note or "")
    assert uneven.krippendorff_alpha == pytest.approx(0.5)


def test_stats_counts(world: Store) -> None:
    L.set_label(world, SUNSET, {"adjust": {"temperature": -40}}, "curator", "ann")
    L.set_label(world, NEW, {"adjust": {"tint": 15}}, "teacher", "m")
    L.record_failure(world, "something odd", "m", "the reply named an unknown tool 'blur'",
                     '{"tool_calls": [{"name": "blur"}]}')
    result = L.stats(world)
    assert (result.labels, result.intents, result.failures, result.conflicts) == (20, 19, 1, 0)
    assert {row["source"]: row["labels"] for row in result.by_source} == \
        {"curation": 18, "curator:ann": 1, "teacher:m": 1}
    assert [pair.kinds for pair in result.pairs] == [("curation", "curator")]
    failure = L.list_failures(world)[0]
    assert (failure["intent_key"], failure["model"], failure["raw"]) == \
        ("something odd", "m", '{"tool_calls": [{"name": "blur"}]}')


# ------------------------------------------------------------------------------ claims

def test_two_curators_never_hold_the_same_intent(world: Store) -> None:
    assert L.claim(world, SUNSET, "ann") is None
    assert L.claim(world, SUNSET, "bob") == "ann"
    assert L.claim(world, SUNSET, "ann") is None                # renewing your own claim
    assert L.claim(world, WINTER, "bob") is None
    with world.session(read_only=True) as session:
        assert label_store.claimed_by_others(session, "bob", datetime.now(UTC), 60) == \
            {SUNSET: "ann"}
    L.release(world, SUNSET, "bob")                             # not bob's: stays ann's
    assert L.claim(world, SUNSET, "bob") == "ann"
    L.release(world, SUNSET, "ann")
    assert L.claim(world, SUNSET, "bob") is None
    # A claim older than the expiry lapses.
    assert L.claim(world, WINTER, "ann", expiry_s=0.0) is None
    with world.atomic() as session:
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert label_store.expire_claims(session, later, 0.5) == 2


def test_claims_at_the_same_moment_have_one_winner(world: Store) -> None:
    # Two sessions of one app process claim the same intents at once: DuckDB lets one
    # transaction win each time, and the other reads who holds it (no error, never both).
    for i in range(12):
        barrier = threading.Barrier(2)
        got: dict[str, object] = {}

        def take(name: str, key: str, barrier: threading.Barrier = barrier,
                 got: dict[str, object] = got) -> None:
            barrier.wait()
            try:
                got[name] = L.claim(world, key, name)
            except BaseException as error:  # noqa: BLE001 (reported by the assert)
                got[name] = error

        threads = [threading.Thread(target=take, args=(name, f"intent {i}"))
                   for name in ("ann", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(map(str, got.values())) in (["None", "ann"], ["None", "bob"]), got


# ------------------------------------------------------------------------------ the CLI

def test_labels_group_has_its_actions(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("list", "show", "set", "export", "stats", "commit"):
        with pytest.raises(SystemExit) as exit_info:
            main(["labels", action, "--help"])
        assert exit_info.value.code == 0
        assert f"workbench labels {action}" in capsys.readouterr().out


def test_cli_set_from_sliders_show_commit_and_export(world: Store, tmp_path: Path, cli) -> None:
    db = world.path
    code, out, err = cli("labels", "set", SUNSET, "--db", db, "--set", "adjust.temperature=-40",
                         "--filter", "mono_Noir:60", "--no-selective", "--by", "ann",
                         "--note", "cooler")
    assert code == 0, err
    assert "curator:ann" in out and "adjust cosine -1.00" in out
    label = L.labels_of(world, SUNSET)[0]
    base = L.current_answer(world, SUNSET)
    assert base is not None and label.edited_from == base.label_id
    # Starting from the ground truth: temperature replaced, the other sliders kept (all 0 here).
    assert label.answer.to_dict() == {"adjust": adjust(temperature=-40), "selective_adjust": None,
                                      "filter": {"name": "mono_Noir", "intensity": 60}}
    code, out, _ = cli("labels", "set", NOIR, "--db", db, "--answer",
                       '{"filter": {"name": "mono_Soft", "intensity": 20}}', "--by", "bob",
                       "--json")
    assert code == 0 and json.loads(out)["source"] == "curator:bob"

    code, out, _ = cli("labels", "show", SUNSET, "--db", db)
    assert code == 0
    assert f"#{label.label_id} curator:ann" in out and "wins the default precedence" in out
    assert "mono_Noir @ 60" in out and "note: cooler" in out
    code, out, _ = cli("labels", "list", "--db", db, "--kind", "curator", "--json")
    assert [row["source"] for row in json.loads(out)] == ["curator:bob", "curator:ann"]

    code, out, err = cli("labels", "commit", "--db", db, "--note", "two edits")
    assert code == 0, err
    assert "dataset version 2" in out and "2 ground truth(s) changed" in out
    out_file = tmp_path / "v2.jsonl"
    assert cli("export", "--db", db, "--out", out_file)[0] == 0
    rows = {r["intent"]: r for r in map(json.loads, out_file.read_text().splitlines())}
    assert (rows[SUNSET]["label_id"], rows[SUNSET]["label_source"]) == \
        (label.label_id, "curator:ann")
    assert rows[NOIR]["filter"] == {"name": "mono_Soft", "intensity": 20}

    csv_file, jsonl_file = tmp_path / "labels.csv", tmp_path / "labels.jsonl"
    assert cli("labels", "export", "--db", db, "--out", csv_file, "--kind", "curator")[0] == 0
    table = list(csv.DictReader(csv_file.open(encoding="utf-8")))
    assert [(r["source"], r["note"]) for r in table] == [("curator:ann", "cooler"),
                                                         ("curator:bob", "")]
    assert json.loads(table[0]["filter"]) == {"name": "mono_Noir", "intensity": 60}
    assert table[0]["selective_adjust"] == ""
    assert cli("labels", "export", "--db", db, "--out", jsonl_file)[0] == 0
    assert len(jsonl_file.read_text().splitlines()) == 20

    code, out, _ = cli("labels", "stats", "--db", db, "--json")
    stats = json.loads(out)
    assert (stats["labels"], stats["conflicts"]) == (20, 0)


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "adjust.temperature=-400"], "adjust.temperature: must be in [-100, 100] (got -400)"),
    (["--filter", "mono_Nope:60"], 'filter.name: is not in the filter catalogue (got "mono_Nope")'),
    (["--set", "adjust.temperature=cold"], 'adjust.temperature: must be an integer (got "cold")'),
    (["--set", "warmth=3"], "expected TOOL.KEY=VALUE"),
    (["--set", "selective_adjust.red=3"], "selective_adjust.red.saturation=20"),
    (["--set", "filter.intensity=3", "--no-filter"], "turns off"),
    (["--answer", "{}", "--set", "adjust.tint=1"], "not both"),
    ([], "say what the label is"),
])
def test_cli_set_refuses_bad_input_in_one_line_and_saves_nothing(
        world: Store, cli, args: list[str], message: str) -> None:
    before = n_labels(world)
    code, out, err = cli("labels", "set", SUNSET, "--db", world.path, *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert n_labels(world) == before


def test_cli_show_marks_a_conflict(world: Store, cli) -> None:
    base = L.current_answer(world, SUNSET)
    assert base is not None
    ann = L.set_label(world, SUNSET, {"adjust": {"temperature": -40}}, "curator", "ann",
                      edited_from=base.label_id)
    bob = L.set_label(world, SUNSET, {"adjust": {"temperature": -20}}, "curator", "bob",
                      edited_from=base.label_id)
    code, out, _ = cli("labels", "show", SUNSET, "--db", world.path)
    assert code == 0
    assert f"CONFLICT with #{ann.label_id}" in out and f"CONFLICT with #{bob.label_id}" in out
    assert "Curators disagree" in out
