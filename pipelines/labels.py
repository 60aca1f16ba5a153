"""Labels (SPEC 11): set, list and show an intent's labels, commit a dataset version from them by
precedence, export them, and say how their sources agree.

A label is an answer with its source: `curation` (the export-rate choice, recorded by
`workbench curate`), `teacher:<model>`, `student:<run>` or `curator:<name>`. Labels are never
changed: an edit is a new label naming the one it was edited from.

Precedence (`commit`): a new dataset version on the current one takes, per intent, the label of
the first level in the precedence that has one; a level is a kind (`curator`, `teacher`,
`student`) or one source (`teacher:gpt-4o-mini`), and within a level the newest label wins.
`curation` is the parent version's row as it is (its export-rate choice, or whatever label the
parent row came from); an intent no earlier level labelled keeps it. The default is SPEC 11's:
curator, then the export-rate choice; a teacher relabel only counts when the precedence names
it (`curator,teacher,curation`). Intents labelled but not in the parent join the training split
only with `add_new_intents`, never the test split.

Conflicts: two curators who saved different answers for one intent, neither working from the
other's label (the newer one was edited from a label older than the other's, or from nothing)
conflict; both labels are kept, the newer wins, and `labels_of` marks the pair.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import agreement
from workbench.errors import VersionNotFoundError, WorkbenchError
from workbench.log_records import INTENT_MAX_CHARS, intent_key
from workbench.metrics import VECTOR_TOOLS, cosine
from workbench.outputs import check_output_file, write_atomic
from workbench.store import Session, Store
from workbench.store import labels as label_store
from workbench.store.labels import KINDS, LabelFilter, LabelKind, NewLabel
from workbench.store.requests import intent_detail
from workbench.store.versions import (
    DatasetRow,
    Origin,
    create_version,
    current_version_id,
    list_versions,
    resolve_version,
)
from workbench.tools import (
    TOOLS,
    Answer,
    ToolValidationError,
    adjust_vector,
    answer_from_json,
    parse_answer,
    selective_adjust_vector,
)

CURATION = LabelKind.CURATION.value
DEFAULT_PRECEDENCE: tuple[str, ...] = (LabelKind.CURATOR.value, CURATION)
DEFAULT_CLAIM_EXPIRY_S = 15 * 60.0     # a queue claim nobody renewed for this long lapses
AUTHOR_MAX_CHARS = 200
NOTE_MAX_CHARS = 2000
EXPORT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


class LabelError(WorkbenchError):
    """A label that cannot be saved, or a labels command that cannot run; nothing was written."""


# ------------------------------------------------------------------------------ one label

@dataclass(frozen=True)
class Label:
    """One stored label. `current`: the current dataset version's row for the intent came from
    it. `wins`: a commit with the default precedence would take it. `conflicts_with`: other
    curators' labels it disagrees with (see the module docstring)."""

    label_id: int
    intent_key: str
    intent_text: str
    kind: LabelKind
    author: str
    source: str
    answer: Answer
    edited_from: int | None
    note: str
    created_at: datetime
    version_id: int | None          # curation labels: the version whose curation chose it
    current: bool = False
    wins: bool = False
    conflicts_with: tuple[int, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **marks: Any) -> Label:
        return cls(
            label_id=int(row["label_id"]), intent_key=row["intent_key"],
            intent_text=row["intent_text"], kind=LabelKind(row["kind"]), author=row["author"],
            source=row["source"],
            answer=answer_from_json(row["adjust"], row["selective_adjust"], row["filter"]),
            edited_from=row["edited_from"], note=row["note"], created_at=row["created_at"],
            version_id=row["version_id"], **marks)

    def to_dict(self) -> dict[str, Any]:
        return {"label_id": self.label_id, "intent": self.intent_text,
                "intent_key": self.intent_key, "kind": self.kind.value, "author": self.author,
                "source": self.source, **self.answer.to_dict(), "edited_from": self.edited_from,
                "note": self.note, "created_at": self.created_at.isoformat(),
                "version_id": self.version_id, "current": self.current, "wins": self.wins,
                "conflicts_with": list(self.conflicts_with)}


