"""The renderer: each slider's direction, selective bands, filters, identity, I/O and panels."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.strategies import answers
from workbench import render as R
from workbench.errors import WorkbenchError
from workbench.tools import ADJUST_KEYS, FILTER_CATALOGUE, FILTER_NAMES, Answer, parse_answer

LEVELS = (-100, -50, 0, 50, 100)


def adjusted(image: np.ndarray, **sliders: int) -> np.ndarray:
    return R.render(image, parse_answer({"adjust": sliders}))


def selective(image: np.ndarray, **colours: dict[str, int]) -> np.ndarray:
    return R.render(image, parse_answer({"selective_adjust": colours}))


def patch(rgb: tuple[int, int, int], size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), rgb, dtype=np.uint8)


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(float) @ np.array([0.2126, 0.7152, 0.0722])


def chroma(image: np.ndarray) -> float:
    pixels = image.astype(float)
    return float((pixels.max(axis=2) - pixels.min(axis=2)).mean())


def ramp() -> np.ndarray:
    """(8, 256, 3) grey ramp from black to white."""
    return np.repeat(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 8, 0), 3, 2)


def colourful(size: int = 48) -> np.ndarray:
    """(size, size, 3): hues across, from dark to bright down, plus a grey column."""
    hue = np.linspace(0, 1, size, endpoint=False)[None, :]
    value = np.linspace(0.3, 1.0, size)[:, None]
    hsv = np.stack([np.broadcast_to(hue, (size, size)) * 255,
                    np.full((size, size), 200.0), np.broadcast_to(value, (size, size)) * 255], -1)
    image = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")).copy()
    image[:, :4] = 128
    return image


def halves(dark: int, bright: int) -> np.ndarray:
    image = np.full((16, 32, 3), dark, dtype=np.uint8)
    image[:, 16:] = bright
    return image


def increasing(values: list[float]) -> bool:
    return all(a < b for a, b in pairwise(values))


# --- adjust sliders


def test_every_slider_and_filter_is_documented() -> None:
    assert tuple(R.SLIDER_EFFECTS) == ADJUST_KEYS
    assert all(len(text) > 20 for text in R.SLIDER_EFFECTS.values())
    assert set(R.FILTER_EFFECTS) == set(FILTER_NAMES)
    assert R.FILTER_EFFECTS["mono_Noir"] == FILTER_CATALOGUE["mono_Noir"].description


def test_more_exposure_is_brighter() -> None:
    means = [luma(adjusted(ramp(), exposure=v)).mean() for v in LEVELS]
    assert increasing(means)
    # +100 is two stops: a linear-light mid value of 18% (118) becomes 72% (220).
    assert abs(int(adjusted(patch((118, 118, 118)), exposure=100)[0, 0, 0]) - 221) <= 3


def test_contrast_spreads_tones_around_mid_grey() -> None:
    stds = [luma(adjusted(ramp(), contrast=v)).std() for v in LEVELS]
    assert increasing(stds)
    for v in LEVELS:
        assert abs(int(adjusted(patch((128, 128, 128)), contrast=v)[0, 0, 0]) - 128) <= 1


def test_brightness_lifts_mid_tones_and_keeps_black_and_white() -> None:
    means = [luma(adjusted(ramp(), brightness=v)).mean() for v in LEVELS]
    assert increasing(means)
    out = adjusted(ramp(), brightness=80)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255


def test_highlights_act_on_bright_tones_only() -> None:
    image = halves(40, 220)
    down, up = adjusted(image, highlights=-60), adjusted(image, highlights=60)
    assert down[:, 16:].mean() < 220 - 10 < 220 + 5 < up[:, 16:].mean()
    assert np.array_equal(down[:, :16], image[:, :16])
    assert np.array_equal(up[:, :16], image[:, :16])


def test_shadows_act_on_dark_tones_only() -> None:
    image = halves(40, 235)
    up, down = adjusted(image, shadows=60), adjusted(image, shadows=-60)
    assert up[:, :16].mean() > 40 + 10 and down[:, :16].mean() < 40 - 5
    assert abs(up[:, 16:].mean() - 235) <= 1 and abs(down[:, 16:].mean() - 235) <= 1
    assert increasing([luma(adjusted(image, shadows=v))[:, :16].mean() for v in LEVELS])


def test_saturation_scales_chroma_and_minus_100_is_grey() -> None:
    image = colourful()
    chromas = [chroma(adjusted(image, saturation=v)) for v in LEVELS]
    assert increasing(chromas)
    grey = adjusted(image, saturation=-100).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1
    # Desaturating keeps the luminance (Rec. 709 weights).
    assert np.abs(luma(grey) - luma(image)).max() <= 1.5


def test_vibrance_boosts_dull_colours_more_than_saturated_ones() -> None:
    dull, vivid = patch((150, 130, 120)), patch((220, 60, 40))
    gain_dull = chroma(adjusted(dull, vibrance=60)) / chroma(dull)
    gain_vivid = chroma(adjusted(vivid, vibrance=60)) / chroma(vivid)
    assert gain_dull > gain_vivid + 0.2 and gain_vivid >= 1.0
    assert chroma(adjusted(dull, vibrance=-60)) < chroma(dull)
    grey = patch((128, 128, 128))
    assert np.array_equal(adjusted(grey, vibrance=100), grey)


def test_temperature_warms_red_against_blue() -> None:
    grey = patch((128, 128, 128))
    balance = [float(np.diff(adjusted(grey, temperature=v)[0, 0, ::-2].astype(int))[0])
               for v in LEVELS]  # R - B
    assert increasing(balance)
    warm = adjusted(grey, temperature=40)[0, 0].astype(int)
    assert warm[0] > warm[1] > warm[2]


def test_tint_moves_between_green_and_magenta() -> None:
    grey = patch((128, 128, 128))
    magenta = [float(out[0, 0, [0, 2]].astype(int).mean() - out[0, 0, 1])
               for out in (adjusted(grey, tint=v) for v in LEVELS)]
    assert increasing(magenta)
    assert magenta[0] < 0 < magenta[-1]


def test_hue_rotates_red_towards_yellow_or_magenta_and_keeps_greys() -> None:
    red = patch((200, 30, 30))
    towards_yellow = adjusted(red, hue=20)[0, 0].astype(int)  # +36 degrees
    towards_magenta = adjusted(red, hue=-20)[0, 0].astype(int)
    assert towards_yellow[1] > 30 + 40 and towards_yellow[2] <= 30
    assert towards_magenta[2] > 30 + 40 and towards_magenta[1] <= 30
    opposite = adjusted(red, hue=100)[0, 0].astype(int)  # 180 degrees: cyan
    assert opposite[0] < opposite[1] and opposite[0] < opposite[2]
    grey = ramp()
    assert np.abs(adjusted(grey, hue=37).astype(int) - grey).max() <= 1


def test_bloom_brightens_around_highlights() -> None:
    image = np.full((100, 100, 3), 30, dtype=np.uint8)
    image[40:60, 40:60] = 250
    out = adjusted(image, bloom=80).astype(int)
    assert out[35, 50, 0] > 30 + 5 and out[50, 36, 1] > 30 + 5  # just outside the bright square
    assert abs(out[2, 2, 0] - 30) <= 2  # far away: untouched
    assert (out >= image).all()
    fainter = adjusted(image, bloom=-80).astype(int)
    assert fainter[35, 50, 0] <= 30 and fainter[50, 50, 0] >= 248


def edges() -> np.ndarray:
    """(120, 160, 3): vertical bars of mid tones with a soft wave, edges and texture to enhance."""
    x = np.arange(160)
    row = 100 + 40 * ((x // 20) % 2) + 15 * np.sin(x / 6.0)
    image = np.repeat(np.repeat(row[None, :, None], 120, 0), 3, 2)
    return image.astype(np.uint8)


def local_contrast(image: np.ndarray) -> float:
    return float(np.abs(np.diff(luma(image), axis=1)).mean())


@pytest.mark.parametrize("slider", ["sharpen", "structure"])
def test_sharpen_and_structure_raise_local_contrast(slider: str) -> None:
    image = edges()
    contrasts = [local_contrast(adjusted(image, **{slider: v})) for v in LEVELS]
    assert increasing(contrasts)
    assert abs(luma(adjusted(image, **{slider: 80})).mean() - luma(image).mean()) < 3


def test_linear_offset_lifts_or_drops_the_black_level() -> None:
    means = [luma(adjusted(ramp(), linearOffset=v)).mean() for v in LEVELS]
    assert increasing(means)
    assert adjusted(patch((0, 0, 0)), linearOffset=50)[0, 0, 0] > 20
    assert adjusted(patch((30, 30, 30)), linearOffset=-100)[0, 0, 0] == 0


# --- selective_adjust


def test_blue_change_leaves_red_exactly_and_changes_blue() -> None:
    image = np.concatenate([patch((255, 0, 0)), patch((40, 70, 200)), patch((128, 128, 128))], 1)
    for channels in ({"saturation": -80}, {"luminance": 60}, {"saturation": 50, "luminance": -50}):
        out = selective(image, blue=channels)
        assert np.array_equal(out[:, :8], image[:, :8])  # pure red
        assert np.array_equal(out[:, 16:], image[:, 16:])  # grey
        assert np.abs(out[:, 8:16].astype(int) - image[:, 8:16]).max() > 10


def test_red_luminance_and_saturation() -> None:
    red = patch((180, 40, 40))
    assert luma(selective(red, red={"luminance": 60})).mean() > luma(red).mean() + 10
    assert luma(selective(red, red={"luminance": -60})).mean() < luma(red).mean() - 10
    assert chroma(selective(red, red={"saturation": -100})) <= 1
    assert chroma(selective(red, red={"saturation": 50})) > chroma(red)


def test_bands_fall_off_smoothly_between_centres() -> None:
    orange = patch((255, 128, 0))  # hue 30 degrees: the orange centre, half-way red to yellow
    assert chroma(selective(orange, orange={"saturation": -100})) <= 1
    half = chroma(selective(orange, red={"saturation": -100}))
    assert half == pytest.approx(chroma(orange), abs=1)  # red's weight is 0 at orange's centre
    between = patch((255, 64, 0))  # about 15 degrees: half red, half orange
    partial = chroma(selective(between, red={"saturation": -100}))
    assert 0.3 * chroma(between) < partial < 0.7 * chroma(between)


# --- identity and filters


@pytest.mark.parametrize("raw", [
    {}, {"adjust": {}}, {"adjust": {key: 0 for key in ADJUST_KEYS}},
    {"selective_adjust": {"red": {"saturation": 0, "luminance": 0}}},
    {"filter": {"name": "mono_Noir", "intensity": 0}},
    {"adjust": {}, "selective_adjust": {}, "filter": {"name": "vivid_Pop", "intensity": 0}},
])
def test_neutral_answers_return_the_image_unchanged(raw: dict[str, Any]) -> None:
    image = colourful()
    out = R.render(image, parse_answer(raw))
    assert out is not image and out.dtype == np.uint8 and np.array_equal(out, image)
    assert np.array_equal(R.render(image, Answer()), image)


def test_render_leaves_its_input_alone_and_is_deterministic() -> None:
    image = colourful()
    before = image.copy()
    answer = parse_answer({"adjust": {key: 40 for key in ADJUST_KEYS},
                           "filter": {"name": "mood_Dreamy", "intensity": 70}})
    first = R.render(image, answer)
    assert np.array_equal(image, before)
    assert np.array_equal(first, R.render(image, answer))


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_each_filter_changes_a_colourful_image(name: str) -> None:
    image = colourful()
    out = R.render(image, parse_answer({"filter": {"name": name, "intensity": 100}}))
    assert np.abs(out.astype(int) - image).mean() > 2
    look = FILTER_CATALOGUE[name]
    if look.mono and look.shadow_tint is None and look.highlight_tint is None:
        spread = out.astype(int).max(axis=2) - out.astype(int).min(axis=2)
        assert spread.max() <= 1


def test_filter_intensity_scales_the_effect() -> None:
    image = colourful()
    changes = [np.abs(R.render(image, parse_answer({"filter": {"name": "warm_Golden",
                                                               "intensity": i}})).astype(int)
                      - image).mean() for i in (0, 30, 60, 100)]
    assert changes[0] == 0 and increasing(changes)


def test_warm_and_cool_looks_go_the_right_way() -> None:
    grey = patch((150, 150, 150))
    warm = R.render(grey, parse_answer({"filter": {"name": "warm_Golden", "intensity": 60}}))
    cool = R.render(grey, parse_answer({"filter": {"name": "cool_Morning", "intensity": 60}}))
    assert int(warm[0, 0, 0]) - int(warm[0, 0, 2]) > 10
    assert int(cool[0, 0, 2]) - int(cool[0, 0, 0]) > 10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=answers, height=st.integers(1, 24), width=st.integers(1, 24),
       seed=st.integers(0, 2**16))
def test_any_valid_answer_renders_cleanly(answer: Answer, height: int, width: int,
                                          seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    # Any invalid value, division by zero or overflow in the float pipeline raises here.
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = R.render(image, answer)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_render_rejects_what_is_not_an_rgb_image() -> None:
    bad_images: list[np.ndarray] = [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                    np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)]
    for bad in bad_images:
        with pytest.raises(R.ImageError, match="RGB uint8"):
            R.render(bad, Answer())


def test_large_images_use_the_fast_blur_without_seams() -> None:
    # Big enough for the downsampled blur and several strips: a smooth input stays smooth.
    image = np.repeat(np.linspace(40, 215, 700)[None, :, None], 300, 0).repeat(3, 2)
    image = image.astype(np.uint8)
    out = adjusted(image, structure=60, bloom=60, sharpen=40).astype(int)
    assert np.abs(np.diff(out, axis=0)).max() <= 2  # no steps between strips or blocks
    assert np.abs(np.diff(out, axis=1)).max() <= 3


def test_strips_and_blocks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.asarray(Image.fromarray(R.load_image("chelsea")).resize((240, 160)))
    answer = parse_answer({"adjust": {key: 35 for key in ADJUST_KEYS},
                           "selective_adjust": {"orange": {"saturation": 30, "luminance": 20}},
                           "filter": {"name": "mood_Dreamy", "intensity": 80}})
    monkeypatch.setattr(R, "STRIP_PIXELS", 10**9)  # the whole image in one strip
    whole = R.render(image, answer).astype(int)
    monkeypatch.setattr(R, "STRIP_PIXELS", 1)  # one row per strip
    assert np.abs(R.render(image, answer).astype(int) - whole).max() <= 1


# --- loading and saving


@pytest.mark.parametrize("name", R.SAMPLE_IMAGES)
def test_samples_load_as_rgb(name: str) -> None:
    image = R.load_image(name)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert min(image.shape[:2]) >= 200


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_png_bytes_round_trip_and_files(tmp_path: Path) -> None:
    image = colourful(20)
    assert np.array_equal(R.load_image(R.to_png_bytes(image)), image)
    path = tmp_path / "sub" / "out.png"
    R.save_png(image, path)
    assert np.array_equal(R.load_image(path), image)
    assert np.array_equal(R.load_image(str(path)), image)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "I;16", "1"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    source = Image.fromarray(colourful(16)).convert("RGBA" if mode in ("RGBA", "LA") else "RGB")
    converted = source.convert(mode) if mode != "I;16" else Image.fromarray(
        np.arange(256, dtype=np.uint16).reshape(16, 16) * np.uint16(257))  # 16-bit grey
    data = encode(converted, "TIFF" if mode == "CMYK" else "PNG")
    image = R.load_image(data)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    if mode == "I;16":
        assert image[0, 0, 0] == 0 and image[-1, -1, 0] == 255


def test_float_images_scale_to_8_bits() -> None:
    values = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    image = R.load_image(encode(Image.fromarray(values, "F"), "TIFF"))
    assert image[0, 0, 0] == 0 and image[-1, -1, 0] == 255


def test_transparent_pixels_become_white() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255
    image = R.load_image(encode(Image.fromarray(rgba, "RGBA")))
    assert tuple(image[0, 0]) == (200, 0, 0) and tuple(image[3, 3]) == (255, 255, 255)


def test_load_errors_say_what_is_wrong(tmp_path: Path) -> None:
    assert issubclass(R.ImageError, WorkbenchError)
    with pytest.raises(R.ImageError, match="uploaded data is not an image"):
        R.load_image(b"this is not a picture")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(R.ImageError, match="notes.png is not an image"):
        R.load_image(text)
    with pytest.raises(R.ImageError, match="no such image file: .*missing.jpg"):
        R.load_image(tmp_path / "missing.jpg")
    with pytest.raises(R.ImageError, match="'moon' is neither a sample image "
                                           r"\(astronaut, coffee, chelsea, rocket\)"):
        R.load_image("moon")
    png = R.to_png_bytes(colourful(20))
    with pytest.raises(R.ImageError, match="20 x 20 = 400 pixels; the limit is 100"):
        R.load_image(png, max_pixels=100)
    with pytest.raises(R.ImageError, match="MiB; the limit is"):
        R.load_image(png, max_bytes=100)
    path = tmp_path / "big.png"
    path.write_bytes(png)
    with pytest.raises(R.ImageError, match="big.png is .* MiB; the limit is"):
        R.load_image(path, max_bytes=100)
    with pytest.raises(R.ImageError, match="could not be decoded"):
        R.load_image(png[:len(png) // 2])


def test_decompression_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow refuses above twice this
    with pytest.raises(R.ImageError, match="too many pixels"):
        R.load_image(R.to_png_bytes(colourful(20)), max_pixels=10**9)


def test_fit_image_downscales_keeping_the_aspect() -> None:
    image = np.zeros((300, 1200, 3), dtype=np.uint8)
    assert R.fit_image(image, max_side=400).shape == (100, 400, 3)
    assert R.fit_image(image).shape == (256, 1024, 3)
    small = colourful(20)
    assert R.fit_image(small) is small


# --- panels


def test_compare_strip_scales_panels_to_one_height() -> None:
    panels = [("original", np.zeros((100, 200, 3), np.uint8)),
              ("teacher", np.zeros((50, 50, 3), np.uint8)),
              ("student", np.zeros((64, 32, 3), np.uint8))]
    strip = R.compare_strip(panels, height=64)
    assert strip.shape == (64 + R.CAPTION_HEIGHT, 128 + 64 + 32 + 2 * R.GAP, 3)
    assert strip.dtype == np.uint8
    # The caption bar has text in it.
    assert (strip[64:, :128] > 100).any()


@pytest.mark.parametrize("caption", [
    "日本語のキャプション 🎨✨", "x" * 5000, "tabs\tand\nnewlines", "", "e\u0301 \u200b \x00 \ud800"])
def test_captions_take_any_text(caption: str) -> None:
    strip = R.compare_strip([(caption, colourful(30)), (caption, np.zeros((30, 1, 3), np.uint8))],
                            height=30)
    assert strip.shape == (30 + R.CAPTION_HEIGHT, 30 + 1 + R.GAP, 3)


def test_contact_sheet_rows_have_labels_and_panels() -> None:
    image = colourful(40)
    rows = [("golden hour", [("teacher", image), ("student", image)]),
            ("a very long intent " * 30 + "🌅", [("only", image)])]
    sheet = R.contact_sheet(rows, height=40)
    row_height = 40 + R.CAPTION_HEIGHT
    assert sheet.shape == (2 * row_height + R.GAP, R.LABEL_WIDTH + 2 * 40 + R.GAP, 3)
    assert (sheet[:row_height, :R.LABEL_WIDTH] > 100).any()  # the label is drawn
    with pytest.raises(R.ImageError):
        R.contact_sheet([])
    with pytest.raises(R.ImageError):
        R.compare_strip([])


# --- the original / teacher / student comparison

WARM = parse_answer({"adjust": {"temperature": 60},
                     "filter": {"name": "warm_Golden", "intensity": 50}})
COLD = parse_answer({"adjust": {"temperature": -60, "contrast": 30}})


def test_comparison_is_original_teacher_and_student_side_by_side() -> None:
    image = colourful(40)
    strip = R.comparison(image, WARM, COLD, height=40)
    step = 40 + R.GAP
    assert strip.shape == (40 + R.CAPTION_HEIGHT, 3 * 40 + 2 * R.GAP, 3)
    # At the image's own height each panel is the pixels themselves, the gaps the background.
    assert np.array_equal(strip[:40, :40], image)
    assert np.array_equal(strip[:40, step:step + 40], R.render(image, WARM))
    assert np.array_equal(strip[:40, 2 * step:2 * step + 40], R.render(image, COLD))
    assert (strip[:40, 40:step] == R.BACKGROUND).all()
    # The same pixels, captions included, as the strip every caller used to build by hand.
    for height in (40, 64):
        hand_built = R.compare_strip([("original", image), ("teacher", R.render(image, WARM)),
                                      ("student", R.render(image, COLD))], height)
        assert np.array_equal(R.comparison(image, WARM, COLD, height=height), hand_built)


def test_a_missing_teacher_shows_the_original_and_says_so() -> None:
    image = np.tile(colourful(40), (1, 5, 1))  # (40, 200, 3): wide enough for the captions
    strip = R.comparison(image, None, COLD, height=40)
    assert np.array_equal(strip[:40, 200 + R.GAP:400 + R.GAP], image)
    assert np.array_equal(strip, R.compare_strip(
        [("original", image), ("teacher: not in the data", image),
         ("student", R.render(image, COLD))], 40))
    # A neutral teacher has the same pixels above the captions: only its caption differs.
    neutral = R.comparison(image, Answer(), COLD, height=40)
    assert np.array_equal(neutral[:40], strip[:40]) and not np.array_equal(neutral, strip)


def test_without_a_student_there_are_two_panels_and_labels_are_the_captions() -> None:
    image = colourful(30)
    labels = R.ComparisonLabels(teacher="teacher ground truth")
    strip = R.comparison(image, WARM, height=30, labels=labels)
    assert strip.shape == (30 + R.CAPTION_HEIGHT, 2 * 30 + R.GAP, 3)
    assert np.array_equal(strip, R.compare_strip(
        [("original", image), ("teacher ground truth", R.render(image, WARM))], 30))
    panels = R.comparison_panels(image, WARM, COLD, R.ComparisonLabels(student="student (r1)"))
    assert [caption for caption, _ in panels] == ["original", "teacher", "student (r1)"]
    assert panels[0][1] is image and np.array_equal(panels[2][1], R.render(image, COLD))


def test_importing_the_renderer_stays_light() -> None:
    code = ("import sys, workbench.render; "
            "print(sorted(m for m in ('torch', 'duckdb', 'streamlit', 'skimage', 'scipy') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
