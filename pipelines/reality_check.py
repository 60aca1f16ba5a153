"""The human reality check (the poster's "Reality check"): do people see what the metrics say?

A check draws a small stratified sample (15 by default, as in the paper) of a run's test intents,
stores the teacher's ground truth and the student's answer for each, renders them for annotators
(original / teacher / student), and records every annotator's two yes/no answers:
- relevant: is the student's image relevant to the intent?
- mimics:   does the student's image correctly mimic the teacher's?
The report gives, per question, how many samples a majority said yes to (a tie counts as no),
the share of yes answers, and how well the annotators agree (pairwise agreement, Fleiss' kappa;
the statistics are `workbench.agreement`'s). The terminal annotator and the report's text are
the CLI's (`workbench/cli/reality_check.py`); this module samples, renders, parses answers and
stores them.

Stratification. Every test intent of the run's dataset version is predicted afresh by the run's
student and put in one of six strata: quality x popularity. Quality counts the tools on which
the student agrees with the teacher: a tool agrees when both leave it unused, or both use it and
(filter) the names match or (adjust, selective_adjust) the cosine of the two vectors is at least
0.8. All three agree: 'good'; two: 'middling'; one or none: 'bad'. Popularity: 'popular' when
the intent had at least 3 requests in the raw logs (the r_3 subset), else 'rare'. Every
non-empty stratum gets one sample and the remaining ones are shared in proportion to the strata's
remaining sizes (largest remainder, ties to the earlier stratum in the order bad, middling, good
and popular before rare); when fewer samples are asked for than there are non-empty strata, the
largest strata get one each. Within a stratum, intents are drawn with a seeded generator from the
list sorted by intent; the drawn samples are then shuffled (same generator) and numbered 1..n,
so annotators cannot tell the strata apart by position. Same run, version, n and seed: same check.

The store is never held open during slow work: prediction and rendering run with the file
closed, and each write is one short transaction.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

from workbench.agreement import Agreement, agreement, category_share, majority_count
from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError, listing
from workbench.metrics import VECTOR_TOOLS, score_intent
from workbench.store import Session, Store, reality, runs
from workbench.store.reality import CheckSample
from workbench.store.versions import (
    Split,
    count_test_intents_trained_on,
    resolve_version,
    version_rows,
)
from workbench.tools import Answer, answer_from_json

QUALITY_LEVELS: tuple[str, ...] = ("bad", "middling", "good")   # 0-1, 2, 3 tools agree
POPULARITY_LEVELS: tuple[str, ...] = ("popular", "rare")
STRATA: tuple[str, ...] = tuple(f"{q}/{p}" for q in QUALITY_LEVELS for p in POPULARITY_LEVELS)
YES_WORDS = frozenset({"y", "yes", "1", "true"})
NO_WORDS = frozenset({"n", "no", "0", "false"})
SHEET_FILE = "sheet.png"


class RealityCheckError(WorkbenchError):
    """A reality check, its answers or an answers file that cannot be used as given."""


class Question(str, Enum):
    RELEVANT = "relevant"
    MIMICS = "mimics"

    @property
    def text(self) -> str:
        return {"relevant": "Is the student's image relevant to the intent?",
                "mimics": "Does the student's image correctly mimic the teacher's?"}[self.value]

    @property
    def label(self) -> str:
        return {"relevant": "Relevant", "mimics": "Mimics teacher"}[self.value]


# ---------------------------------------------------------------------------- creating a check

@dataclass(frozen=True)
class CheckConfig:
    run_id: str | None = None          # None: the latest run
    n: int = 15                        # samples to draw (the paper: 15)
    seed: int = 0
    image: str = "astronaut"           # a sample image name (workbench.render.SAMPLE_IMAGES) or path
    version: int | None = None         # None: the version the run was trained on
    note: str = ""
    agree_cosine: float = 0.8          # a vector tool "agrees" at or above this cosine
    popular_requests: int = 3          # "popular" from this many requests on (r_3)


@dataclass(frozen=True)
class CheckResult:
    check_id: int
    run_id: str
    version_id: int
    n_samples: int
    n_test: int                        # test intents the sample was drawn from
    seed: int
    image: str
    strata: dict[str, dict[str, int]]  # {stratum: {"population": n, "sampled": n}}, non-empty only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One test intent with the student's fresh answer and its stratum."""

    intent_key: str
    intent_text: str
    request_count: int
    teacher: Answer
    student: Answer
    tools_agreeing: int
    stratum: str