def validate_answer(answer: Answer | Mapping[str, Any] | str) -> Answer:
    """An answer checked against the tool schema (a JSON text, a mapping or an `Answer`);
    `LabelError` naming the field and the value otherwise."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except json.JSONDecodeError as error:
            raise LabelError(f"the answer is not valid JSON ({error.msg} at character "
                             f"{error.pos}); nothing was saved") from None
    if isinstance(answer, Answer):
        answer = answer.to_dict()
    try:
        return parse_answer(answer)
    except ToolValidationError as error:
        raise LabelError(f"invalid answer: {error}; nothing was saved") from None


def _clean_text(value: str, what: str, limit: int, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise LabelError(f"{what} must not be empty; nothing was saved")
    if len(text) > limit:
        raise LabelError(f"{what} is {len(text)} characters long, over the limit of {limit}; "
                         "nothing was saved")
    if "\x00" in text:
        raise LabelError(f"{what} contains a NUL character; nothing was saved")
    return text


def new_label(intent: str, answer: Answer | Mapping[str, Any] | str, kind: LabelKind | str,
              author: str, note: str = "", edited_from: int | None = None) -> NewLabel:
    """A label validated and ready to store (`store.labels.add_label`): the answer against the
    tool schema, the intent (1 to 500 characters), the author and note. For writers that store
    many labels in one transaction (teacher labelling); `set_label` stores one."""
    try:
        kind = LabelKind(kind)
    except ValueError:
        raise LabelError(f"unknown label kind {kind!r}; expected one of "
                         f"{', '.join(k for k in KINDS if k != CURATION)}") from None
    if kind is LabelKind.CURATION:
        raise LabelError("curation labels are the export-rate choices `workbench curate` "
                         "records; save a curator's label instead")
    text = _clean_text(intent, "the intent", INTENT_MAX_CHARS)
    checked = validate_answer(answer)
    return NewLabel(
        intent_key=intent_key(text), intent_text=text, kind=kind,
        author=_clean_text(author, f"the {kind.value}'s name", AUTHOR_MAX_CHARS),
        adjust=checked.tool_json("adjust"),
        selective_adjust=checked.tool_json("selective_adjust"), filter=checked.tool_json("filter"),
        note=_clean_text(note, "the note", NOTE_MAX_CHARS, required=False),
        edited_from=edited_from)


def check_edited_from(session: Session, label: NewLabel) -> None:
    if label.edited_from is not None and label_store.label_by_id(session, label.edited_from) is None:
        raise LabelError(f"there is no label {label.edited_from} to edit from; nothing was saved")


def set_label(store: Store, intent: str, answer: Answer | Mapping[str, Any] | str,
              kind: LabelKind | str, author: str, note: str = "",
              edited_from: int | None = None) -> Label:
    """Save a new label for the intent (its text as the labeller saw it; the intent need not be
    in any log). An answer that breaks the tool schema, an unknown `edited_from` or an empty
    author raises `LabelError` and saves nothing."""
    label = new_label(intent, answer, kind, author, note, edited_from)
    store.check_writable()
    now = datetime.now(UTC)
    with store.atomic() as session:
        check_edited_from(session, label)
        label_id = label_store.add_label(session, label, now)
    return Label(label_id, label.intent_key, label.intent_text, label.kind, label.author,
                 label.source, validate_answer(answer), label.edited_from, label.note, now,
                 label.version_id)


def get_label(store: Store, label_id: int) -> Label:
    with store.session(read_only=True) as session:
        row = label_store.label_by_id(session, label_id)
    if row is None:
        raise LabelError(f"there is no label {label_id}")
    return Label.from_row(row)


def list_labels(store: Store, filters: LabelFilter | None = None, limit: int = 50,
                offset: int = 0) -> list[Label]:
    """A page of labels, newest first (all labels when `filters` is None)."""
    with store.session(read_only=True) as session:
        return [Label.from_row(row) for row in label_store.labels_page(
            session, filters or LabelFilter(), limit, offset)]


def count_labels(store: Store, filters: LabelFilter | None = None) -> int:
    with store.session(read_only=True) as session:
        return label_store.count_labels(session, filters or LabelFilter())


# ------------------------------------------------------------------------------ ground truth

@dataclass(frozen=True)
class CurrentAnswer:
    """The ground truth a dataset version holds for an intent, and the label it came from
    (`label_id` None for versions made before labels existed: `source` then says
    'export-rate choice (version N)')."""

    version_id: int
    intent_key: str
    intent_text: str
    split: str
    answer: Answer
    label_id: int | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"version_id": self.version_id, "intent": self.intent_text,
                "intent_key": self.intent_key, "split": self.split, **self.answer.to_dict(),
                "label_id": self.label_id, "source": self.source}


def curated_in(session: Session, version_id: int) -> int:
    """The nearest version at or above `version_id` in its lineage that curation made (whose
    export-rate choices its rows carry); the lineage's root when none did."""
    versions = {v["version_id"]: v for v in list_versions(session)}
    current: int | None = version_id
    last = version_id
    while current is not None and current in versions:
        if versions[current]["created_by"] == Origin.CURATION.value:
            return current
        last, current = current, versions[current]["parent_id"]
    return last


