"""The human reality check: stratified sampling of a run's test intents, renders, answers, report.

One retrieval student is trained once for the module on the tiny curated world plus a few dozen
intents with seeded random teacher answers (so the student is good on some test intents and bad
on others) and some popular intents (3 requests each), re-curated with a larger test split.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipelines import curate, ingest, train
from pipelines import reality_check as rc
from tests.conftest import curated_store, make_record
from workbench.cli import reality_check as rc_cli
from workbench.embeddings import load_encoder
from workbench.errors import WorkbenchError
from workbench.render import CAPTION_HEIGHT, GAP
from workbench.store import Store, runs
from workbench.store.versions import Split, version_rows
from workbench.tools import FILTER_NAMES, parse_answer

ADJECTIVES = ("misty", "neon", "dusty", "bright", "faded", "stormy", "icy", "lush")
NOUNS = ("harbour", "forest", "alley", "desert", "meadow", "rooftop")


def _random_teacher(rng: random.Random) -> dict:
    return {
        "adjust": {key: rng.randint(-60, 60) for key in
                   rng.sample(["temperature", "contrast", "exposure", "saturation", "tint"], 2)},
        "selective_adjust": ({"blue": {"saturation": rng.randint(-50, 50)}}
                             if rng.random() < 0.4 else None),
        "filter": ({"name": rng.choice(FILTER_NAMES), "intensity": rng.randint(10, 90)}
                   if rng.random() < 0.6 else None),
    }


@pytest.fixture(scope="module")
def encoder() -> Any:
    """One sentence encoder for the module: training and every check share it."""
    return load_encoder()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> tuple[Store, str]:
    folder = tmp_path_factory.mktemp("reality")
    store = curated_store(folder)
    rng = random.Random(5)
    names = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]
    records = []
    for i, name in enumerate(rng.sample(names, 30)):
        teacher = _random_teacher(rng)
        for j in range(3 if i < 10 else 1):  # the first ten are popular
            records.append(make_record(request_id=f"x{i}-{j}", intent=name, teacher=teacher,
                                       exports={"adjust": 1, "selective_adjust": 1, "filter": 1}))
    logs = folder / "more.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in records))
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=20, seed=1), store)  # version 2, current
    result = train.run(train.TrainConfig(student="retrieval",
                                         student_config={"runtime": "torch"}), store,
                       encoder=encoder)
    return store, result.run_id


@pytest.fixture(scope="module")
def check(world: tuple[Store, str], encoder: Any) -> rc.CheckResult:
    store, run_id = world
    return rc.create_check(store, run_id, n=15, seed=3, note="module check", encoder=encoder)


@pytest.fixture(scope="module")
def small_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image") / "small.png"
    pixels = Image.new("RGB", (64, 48))
    pixels.putdata([(4 * x, 5 * y, 128) for y in range(48) for x in range(64)])
    pixels.save(path)
    return path


def _fresh_check(store: Store, check_id: int, tmp_path: Path) -> tuple[Store, int]:
    """A copy of the module's store (same check), for tests that write answers."""
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(store.path.read_bytes())
    return Store(copy, lock_timeout=2.0), check_id


# ---------------------------------------------------------------------------- sampling

def test_sample_size_and_test_intents_only(world, check):
    store, run_id = world
    assert (check.run_id, check.version_id, check.n_samples, check.n_test) == (run_id, 2, 15, 20)
    samples = rc.check_samples(store, check.check_id)
    assert [s.sample_no for s in samples] == list(range(1, 16))
    with store.session() as session:
        test = {r["intent_key"] for r in version_rows(session, 2, Split.TEST)}
        trained = {r["intent_key"] for r in version_rows(session, 2, Split.TRAIN)}
    keys = {s.intent_key for s in samples}
    assert len(keys) == 15 and keys <= test and not keys & trained


def test_every_stratum_is_represented(check):
    # The seeded random world spreads the test intents over several strata.
    assert len(check.strata) >= 3
    assert all(counts["sampled"] >= 1 for counts in check.strata.values())
    assert sum(c["sampled"] for c in check.strata.values()) == 15
    assert sum(c["population"] for c in check.strata.values()) == 20


