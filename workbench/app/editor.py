"""The answer editor: one component for every page that shows an answer (an intent's detail, the
Errors page, the augmentation review queue). The whole answer as controls (each tool on or off,
the 14 adjust sliders, the 6 x 2 selective sliders, the filter from the catalogue with its
description and its intensity), prefilled from the ground truth or a suggestion; a before/after
preview on a sample photo (or an uploaded one) that follows the controls; the difference from
the ground truth in the paper's terms; Save with a note; Reset.

The editor runs as an `st.fragment`, so moving a slider reruns the editor alone, not the page;
the preview renders on a photo downscaled once (`workbench.editing`), so one move costs tens of
milliseconds. What Save does is the page's: it passes a `SaveAction` (save a curator label,
approve a candidate with its edited label) that raises `WorkbenchError` to refuse.

Widget keys: every control is `<key>.<control name>` (names in `workbench.editing`, e.g.
`intent_editor.adjust.temperature`, `intent_editor.use.filter`), plus `<key>.start`,
`<key>.photo`, `<key>.upload`, `<key>.note`, `<key>.save`, `<key>.reset`, `<key>.json` and
`<key>.load_json`; the preview's edited image sits in a container keyed `<key>-after`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import labels
from pipelines.labels import CurrentAnswer, Label, ToolComparison, compare_answers
from workbench import editing
from workbench.app.state import CURATOR_KEY, escape_markdown, store
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.render import FILTER_EFFECTS, SAMPLE_IMAGES, SELECTIVE_EFFECTS, SLIDER_EFFECTS
from workbench.report import TOOL_TITLES
from workbench.store.labels import LabelKind
from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    FILTER_NAMES,
    TOOLS,
    Answer,
    ToolValidationError,
    answer_from_json,
    parse_answer,
)

UPLOAD = "upload"                 # the photo choice that uses the uploaded file
PHOTO_CHOICES = (*SAMPLE_IMAGES, UPLOAD)
# Non-widget state, per editor: which subject and starting point the controls were filled from,
# and a message for the next run.
_FILLED, _FLASH, _SAVED = "_filled", "_flash", "_saved"


@dataclass(frozen=True)
class StartingPoint:
    """An answer the editor can start from: the ground truth, a teacher's or a student's
    suggestion, an earlier curator label. `label_id` is the label it is (None: not a label yet,
    e.g. a candidate's inherited answer); a save records it as the label edited from."""

    title: str
    answer: Answer | None
    label_id: int | None = None


@dataclass(frozen=True)
class SaveRequest:
    """What Save hands to the page's action."""

    answer: Answer
    note: str
    curator: str
    edited_from: int | None        # the starting point's label id


SaveAction = Callable[[SaveRequest], str]    # saves; returns what to say ("" when the page says
                                             # it); WorkbenchError refuses


def curator_name() -> str:
    """The curator's name kept in the session (typed once, on any page), else $USER."""
    name = str(st.session_state.get(CURATOR_KEY) or "").strip()
    return name or os.environ.get("USER") or "curator"


def curator_input(where: Any = st) -> str:
    """The curator's name as a text input (default $USER); it keeps its value across pages."""
    if not str(st.session_state.get(CURATOR_KEY) or "").strip():
        st.session_state[CURATOR_KEY] = os.environ.get("USER") or "curator"
    where.text_input("Curator", key=CURATOR_KEY, persist_state="session",
                     help="your name: saved with every label you make (curator:NAME)")
    return curator_name()


def starting_points(labels: Sequence[Label], current: CurrentAnswer | None,
                    extra: Sequence[StartingPoint] = ()) -> list[StartingPoint]:
    """What an intent's editor can start from: the ground truth the version holds (first: the
    default), the `extra` suggestions (a student's prediction the Errors page shows), then every
    other label of the intent, newest first."""
    found: list[StartingPoint] = []
    if current is not None:
        found.append(StartingPoint(f"ground truth of version {current.version_id} "
                                   f"({current.source})", current.answer, current.label_id))
    found += extra
    shown = {start.label_id for start in found if start.label_id is not None}
    found += [StartingPoint(f"label #{label.label_id} · {label.source} · "
                            f"{label.created_at:%Y-%m-%d %H:%M}", label.answer, label.label_id)
              for label in labels if label.label_id not in shown]
    return found or [StartingPoint("no answer yet (no tool used)", None)]


def answer_editor(key: str, *, subject: str, starts: Sequence[StartingPoint],
                  reference: Answer | None, save: SaveAction,
                  reference_title: str = "current ground truth",
                  save_label: str = "Save label", author: str | None = None) -> None:
    """The editor for one intent (or candidate): `subject` identifies it, so opening another one
    refills the controls; `starts` are the answers it can start from (the first is the
    default); `reference` is what the difference and the middle panel compare with. The label's
    author is the session's curator unless `author` names someone (the page's reviewer)."""
    if not starts:
        raise WorkbenchError("the editor needs at least one answer to start from")
    _editor(key, subject, tuple(starts), reference, save, reference_title, save_label, author)


@st.fragment
def _editor(key: str, subject: str, starts: tuple[StartingPoint, ...], reference: Answer | None,
            save: SaveAction, reference_title: str, save_label: str,
            author: str | None) -> None:
    if st.session_state.pop(_state(key, _SAVED), False):
        st.rerun(scope="app")                 # the page lists the new label
    _fill_when_new(key, subject, starts)
    flash = st.session_state.pop(_state(key, _FLASH), None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])

    top = st.columns([3, 2, 2])
    top[0].selectbox("Start from", range(len(starts)), key=_k(key, "start"),
                     format_func=lambda i: starts[i].title, on_change=_fill,
                     args=(key, starts), help="the answer the controls are filled with")
    photo_name = top[1].selectbox("Preview photo", PHOTO_CHOICES, key=_k(key, "photo"),
                                  format_func=lambda n: "upload your own…" if n == UPLOAD else n)
    upload = None
    if photo_name == UPLOAD:
        upload = top[2].file_uploader("Photo (PNG, JPEG, WebP)", type=["png", "jpg", "jpeg",
                                                                       "webp", "tif", "tiff"],
                                      key=_k(key, "upload"))
    controls, preview = st.columns([5, 6], gap="large")
    with controls:
        values = _controls(key)
    with preview:
        _preview(key, values, reference, reference_title, photo_name, upload)
        _actions(key, starts, save, save_label, author)