def unlinked_source(version_id: int) -> str:
    """How a row without a label (a version made before labels existed) names its source."""
    return f"export-rate choice (version {version_id})"


def current_answer(store: Store, intent: str, version: int | None = None) -> CurrentAnswer | None:
    """The ground truth that dataset version `version` (default: the current one) holds for the
    intent, with its label; None when the intent is not in the version."""
    key = intent_key(intent)
    with store.session(read_only=True) as session:
        version_id = resolve_version(session, version)
        row = label_store.version_row_labels(session, version_id, [key]).get(key)
        if row is None:
            return None
        source = row["source"] or unlinked_source(curated_in(session, version_id))
    return CurrentAnswer(version_id, key, row["intent_text"], row["split"],
                         answer_from_json(row["adjust"], row["selective_adjust"], row["filter"]),
                         row["label_id"], source)


def labels_of(store: Store, intent: str, version: int | None = None) -> list[Label]:
    """Every label of the intent, newest first, marked: `current` (the version's row came from
    it; default: the current version), `wins` (what a commit with the default precedence
    would take), `conflicts_with`."""
    key = intent_key(intent)
    with store.session(read_only=True) as session:
        rows = label_store.intent_labels(session, key)
        version_id = current_version_id(session) if version is None \
            else resolve_version(session, version)
        row = None if version_id is None else \
            label_store.version_row_labels(session, version_id, [key]).get(key)
        bases = _edit_bases(session, rows)
    current = None if row is None else row["label_id"]
    winner = _winner(DEFAULT_PRECEDENCE, rows, current)
    clashes = conflicts(rows, bases)
    return [Label.from_row(r, current=r["label_id"] == current, wins=r["label_id"] == winner,
                           conflicts_with=tuple(sorted(clashes.get(r["label_id"], ()))))
            for r in rows]


def _matches(level: str, row: Mapping[str, Any]) -> bool:
    return bool(row["kind"] == level or row["source"] == level)


def _winner(precedence: Sequence[str], rows: Sequence[Mapping[str, Any]],
            parent_label: int | None) -> int | None:
    """The label id a commit would take for one intent from its labels (newest first)."""
    for level in precedence:
        if level == CURATION:
            return parent_label
        for row in rows:
            if _matches(level, row):
                return int(row["label_id"])
    return parent_label


