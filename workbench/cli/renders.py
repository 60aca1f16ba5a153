"""The render commands: one intent onto an image (render), several side by side (gallery)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines import render
from workbench.cli.output import emit
from workbench.cli.parsing import OUT_RULES, Commands, parse_positive_int
from workbench.render import SAMPLE_IMAGES
from workbench.store import Store

IMAGE_HELP = (f"an image file, or a bundled sample: {', '.join(SAMPLE_IMAGES)} "
              "(default: %(default)s)")


def cmd_render(args: argparse.Namespace, store: Store) -> int:
    result = render.render_intent(render.RenderConfig(
        intent=args.intent, image=args.image, out=args.out, run=args.run, compare=args.compare,
        version=args.version, max_side=args.max_side), store)
    what = "comparison (original / teacher / student)" if args.compare else \
        (f"run {result.run_id}'s prediction" if args.run is not None else
         f"the teacher's ground truth (dataset version {result.version_id})")
    emit(args, result, lambda: f"wrote {result.out}: {args.intent!r} on {args.image}, {what}")
    return 0


def cmd_gallery(args: argparse.Namespace, store: Store) -> int:
    config = render.GalleryConfig(out=args.out, intents=tuple(args.intent) or
                                  render.GALLERY_INTENTS, run=args.run, image=args.image,
                                  version=args.version)
    result = render.gallery(config, store)
    emit(args, result, lambda: f"wrote {result.out}: {len(config.intents)} intents, teacher "
         f"(version {result.version_id}) vs student (run {result.run_id})")
    return 0


def add_render(commands: Commands) -> None:
    defaults = render.RenderConfig(intent="")
    p = commands.add("render", cmd_render, "Render an intent's tool calls onto an image: the "
                     "teacher's ground truth, a student's prediction (--run), or both side by "
                     "side (--compare).", reads=True)
    p.add_argument("intent", help="the intent text, e.g. \"golden hour\"")
    p.add_argument("--image", default=defaults.image, help=IMAGE_HELP)
    p.add_argument("--out", type=Path, required=True, help="PNG to write; " + OUT_RULES)
    p.add_argument("--run", nargs="?", const="", default=defaults.run, metavar="RUN",
                   help="render this run's prediction (no value: the latest run); works for "
                        "intents the data has never seen")
    p.add_argument("--compare", action="store_true",
                   help="write an original / teacher / student strip (student: --run, else "
                        "the latest run)")
    p.add_argument("--version", type=int, default=defaults.version,
                   help="dataset version for the teacher's answer (default: current)")
    p.add_argument("--max-side", type=parse_positive_int, default=defaults.max_side,
                   help="downscale the image so its longer side is at most this (default "
                        "%(default)s)")


def add_gallery(commands: Commands) -> None:
    defaults = render.GalleryConfig()
    p = commands.add("gallery", cmd_gallery, "Write a contact sheet of several intents: "
                     "original, teacher and student renders side by side.", reads=True)
    p.add_argument("--out", type=Path, required=True, help="PNG to write; " + OUT_RULES)
    p.add_argument("--intent", action="append", default=[], metavar="TEXT",
                   help="an intent to show (repeatable; default: "
                        f"{', '.join(render.GALLERY_INTENTS[:3])} and a few other popular looks)")
    p.add_argument("--run", default=defaults.run, help="the student run (default: the latest run)")
    p.add_argument("--image", default=defaults.image, help=IMAGE_HELP)
    p.add_argument("--version", type=int, default=defaults.version,
                   help="dataset version for the teacher's answers (default: current)")
