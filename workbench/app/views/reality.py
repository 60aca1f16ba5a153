"""Reality check (the poster's human evaluation): do people see what the metrics say?

Create a check (a stratified sample of a run's test intents, `pipelines.reality_check`), annotate
its samples one at a time (the original / teacher / student render and the poster's two
questions, answered with buttons or the keys Y and N; S skips a sample), and read the report (the
same numbers as `workbench reality-check report`). Answers are saved with
`reality_check.record_answers`, as the terminal annotator saves them, sample by sample as soon
as both questions are answered; answering a sample again replaces the earlier answer.

Session state (keys local to this page): CHECK_KEY, the check shown; ANNOTATOR_KEY, the
annotator's name (default: the curator's name, else $USER); _FIRST, the first question's answer
while the second is asked; _SKIPPED, the samples skipped in this session; _AGAIN, a sample chosen
to answer again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pipelines import reality_check as rc
from workbench.app import editor, state
from workbench.app.state import escape_markdown
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.render import SAMPLE_IMAGES
from workbench.report import TOOL_TITLES
from workbench.store import Store
from workbench.store.reality import CheckSample
from workbench.store.runs import recent_runs
from workbench.tools import TOOLS

CHECK_KEY = "reality_check"          # int: the check shown
ANNOTATOR_KEY = "reality_annotator"  # str: who answers
STRIP_HEIGHT = 320                   # px: each panel of a sample's render
DEFAULTS = rc.CheckConfig()
SHORTCUTS = {"yes": "Y", "no": "N", "skip": "S"}

_FIRST = "reality_first"          # (check id, annotator, sample no, answer to the first question)
_SKIPPED = "reality_skipped"      # {(check id, annotator): sample numbers skipped this session}
_AGAIN = "reality_again"          # (check id, annotator, sample no) to answer again
_FLASH = "reality_flash"          # (kind, message) for the next run
_CLEAR_NOTE = "reality_clear_note"  # the note field starts empty after a check was created


def render() -> None:
    st.title("Reality check")
    current = state.require_database()
    st.caption("The poster's human evaluation: a stratified sample of a run's test intents, "
               "each shown as original / teacher / student; annotators answer two questions "
               "per sample, and the report counts the samples a majority said yes to, with "
               "the annotators' agreement. The same checks as `workbench reality-check`.")
    try:
        with current.session() as session:
            runs = recent_runs(session)
        checks = rc.list_checks(current)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
    flash = st.session_state.pop(_FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])

    with st.expander("Create a check", expanded=not checks):
        _create(runs)
    if not checks:
        st.info("No reality check yet: create one above (or with `workbench reality-check "
                "create --run RUN`).")
        return
    by_id = {check["check_id"]: check for check in reversed(checks)}     # newest first
    if st.session_state.get(CHECK_KEY) not in by_id:
        st.session_state[CHECK_KEY] = next(iter(by_id))
    check_id = st.selectbox("Reality check (newest first)", list(by_id), key=CHECK_KEY,
                            format_func=lambda i: _check_label(by_id[i]))
    chosen = by_id[check_id]
    st.caption(escape_markdown(
        f"Seed {chosen['seed']}, image {chosen['image']}"
        + (f", note: {chosen['note']}" if chosen["note"] else "")
        + f". {chosen['n_annotators']} annotator(s), {chosen['n_answers']} answers. Images "
        + (f"in {chosen['render_dir']}" if chosen["render_dir"] else "not rendered yet"))
        + f" (`workbench reality-check render {check_id}`).")
    annotate, report = st.tabs(["Annotate", "Report"])
    with annotate:
        _annotate(current, by_id[check_id])
    with report:
        _report(current, check_id)


def _check_label(check: dict[str, Any]) -> str:
    """What never changes about a check (its answer counts go in a caption: a selectbox keeps
    the option labels it was first drawn with)."""
    return (f"Check {check['check_id']} · run {check['run_id']} · version {check['version_id']}"
            f" · {check['n_samples']} samples · {check['created_at'][:16].replace('T', ' ')}")


# ---------------------------------------------------------------------------- creating a check

def _create(runs: list[dict[str, Any]]) -> None:
    if not runs:
        st.info("No training run yet: train a student on the Runs page (or with `workbench "
                "train`), then draw a check of its test intents here.")
        return
    by_id = {run["run_id"]: run for run in runs}
    if st.session_state.pop(_CLEAR_NOTE, False):
        st.session_state["reality_note"] = ""
    with st.form("reality_create_form", enter_to_submit=False, border=False):
        st.selectbox("Run (newest first)", list(by_id), key="reality_run",
                     format_func=lambda r: state.run_label(by_id[r]))
        columns = st.columns(4)
        columns[0].number_input("Samples", min_value=1, max_value=500, value=DEFAULTS.n,
                                step=1, key="reality_n", help="15 in the poster")
        columns[1].selectbox("Image", SAMPLE_IMAGES, key="reality_image",
                             help="the photo every sample is rendered on")
        columns[2].number_input("Seed", min_value=0, value=DEFAULTS.seed, step=1,
                                key="reality_seed", help="same run, n and seed: same sample")
        columns[3].text_input("Note", key="reality_note")
        create = st.form_submit_button("Create the check", type="primary",
                                       key="reality_create")
    if create:
        _create_check()
    st.caption("The run predicts its whole test split again (the page waits: seconds for the "
               "heads and retrieval students, longer for the seq2seq ones), then the sample is "
               "drawn by quality × popularity and rendered beside the database, as "
               "`workbench reality-check create` does.")


def _create_check() -> None:
    """Draw and store the check, render its PNGs beside the database (as the CLI does), and
    show it."""
    store = state.store()
    try:
        with st.spinner("Predicting the test split and drawing the sample…"):
            result = rc.create_check(
                store, st.session_state.get("reality_run"),
                n=int(st.session_state.get("reality_n", DEFAULTS.n)),
                seed=int(st.session_state.get("reality_seed", DEFAULTS.seed)),
                image=str(st.session_state.get("reality_image", DEFAULTS.image)),
                note=str(st.session_state.get("reality_note", "")).strip())
            paths = rc.render_check(store, result.check_id,
                                    rc.default_render_dir(store, result.check_id))
    except StoreBusyError as error:
        st.warning(state.busy_message(error) + " No check was created: try again in a moment.")
        return
    except WorkbenchError as error:
        st.error("No check was created: " + escape_markdown(str(error)))
        return
    st.session_state[CHECK_KEY] = result.check_id
    st.session_state[_CLEAR_NOTE] = True
    strata = ", ".join(f"{name} {counts['sampled']}/{counts['population']}"
                       for name, counts in result.strata.items())
    st.session_state[_FLASH] = ("success", escape_markdown(
        f"Created reality check {result.check_id}: {result.n_samples} of the "
        f"{result.n_test} test intents of run {result.run_id} (version {result.version_id}); "
        f"sampled per stratum: {strata}. Images in {paths[-1].parent}."))
    st.rerun()


# ---------------------------------------------------------------------------- annotating

def _annotate(current: Store, check: dict[str, Any]) -> None:
    check_id = check["check_id"]
    if not str(st.session_state.get(ANNOTATOR_KEY) or "").strip():
        st.session_state[ANNOTATOR_KEY] = editor.curator_name()
    annotator = st.text_input("Annotator", key=ANNOTATOR_KEY,
                              help="your name: answers are kept per annotator")
    try:
        queue = rc.annotation_queue(current, check_id, annotator)
        samples = {s.sample_no: s for s in rc.check_samples(current, check_id)}
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    name = queue.annotator
    answered = queue.n_samples - len(queue.pending)
    st.progress(answered / queue.n_samples if queue.n_samples else 0.0,
                text=f"{name}: {answered} of {queue.n_samples} samples answered")
    sample = _current_sample(check_id, name, queue, samples)
    if sample is None:
        return
    _show_sample(check, sample)
    _questions(check_id, name, sample, queue.n_samples)


def _current_sample(check_id: int, name: str, queue: rc.AnnotationQueue,
                    samples: dict[int, CheckSample]) -> CheckSample | None:
    """The sample to answer now: one chosen to answer again, else the first one this annotator
    has not answered and has not skipped in this session. None (with what to do) when there is
    none."""
    again = st.session_state.get(_AGAIN)
    if again is not None and again[:2] == (check_id, name) and again[2] in samples:
        return samples[again[2]]
    skipped = st.session_state.get(_SKIPPED, {}).get((check_id, name), set())
    left = [s for s in queue.pending if s.sample_no not in skipped]
    if left:
        return left[0]
    if queue.pending:
        st.info(f"You skipped the {len(queue.pending)} sample(s) still unanswered.")
        st.button("Go through the skipped samples again", key="reality_unskip",
                  on_click=_unskip, args=(check_id, name))
    else:
        st.success(f"{escape_markdown(name)} has answered all {queue.n_samples} samples of "
                   f"check {check_id}. The **Report** tab has the counts.")
    _answer_again_picker(check_id, name, samples)
    return None


def _answer_again_picker(check_id: int, name: str, samples: dict[int, CheckSample]) -> None:
    left, _ = st.columns([2, 3])
    left.selectbox("Answer a sample again", list(samples), index=None, key="reality_again_pick",
                   format_func=lambda n: f"{n}. {samples[n].intent_text}",
                   placeholder="choose a sample", on_change=_answer_again,
                   args=(check_id, name))


def _answer_again(check_id: int, name: str) -> None:
    number = st.session_state.get("reality_again_pick")
    if number is not None:
        st.session_state[_AGAIN] = (check_id, name, int(number))
        st.session_state.pop(_FIRST, None)
    st.session_state["reality_again_pick"] = None


def _unskip(check_id: int, name: str) -> None:
    st.session_state.get(_SKIPPED, {}).pop((check_id, name), None)


def _show_sample(check: dict[str, Any], sample: CheckSample) -> None:
    st.markdown(f"#### Sample {sample.sample_no} of {check['n_samples']}")
    st.text(f"Intent: {sample.intent_text}")
    try:
        strip = _strip(check["image"], sample.sample_no, sample.intent_text,
                       _jsons(sample.teacher), _jsons(sample.student))
    except WorkbenchError as error:
        st.error(f"Could not render the sample: {escape_markdown(str(error))}")
    else:
        st.image(strip, caption="original · teacher · student", output_format="JPEG")
    st.dataframe(pd.DataFrame([{
        "tool": TOOL_TITLES[tool],
        "teacher": describe_output(tool, sample.teacher.tool_json(tool)),
        "student": describe_output(tool, sample.student.tool_json(tool))} for tool in TOOLS]),
        hide_index=True, key="reality_answers_table", row_height=68, column_config={
            "tool": st.column_config.TextColumn(width="small"),
            "teacher": st.column_config.TextColumn(width="large"),
            "student": st.column_config.TextColumn(width="large")})


def _questions(check_id: int, name: str, sample: CheckSample, total: int) -> None:
    """The poster's two questions in turn, as the terminal annotator asks them: Yes (Y) or No
    (N) to the first, then to the second, which saves the sample's answer; Skip (S) leaves it
    unanswered."""
    first = st.session_state.get(_FIRST)
    if first is not None and first[:3] != (check_id, name, sample.sample_no):
        st.session_state.pop(_FIRST, None)
        first = None
    question = rc.Question.RELEVANT if first is None else rc.Question.MIMICS
    if first is not None:
        st.caption(f"{rc.Question.RELEVANT.text} **{'yes' if first[3] else 'no'}**")
    with st.container(border=True, key="reality_question_box"):
        st.markdown(f"**{question.text}**")
        columns = st.columns([1, 1, 1, 3])
        columns[0].button("Yes", type="primary", key="reality_yes", shortcut=SHORTCUTS["yes"],
                          on_click=_answer, args=(check_id, name, sample.sample_no, True))
        columns[1].button("No", key="reality_no", shortcut=SHORTCUTS["no"], on_click=_answer,
                          args=(check_id, name, sample.sample_no, False))
        columns[2].button("Skip", key="reality_skip", shortcut=SHORTCUTS["skip"],
                          on_click=_skip, args=(check_id, name, sample.sample_no),
                          help="leave this sample unanswered for now")
        columns[3].caption("Keys: Y yes, N no, S skip. The answer is saved once both "
                           f"questions are answered (sample {sample.sample_no} of {total}).")


def _answer(check_id: int, name: str, sample_no: int, yes: bool) -> None:
    """Callback of Yes / No: keep the first answer, or save both with the second."""
    first = st.session_state.get(_FIRST)
    if first is None or first[:3] != (check_id, name, sample_no):
        st.session_state[_FIRST] = (check_id, name, sample_no, yes)
        return
    try:
        rc.record_answers(state.store(), check_id, name, [(sample_no, bool(first[3]), yes)])
    except StoreBusyError as error:
        st.session_state[_FLASH] = ("warning", state.busy_message(error) + " The answer was "
                                    "not saved: answer the second question again.")
        return
    except WorkbenchError as error:
        st.session_state[_FLASH] = ("error", "Not saved: " + escape_markdown(str(error)))
        return
    st.session_state.pop(_FIRST, None)
    st.session_state.pop(_AGAIN, None)
    st.session_state[_FLASH] = ("success", (f"Saved sample {sample_no}: relevant "
                                            f"{'yes' if first[3] else 'no'}, mimics "
                                            f"{'yes' if yes else 'no'}."))


def _skip(check_id: int, name: str, sample_no: int) -> None:
    skipped = st.session_state.setdefault(_SKIPPED, {})
    skipped.setdefault((check_id, name), set()).add(sample_no)
    st.session_state.pop(_FIRST, None)
    st.session_state.pop(_AGAIN, None)


Jsons = tuple[str | None, str | None, str | None]


def _jsons(answer: Any) -> Jsons:
    return answer.tool_json("adjust"), answer.tool_json("selective_adjust"), \
        answer.tool_json("filter")


@st.cache_data(max_entries=64, show_spinner="Rendering…")
def _strip(image: str, sample_no: int, intent_text: str, teacher: Jsons,
           student: Jsons) -> bytes:
    """JPEG of one sample's original / teacher / student strip, as the CLI renders it (cached
    per image and answers)."""
    from workbench.editing import encode_jpeg
    from workbench.tools import answer_from_json

    sample = CheckSample(sample_no, "", intent_text, 0, "", 0, answer_from_json(*teacher),
                         answer_from_json(*student))
    return encode_jpeg(rc.sample_strip(image, sample, height=STRIP_HEIGHT))


# ---------------------------------------------------------------------------- the report

def _report(current: Store, check_id: int) -> None:
    try:
        found = rc.report(current, check_id)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    names = ", ".join(found.annotators)
    st.markdown(escape_markdown(
        f"Reality check {found.check_id}: run {found.run_id}, dataset version "
        f"{found.version_id}, {found.n_samples} samples, image {found.image}. Annotators: "
        f"{found.n_annotators}" + (f" ({names})" if names else "") + "."))
    first = next(iter(found.questions.values()))
    if first.judged == 0:
        st.info("No answers yet: annotate in the **Annotate** tab (or with `workbench "
                f"reality-check annotate {check_id}`).")
        return
    fewest, most = found.annotators_per_sample
    raters = f"{fewest}" if fewest == most else f"{fewest}–{most}"
    columns = st.columns(len(rc.Question))
    for column, question in zip(columns, rc.Question, strict=True):
        summary = found.questions[question.value]
        agreed = summary.agreement
        column.metric(question.label, f"{summary.yes_by_majority} / {summary.judged}",
                      help=f"{question.text} Samples a majority of their {raters} "
                           "annotator(s) said yes to (a tie counts as no), of the samples "
                           "answered.")
        column.caption(escape_markdown(
            f"{_percent(summary.yes_share)} of {summary.n_answers} answers were yes. "
            f"Agreement: pairwise {_percent(agreed.percent)} over {agreed.n_items} samples; "
            + (f"Fleiss' kappa {agreed.kappa:.3f}" if agreed.kappa is not None
               else f"Fleiss' kappa undefined ({agreed.note})") + "."))
    unjudged = found.n_samples - first.judged
    if unjudged:
        st.caption(f"{unjudged} of {found.n_samples} samples have no answer yet and are left "
                   "out.")
    st.dataframe(pd.DataFrame([{
        "sample": row.sample_no, "stratum": row.stratum, "annotators": row.n_annotators,
        "relevant (yes)": row.relevant_yes, "mimics (yes)": row.mimics_yes,
        "intent": row.intent_text} for row in found.samples]),
        hide_index=True, key="reality_report_table",
        column_config={"intent": st.column_config.TextColumn(width="large")})


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