def _edit_bases(session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[int, dict]:
    """The labels the given ones were edited from, by id (some may be other intents')."""
    wanted = {row["edited_from"] for row in rows if row["edited_from"] is not None}
    known = {row["label_id"]: dict(row) for row in rows}
    missing = [label_id for label_id in wanted if label_id not in known]
    if missing:
        known.update(label_store.labels_by_id(session, missing))
    return known


def _ancestors(label_id: int, known: Mapping[int, Mapping[str, Any]]) -> set[int]:
    found: set[int] = set()
    parent = known[label_id]["edited_from"] if label_id in known else None
    while parent is not None and parent not in found:
        found.add(parent)
        parent = known[parent]["edited_from"] if parent in known else None
    return found


def _answer_columns(row: Mapping[str, Any]) -> tuple[str | None, ...]:
    return tuple(row[tool] for tool in TOOLS)


def conflicts(rows: Sequence[Mapping[str, Any]],
              known: Mapping[int, Mapping[str, Any]] | None = None) -> dict[int, set[int]]:
    """{label id: the labels it conflicts with} among one intent's curator labels.

    The newest curator label conflicts with an older one by another curator when their answers
    differ, the older one is not among the labels it was edited from (directly or further
    back), and it was saved after the label the newest one was edited from (so its author
    could not have seen it; with no `edited_from`, any such older label). `known` maps label
    ids to rows for following `edited_from` (the rows themselves by default)."""
    known = dict(known or {}) | {row["label_id"]: row for row in rows}
    curated = sorted((row for row in rows if row["kind"] == LabelKind.CURATOR.value),
                     key=lambda row: (row["created_at"], row["label_id"]), reverse=True)
    if len(curated) < 2:
        return {}
    newest = curated[0]
    ancestors = _ancestors(newest["label_id"], known)
    base = known.get(newest["edited_from"]) if newest["edited_from"] is not None else None
    found: dict[int, set[int]] = {}
    for other in curated[1:]:
        if other["author"] == newest["author"] or other["label_id"] in ancestors:
            continue
        if _answer_columns(other) == _answer_columns(newest):
            continue
        if base is not None and (other["created_at"], other["label_id"]) <= \
                (base["created_at"], base["label_id"]):
            continue
        found.setdefault(newest["label_id"], set()).add(other["label_id"])
        found.setdefault(other["label_id"], set()).add(newest["label_id"])
    return found


# ------------------------------------------------------------------------------ commit

def parse_precedence(value: str | Sequence[str]) -> tuple[str, ...]:
    """A precedence ('curator,teacher,curation' or a sequence) checked: each level a kind or
    one source ('teacher:gpt-4o-mini'), none twice; `curation` appended when missing (an intent
    no level labelled keeps its parent row)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    levels = [item.strip() for item in items if item.strip()]
    if not levels:
        raise LabelError("the precedence is empty; give levels such as curator,teacher,curation")
    for level in levels:
        kind, _, author = level.partition(":")
        if kind not in KINDS or (kind == CURATION and author) or (":" in level and not author):
            raise LabelError(
                f"unknown precedence level {level!r}: use a kind ({', '.join(KINDS)}) or one "
                "source such as teacher:MODEL, curator:NAME or student:RUN")
    twice = sorted(level for level, n in Counter(levels).items() if n > 1)
    if twice:
        raise LabelError(f"the precedence names {', '.join(twice)} twice")
    if CURATION not in levels:
        levels.append(CURATION)
    return tuple(levels)


@dataclass(frozen=True)
class CommitConfig:
    precedence: tuple[str, ...] = DEFAULT_PRECEDENCE
    note: str = ""
    by: str = ""                         # who commits (stored in the version's config)
    add_new_intents: bool = False        # labelled intents absent from the parent join train


@dataclass(frozen=True)
class CommitResult:
    version_id: int                      # the new version (now current)
    parent_id: int
    precedence: tuple[str, ...]
    rows: int
    changed: int                         # parent intents whose ground truth changed
    from_level: dict[str, int]           # rows per winning level ('curation': the parent row)
    new_added: int                       # labelled intents not in the parent, added to train
    new_skipped: int                     # ... left out (add_new_intents off)
    curation_labels: int = 0             # curation labels recorded for unlabelled parent rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _level_labels(session: Session, precedence: Sequence[str]) -> dict[str, dict[str, dict]]:
    """Per non-curation level, {intent key: its newest label of that level}."""
    return {level: label_store.latest_labels(
        session, kinds=[level] if level in KINDS else [],
        sources=[] if level in KINDS else [level])
        for level in precedence if level != CURATION}


def commit(config: CommitConfig, store: Store) -> CommitResult:
    """A new dataset version on the current one, each intent's answer the label that wins the
    precedence; the split is the parent's; every row records its label. One transaction."""
    precedence = parse_precedence(config.precedence)
    note = _clean_text(config.note, "the note", NOTE_MAX_CHARS, required=False)
    store.check_writable()
    now = datetime.now(UTC)
    with store.atomic() as session:
        parent = current_version_id(session)
        if parent is None:
            raise VersionNotFoundError("there is no dataset version to commit labels onto. Run "
                                       "`workbench curate` (or `workbench demo`) first.")
        parent_rows = label_store.version_row_labels(session, parent)
        by_level = _level_labels(session, precedence)
        rows: list[DatasetRow] = []
        links: dict[str, int] = {}
        from_level: Counter[str] = Counter()
        changed = relinked = 0
        for key in sorted(parent_rows):
            old = parent_rows[key]
            level, label = _pick(precedence, by_level, key)
            chosen = label if label is not None else old
            rows.append(DatasetRow(
                intent_key=key, intent_text=old["intent_text"], split=old["split"],
                request_count=old["request_count"], adjust=chosen["adjust"],
                selective_adjust=chosen["selective_adjust"], filter=chosen["filter"],
                origin=old["origin"], source_intent_key=old["source_intent_key"]))
            from_level[level] += 1
            changed += _answer_columns(chosen) != _answer_columns(old)
            if chosen["label_id"] is not None:
                links[key] = int(chosen["label_id"])
                relinked += chosen["label_id"] != old["label_id"]
        new_keys = sorted({key for labels in by_level.values() for key in labels}
                          - set(parent_rows))
        added = 0
        if config.add_new_intents:
            for key in new_keys:
                level, label = _pick(precedence, by_level, key)
                if label is None:      # cannot happen: the key came from a level's labels
                    continue
                detail = intent_detail(session, key, None)
                rows.append(DatasetRow(
                    intent_key=key, intent_text=label["intent_text"], split="train",
                    request_count=0 if detail is None else int(detail["request_count"]),
                    adjust=label["adjust"], selective_adjust=label["selective_adjust"],
                    filter=label["filter"],
                    origin="logs" if detail is not None else Origin.LABELS.value))
                links[key] = int(label["label_id"])
                from_level[level] += 1
                added += 1
        if not changed and not relinked and not added:
            raise LabelError(
                f"no label changes dataset version {parent}: every intent's winning label under "
                f"the precedence {','.join(precedence)} is the one it already has"
                + (f" ({len(new_keys)} labelled intent(s) not in it: add them with "
                   "--add-new-intents)" if new_keys else "") + "; no version was made")
        text = note or (f"labels by precedence {','.join(precedence)}: {changed} ground truth(s) "
                        f"changed" + (f", {added} new intent(s)" if added else ""))
        version_id = create_version(
            session, rows, Origin.LABELS, text,
            {"precedence": list(precedence), "parent": parent, "committed_by": config.by,
             "add_new_intents": config.add_new_intents, "changed": changed,
             "from_level": dict(from_level), "new_added": added,
             "new_skipped": len(new_keys) - added},
            parent_id=parent, row_labels=links)
        chosen_in = curated_in(session, parent)
        created = label_store.record_curation_labels(
            session, version_id, chosen_in, now,
            note=f"the export-rate choice version {version_id} kept from version {parent}")
    return CommitResult(version_id, parent, precedence, len(rows), changed, dict(from_level),
                        added, len(new_keys) - added, created)


def _pick(precedence: Sequence[str], by_level: Mapping[str, Mapping[str, dict]],
          key: str) -> tuple[str, dict | None]:
    """(the winning level, its label) for one intent; (curation, None) for the parent row."""
    for level in precedence:
        if level == CURATION:
            return CURATION, None
        label = by_level[level].get(key)
        if label is not None:
            return level, label
    return CURATION, None


def describe_commit(result: CommitResult) -> list[str]:
    """What a commit did, for the CLI and the app."""
    levels = ", ".join(f"{level} {n}" for level, n in result.from_level.items())
    lines = [(f"dataset version {result.version_id} (now current) on version "
              f"{result.parent_id}: {result.rows} rows, {result.changed} ground truth(s) "
              "changed"),
             f"precedence {','.join(result.precedence)}; rows by winning label: {levels}"]
    if result.new_added or result.new_skipped:
        lines.append(f"labelled intents not in version {result.parent_id}: {result.new_added} "
                     f"added to the training split, {result.new_skipped} skipped"
                     + (" (add them with --add-new-intents)" if result.new_skipped else ""))
    if result.curation_labels:
        lines.append(f"{result.curation_labels} export-rate choice(s) of version "
                     f"{result.parent_id} recorded as curation labels (it predates labels)")
    return lines


# ------------------------------------------------------------------------------ export

@dataclass(frozen=True)
class LabelExportConfig:
    out: Path
    kinds: tuple[LabelKind, ...] = ()     # all kinds when empty


@dataclass(frozen=True)
class LabelExportResult:
    labels: int
    out: Path
    format: str

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "out": str(self.out), "format": self.format}


