"""Benchmark: the answer editor's preview, one slider move's re-render at the editor's preview size.

    python benchmarks/editor_benchmark.py [--image coffee] [--repeats 200]
                                          [--out benchmarks/results/editor.json]

What a slider move costs the preview (the target is under 150 ms p95): the edited answer
rendered on the photo already downscaled to `workbench.editing.PREVIEW_SIDE` and encoded as JPEG
(`editing.preview_jpeg`), for a typical answer (five sliders and a filter) and a full one (every
slider, every selective value, a filter with its own sliders and tints); each repeat changes
temperature by one step, as a moved slider does, so nothing is served from a cache. Also timed:
the editor's whole Streamlit run in AppTest after a slider move (widgets, validation, difference
table, render and encode; the browser's drawing not included), and, for comparison, the same
render at the full 1 MP image and with PNG encoding. Pinned to one core like
`render_benchmark.py`. With `--browser`: a key press on the temperature slider to the new preview
shown, in headless Chromium on `streamlit run` of the editor alone (server and browser on all the
machine's cores: that is Streamlit's round trip, the fragment's run and the image's fetch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.render_benchmark import FULL_ANSWER, TYPICAL_ANSWER, _pin_one_core


def _time(function: Callable[[int], Any], repeats: int) -> dict[str, float]:
    function(-1)  # warm-up: lazy imports, first-touch allocations
    timings = []
    for i in range(repeats):
        started = time.perf_counter()
        function(i)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            "max_ms": round(timings[-1], 1), "min_ms": round(timings[0], 1)}


def _moved(raw: dict[str, Any], step: int) -> dict[str, Any]:
    """The answer with temperature moved by one more step: a new answer every repeat."""
    adjust = dict(raw.get("adjust") or {})
    adjust["temperature"] = max(-100, min(100, int(adjust.get("temperature", 0)) - 40 + step % 80))
    return {**raw, "adjust": adjust}


def _editor_script(raw: dict) -> None:  # runs inside AppTest (no annotations: it is run as source)
    from workbench.app import editor
    from workbench.tools import parse_answer

    answer = parse_answer(raw)
    editor.answer_editor("bench", subject="benchmark",
                         starts=[editor.StartingPoint("ground truth", answer, None)],
                         reference=answer, save=lambda request: "not saved")


_BROWSER_APP = """
import json, sys
from workbench.app import editor
from workbench.tools import parse_answer
answer = parse_answer(json.loads(sys.argv[1]))
editor.answer_editor("bench", subject="benchmark", reference=answer, save=lambda r: "not saved",
                     starts=[editor.StartingPoint("ground truth", answer, None)])
"""


# The floor: a fragment with the editor's widgets (the three tabs, a toggle per tool, the 14 +
# 12 sliders, the filter's choice and intensity) and one image that changes with temperature,
# nothing computed. What Streamlit and the browser cost for this many widgets, whatever the
# editor does.
_FLOOR_APP = """
import streamlit as st
from workbench import editing
from workbench.tools import ADJUST_KEYS, COLOURS, COLOUR_CHANNELS, FILTER_NAMES
photo = editing.preview_photo("coffee")
darker = editing.encode_jpeg((photo.image * 0.8).astype("uint8"))
@st.fragment
def widgets():
    adjust, selective, filter_ = st.tabs(["Adjust", "Selective Adjust", "Filter"])
    with adjust:
        st.toggle("Use adjust", value=True)
        columns = st.columns(2)
        for i, name in enumerate(ADJUST_KEYS):
            columns[i % 2].slider(name, -100, 100, 0, key=f"bench-adjust-{name}")
    with selective:
        st.toggle("Use selective adjust")
        for colour in COLOURS:
            for column, channel in zip(st.columns(2), COLOUR_CHANNELS):
                column.slider(f"{colour} {channel}", -100, 100, 0)
    with filter_:
        st.toggle("Use a filter")
        st.selectbox("Filter", FILTER_NAMES)
        st.slider("Intensity", 0, 100, 50)
    with st.container(key="bench-after"):
        st.image(darker if st.session_state["bench-adjust-temperature"] % 2 else photo.jpeg)