def tools_agreeing(teacher: Answer, student: Answer, agree_cosine: float = 0.8) -> int:
    """How many of the three tools the student gets right (see the module docstring)."""
    agreeing = 0
    for score in score_intent("", teacher, student):
        if score.outcome == "TN":
            agreeing += 1
        elif score.outcome == "TP" and score.similarity is not None:
            threshold = agree_cosine if score.tool in VECTOR_TOOLS else 1.0
            agreeing += score.similarity >= threshold
    return agreeing


def stratum_of(agreeing: int, request_count: int, popular_requests: int = 3) -> str:
    quality = QUALITY_LEVELS[max(0, agreeing - 1)]  # 0 and 1 -> bad, 2 -> middling, 3 -> good
    popularity = "popular" if request_count >= popular_requests else "rare"
    return f"{quality}/{popularity}"


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Samples per stratum: one per non-empty stratum, the rest in proportion to the strata's
    remaining sizes by largest remainder (ties to the stratum listed first in `sizes`). With
    fewer samples than non-empty strata, the largest strata get one each."""
    order = [name for name, size in sizes.items() if size > 0]
    total = sum(sizes[name] for name in order)
    if n >= total:
        return {name: sizes[name] for name in order}
    if n < len(order):
        largest = sorted(order, key=lambda name: -sizes[name])[:n]  # stable: ties keep order
        return {name: int(name in largest) for name in order}
    rest = n - len(order)
    spare = total - len(order)
    # Each quota is at most size - 1, and only strata with a positive remainder get a seat, so
    # no stratum is given more samples than it has.
    quotas = {name: rest * (sizes[name] - 1) / spare for name in order}
    counts = {name: 1 + int(quotas[name]) for name in order}
    seats = n - sum(counts.values())
    by_remainder = sorted(order, key=lambda name: -(quotas[name] - int(quotas[name])))
    for name in by_remainder[:seats]:
        counts[name] += 1
    return counts


def draw(candidates: Sequence[Candidate], n: int, seed: int) -> list[Candidate]:
    """The stratified, seeded sample, shuffled into the order it is numbered and shown in."""
    if n < 1:
        raise RealityCheckError(f"a reality check needs at least 1 sample, got n={n}")
    by_stratum: dict[str, list[Candidate]] = {name: [] for name in STRATA}
    for candidate in sorted(candidates, key=lambda c: c.intent_key):
        by_stratum[candidate.stratum].append(candidate)
    counts = allocate({name: len(members) for name, members in by_stratum.items()}, n)
    rng = random.Random(seed)
    chosen = [member for name, count in counts.items()
              for member in rng.sample(by_stratum[name], count)]
    rng.shuffle(chosen)
    return chosen


def run(config: CheckConfig, store: Store, encoder: Encoder | None = None) -> CheckResult:
    """Predict the run's test split (store closed), stratify, draw and store a check."""
    if config.n < 1:
        raise RealityCheckError(f"a reality check needs at least 1 sample, got n={config.n}")
    image = _image_source(config.image)
    run_row, student = runs.load_run(store, config.run_id, encoder)
    with store.session() as session:
        version_id = resolve_version(session, config.version if config.version is not None
                                     else run_row["version_id"])
        rows = version_rows(session, version_id, Split.TEST)
        leaked = count_test_intents_trained_on(session, version_id, run_row["version_id"])
    if not rows:
        raise RealityCheckError(f"dataset version {version_id} has no test intents to sample")
    if leaked:
        raise RealityCheckError(
            f"run {run_row['run_id']} was trained on version {run_row['version_id']}, whose "
            f"training split holds {leaked} of the test intents of version {version_id}; pick "
            "the version the run was trained on (leave --version out)")
    predictions = student.predict([row["intent_text"] for row in rows])
    candidates = []
    for row, prediction in zip(rows, predictions, strict=True):
        teacher = answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])
        agreeing = tools_agreeing(teacher, prediction, config.agree_cosine)
        candidates.append(Candidate(
            row["intent_key"], row["intent_text"], row["request_count"], teacher, prediction,
            agreeing, stratum_of(agreeing, row["request_count"], config.popular_requests)))
    chosen = draw(candidates, config.n, config.seed)
    strata = {name: {"population": sum(c.stratum == name for c in candidates),
                     "sampled": sum(c.stratum == name for c in chosen)}
              for name in STRATA if any(c.stratum == name for c in candidates)}
    stored_config = {**asdict(config), "run_id": run_row["run_id"], "version": version_id,
                     "image": image}
    samples = [CheckSample(number, c.intent_key, c.intent_text, c.request_count, c.stratum,
                           c.tools_agreeing, c.teacher, c.student)
               for number, c in enumerate(chosen, start=1)]
    with store.atomic() as session:
        check_id = reality.record_check(
            session, created_at=datetime.now(UTC), run_id=run_row["run_id"],
            version_id=version_id, seed=config.seed, image=image, note=config.note,
            config=stored_config, strata=strata, samples=samples)
    return CheckResult(check_id, run_row["run_id"], version_id, len(chosen), len(candidates),
                       config.seed, image, strata)