EXPORT_COLUMNS = ("label_id", "intent", "intent_key", "kind", "author", "source", "adjust",
                  "selective_adjust", "filter", "edited_from", "note", "created_at",
                  "version_id")


def _export_record(row: Mapping[str, Any]) -> dict[str, Any]:
    def load(text: str | None) -> Any:
        return None if text is None else json.loads(text)

    return {"label_id": row["label_id"], "intent": row["intent_text"],
            "intent_key": row["intent_key"], "kind": row["kind"], "author": row["author"],
            "source": row["source"], **{tool: load(row[tool]) for tool in TOOLS},
            "edited_from": row["edited_from"], "note": row["note"],
            "created_at": row["created_at"].isoformat(), "version_id": row["version_id"]}


def export_labels(config: LabelExportConfig, store: Store) -> LabelExportResult:
    """Write every label (or those of some kinds), oldest first, as JSONL (tools as objects)
    or CSV (tools as JSON text, empty = unused); atomically."""
    out = Path(config.out)
    fmt = EXPORT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise LabelError(f"--out {out}: use a .jsonl or .csv file name")
    check_output_file(out, store.path)
    with store.session(read_only=True) as session:
        records = [_export_record(row) for row in
                   label_store.all_labels(session, LabelFilter(kinds=config.kinds))]

    def write(path: Path) -> None:
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n"
                                    for record in records), encoding="utf-8")
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({name: json.dumps(value, separators=(",", ":"))
                             if name in TOOLS and value is not None else value
                             for name, value in record.items()})
        path.write_text(buffer.getvalue(), encoding="utf-8")

    write_atomic(out, write)
    return LabelExportResult(len(records), out, fmt)


