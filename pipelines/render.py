"""Render intents onto images (issue 5): the teacher's ground truth from a dataset version, a
student run's prediction, or both side by side; and a gallery contact sheet of several intents.

The store is read in one short session; predicting and rendering happen with the file closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.log_records import intent_key
from workbench.outputs import check_output_file, write_atomic
from workbench.store import Store, runs
from workbench.store.versions import ground_truth_rows, resolve_version
from workbench.tools import Answer, answer_from_json

# A handful of looks a curator knows what to expect from, for the gallery's default.
GALLERY_INTENTS = ("golden hour", "black and white", "cool morning", "sunset", "morocco",
                   "moody", "teal and orange", "autumn")


@dataclass(frozen=True)
class RenderConfig:
    intent: str
    image: str = "astronaut"           # a sample name or an image file
    out: Path = Path("render.png")
    run: str | None = None             # render this run's prediction instead of the teacher's
    compare: bool = False              # original / teacher / student strip
    version: int | None = None         # where the teacher's ground truth comes from
    max_side: int = 1024               # previews are downscaled to this


@dataclass(frozen=True)
class RenderResult:
    out: Path
    intent: str
    teacher: Answer | None             # None: the intent is not in the version
    student: Answer | None
    run_id: str | None
    version_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "intent": self.intent, "run_id": self.run_id,
                "version_id": self.version_id,
                "teacher": None if self.teacher is None else self.teacher.to_dict(),
                "student": None if self.student is None else self.student.to_dict()}


def teacher_answers(store: Store, intents: Sequence[str],
                    version: int | None) -> tuple[int, dict[str, Answer]]:
    """The ground truth of each intent found in the version (any split), by intent key."""
    keys = [intent_key(text) for text in intents]
    with store.session(read_only=True) as session:
        version_id = resolve_version(session, version)
        rows = ground_truth_rows(session, version_id, keys)
    return version_id, {row["intent_key"]: answer_from_json(
        row["adjust"], row["selective_adjust"], row["filter"]) for row in rows}


def student_answers(store: Store, run: str | None, intents: Sequence[str]) -> tuple[str,
                                                                                   list[Answer]]:
    row, student = runs.load_run(store, run or None)
    return row["run_id"], student.predict(list(intents))


def render_intent(config: RenderConfig, store: Store) -> RenderResult:
    """Write one PNG: the teacher's (default) or the run's answer, or the comparison strip."""
    from workbench import render

    check_output_file(Path(config.out), store.path)
    image = render.fit_image(render.load_image(config.image), config.max_side)
    teacher: Answer | None = None
    version_id: int | None = None
    needs_teacher = config.compare or config.run is None
    if needs_teacher:
        version_id, found = teacher_answers(store, [config.intent], config.version)
        teacher = found.get(intent_key(config.intent))
        if teacher is None and not config.compare:
            raise WorkbenchError(
                f"{config.intent!r} is not an intent of dataset version {version_id}, so it "
                "has no teacher answer; render a student's prediction with --run RUN")
    student: Answer | None = None
    run_id: str | None = None
    if config.run is not None or config.compare:
        run_id, [student] = student_answers(store, config.run, [config.intent])
    if config.compare:
        picture = render.comparison(image, teacher, student or Answer(),
                                    labels=render.ComparisonLabels(student=f"student ({run_id})"))
    else:
        chosen = student if config.run is not None else teacher
        picture = render.render(image, chosen or Answer())
    write_atomic(Path(config.out), partial(render.save_png, picture))
    return RenderResult(Path(config.out), config.intent, teacher, student, run_id, version_id)


@dataclass(frozen=True)
class GalleryConfig:
    out: Path = Path("gallery.png")
    intents: tuple[str, ...] = GALLERY_INTENTS
    run: str | None = None             # the student (default: the latest run)
    image: str = "astronaut"
    version: int | None = None
    height: int = 200                  # panel height in the sheet


def gallery(config: GalleryConfig, store: Store) -> RenderResult:
    """A contact sheet: one row per intent with original, teacher and student renders."""
    from workbench import render

    if not config.intents:
        raise WorkbenchError("the gallery needs at least one intent")
    check_output_file(Path(config.out), store.path)
    image = render.fit_image(render.load_image(config.image), 2 * config.height)
    version_id, teachers = teacher_answers(store, config.intents, config.version)
    run_id, students = student_answers(store, config.run, config.intents)
    rows = [(text, render.comparison_panels(image, teachers.get(intent_key(text)), student))
            for text, student in zip(config.intents, students, strict=True)]
    sheet = render.contact_sheet(rows, config.height)
    write_atomic(Path(config.out), partial(render.save_png, sheet))
    return RenderResult(Path(config.out), ", ".join(config.intents), None, None, run_id,
                        version_id)