def create_check(store: Store, run_id: str | None, n: int = 15, seed: int = 0,
                 image: str = "astronaut", version: int | None = None, note: str = "",
                 *, encoder: Encoder | None = None) -> CheckResult:
    """Draw and store a reality check of a run (None: the latest run); see the module docstring."""
    return run(CheckConfig(run_id=run_id, n=n, seed=seed, image=str(image), version=version,
                           note=note), store, encoder)


def _image_source(image: str | Path) -> str:
    """A sample image name as it is, a file as its absolute path; anything else is an error."""
    from workbench.render import SAMPLE_IMAGES

    if isinstance(image, str) and image in SAMPLE_IMAGES:
        return image
    path = Path(image).expanduser()
    if not path.is_file():
        raise RealityCheckError(f"image {str(image)!r} is neither a sample image "
                                f"({', '.join(SAMPLE_IMAGES)}) nor an existing file")
    return str(path.resolve())


# ---------------------------------------------------------------------------- reading a check

def _check_row(session: Session, check_id: int) -> dict:
    row = reality.check_row(session, check_id)
    if row is None:
        raise RealityCheckError(f"there is no reality check {check_id}; list them with "
                                "`workbench reality-check list`")
    return row


def check_samples(store: Store, check_id: int) -> list[CheckSample]:
    """A check's samples in their numbered order (for the app and the renderer)."""
    with store.session() as session:
        _check_row(session, check_id)
        return reality.check_samples(session, check_id)


def list_checks(store: Store) -> list[dict]:
    """Every check with its answer counts, oldest first (JSON-ready values)."""
    with store.session() as session:
        return reality.list_checks(session)


# ---------------------------------------------------------------------------- rendering

def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe short form of an intent: 'Golden hour!' -> 'golden-hour'."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return value or "intent"


def sample_file(sample: CheckSample) -> str:
    return f"{sample.sample_no:02d}-{slug(sample.intent_text)}.png"


def default_render_dir(store: Store, check_id: int) -> Path:
    """Where the CLI renders a check unless told otherwise: beside the database."""
    return store.path.parent / "reality_checks" / str(check_id)


def sample_panels(original: Any, sample: CheckSample) -> list[tuple[str, Any]]:
    """The captioned original / teacher / student panels of one sample, as annotators see them
    (in the CLI's PNGs and on the app's Reality check page)."""
    from workbench.render import ComparisonLabels, comparison_panels

    return comparison_panels(original, sample.teacher, sample.student, ComparisonLabels(
        original=f"#{sample.sample_no} original: {sample.intent_text}"))


def sample_strip(image: str | Path, sample: CheckSample, height: int = 256,
                 max_side: int = 768) -> Any:
    """One sample's strip (an RGB array) on `image` (a sample image name or a file, as a check
    stores it), exactly as `render_check` writes it to its PNG."""
    from workbench.render import compare_strip, fit_image, load_image

    original = fit_image(load_image(_image_source(image)), max_side)
    return compare_strip(sample_panels(original, sample), height)