# ------------------------------------------------------------------------------ agreement

@dataclass(frozen=True)
class ToolComparison:
    """One tool of two answers in the paper's terms: used by each; for adjust and
    selective_adjust the cosine of the vectors (an unused tool is the zero vector; SPEC 5's
    conventions, negative kept); for filter whether the names match and the intensity
    difference, when both used it."""

    tool: str
    a_used: bool
    b_used: bool
    cosine: float | None = None
    name_match: bool | None = None
    intensity_difference: int | None = None

    @property
    def selection_agrees(self) -> bool:
        return self.a_used == self.b_used


def compare_answers(a: Answer, b: Answer) -> dict[str, ToolComparison]:
    """Per tool, how answer `b` compares with answer `a`."""
    found: dict[str, ToolComparison] = {}
    for tool in TOOLS:
        used = (a.uses(tool), b.uses(tool))
        if tool in VECTOR_TOOLS:
            vector = adjust_vector if tool == "adjust" else selective_adjust_vector
            found[tool] = ToolComparison(tool, *used, cosine=cosine(vector(a), vector(b)))
        elif a.filter is not None and b.filter is not None:
            found[tool] = ToolComparison(tool, *used, name_match=a.filter.name == b.filter.name,
                                         intensity_difference=b.filter.intensity
                                         - a.filter.intensity)
        else:
            found[tool] = ToolComparison(tool, *used)
    return found


