"""Directions: does an answer move the picture the way an instruction asked ("make it darker")?

A direction request is an instruction with the direction any sane grade must take on one or more
aspects of the picture: {"request": "a bit less saturated", "expect": {"saturation": "down"}}.
An answer is judged on pixels, not on sliders: it is rendered onto a few bundled sample photos
and each aspect's statistic is compared with the original's, so an answer that reaches the look
with a filter counts the same as one that moves the slider of that name.

The statistics (all on display-encoded RGB in [0, 1]; L is Rec. 709 luma):
- brightness: mean L;
- shadows / highlights: mean L of the pixels that were in the darkest / brightest quarter of
  the original (by the original's L);
- contrast: std L / mean L. Relative, because a pure exposure change scales std L with the
  brightness: measured on the samples, exposure +20 raises std L by 2.3 hundredths, eight times
  what contrast +10 does (0.3), and would count as more contrast; it lowers std / mean by 1.3,
  a little less than contrast -3 does (1.5);
- saturation: mean (max - min of R, G, B) / mean L, colour relative to brightness for the same
  reason; "mono" asks for the result's value to be at most MONO_SHARE of the original's;
- warmth: mean (R - B) / mean L (amber up, blue down);
- tint: mean ((R + B) / 2 - G) / mean L (magenta up, green down);
- sharpness: mean |Laplacian of L| / std L: fine detail relative to the tonal spread, so that a
  contrast or exposure change alone does not count as sharpening.
An aspect moves when its change, averaged over the samples, passes EPSILONS[aspect] in the
asked direction; no change is a failure ("make it darker" answered with exposure 0 fails).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from workbench.errors import WorkbenchError, listing
from workbench.package_files import source_checkout
from workbench.progress import Progress
from workbench.render import LUMA, RGBImage, fit_image, load_image, render
from workbench.tools import Answer

if TYPE_CHECKING:
    from workbench.students.base import Student

ASPECTS: dict[str, str] = {
    "brightness": "mean luma",
    "contrast": "luma std / mean (relative contrast)",
    "saturation": "mean chroma (max - min of RGB) / mean luma",
    "warmth": "mean (R - B) / mean luma: amber up, blue down",
    "tint": "mean ((R + B) / 2 - G) / mean luma: magenta up, green down",
    "shadows": "mean luma of the original's darkest quarter",
    "highlights": "mean luma of the original's brightest quarter",
    "sharpness": "mean |Laplacian of luma| / luma std",
}


class Direction(StrEnum):
    """What a request asks of an aspect. MONO (saturation only): black and white."""

    UP = "up"
    DOWN = "down"
    MONO = "mono"


# The smallest change, in the statistic's own units (averaged over the samples), that counts as a
# move. Each is about a third of the smaller of the changes that the aspect's own slider makes at
# +10 and at -10 on the samples (so roughly that slider at +-3, below which no one sees a
# difference), rounded down. Measured with `measure` at SAMPLE_SIDE, in hundredths
# (tests/test_directions.py re-measures and checks that every epsilon stays below half of them):
#   brightness  brightness  +10 / -10: +1.30 / -1.30   -> 0.40
#   contrast    contrast    +10 / -10: +1.37 / -4.81   -> 0.40
#   saturation  saturation  +10 / -10: +7.07 / -7.09   -> 2.0
#   warmth      temperature +10 / -10: +3.35 / -3.37   -> 1.0
#   tint        tint        +10 / -10: +1.93 / -1.92   -> 0.60
#   shadows     shadows     +10 / -10: +1.55 / -0.30   -> 0.09
#   highlights  highlights  +10 / -10: +0.55 / -0.64   -> 0.18
#   sharpness   sharpen     +10 / -10: +3.81 / -2.41   -> 0.70
EPSILONS: dict[str, float] = {
    "brightness": 0.004, "contrast": 0.004, "saturation": 0.02, "warmth": 0.01, "tint": 0.006,
    "shadows": 0.0009, "highlights": 0.0018, "sharpness": 0.007,
}
OWN_SLIDERS: dict[str, str] = {  # the adjust slider that moves each aspect most directly
    "brightness": "brightness", "contrast": "contrast", "saturation": "saturation",
    "warmth": "temperature", "tint": "tint", "shadows": "shadows", "highlights": "highlights",
    "sharpness": "sharpen",
}
MONO_SHARE = 0.15  # black and white: the result keeps at most this share of the saturation

SAMPLES: tuple[str, ...] = ("astronaut", "coffee", "rocket")  # people, warm food, a cool night
SAMPLE_SIDE = 128  # px, the longer side: a render takes 1-3 ms; the statistics are stable
LUMA_FLOOR = 0.02  # the smallest mean luma (or std) divided by, so a black result stays finite
QUARTER = 0.25
DIRECTION_FILE = "directions.jsonl"
ENTRY_KEYS = ("request", "expect", "note")


# --------------------------------------------------------------------------------------------
# The direction set


@dataclass(frozen=True)
class DirectionRequest:
    """One instruction and the direction each listed aspect must take; `line` is where it was
    read (0 when made in code)."""

    request: str
    expect: Mapping[str, Direction]
    note: str = ""
    line: int = 0

    def expected_text(self) -> str:
        """'brightness up, saturation down'."""
        return ", ".join(f"{aspect} {direction}" for aspect, direction in self.expect.items())


def default_direction_set() -> Path | None:
    """`tests/directions.jsonl` of the source checkout the package runs from (a clone or an
    editable install), or None when there is none (installed from a wheel)."""
    checkout = source_checkout()
    if checkout is None:
        return None
    path = checkout / "tests" / DIRECTION_FILE
    return path if path.is_file() else None


class _BadEntry(Exception):
    """One line of a direction file is wrong; the message says what."""


def _parse_entry(value: Any) -> tuple[str, dict[str, Direction], str]:
    """(request, expect, note) of one decoded line; _BadEntry says what is wrong."""
    if not isinstance(value, dict):
        raise _BadEntry("expected a JSON object with 'request' and 'expect'")
    unknown = sorted(set(value) - set(ENTRY_KEYS))
    if unknown:
        raise _BadEntry(f"unknown key(s) {', '.join(unknown)}; the keys are "
                         f"{', '.join(ENTRY_KEYS)}")
    request = value.get("request")
    if not isinstance(request, str) or not request.strip():
        raise _BadEntry("'request' must be a non-empty string")
    expect = value.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise _BadEntry("'expect' must be a non-empty object of aspect: direction")
    directions: dict[str, Direction] = {}
    for aspect, direction in expect.items():
        if aspect not in ASPECTS:
            raise _BadEntry(f"unknown aspect {aspect!r}; the aspects are {', '.join(ASPECTS)}")
        if direction not in [d.value for d in Direction]:
            raise _BadEntry(f"{aspect}: bad expectation {direction!r}; expected one of "
                             f"{', '.join(d.value for d in Direction)}")
        if direction == Direction.MONO and aspect != "saturation":
            raise _BadEntry(f"{aspect}: 'mono' (black and white) applies to saturation only")
        directions[aspect] = Direction(direction)
    note = value.get("note", "")
    if not isinstance(note, str):
        raise _BadEntry("'note' must be a string")
    return request.strip(), directions, note


def load_direction_set(path: str | Path) -> list[DirectionRequest]:
    """Every request of a direction file (JSONL, one object a line; blank lines allowed).

    Nothing is dropped: a bad line (not JSON, unknown aspect or key, bad expectation, empty
    request) or a duplicate request (same words, case and spacing aside) makes the whole file an
    error that names every problem with its line."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such direction file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WorkbenchError(f"{path}: cannot be read: {error}") from None
    requests: list[DirectionRequest] = []
    problems: list[str] = []
    seen: dict[str, int] = {}  # normalised request -> first line
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            request, expect, note = _parse_entry(json.loads(raw))
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not valid JSON ({error.msg} at column "
                            f"{error.colno})")
            continue
        except _BadEntry as error:
            problems.append(f"line {number}: {error}")
            continue
        key = " ".join(request.lower().split())
        if key in seen:
            problems.append(f"line {number}: duplicate request {request!r} (first on line "
                            f"{seen[key]})")
            continue
        seen[key] = number
        requests.append(DirectionRequest(request, expect, note, number))
    if problems:
        raise WorkbenchError(listing(f"{path}: {len(problems)} bad line(s)", problems))
    if not requests:
        raise WorkbenchError(f"{path}: no direction requests")
    return requests


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True)
class _Sample:
    """A sample photo, fitted small, with what every measurement compares against."""

    image: RGBImage                  # (H, W, 3)
    dark: npt.NDArray[np.bool_]      # (H, W) the original's darkest quarter (by luma)
    bright: npt.NDArray[np.bool_]    # (H, W) its brightest quarter
    original: Mapping[str, float]    # the statistics of the original


