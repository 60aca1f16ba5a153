"""Labels (SPEC 11): the label queue (the intents that most need a person, one at a time, with
Accept / Edit / Skip and progress), every label with its source, and the commit of labels into
a new dataset version by precedence.

The queue is `pipelines.label_queue`: the curator picks the reason and the order; the intent on
screen is claimed for this curator, so a second curator working the same queue gets another one.
Session state (this page's own): the intent on screen, this session's progress and skips.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pipelines import label_queue, labels
from pipelines.label_queue import (
    ORDER_TITLES,
    REASON_TITLES,
    QueueConfig,
    QueueItem,
    QueueOrder,
    QueueReason,
)
from workbench.app import editor, state
from workbench.app.state import escape_markdown
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.report import TOOL_TITLES
from workbench.store import Store, requests
from workbench.store import labels as label_store
from workbench.store.labels import KINDS, LabelFilter, LabelKind
from workbench.store.versions import current_version_id
from workbench.tools import TOOLS, answer_from_json

_ITEM = "labels_item"            # (curator, reason, order, QueueItem): the intent on screen
_DONE = "labels_done"            # intents handled in this session's queue (accepted, saved, skipped)
_LABELLED = "labels_labelled"    # of them, labelled
_SKIPPED = "labels_skipped"      # intent keys skipped in this session's queue
_EDITING = "labels_editing"      # the editor is open for the intent on screen
_FLASH = "labels_flash"          # (kind, message) for the next run
LIST_LIMIT = 200
PREVIEWED_OUTPUTS = 6            # teacher outputs rendered beside the ground truth


def render() -> None:
    st.title("Labels")
    current = state.require_database()
    try:
        with current.session() as session:
            version_id = current_version_id(session)
            sources = [row["source"] for row in label_store.label_counts(session)]
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
    if version_id is None:
        st.info("No dataset version yet, so no ground truth to label: run `workbench curate` "
                "(or `workbench demo`) first.")
        st.stop()
    st.caption("Every answer an intent has been given is kept as a label with its source "
               "(curation's export-rate choice, a teacher relabel, a student's suggestion, a "
               "curator's edit); a new dataset version takes, per intent, the label that wins "
               "the precedence.")
    curator = editor.curator_input()
    flash = st.session_state.pop(_FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])
    queue, every, commit = st.tabs(["Label queue", "All labels", "Commit labels"])
    with queue:
        _queue(current, curator)
    with every:
        _all_labels(current)
    with commit:
        _commit(current, sources, curator)


# ------------------------------------------------------------------------------ the queue

def _restart() -> None:
    """A new reason or order starts the queue again (and gives the intent on screen back)."""
    _release_held()
    for key in (_DONE, _LABELLED, _SKIPPED, _EDITING):
        st.session_state.pop(key, None)


def _release_held() -> None:
    held = st.session_state.pop(_ITEM, None)
    if held is not None:
        try:
            label_queue.release(state.store(), held[3].entry.intent_text, held[0])
        except WorkbenchError as error:     # busy: the claim lapses by itself
            st.session_state[_FLASH] = ("warning", escape_markdown(str(error)))


def _held_item(config: QueueConfig, curator: str) -> QueueItem | None:
    """The intent on screen, its claim renewed; or the next one of the queue, claimed."""
    held = st.session_state.get(_ITEM)
    if held is not None and held[:3] == (curator, config.reason, config.order):
        item: QueueItem = held[3]
        holder = labels.claim(state.store(), item.entry.intent_text, curator,
                              config.claim_expiry_s)
        if holder is None:
            return item
        st.session_state[_FLASH] = ("warning", (f"{escape_markdown(holder)} took "
                                    f"{escape_markdown(item.entry.intent_text)} after your claim "
                                    "lapsed; here is the next intent."))
    if held is not None:
        _release_held()                    # another curator name, reason or order
    found = label_queue.next_in_queue(state.store(), config, curator,
                                      skip=st.session_state.get(_SKIPPED, []))
    if found is not None:
        st.session_state[_ITEM] = (curator, config.reason, config.order, found)
    return found


def _queue(current: Store, curator: str) -> None:
    left, right = st.columns(2)
    reason = left.selectbox("Reason", list(QueueReason), key="labels_reason",
                            format_func=lambda r: REASON_TITLES[r], on_change=_restart)
    order = right.selectbox("Order", list(QueueOrder), key="labels_order",
                            format_func=lambda o: ORDER_TITLES[o], on_change=_restart)
    config = QueueConfig(QueueReason(reason), QueueOrder(order),
                         selection=tuple(st.session_state.get(state.LABEL_SELECTION_KEY) or ()))
    try:
        item = _held_item(config, curator)
    except StoreBusyError:
        raise
    except WorkbenchError as error:
        st.info(escape_markdown(str(error)))
        return
    done = int(st.session_state.get(_DONE, 0))
    if item is None:
        st.success(f"Nothing left in this queue for you ({done} handled in this session): "
                   "every intent in it is labelled by a curator, skipped by you or held by "
                   "another curator. Pick another reason, or commit the labels.")
        return
    # The queue as it stands: handled here, still to do, and held by other curators right now
    # (so the total stays put while others hold intents, and shrinks as they label them).
    total = done + item.remaining + item.held_by_others
    with st.container(key="labels_progress"):
        st.progress(done / total if total else 1.0, text=f"{done + 1} of {total}")
    st.caption(f"{st.session_state.get(_LABELLED, 0)} labelled and "
               f"{len(st.session_state.get(_SKIPPED, []))} skipped in this session; "
               f"{item.held_by_others} held by other curators right now. Source: "
               f"{escape_markdown(item.source)}.")
    entry = item.entry
    with st.container(key="labels_intent"):
        st.code(entry.intent_text, language=None)
    st.markdown(f"**Why it is here:** {escape_markdown(entry.why)} · {entry.split} split · "
                f"{entry.request_count:,} request{'s' if entry.request_count != 1 else ''}")
    try:
        current_answer = labels.current_answer(current, entry.intent_text, item.version_id)
    except StoreBusyError:
        raise
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    if current_answer is not None:
        st.dataframe(pd.DataFrame([{"tool": TOOL_TITLES[tool], "ground truth": describe_output(
            tool, current_answer.answer.tool_json(tool))} for tool in TOOLS]),
            hide_index=True, key="labels_ground_truth")
        st.caption(f"The ground truth of version {current_answer.version_id}, from "
                   f"{escape_markdown(current_answer.source)}.")
    editor.label_table(list(item.labels), "labels_queue_labels")
    try:
        with current.session() as session:
            outputs = requests.teacher_outputs(session, entry.intent_key, item.version_id)
    except StoreBusyError:
        raise
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    panels = [] if current_answer is None else [("ground truth", current_answer.answer)]
    panels += [(f"teacher output · {row['requests']} request{'s' if row['requests'] != 1 else ''}",
                answer_from_json(row["adjust"], row["selective_adjust"], row["filter"]))
               for row in outputs[:PREVIEWED_OUTPUTS]]
    editor.answer_previews("labels_previews", panels)
    if len(outputs) > PREVIEWED_OUTPUTS:
        st.caption(f"The {PREVIEWED_OUTPUTS} most requested of {len(outputs)} teacher outputs; "
                   "all of them on the Intents page.")
    columns = st.columns([1, 1, 1, 3])
    columns[0].button("Accept", key="labels_accept", type="primary", on_click=_accept,
                      args=(entry.intent_text, curator, item.version_id),
                      help="the ground truth is right: save it as your label")
    columns[1].button("Edit", key="labels_edit", on_click=_open_editor,
                      help="change the answer in the editor and save it as your label")
    columns[2].button("Skip", key="labels_skip", on_click=_skip,
                      args=(entry.intent_key, entry.intent_text, curator),
                      help="leave it for someone else")
    if st.session_state.get(_EDITING):
        editor.answer_editor(
            "queue_editor", subject=f"{entry.intent_key}@{item.version_id}",
            starts=editor.starting_points(list(item.labels), current_answer),
            reference=None if current_answer is None else current_answer.answer,
            save_label="Save and next", save=_saver(entry.intent_text, curator))


def _advance(labelled: bool) -> None:
    st.session_state[_DONE] = int(st.session_state.get(_DONE, 0)) + 1
    if labelled:
        st.session_state[_LABELLED] = int(st.session_state.get(_LABELLED, 0)) + 1
    st.session_state.pop(_ITEM, None)
    st.session_state.pop(_EDITING, None)


def _accept(intent_text: str, curator: str, version_id: int) -> None:
    try:
        label = label_queue.accept(state.store(), intent_text, curator, version_id)
    except WorkbenchError as error:
        st.session_state[_FLASH] = ("error", escape_markdown(str(error)))
        return
    st.session_state[_FLASH] = ("success", (f"Accepted: label #{label.label_id} "
                                f"({escape_markdown(label.source)}) for "
                                f"{escape_markdown(intent_text)}."))
    _advance(labelled=True)


def _open_editor() -> None:
    st.session_state[_EDITING] = True


def _skip(key: str, intent_text: str, curator: str) -> None:
    try:
        label_queue.release(state.store(), intent_text, curator)
    except WorkbenchError as error:     # busy: the claim lapses by itself
        st.session_state[_FLASH] = ("warning", escape_markdown(str(error)))
    st.session_state[_SKIPPED] = [*st.session_state.get(_SKIPPED, []), key]
    _advance(labelled=False)


def _saver(intent_text: str, curator: str) -> editor.SaveAction:
    def save(request: editor.SaveRequest) -> str:
        label = label_queue.save_edit(state.store(), intent_text, request.answer, curator,
                                      request.note, request.edited_from)
        _advance(labelled=True)
        # The editor closes with the intent, so the page says it.
        st.session_state[_FLASH] = ("success", (f"Saved label #{label.label_id} "
                                    f"({escape_markdown(label.source)}) for "
                                    f"{escape_markdown(intent_text)}."))
        return ""
    return save


# ------------------------------------------------------------------------------ every label

def _all_labels(current: Store) -> None:
    left, right = st.columns([2, 3])
    kinds = left.multiselect("Kinds", list(KINDS), key="labels_kinds",
                             placeholder="every kind")
    search = right.text_input("Intent contains", key="labels_search")
    filters = LabelFilter(kinds=tuple(LabelKind(kind) for kind in kinds),
                          search=search.strip() or None)
    try:
        total = labels.count_labels(current, filters)
        found = labels.list_labels(current, filters, limit=LIST_LIMIT)
    except StoreBusyError:
        raise
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    if not found:
        st.info("No label matches.")
        return
    st.dataframe(pd.DataFrame([{
        "label": row.label_id, "intent": row.intent_text, "source": row.source,
        **{TOOL_TITLES[tool]: describe_output(tool, row.answer.tool_json(tool)) for tool in TOOLS},
        "note": row.note, "when": row.created_at, "edited from": row.edited_from}
        for row in found]), hide_index=True, key="labels_table", column_config={
            "intent": st.column_config.TextColumn(width="medium"),
            "when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "edited from": st.column_config.NumberColumn(format="%d")})
    st.caption(f"{min(total, LIST_LIMIT):,} of {total:,} label(s), newest first "
               "(`workbench labels list` and `workbench labels export` for all).")


# ------------------------------------------------------------------------------ commit

def _commit(current: Store, sources: list[str], curator: str) -> None:
    levels = [kind for kind in KINDS if kind != LabelKind.CURATION.value] + sorted(sources)
    levels = [level for level in dict.fromkeys(levels) if level != LabelKind.CURATION.value]
    precedence = st.multiselect(
        "Precedence (first wins; the export-rate choice comes last)", levels,
        default=[LabelKind.CURATOR.value], key="labels_precedence",
        help="a kind (curator, teacher, student) or one source (teacher:MODEL); within a level "
             "the newest label wins; an intent no level labelled keeps its ground truth")
    try:
        preview = label_queue.commit_preview(current, precedence or [LabelKind.CURATOR.value])
    except StoreBusyError:
        raise
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    columns = st.columns(3)
    columns[0].metric("Ground truths that change", f"{preview.changed:,}")
    columns[1].metric("Same answer, new label", f"{preview.relinked:,}",
                      help="rows that keep their answer but now come from another label (e.g. "
                           "a curator accepted the ground truth)")
    columns[2].metric("Labelled intents not in the version", f"{preview.new_intents:,}")
    st.caption(f"Committing onto version {preview.parent_id} with precedence "
               f"{escape_markdown(','.join(preview.precedence))}: rows by winning level "
               + ", ".join(f"{escape_markdown(level)} {n:,}"
                           for level, n in preview.from_level.items()) + ".")
    with st.form("labels_commit_form", border=True, enter_to_submit=False):
        st.checkbox("Add the labelled intents that are not in the version (to the "
                              "training split)", key="labels_add_new")
        st.text_input("Note for the new version", key="labels_commit_note")
        st.form_submit_button("Commit labels into a new version", type="primary",
                              key="labels_commit",
                              disabled=not (preview.makes_a_version or preview.new_intents),
                              on_click=_commit_action,
                              args=(tuple(precedence or [LabelKind.CURATOR.value]), curator))
    if not (preview.makes_a_version or preview.new_intents):
        st.caption("Nothing to commit: every intent already has the label that wins.")


def _commit_action(precedence: tuple[str, ...], curator: str) -> None:
    config = labels.CommitConfig(
        precedence=precedence, note=str(st.session_state.get("labels_commit_note", "")).strip(),
        by=curator, add_new_intents=bool(st.session_state.get("labels_add_new", False)))
    try:
        result = labels.commit(config, state.store())
    except StoreBusyError as error:
        st.session_state[_FLASH] = ("warning", state.busy_message(error)
                                    + " Nothing was committed: try again in a moment.")
        return
    except WorkbenchError as error:
        st.session_state[_FLASH] = ("error", escape_markdown(str(error)))
        return
    st.session_state["labels_commit_note"] = ""
    st.session_state[_FLASH] = ("success", "  \n".join(
        escape_markdown(line) for line in labels.describe_commit(result)))