@dataclass(frozen=True)
class PairAgreement:
    """How the labels of two kinds of source agree, over every intent where both gave one
    (the newest label of each source; several sources of one kind each count).

    `selection[tool]`: the share of comparisons where both used the tool or neither did.
    `quality[tool]`: over the comparisons where both used it, the mean cosine (adjust,
    selective_adjust) or the share of matching filter names; None when there were none."""

    kinds: tuple[str, str]
    comparisons: int
    intents: int
    selection: dict[str, float]
    quality: dict[str, float | None]
    both_used: dict[str, int]


@dataclass(frozen=True)
class CuratorAgreement:
    """Agreement of curators on filter names (an unused filter is the category 'none') over the
    intents at least two curators labelled (each curator's newest label). Krippendorff's alpha
    (nominal) for any number of curators per intent; Fleiss' kappa only when every such intent
    has the same number of curators. None, with `note`, when undefined."""

    intents: int
    curators: int
    percent: float | None
    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    note: str | None = None


@dataclass(frozen=True)
class LabelStats:
    labels: int
    intents: int
    by_source: list[dict[str, Any]]
    conflicts: int                          # intents whose curator labels conflict
    failures: int                           # teacher-labelling calls that gave no label
    pairs: list[PairAgreement] = field(default_factory=list)
    curators: CuratorAgreement | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_agreement(rows: Sequence[Mapping[str, Any]]) -> list[PairAgreement]:
    """`PairAgreement` per pair of kinds from the newest label per (intent, source)."""
    by_intent: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_intent.setdefault(row["intent_key"], []).append(row)
    tallies: dict[tuple[str, str], dict[str, Any]] = {}
    for labels in by_intent.values():
        answers = [(row["kind"], row["source"],
                    answer_from_json(row["adjust"], row["selective_adjust"], row["filter"]))
                   for row in labels]
        for i, (kind_a, source_a, answer_a) in enumerate(answers):
            for kind_b, source_b, answer_b in answers[i + 1:]:
                if source_a == source_b:
                    continue
                if KINDS.index(kind_b) < KINDS.index(kind_a):
                    kind_a, kind_b, answer_a, answer_b = kind_b, kind_a, answer_b, answer_a
                tally = tallies.setdefault((kind_a, kind_b), {
                    "n": 0, "intents": set(), "agree": Counter(), "both": Counter(),
                    "quality": Counter()})
                tally["n"] += 1
                tally["intents"].add(labels[0]["intent_key"])
                for tool, comparison in compare_answers(answer_a, answer_b).items():
                    tally["agree"][tool] += comparison.selection_agrees
                    if comparison.a_used and comparison.b_used:
                        tally["both"][tool] += 1
                        tally["quality"][tool] += comparison.cosine \
                            if comparison.cosine is not None else float(bool(comparison.name_match))
    return [PairAgreement(
        kinds=pair, comparisons=t["n"], intents=len(t["intents"]),
        selection={tool: t["agree"][tool] / t["n"] for tool in TOOLS},
        quality={tool: t["quality"][tool] / t["both"][tool] if t["both"][tool] else None
                 for tool in TOOLS},
        both_used={tool: t["both"][tool] for tool in TOOLS})
        for pair, t in sorted(tallies.items(), key=lambda item: (KINDS.index(item[0][0]),
                                                                KINDS.index(item[0][1])))]


