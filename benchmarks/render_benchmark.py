"""Benchmark: render latency on one CPU core for a ~1-megapixel photo (full, typical, per operation).

    python benchmarks/render_benchmark.py [--image coffee] [--megapixels 1.0] [--repeats 30]
                                          [--out benchmarks/results/render.json]

The process is pinned to one core and every thread pool to one thread before numpy loads, so the
numbers are single-core ones. "full" uses every tool and all 14 sliders non-zero plus a filter
with its own sliders and tints; "typical" is a teacher-like answer (a few sliders and a filter).
Each operation alone is timed the same way (those times include the uint8 <-> float conversion).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

FULL_ANSWER: dict[str, Any] = {
    "adjust": {"exposure": 10, "contrast": 15, "brightness": 5, "highlights": -20, "shadows": 15,
               "saturation": 10, "vibrance": 20, "temperature": 25, "tint": 5, "hue": 3,
               "bloom": 20, "sharpen": 30, "structure": 25, "linearOffset": 5},
    "selective_adjust": {colour: {"saturation": 10 + 5 * i, "luminance": -10 + 4 * i}
                         for i, colour in enumerate(
                             ("red", "orange", "yellow", "green", "cyan", "blue"))},
    "filter": {"name": "mood_Dreamy", "intensity": 60},  # bloom, tone sliders and a tint
}
TYPICAL_ANSWER: dict[str, Any] = {
    "adjust": {"temperature": 30, "highlights": -15, "shadows": 10, "vibrance": 15, "contrast": 10},
    "filter": {"name": "warm_Golden", "intensity": 40},
}


def _pin_one_core() -> str:
    """One thread per pool and one core; call before numpy loads (pool sizes are fixed then)."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[variable] = "1"
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # the environment variables above already did it
        pass
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _time(function: Any, repeats: int) -> dict[str, float]:
    function()  # warm-up: lazy imports, first-touch allocations
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            "min_ms": round(timings[0], 1)}  # the least disturbed run, on a shared machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="coffee", help="a sample name or an image path")
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "render.json")
    args = parser.parse_args()
    pinning = _pin_one_core()  # before the imports below load numpy

    import numpy as np
    from PIL import Image

    from workbench.render import load_image, render
    from workbench.tools import ADJUST_KEYS, COLOURS, parse_answer

    source = load_image(args.image)
    scale = (args.megapixels * 1e6 / (source.shape[0] * source.shape[1])) ** 0.5
    size = (round(source.shape[1] * scale), round(source.shape[0] * scale))
    image = np.asarray(Image.fromarray(source).resize(size, Image.Resampling.LANCZOS))

    cases: dict[str, dict[str, Any]] = {"full": FULL_ANSWER, "typical": TYPICAL_ANSWER}
    for key in ADJUST_KEYS:
        cases[f"adjust.{key}"] = {"adjust": {key: 40}}
    cases["selective_adjust (6 colours)"] = {"selective_adjust": {
        colour: {"saturation": 20, "luminance": 10} for colour in COLOURS}}
    for name in ("mono_Classic", "mood_Dreamy", "film_Cinematic"):
        cases[f"filter {name}"] = {"filter": {"name": name, "intensity": 60}}

    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({pinning}), Python "
                   f"{platform.python_version()}, numpy {np.__version__}",
        "image": f"{args.image} resized to {image.shape[1]} x {image.shape[0]} "
                 f"({image.shape[0] * image.shape[1] / 1e6:.2f} MP)",
        "repeats": args.repeats, "timings": {}}
    print(f"{results['image']}; {results['machine']}; {args.repeats} runs each")
    print(f"{'case':<34}{'p50 ms':>10}{'p95 ms':>10}{'min ms':>10}")
    for label, raw in cases.items():
        answer = parse_answer(raw)
        timing = _time(lambda answer=answer: render(image, answer), args.repeats)
        results["timings"][label] = timing
        print(f"{label:<34}{timing['p50_ms']:>10.1f}{timing['p95_ms']:>10.1f}"
              f"{timing['min_ms']:>10.1f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