def _statistics(image: RGBImage, dark: npt.NDArray[np.bool_],
                bright: npt.NDArray[np.bool_]) -> dict[str, float]:
    """Every aspect's statistic of one image (see the module docstring)."""
    r, g, b = np.moveaxis(image, 2, 0).astype(np.float32) * np.float32(1 / 255)  # (H, W) each
    luma = LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
    mean = float(luma.mean())
    spread = float(luma.std())
    level = max(mean, LUMA_FLOOR)
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    laplacian = (4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1]
                 - luma[1:-1, :-2] - luma[1:-1, 2:])  # (H-2, W-2)
    red, green, blue = float(r.mean()), float(g.mean()), float(b.mean())
    return {
        "brightness": mean,
        "contrast": spread / level,
        "saturation": float(chroma.mean()) / level,
        "warmth": (red - blue) / level,
        "tint": ((red + blue) / 2 - green) / level,
        "shadows": float(luma[dark].mean()),
        "highlights": float(luma[bright].mean()),
        "sharpness": float(np.abs(laplacian).mean()) / max(spread, LUMA_FLOOR),
    }


@lru_cache(maxsize=1)
def _samples() -> tuple[_Sample, ...]:
    """The sample photos, loaded and measured once per process (they never change)."""
    samples = []
    for name in SAMPLES:
        image = fit_image(load_image(name), SAMPLE_SIDE)
        luma = (image.astype(np.float32) / np.float32(255.0)) @ LUMA  # (H, W)
        low, high = np.quantile(luma, [QUARTER, 1 - QUARTER])
        dark, bright = luma <= low, luma >= high
        samples.append(_Sample(image, dark, bright, _statistics(image, dark, bright)))
    return tuple(samples)