def label_table(found: Sequence[Label], key: str) -> None:
    """An intent's labels, newest first, with who made each and which one the version holds."""
    if not found:
        st.caption("No label yet. Curation records the export-rate choice as a label; a "
                   "curator's edit below, a teacher relabel (`workbench label`) or a student's "
                   "suggestion add more.")
        return
    st.dataframe(pd.DataFrame([{
        "label": row.label_id, "source": row.source,
        **{TOOL_TITLES[tool]: describe_output(tool, row.answer.tool_json(tool)) for tool in TOOLS},
        "note": row.note or "-", "when": row.created_at,      # "-": empty, never "None"
        "edited from": "-" if row.edited_from is None else str(row.edited_from),
        "ground truth": "✓" if row.current else "", "wins next commit": "✓" if row.wins else "",
        "conflicts with": ", ".join(f"#{i}" for i in row.conflicts_with) or "-"}
        for row in found]),
        hide_index=True, key=key, column_config={
            "when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    st.caption("Labels are never overwritten: an edit is a new label naming the one it was "
               "edited from. *Wins next commit*: what a commit with the default precedence "
               "(curator, then the export-rate choice) would take; two curators who disagree "
               "without one editing the other's label conflict (the newer wins).")



def answer_previews(key: str, panels: Sequence[tuple[str, Answer | None]],
                    per_row: int = 4) -> None:
    """Answers side by side on one sample photo at the preview size (the photo chosen in
    `<key>.photo`), after the photo as it is: to judge a ground truth, or teacher outputs that
    disagree, at a glance."""
    name = st.selectbox("Preview photo", SAMPLE_IMAGES, key=_k(key, "photo"))
    photo = _sample_photo(name)
    images = [("as it is", photo.jpeg)] + [(caption, _rendered(photo, name, _jsons(answer)))
                                           for caption, answer in panels]
    for start in range(0, len(images), per_row):
        for column, (caption, jpeg) in zip(st.columns(per_row), images[start:start + per_row],
                                           strict=False):
            column.image(jpeg, caption=caption, output_format="JPEG")


def save_curator_label(intent_text: str) -> SaveAction:
    """The Save of an intent's editor: the edit as a `curator:<name>` label of the intent."""
    def save(request: SaveRequest) -> str:
        label = labels.set_label(store(), intent_text, request.answer, LabelKind.CURATOR,
                                 request.curator, request.note, request.edited_from)
        return f"Saved label #{label.label_id} as {escape_markdown(label.source)}."
    return save


# ------------------------------------------------------------------------------ controls

def _k(key: str, name: str) -> str:
    return f"{key}.{name}"


def _state(key: str, name: str) -> str:
    return f"{key}.{name}"


def _fill_when_new(key: str, subject: str, starts: tuple[StartingPoint, ...]) -> None:
    """Fill the controls from the first starting point when the subject changed (another
    intent opened) or the controls' state is gone (the editor was not shown for a while)."""
    if (st.session_state.get(_state(key, _FILLED)) != subject
            or _k(key, editing.USE["adjust"]) not in st.session_state
            or st.session_state.get(_k(key, "start"), 0) >= len(starts)):
        st.session_state[_k(key, "start")] = 0
        _write_controls(key, starts[0].answer)
        st.session_state[_state(key, _FILLED)] = subject


def _write_controls(key: str, answer: Answer | None) -> None:
    for name, value in editing.controls_from_answer(answer).items():
        st.session_state[_k(key, name)] = value


def _fill(key: str, starts: tuple[StartingPoint, ...]) -> None:
    """Callback of Start from and Reset: the controls back to the chosen starting point."""
    index = int(st.session_state.get(_k(key, "start"), 0))
    _write_controls(key, starts[min(index, len(starts) - 1)].answer)


def _read_controls(key: str) -> dict[str, Any]:
    return {name: st.session_state.get(_k(key, name)) for name in editing.CONTROL_NAMES}


def _controls(key: str) -> dict[str, Any]:
    low, high = editing.SLIDER_RANGE
    adjust, selective, filter_ = st.tabs([TOOL_TITLES[tool] for tool in TOOLS])
    with adjust:
        on = st.toggle("Use adjust", key=_k(key, editing.USE["adjust"]))
        columns = st.columns(2)
        for i, name in enumerate(ADJUST_KEYS):
            columns[i % 2].slider(name, low, high, step=1, disabled=not on,
                                  key=_k(key, editing.ADJUST_CONTROLS[name]),
                                  help=SLIDER_EFFECTS[name])
    with selective:
        on = st.toggle("Use selective adjust", key=_k(key, editing.USE["selective_adjust"]))
        for colour in COLOURS:
            columns = st.columns(2)
            for column, channel in zip(columns, COLOUR_CHANNELS, strict=True):
                column.slider(f"{colour} {channel}", low, high, step=1, disabled=not on,
                              key=_k(key, editing.SELECTIVE_CONTROLS[(colour, channel)]),
                              help=SELECTIVE_EFFECTS[channel])
    with filter_:
        on = st.toggle("Use a filter", key=_k(key, editing.USE["filter"]))
        name = st.selectbox("Filter (the catalogue)", FILTER_NAMES, disabled=not on,
                            key=_k(key, editing.FILTER_NAME),
                            format_func=lambda n: f"{n}: {FILTER_EFFECTS[n]}")
        st.caption(escape_markdown(FILTER_EFFECTS.get(name, "")))
        st.slider("Intensity", *editing.INTENSITY_RANGE, step=1, disabled=not on,
                  key=_k(key, editing.FILTER_INTENSITY))
    with st.expander("Paste an answer (JSON)"):
        st.text_area("Answer as JSON", key=_k(key, "json"), height=120,
                     placeholder='{"adjust": {"temperature": -40}, "filter": {"name": '
                                 '"cool_Morning", "intensity": 60}}',
                     help="tools that are absent or null are switched off; missing sliders "
                          "are 0")
        st.button("Load into the controls", key=_k(key, "load_json"), on_click=_load_json,
                  args=(key,))
    return _read_controls(key)


def _load_json(key: str) -> None:
    """Callback: the pasted answer into the controls, or an error naming the field and value
    (the controls stay as they were)."""
    text = str(st.session_state.get(_k(key, "json")) or "").strip()
    try:
        answer = parse_answer(json.loads(text) if text else {})
    except json.JSONDecodeError as error:
        st.session_state[_state(key, _FLASH)] = ("error", "The pasted answer is not JSON: "
                                                 + escape_markdown(str(error)))
        return
    except ToolValidationError as error:
        st.session_state[_state(key, _FLASH)] = ("error", "Not loaded: "
                                                 + escape_markdown(str(error)))
        return
    _write_controls(key, answer)
    st.session_state[_state(key, _FLASH)] = ("success", "Loaded the pasted answer.")


# ------------------------------------------------------------------------------ preview

def _preview(key: str, values: dict[str, Any], reference: Answer | None, reference_title: str,
             photo_name: str, upload: Any) -> None:
    try:
        photo = _photo(photo_name, upload)
    except WorkbenchError as error:
        st.error(f"Could not load the photo: {escape_markdown(str(error))}")
        return
    try:
        edited = editing.answer_from_controls(values)
    except ToolValidationError as error:
        st.error(f"The controls do not make a valid answer: {escape_markdown(str(error))}")
        return
    before, after = st.columns(2)
    before.image(photo.jpeg, caption=f"before: '{photo.name}' as it is", output_format="JPEG")
    with after.container(key=f"{key}-after"):
        st.image(_rendered(photo, _photo_id(photo_name, upload), _jsons(edited)),
                 caption="after: your edit", output_format="JPEG")
    left, right = st.columns([2, 3])
    with left.container(key=f"{key}-reference"):
        st.image(_rendered(photo, _photo_id(photo_name, upload), _jsons(reference)),
                 caption=reference_title, output_format="JPEG")
    with right:
        _difference(key, reference, edited, reference_title)


def _photo_id(name: str, upload: Any) -> str:
    return f"upload:{upload.file_id}" if name == UPLOAD and upload is not None else name


def _photo(name: str, upload: Any) -> editing.PreviewPhoto:
    if name == UPLOAD and upload is not None:
        return _uploaded_photo(str(upload.file_id), upload.getvalue(), str(upload.name))
    return _sample_photo(SAMPLE_IMAGES[0] if name == UPLOAD else name)


@st.cache_resource(max_entries=len(SAMPLE_IMAGES), show_spinner=False)
def _sample_photo(name: str) -> editing.PreviewPhoto:
    """A sample photo at the preview size: loaded and downscaled once per server."""
    return editing.preview_photo(name)


@st.cache_resource(max_entries=4, show_spinner=False)
def _uploaded_photo(file_id: str, _data: bytes, name: str) -> editing.PreviewPhoto:
    """An uploaded photo at the preview size, once per upload (its id, not its bytes, is the
    cache key: hashing megabytes on every slider move would cost more than the render)."""
    return editing.preview_photo(_data, name=name)


Jsons = tuple[str | None, str | None, str | None]


def _jsons(answer: Answer | None) -> Jsons:
    answer = answer or Answer()
    return answer.tool_json("adjust"), answer.tool_json("selective_adjust"), \
        answer.tool_json("filter")


@st.cache_data(max_entries=64, show_spinner=False)
def _rendered(_photo: editing.PreviewPhoto, photo_id: str, answer: Jsons) -> bytes:
    """JPEG of one answer on the preview photo (cached per photo and answer, so Reset and a
    slider moved back cost nothing)."""
    return editing.preview_jpeg(_photo, answer_from_json(*answer))


def comparison_text(found: ToolComparison) -> str:
    """One tool of the edit against the reference in the paper's terms, in words: 'cosine
    0.71', 'same filter, intensity +10', 'switched on (the ground truth does not use it);
    cosine 0.00'."""
    if not found.a_used and not found.b_used:
        return "not used by either"
    selection = ("" if found.selection_agrees else
                 "switched on (the reference does not use it)" if found.b_used
                 else "switched off (the reference uses it)")
    if found.tool == "filter":
        if found.name_match is None:
            return selection
        detail = "same filter" if found.name_match else "different filter"
        if found.intensity_difference:
            detail += f", intensity {found.intensity_difference:+d}"
        return detail
    detail = "" if found.cosine is None else f"cosine {found.cosine:.2f}"
    return "; ".join(part for part in (selection, detail) if part)


def _difference(key: str, reference: Answer | None, edited: Answer, reference_title: str) -> None:
    reference = reference or Answer()
    found = compare_answers(reference, edited)
    st.markdown(f"**Your edit against the {escape_markdown(reference_title)}**")
    st.dataframe(pd.DataFrame([{
        "tool": TOOL_TITLES[tool],
        reference_title: describe_output(tool, reference.tool_json(tool)),
        "your edit": describe_output(tool, edited.tool_json(tool)),
        "difference": comparison_text(found[tool])} for tool in TOOLS]),
        hide_index=True, key=_k(key, "difference"),
        column_config={"difference": st.column_config.TextColumn(width="medium")})
    st.caption("Same as the " + escape_markdown(reference_title) + "." if edited == reference
               else "Cosine of the tool's vectors (an unused tool counts as zeros; 1 = the same "
                    "direction, negative = the opposite look); the filter: same name or not.")


# ------------------------------------------------------------------------------ save and reset

def _actions(key: str, starts: tuple[StartingPoint, ...], save: SaveAction,
             save_label: str, author: str | None) -> None:
    st.text_input("Note (optional)", key=_k(key, "note"),
                  placeholder="why: e.g. 'morning light is cooler than this'")
    left, right, _ = st.columns([2, 1, 2])
    left.button(save_label, key=_k(key, "save"), type="primary", on_click=_save,
                args=(key, starts, save, author))
    right.button("Reset", key=_k(key, "reset"), on_click=_fill, args=(key, starts),
                 help="the controls back to the starting point")
    st.caption(f"Saved as **curator:{escape_markdown(author or curator_name())}**; labels are "
               "never overwritten, an edit is a new label.")


def _save(key: str, starts: tuple[StartingPoint, ...], save: SaveAction,
          author: str | None) -> None:
    """Callback of Save: validate the controls' answer and hand it to the page's action.
    A value the schema refuses, or a refusal of the action, saves nothing and says why."""
    try:
        answer = editing.answer_from_controls(_read_controls(key))
    except ToolValidationError as error:
        st.session_state[_state(key, _FLASH)] = ("error", "Nothing saved: "
                                                 + escape_markdown(str(error)))
        return
    start = starts[min(int(st.session_state.get(_k(key, "start"), 0)), len(starts) - 1)]
    request = SaveRequest(answer, str(st.session_state.get(_k(key, "note")) or "").strip(),
                          (author or "").strip() or curator_name(), start.label_id)
    try:
        message = save(request)
    except StoreBusyError as error:
        holder = error.holder or "another process"
        st.session_state[_state(key, _FLASH)] = (
            "warning", (f"The database is busy ({escape_markdown(holder)}): nothing saved, try "
                        "again in a moment."))
        return
    except (WorkbenchError, ToolValidationError) as error:
        st.session_state[_state(key, _FLASH)] = ("error", "Nothing saved: "
                                                 + escape_markdown(str(error)))
        return
    st.session_state[_k(key, "note")] = ""
    if message:                 # an empty message: the page says it (the editor may be gone)
        st.session_state[_state(key, _FLASH)] = ("success", message)
    st.session_state[_state(key, _SAVED)] = True