def test_stored_answers_match_a_fresh_prediction(world, check, encoder):
    store, run_id = world
    _, student = runs.load_run(store, run_id, encoder)
    samples = rc.check_samples(store, check.check_id)
    assert student.predict([s.intent_text for s in samples]) == [s.student for s in samples]
    for sample in samples:
        assert sample.stratum == rc.stratum_of(rc.tools_agreeing(sample.teacher, sample.student),
                                               sample.request_count)


def test_same_seed_same_sample_other_seed_other_order(world, check, encoder):
    store, run_id = world
    again = rc.create_check(store, run_id, n=15, seed=3, encoder=encoder)
    other = rc.create_check(store, run_id, n=15, seed=4, encoder=encoder)
    first = [s.intent_key for s in rc.check_samples(store, check.check_id)]
    assert [s.intent_key for s in rc.check_samples(store, again.check_id)] == first
    assert [s.intent_key for s in rc.check_samples(store, other.check_id)] != first
    assert again.strata == check.strata


def test_n_larger_than_the_test_split_takes_it_all(world, encoder):
    store, run_id = world
    result = rc.create_check(store, run_id, n=500, seed=0, encoder=encoder)
    assert result.n_samples == result.n_test == 20


def test_bad_inputs_are_refused(world, encoder):
    store, run_id = world
    with pytest.raises(WorkbenchError, match="at least 1 sample"):
        rc.create_check(store, run_id, n=0)
    with pytest.raises(WorkbenchError, match="neither a sample image"):
        rc.create_check(store, run_id, image="no_such_picture")
    with pytest.raises(WorkbenchError, match="no training run"):
        rc.create_check(store, "zzz-no-run")
    # Version 1's test intents are in version 2's training split: that would leak.
    with pytest.raises(WorkbenchError, match="training split holds"):
        rc.create_check(store, run_id, version=1, encoder=encoder)


def test_allocation_is_proportional_with_one_per_stratum():
    sizes = {"a": 10, "b": 5, "c": 1, "d": 0}
    # One each, then 12 - 3 = 9 more over remaining sizes 9, 4, 0 (of 13): quotas 6.23, 2.77, 0
    # -> 6 and 2, the last seat to b (remainder .77 > .23).
    assert rc.allocate(sizes, 12) == {"a": 7, "b": 4, "c": 1}
    assert rc.allocate(sizes, 3) == {"a": 1, "b": 1, "c": 1}
    assert rc.allocate(sizes, 2) == {"a": 1, "b": 1, "c": 0}  # the largest strata first
    assert rc.allocate(sizes, 99) == {"a": 10, "b": 5, "c": 1}
    for n in range(1, 17):
        counts = rc.allocate(sizes, n)
        assert sum(counts.values()) == n and all(counts[k] <= sizes[k] for k in counts)


def test_tools_agreeing_and_strata():
    teacher = parse_answer({"adjust": {"temperature": 40},
                            "filter": {"name": "warm_Golden", "intensity": 50}})
    same_look = parse_answer({"adjust": {"temperature": 38, "tint": 5},
                              "filter": {"name": "warm_Golden", "intensity": 10}})
    wrong_filter = parse_answer({"adjust": {"temperature": 40},
                                 "filter": {"name": "cool_Arctic", "intensity": 50}})
    opposite = parse_answer({"adjust": {"temperature": -40},
                             "selective_adjust": {"red": {"saturation": 10}}})
    assert rc.tools_agreeing(teacher, same_look) == 3   # cosine 0.99, same filter name
    assert rc.tools_agreeing(teacher, wrong_filter) == 2
    assert rc.tools_agreeing(teacher, opposite) == 0
    assert rc.stratum_of(3, 3) == "good/popular"
    assert rc.stratum_of(2, 2) == "middling/rare"
    assert rc.stratum_of(1, 5) == rc.stratum_of(0, 5) == "bad/popular"


# ---------------------------------------------------------------------------- renders