@dataclass(frozen=True)
class Measurement:
    """What an answer does to the samples: each aspect's change (answer's render minus the
    original, averaged over the samples) and the share of the saturation it keeps."""

    changes: Mapping[str, float]
    saturation_share: float

    def moves(self, aspect: str, direction: Direction) -> bool:
        """Whether the aspect moved as asked, past its epsilon."""
        if direction == Direction.MONO:
            return self.saturation_share <= MONO_SHARE
        change = self.changes[aspect]
        return change > EPSILONS[aspect] if direction == Direction.UP \
            else change < -EPSILONS[aspect]

    def describe(self, aspect: str, direction: Direction) -> str:
        """What happened to an aspect, in words and numbers ('brightness went up by 1.20
        (asked: down, by more than 0.40)'); changes in hundredths of the statistic."""
        if direction == Direction.MONO:
            return (f"saturation kept {self.saturation_share:.0%} of the original's (asked: "
                    f"black and white, at most {MONO_SHARE:.0%})")
        change, epsilon = self.changes[aspect] * 100, EPSILONS[aspect] * 100
        moved = "stayed within" if abs(change) <= epsilon else \
            ("went up by" if change > 0 else "went down by")
        amount = f"{abs(change):.2f}" if moved != "stayed within" else \
            f"+-{epsilon:.2f} ({change:+.2f})"
        return f"{aspect} {moved} {amount} (asked: {direction}, by more than {epsilon:.2f})"