def curator_agreement(rows: Sequence[Mapping[str, Any]]) -> CuratorAgreement:
    """`CuratorAgreement` from the newest curator label per (intent, curator)."""
    names: dict[str, list[str]] = {}
    for row in rows:
        if row["kind"] == LabelKind.CURATOR.value:
            name = json.loads(row["filter"])["name"] if row["filter"] is not None else "none"
            names.setdefault(row["intent_key"], []).append(name)
    shared = {key: found for key, found in names.items() if len(found) >= 2}
    curators = len({row["author"] for row in rows if row["kind"] == LabelKind.CURATOR.value
                    and row["intent_key"] in shared})
    if not shared:
        return CuratorAgreement(0, curators, None, None, None,
                                "needs intents labelled by at least 2 curators")
    categories = sorted({name for found in shared.values() for name in found})
    table = [[found.count(name) for name in categories] for found in shared.values()]
    fleiss = agreement.agreement(table)
    alpha = agreement.krippendorff_alpha(table)
    equal = len({len(found) for found in shared.values()}) == 1
    notes = []
    if alpha is None:
        notes.append("every curator chose the same filter, so chance agreement is 1 and alpha "
                     "is undefined")
    if not equal:
        notes.append("intents have different numbers of curators: Fleiss' kappa is left out")
    return CuratorAgreement(len(shared), curators, fleiss.percent, alpha,
                            fleiss.kappa if equal else None, "; ".join(notes) or None)


def stats(store: Store) -> LabelStats:
    """Label counts per source, conflicts, teacher failures, and agreement between sources
    (`PairAgreement`) and across curators (`CuratorAgreement`)."""
    with store.session(read_only=True) as session:
        counts = label_store.label_counts(session)
        shared = label_store.newest_per_source(session, min_sources=2)
        curated = label_store.all_labels(session, LabelFilter(kinds=(LabelKind.CURATOR,)))
        by_intent: dict[str, list[dict]] = {}
        for row in curated:
            by_intent.setdefault(row["intent_key"], []).append(row)
        contested = [rows for rows in by_intent.values()
                     if len({row["author"] for row in rows}) > 1]
        bases = _edit_bases(session, [row for rows in contested for row in rows])
        n_conflicts = sum(bool(conflicts(rows, bases)) for rows in contested)
        n_failures = label_store.count_failures(session)
        n_labels = label_store.count_labels(session, LabelFilter())
        n_intents = label_store.count_labelled_intents(session)
    for row in counts:
        row["newest"] = row["newest"].isoformat()
    return LabelStats(n_labels, n_intents, counts, n_conflicts, n_failures,
                      pair_agreement(shared), curator_agreement(shared))


# ------------------------------------------------------------------------------ failures, claims

def record_failure(store: Store, intent: str, model: str, reason: str,
                   raw: str | None) -> int:
    """Keep a teacher-labelling call that gave no label (with its raw reply). Returns its id."""
    text = _clean_text(intent, "the intent", INTENT_MAX_CHARS)
    with store.atomic() as session:
        return label_store.add_failure(session, intent_key(text), text, model, reason, raw,
                                       datetime.now(UTC))


def list_failures(store: Store, model: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict]:
    with store.session(read_only=True) as session:
        return label_store.failures(session, model, limit, offset)


def claim(store: Store, intent: str, curator: str,
          expiry_s: float = DEFAULT_CLAIM_EXPIRY_S) -> str | None:
    """Claim the intent in the label queue for `curator`; None when it is theirs now, else the
    name of the curator who holds it (a claim lapses after `expiry_s`)."""
    name = _clean_text(curator, "the curator's name", AUTHOR_MAX_CHARS)
    return label_store.claim(store, intent_key(intent), name, datetime.now(UTC), expiry_s)


def release(store: Store, intent: str, curator: str) -> None:
    """Give the curator's claim on the intent back (after saving or skipping it)."""
    with store.atomic() as session:
        label_store.release(session, intent_key(intent), curator.strip())