def test_render_writes_one_strip_per_sample_and_a_sheet(world, check, small_image, tmp_path):
    store, _ = world
    paths = rc.render_check(store, check.check_id, tmp_path / "renders", image=small_image,
                            height=96)
    samples = rc.check_samples(store, check.check_id)
    assert [p.name for p in paths[:-1]] == [rc.sample_file(s) for s in samples]
    assert paths[-1].name == "sheet.png" and paths[0].name.startswith("01-")
    panel = round(64 * 96 / 48)  # each panel scaled to the strip's height: 128 wide
    for path in paths[:-1]:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (3 * panel + 2 * GAP, 96 + CAPTION_HEIGHT)
    with Image.open(paths[-1]) as sheet:
        row = 96 * 5 // 8 + CAPTION_HEIGHT
        assert sheet.format == "PNG" and sheet.size[1] == 15 * (row + GAP) - GAP
    listed = {c["check_id"]: c for c in rc.list_checks(store)}
    assert listed[check.check_id]["render_dir"] == str((tmp_path / "renders").resolve())


def test_slug():
    assert rc.slug("  Golden hour!! (warm) ") == "golden-hour-warm"
    assert rc.slug("???") == "intent"
    assert len(rc.slug("a" * 100)) == 40


# ---------------------------------------------------------------------------- answers

def test_answers_are_validated_and_upserted(world, check, tmp_path):
    store, check_id = _fresh_check(world[0], check.check_id, tmp_path)
    with pytest.raises(WorkbenchError, match=r"sample\(s\) 16, 99 are not in reality check"):
        rc.record_answers(store, check_id, "ann", [(1, True, True), (16, True, False),
                                                   (99, False, False)])
    with pytest.raises(WorkbenchError, match="annotator name is required"):
        rc.record_answers(store, check_id, "  ", [(1, True, True)])
    with pytest.raises(WorkbenchError, match="answered twice"):
        rc.record_answers(store, check_id, "ann", [(1, True, True), (1, False, True)])
    with pytest.raises(WorkbenchError, match="no reality check 999"):
        rc.record_answers(store, 999, "ann", [(1, True, True)])
    assert rc.report(store, check_id).questions["relevant"].n_answers == 0  # nothing half-saved

    assert rc.record_answers(store, check_id, " ann ", [(1, True, True), (2, False, True)]) == 2
    assert rc.record_answers(store, check_id, "ann", [(1, False, False)]) == 1  # replaces
    rows = store.query("SELECT sample_no, annotator, relevant, mimics FROM reality_answers "
                       "ORDER BY sample_no")
    assert rows == [{"sample_no": 1, "annotator": "ann", "relevant": False, "mimics": False},
                    {"sample_no": 2, "annotator": "ann", "relevant": False, "mimics": True}]