def render_check(store: Store, check_id: int, out_dir: Path, image: str | Path | None = None,
                 height: int = 256, max_side: int = 768) -> list[Path]:
    """One PNG per sample (original / teacher / student, captioned) named NN-<slug>.png, then
    sheet.png with one labelled row per sample. Returns the paths, the sheet last.

    `image` defaults to the check's own image; renders use it downscaled to `max_side`."""
    from workbench.outputs import check_output_file, check_output_folder, write_atomic
    from workbench.render import compare_strip, contact_sheet, fit_image, load_image, save_png

    out_dir = check_output_folder(Path(out_dir), store.path)
    with store.session() as session:
        row = _check_row(session, check_id)
        samples = reality.check_samples(session, check_id)
    for name in [*(sample_file(sample) for sample in samples), SHEET_FILE]:
        check_output_file(out_dir / name)   # never over a database that happens to be there
    source = _image_source(image) if image is not None else row["image"]
    original = fit_image(load_image(source), max_side)
    paths: list[Path] = []
    rows = []
    for sample in samples:
        # Each answer rendered once, for the sample's strip and for its row of the sheet.
        panels = sample_panels(original, sample)
        path = out_dir / sample_file(sample)
        strip = compare_strip(panels, height)
        write_atomic(path, partial(save_png, strip))
        paths.append(path)
        rows.append((f"{sample.sample_no}. {sample.intent_text}",
                     [("original", original), *panels[1:]]))
    sheet = out_dir / SHEET_FILE
    picture = contact_sheet(rows, height=max(32, height * 5 // 8))
    write_atomic(sheet, partial(save_png, picture))
    paths.append(sheet)
    with store.atomic() as session:
        reality.set_render_dir(session, check_id, str(out_dir.resolve()))
    return paths


# ---------------------------------------------------------------------------- answers

def record_answers(store: Store, check_id: int, annotator: str,
                   answers: Iterable[tuple[int, bool, bool]]) -> int:
    """Save (sample_no, relevant, mimics) answers of one annotator; answering a sample again
    replaces the earlier answer. Everything is validated first; returns how many were saved."""
    name = _annotator(annotator)
    given = list(answers)
    seen: set[int] = set()
    for item in given:
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise RealityCheckError(f"an answer is (sample number, relevant, mimics); got {item!r}")
        number, relevant, mimics = item
        if isinstance(number, bool) or not isinstance(number, int):
            raise RealityCheckError(f"a sample number must be an integer, got {number!r}")
        for question, value in ((Question.RELEVANT, relevant), (Question.MIMICS, mimics)):
            if not isinstance(value, bool):
                raise RealityCheckError(f"sample {number}: '{question.value}' must be True or "
                                        f"False, got {value!r}")
        if number in seen:
            raise RealityCheckError(f"sample {number} is answered twice; give each sample once")
        seen.add(number)
    with store.atomic() as session:
        _check_row(session, check_id)
        known = reality.sample_numbers(session, check_id)
        unknown = sorted(seen - known)
        if unknown:
            raise RealityCheckError(
                f"sample(s) {', '.join(map(str, unknown))} are not in reality check {check_id}; "
                f"its samples are numbered 1 to {len(known)}")
        reality.record_answers(session, check_id, name, given, datetime.now(UTC))
    return len(given)


def _annotator(annotator: str) -> str:
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        raise RealityCheckError("an annotator name is required (e.g. your first name); answers "
                                "are kept per annotator")
    return name


def parse_yes_no(text: str) -> bool:
    """y/n/yes/no/1/0/true/false, any case -> bool; ValueError otherwise."""
    value = text.strip().lower()
    if value in YES_WORDS:
        return True
    if value in NO_WORDS:
        return False
    raise ValueError(f"expected y/n/yes/no/1/0/true/false, got {text!r}")


def read_answers_file(path: Path) -> list[tuple[int, bool, bool]]:
    """(sample_no, relevant, mimics) rows of a CSV with the header `sample,relevant,mimics`
    (any column order; further columns such as a comment are ignored). Raises
    RealityCheckError naming the line and value of every bad row."""
    path = Path(path)
    if not path.is_file():
        raise RealityCheckError(f"no answers file {path}")
    columns = ("sample", "relevant", "mimics")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [name for name in columns if name not in header]
        if missing:
            raise RealityCheckError(
                f"{path}: line 1 must be the header 'sample,relevant,mimics'; missing "
                f"{', '.join(missing)} (found {','.join(header) or 'an empty line'})")
        index = {name: header.index(name) for name in columns}
        problems: list[str] = []
        found: list[tuple[int, bool, bool]] = []
        lines: dict[int, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) < len(header):
                cells = cells + [""] * (len(header) - len(cells))
            text = cells[index["sample"]].strip()
            try:
                number = int(text)
                if number < 1:
                    raise ValueError
            except ValueError:
                problems.append(f"line {line}: sample must be a positive whole number, "
                                f"got {text!r}")
                continue
            values = []
            for name in ("relevant", "mimics"):
                try:
                    values.append(parse_yes_no(cells[index[name]]))
                except ValueError:
                    problems.append(f"line {line}: {name} must be y/n/yes/no/1/0/true/false, "
                                    f"got {cells[index[name]]!r}")
            if len(values) != 2:
                continue
            if number in lines:
                problems.append(f"line {line}: sample {number} was already answered on line "
                                f"{lines[number]}")
                continue
            lines[number] = line
            found.append((number, values[0], values[1]))
    if problems:
        raise RealityCheckError(listing(f"{path}: {len(problems)} bad line(s)", problems))
    if not found:
        raise RealityCheckError(f"{path} holds no answers below its header")
    return found


@dataclass(frozen=True)
class AnnotationQueue:
    """What an annotator has left to answer in a check (the terminal annotator walks it)."""

    annotator: str
    n_samples: int
    pending: list[CheckSample]      # in their numbered order
    render_dir: Path | None         # the check's latest render, if any


def annotation_queue(store: Store, check_id: int, annotator: str) -> AnnotationQueue:
    """The samples of a check that `annotator` has not answered yet."""
    name = _annotator(annotator)
    with store.session() as session:
        row = _check_row(session, check_id)
        samples = reality.check_samples(session, check_id)
        done = reality.answered_samples(session, check_id, name)
    return AnnotationQueue(name, len(samples), [s for s in samples if s.sample_no not in done],
                           Path(row["render_dir"]) if row["render_dir"] else None)


# ---------------------------------------------------------------------------- report

@dataclass(frozen=True)
class QuestionSummary:
    question: str                # 'relevant' or 'mimics'
    text: str
    yes_by_majority: int         # samples where more than half the annotators said yes
    judged: int                  # samples with at least one answer
    majority_share: float | None  # yes_by_majority / judged
    yes_share: float | None      # yes answers / all answers
    n_answers: int
    agreement: Agreement


@dataclass(frozen=True)
class SampleRow:
    sample_no: int
    intent_text: str
    stratum: str
    n_annotators: int
    relevant_yes: int
    mimics_yes: int


@dataclass(frozen=True)
class CheckReport:
    check_id: int
    run_id: str
    version_id: int
    image: str
    n_samples: int
    annotators: list[str]
    annotators_per_sample: tuple[int, int]  # (fewest, most) over answered samples; (0, 0) if none
    questions: dict[str, QuestionSummary]
    samples: list[SampleRow] = field(default_factory=list)
    majority_rule: str = "yes when more than half of a sample's annotators said yes; a tie is no"

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_annotators": self.n_annotators,
                "annotators_per_sample": list(self.annotators_per_sample)}


def report(store: Store, check_id: int) -> CheckReport:
    """Majority counts, yes shares and annotator agreement per question, and per-sample rows."""
    with store.session() as session:
        row = _check_row(session, check_id)
        samples = reality.check_samples(session, check_id)
        answers = reality.check_answers(session, check_id)
    by_sample: dict[int, list[dict]] = {s.sample_no: [] for s in samples}
    for answer in answers:
        by_sample[answer["sample_no"]].append(answer)
    rows = [SampleRow(s.sample_no, s.intent_text, s.stratum, len(by_sample[s.sample_no]),
                      sum(a["relevant"] for a in by_sample[s.sample_no]),
                      sum(a["mimics"] for a in by_sample[s.sample_no])) for s in samples]
    judged = [r for r in rows if r.n_annotators > 0]
    questions = {}
    for question in Question:
        yes = [getattr(r, f"{question.value}_yes") for r in judged]
        table = [[y, r.n_annotators - y] for y, r in zip(yes, judged, strict=True)]  # [yes, no]
        majority = majority_count(table)
        questions[question.value] = QuestionSummary(
            question.value, question.text, majority, len(judged),
            majority / len(judged) if judged else None, category_share(table), len(answers),
            agreement(table))
    counts = [r.n_annotators for r in judged]
    return CheckReport(check_id, row["run_id"], row["version_id"], row["image"], len(samples),
                       sorted({a["annotator"] for a in answers}),
                       (min(counts), max(counts)) if counts else (0, 0), questions, rows)