def measure(answer: Answer) -> Measurement:
    """Render the answer onto every sample and measure each aspect's change."""
    totals = dict.fromkeys(ASPECTS, 0.0)
    saturation_before = saturation_after = 0.0
    samples = _samples()
    for sample in samples:
        after = _statistics(render(sample.image, answer), sample.dark, sample.bright)
        for aspect in ASPECTS:
            totals[aspect] += after[aspect] - sample.original[aspect]
        saturation_before += sample.original["saturation"]
        saturation_after += after["saturation"]
    return Measurement({aspect: total / len(samples) for aspect, total in totals.items()},
                       saturation_after / saturation_before)


# --------------------------------------------------------------------------------------------
# Checking a set of answers


@dataclass(frozen=True)
class AspectScore:
    """How often an aspect was asked for and moved as asked, overall and per direction."""

    asked: int
    right: int
    directions: Mapping[str, tuple[int, int]]  # direction -> (asked, right)

    @property
    def share(self) -> float | None:
        return self.right / self.asked if self.asked else None

    def to_dict(self) -> dict[str, Any]:
        return {"asked": self.asked, "right": self.right, "share": self.share,
                "directions": {d: {"asked": a, "right": r}
                               for d, (a, r) in self.directions.items()}}


@dataclass(frozen=True)
class DirectionFailure:
    """A request whose answer did not move every listed aspect as asked."""

    request: DirectionRequest
    answer: Answer
    measurement: Measurement
    wrong: tuple[str, ...]  # the aspects that did not move as asked

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request.request, "line": self.request.line,
                "expected": {a: str(d) for a, d in self.request.expect.items()},
                "wrong": list(self.wrong),
                "changes": {a: round(v, 6) for a, v in self.measurement.changes.items()},
                "saturation_share": round(self.measurement.saturation_share, 6),
                "answer": self.answer.to_dict()}


@dataclass(frozen=True)
class DirectionReport:
    """The share of requests whose answer moves every listed aspect as asked."""

    n: int
    right: int
    aspects: Mapping[str, AspectScore]
    failures: tuple[DirectionFailure, ...] = field(default=())

    @property
    def share(self) -> float:
        return self.right / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "right": self.right, "share": self.share,
                "epsilons": dict(EPSILONS), "mono_share": MONO_SHARE, "samples": list(SAMPLES),
                "aspects": {a: score.to_dict() for a, score in self.aspects.items()},
                "failures": [failure.to_dict() for failure in self.failures]}


def check(requests: Sequence[DirectionRequest], answers: Sequence[Answer],
          progress: Progress | None = None) -> DirectionReport:
    """Measure each request's answer (in the same order) and count the moves made as asked.

    Identical answers are rendered once."""
    if len(requests) != len(answers):
        raise WorkbenchError(f"{len(requests)} direction requests but {len(answers)} answers; "
                             "give one answer per request")
    measured: dict[str, Measurement] = {}
    counts = {aspect: {d.value: [0, 0] for d in Direction} for aspect in ASPECTS}
    failures: list[DirectionFailure] = []
    right = 0
    for done, (request, answer) in enumerate(zip(requests, answers, strict=True), start=1):
        key = answer.output_key()
        if key not in measured:
            measured[key] = measure(answer)
        measurement = measured[key]
        wrong = []
        for aspect, direction in request.expect.items():
            ok = measurement.moves(aspect, direction)
            counts[aspect][direction.value][0] += 1
            counts[aspect][direction.value][1] += ok
            if not ok:
                wrong.append(aspect)
        if wrong:
            failures.append(DirectionFailure(request, answer, measurement, tuple(wrong)))
        else:
            right += 1
        if progress is not None:
            progress("directions", done, len(requests))
    aspects = {}
    for aspect, by_direction in counts.items():
        asked = sum(a for a, _ in by_direction.values())
        if asked:
            aspects[aspect] = AspectScore(
                asked, sum(r for _, r in by_direction.values()),
                {d: (a, r) for d, (a, r) in by_direction.items() if a})
    return DirectionReport(len(requests), right, aspects, tuple(failures))


def direction_share(student: Student, requests: Sequence[DirectionRequest],
                    progress: Progress | None = None) -> DirectionReport:
    """Predict every request with a student (anything with `predict(texts) -> answers`) and
    check the answers; the report's `share` is the share that moves the way asked."""
    answers = student.predict([request.request for request in requests])
    return check(requests, answers, progress)