def test_read_answers_file(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("Sample, Relevant ,mimics,comment\n1,Y,no,fine\n2,1,FALSE,\n\n3,true,n,\n")
    assert rc.read_answers_file(good) == [(1, True, False), (2, True, False), (3, True, False)]

    bad = tmp_path / "b.csv"
    bad.write_text("sample,relevant,mimics\n1,y,y\n2,maybe,y\nx,y,n\n1,n,n\n")
    with pytest.raises(WorkbenchError) as error:
        rc.read_answers_file(bad)
    message = str(error.value)
    assert "3 bad line(s)" in message
    assert "line 3: relevant must be y/n/yes/no/1/0/true/false, got 'maybe'" in message
    assert "line 4: sample must be a positive whole number, got 'x'" in message
    assert "line 5: sample 1 was already answered on line 2" in message

    header = tmp_path / "c.csv"
    header.write_text("sample,relevant,mimic\n1,y,y\n")
    with pytest.raises(WorkbenchError, match="missing mimics"):
        rc.read_answers_file(header)
    with pytest.raises(WorkbenchError, match="no answers file"):
        rc.read_answers_file(tmp_path / "none.csv")


def test_interactive_annotation_with_skip_and_quit(world, check, tmp_path):
    store, check_id = _fresh_check(world[0], check.check_id, tmp_path)
    # Sample 1: y, n. Sample 2: skipped at the first question. Sample 3: "maybe" is asked again,
    # then n, y. Sample 4: y, then quit before the second answer (nothing saved for it).
    replies = iter(["y", "n", "s", "maybe", "N", "yes", "y", "q"])
    prompts: list[str] = []
    shown: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    result = rc_cli.annotate_interactively(store, check_id, "bo", ask, shown.append,
                                           images_dir=tmp_path)
    assert result == rc_cli.AnnotateResult(answered=2, skipped=1, quit=True, remaining=13)
    assert prompts[0] == "Is the student's image relevant to the intent? [y/n/s/q] "
    assert any("Please answer y or n" in text for text in shown)
    first = rc.check_samples(store, check_id)[0]
    assert any(str(tmp_path / rc.sample_file(first)) in text and "teacher: adjust:" in text
               for text in shown)
    rows = store.query("SELECT sample_no, relevant, mimics FROM reality_answers "
                       "ORDER BY sample_no")
    assert [(r["sample_no"], r["relevant"], r["mimics"]) for r in rows] == [
        (1, True, False), (3, False, True)]

    # The next session starts at the skipped sample 2 and ends when the input does.
    def eof(prompt: str) -> str:
        raise EOFError

    again = rc_cli.annotate_interactively(store, check_id, "bo", eof, shown.append)
    assert again == rc_cli.AnnotateResult(answered=0, skipped=0, quit=True, remaining=13)
    assert "Sample 2 of 15" in shown[-2]


# ---------------------------------------------------------------------------- report

def test_report_majority_ties_and_agreement(world, check, tmp_path):
    store, check_id = _fresh_check(world[0], check.check_id, tmp_path)
    # Samples 1-4 as in the hand-worked example above for 'relevant'; 'mimics' all yes.
    # Sample 5 has two annotators who disagree: a tie, which counts as no.
    relevant = {"ann": [True, False, True, False], "bo": [True, False, True, True],
                "cy": [True, False, False, False]}
    for name, values in relevant.items():
        rc.record_answers(store, check_id, name, [(i + 1, value, True)
                                                  for i, value in enumerate(values)])
    rc.record_answers(store, check_id, "ann", [(5, True, True)])
    rc.record_answers(store, check_id, "bo", [(5, False, True)])

    result = rc.report(store, check_id)
    assert (result.n_samples, result.n_annotators, result.annotators_per_sample) == (15, 3, (2, 3))
    relevance = result.questions["relevant"]
    assert (relevance.yes_by_majority, relevance.judged, relevance.n_answers) == (2, 5, 14)
    assert relevance.yes_share == pytest.approx(7 / 14)
    # Sample 5 adds one pair that disagrees: P-bar = (2/3 * 4 + 0) / 5 = 8/15; yes share over
    # rated answers 7/14 = 1/2, P_e = 1/2, kappa = (8/15 - 1/2) / (1/2) = 1/15.
    assert relevance.agreement.percent == pytest.approx(8 / 15)
    assert relevance.agreement.kappa == pytest.approx(1 / 15)
    mimics = result.questions["mimics"]
    assert (mimics.yes_by_majority, mimics.agreement.kappa) == (5, None)
    assert [(r.sample_no, r.n_annotators, r.relevant_yes) for r in result.samples[:6]] == [
        (1, 3, 3), (2, 3, 0), (3, 3, 2), (4, 3, 1), (5, 2, 1), (6, 0, 0)]

    text = rc_cli.format_report(result)
    assert "Relevant: 2 / 5 (majority of 2-3 annotators; a tie counts as no)" in text
    assert "Mimics teacher: 5 / 5" in text
    assert "Fleiss' kappa 0.067" in text and "Fleiss' kappa undefined (every answer" in text
    assert "10 of 15 samples have no answer yet" in text
    assert json.loads(json.dumps(result.to_dict()))["questions"]["relevant"]["judged"] == 5


def test_report_with_one_annotator_says_kappa_is_undefined(world, check, tmp_path):
    store, check_id = _fresh_check(world[0], check.check_id, tmp_path)
    assert "No answers yet" in rc_cli.format_report(rc.report(store, check_id))
    rc.record_answers(store, check_id, "solo",
                      [(i, i <= 13, i <= 11) for i in range(1, 16)])
    result = rc.report(store, check_id)
    text = rc_cli.format_report(result)
    assert "Relevant: 13 / 15 (majority of 1 annotator; a tie counts as no)" in text
    assert "Mimics teacher: 11 / 15" in text
    for question in result.questions.values():
        assert question.agreement.kappa is None
        assert "at least 2 annotators" in question.agreement.note
    listed = {c["check_id"]: c for c in rc.list_checks(store)}[check_id]
    assert (listed["n_annotators"], listed["n_answers"], listed["n_judged"]) == (1, 15, 15)
    assert listed["note"] == "module check" and sum(
        s["sampled"] for s in listed["strata"].values()) == 15