widgets()
"""


def _browser(app: str, raw: dict[str, Any], repeats: int) -> dict[str, float]:
    """Key press (one step of the temperature slider) to the new 'after' image shown, in headless
    Chromium on `streamlit run` of the editor alone: Streamlit's round trip, the editor's
    fragment run and the image's fetch and decode."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import urllib.request

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        script = Path(folder) / "editor_app.py"
        script.write_text(app)
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--", json.dumps(raw)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                        if reply.read().strip() == b"ok":
                            break
                except OSError:
                    time.sleep(0.25)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1400, "height": 1400})
                page.goto(url)
                image = ".st-key-bench-after img"
                page.locator(image).wait_for()
                page.wait_for_timeout(1000)
                thumb = page.locator(".st-key-bench-adjust-temperature").get_by_role("slider")
                thumb.focus()

                timings = []
                for i in range(repeats + 1):          # the first is a warm-up
                    page.wait_for_timeout(300)        # the last run has settled
                    before = page.locator(image).get_attribute("src")
                    started = time.perf_counter()
                    thumb.press("ArrowLeft" if i % 2 else "ArrowRight")
                    page.wait_for_function(
                        "([selector, old]) => { const i = document.querySelector(selector); "
                        "return i && i.getAttribute('src') !== old && i.complete "
                        "&& i.naturalWidth > 0; }", arg=[image, before], polling=5)
                    if i:
                        timings.append((time.perf_counter() - started) * 1000)
                browser.close()
            timings.sort()
            timing = {"p50_ms": round(statistics.median(timings), 1),
                      "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
                      "max_ms": round(timings[-1], 1), "min_ms": round(timings[0], 1)}
        finally:
            server.terminate()
            server.wait(timeout=20)
    return timing


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # SIGTERM unwinds like Ctrl+C, so the app server this benchmark started is stopped too.
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="coffee", help="a sample name or an image path")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--app-repeats", type=int, default=30)
    parser.add_argument("--browser", action="store_true",
                        help="also time a key press on the temperature slider to the new preview "
                             "shown, in headless Chromium (Playwright) on `streamlit run`")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "editor.json")
    args = parser.parse_args()
    pinning = _pin_one_core()  # before the imports below load numpy

    import numpy as np
    from PIL import Image

    from workbench import editing
    from workbench.render import load_image, render, to_png_bytes
    from workbench.tools import parse_answer

    photo = editing.preview_photo(args.image)
    source = load_image(args.image)
    scale = (1e6 / (source.shape[0] * source.shape[1])) ** 0.5
    size = (round(source.shape[1] * scale), round(source.shape[0] * scale))
    megapixel = np.asarray(Image.fromarray(source).resize(size, Image.Resampling.LANCZOS))
    height, width = photo.image.shape[:2]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({pinning}), Python "
                   f"{platform.python_version()}, numpy {np.__version__}",
        "preview": f"{args.image} downscaled once to {width} x {height} (longer side "
                   f"{editing.PREVIEW_SIDE} px), JPEG quality {editing.JPEG_QUALITY}",
        "repeats": args.repeats, "target_p95_ms": 150, "timings": {}}
    print(f"{results['preview']}; {results['machine']}; {args.repeats} runs each")
    print(f"{'case':<48}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")

    def report(label: str, timing: dict[str, float]) -> None:
        results["timings"][label] = timing
        print(f"{label:<48}{timing['p50_ms']:>9.1f}{timing['p95_ms']:>9.1f}"
              f"{timing['max_ms']:>9.1f}", flush=True)

    for name, raw in (("typical", TYPICAL_ANSWER), ("full", FULL_ANSWER)):
        answers = [parse_answer(_moved(raw, i)) for i in range(80)]
        report(f"preview re-render, {name} answer",
               _time(lambda i, a=answers: editing.preview_jpeg(photo, a[i % 80]), args.repeats))
    for name, raw in (("typical", TYPICAL_ANSWER), ("full", FULL_ANSWER)):
        answers = [parse_answer(_moved(raw, i)) for i in range(80)]
        report(f"for comparison: PNG at preview size, {name}",
               _time(lambda i, a=answers: to_png_bytes(render(photo.image, a[i % 80])),
                     max(10, args.repeats // 10)))
        report(f"for comparison: JPEG at 1 MP, {name}",
               _time(lambda i, a=answers: editing.encode_jpeg(render(megapixel, a[i % 80])),
                     max(10, args.repeats // 10)))

    from streamlit.testing.v1 import AppTest

    for name, raw in (("typical", TYPICAL_ANSWER), ("full", FULL_ANSWER)):
        app = AppTest.from_function(_editor_script, args=(raw,), default_timeout=120)
        app.run()
        start = int(raw["adjust"]["temperature"])

        def move(i: int, app: AppTest = app, start: int = start) -> None:
            value = max(-100, min(100, start - 40 + (i + 41) % 80))
            app.slider(key="bench.adjust.temperature").set_value(value)
            app.run()
            if app.exception:
                raise RuntimeError(str(app.exception))

        report(f"editor run in AppTest after a slider move, {name}", _time(move, args.app_repeats))

    if args.browser:
        if hasattr(os, "sched_setaffinity"):   # the server and Chromium get the machine's cores
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        for name, raw in (("typical", TYPICAL_ANSWER), ("full", FULL_ANSWER)):
            report(f"in Chromium: key press to the new preview shown, {name}",
                   _browser(_BROWSER_APP, raw, args.app_repeats))
        report("in Chromium: the floor, the same widgets and an image, nothing computed",
               _browser(_FLOOR_APP, {}, args.app_repeats))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
