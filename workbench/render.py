"""The renderer: an answer's tool calls applied to an RGB photo (parameters -> pixels).

`render(image, answer)` applies adjust, then selective_adjust, then the filter at its intensity.
Pure numpy in float32; Pillow only for reading, writing and drawing captions; scipy.ndimage (a
dependency of scikit-image) for gaussian blurs of reduced images; scikit-image only to load the
sample photos. Also here: loading any image safely, and side-by-side panels with captions
(`comparison`: original, teacher and student in one strip).

Internally an image is float32 planes, shape (3, H, W), display-encoded values in [0, 1]: one
contiguous plane per channel, processed in strips of rows (see "Rendering" below).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from workbench.errors import WorkbenchError
from workbench.tools import COLOURS, FILTER_CATALOGUE, Answer, FilterLook

RGBImage = npt.NDArray[np.uint8]  # (H, W, 3)
Planes = npt.NDArray[np.float32]  # (3, H, W), or (H, W) for one plane
Sliders = Mapping[str, float]  # adjust key -> amount in [-1, 1] (slider / 100, times intensity)

SAMPLE_IMAGES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket")

SLIDER_EFFECTS: dict[str, str] = {
    "exposure": "Brightens or darkens the whole photo in stops of light, applied in linear light: "
                "+100 is +2 stops (4x the light), -100 is -2 stops.",
    "contrast": "Steepens (S-curve through mid-grey, black and white fixed) or flattens (towards "
                "mid-grey: -100 maps black and white to 30% and 70% grey) the tones of each channel.",
    "brightness": "Lifts or lowers the mid-tones with a curve that keeps black and white fixed "
                  "(+100 takes mid-grey from 50% to 70%).",
    "highlights": "Acts on the bright tones only (a smooth mask over luminance above 25%): negative "
                  "pulls them down towards mid-grey to recover detail, positive pushes them to white.",
    "shadows": "Acts on the dark tones only (a smooth mask over luminance below 75%): positive lifts "
               "them towards mid-grey (+100 lifts black to 20%), negative deepens them to black.",
    "saturation": "Scales every colour's chroma around its luminance uniformly: -100 is greyscale, "
                  "+100 doubles the chroma.",
    "vibrance": "Scales chroma by an amount that falls with the pixel's saturation, so dull colours "
                "gain (or lose) the most and already saturated ones are protected.",
    "temperature": "White balance along blue-amber in linear light: positive warms (red up, blue "
                   "down, +100 is about half a stop each way), negative cools.",
    "tint": "White balance along green-magenta in linear light: positive turns towards magenta "
            "(green down), negative towards green.",
    "hue": "Rotates every hue around the grey axis, greys untouched: +100 is +180 degrees "
           "(red -> yellow -> green for positive values).",
    "bloom": "Adds a soft glow spread from the highlights (a blurred copy of the bright parts, "
             "radius 3% of the short side, screened on top); negative takes away the glow that "
             "spills around bright areas instead.",
    "sharpen": "Unsharp mask on luminance with a 3x3 blur: positive crisps fine edges (amount up "
               "to 1.5), negative softens them.",
    "structure": "Local contrast at a large radius (2% of the short side), weighted to the "
                 "mid-tones: positive brings out texture and clarity, negative smooths it.",
    "linearOffset": "Adds a constant to every channel in linear light: positive lifts the black "
                    "level to a faded grey (+100 takes black to about 19%), negative crushes it.",
}
SELECTIVE_EFFECTS: dict[str, str] = {
    "saturation": "Scales the chroma of pixels of that hue (-100 removes that colour, +100 doubles "
                  "it), weighted by how close the pixel's hue is to the band's centre and by its "
                  "chroma (none for greys, full from 30%).",
    "luminance": "Lightens (towards white, up to 35%) or darkens (down to half) the pixels of that "
                 "hue, with the same weighting; greys and other hues are untouched.",
}
FILTER_EFFECTS: dict[str, str] = {name: look.description for name, look in FILTER_CATALOGUE.items()}
# Hue band centres in degrees: the angle around the grey axis, which equals the HSV hue at these
# centres. A band's weight falls off as a raised cosine towards the neighbouring centres.
HUE_CENTRES: dict[str, float] = {
    "red": 0.0, "orange": 30.0, "yellow": 60.0, "green": 120.0, "cyan": 180.0, "blue": 240.0}

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709 weights
LUT_SIZE = 4096  # levels for curves applied to float planes: far finer than the 8-bit output
STRIP_PIXELS = 2**16  # pixels per strip: a float plane strip is 256 KB, cache-sized
HUE_BINS = 720  # half-degree bins for the selective-adjust hue table

EXPOSURE_STOPS = 2.0
TEMPERATURE_STOPS = 0.5  # red and blue gains at +-100, in stops, before luminance normalising
TINT_STOPS = 0.4  # green gain at +-100
LINEAR_OFFSET = 0.03  # linear-light offset at +-100 (about 19% grey in display terms)
BRIGHTNESS = 0.8
CONTRAST_FLATTEN = 0.6
HIGHLIGHTS, SHADOWS = 0.5, 0.4
STRUCTURE_RADIUS = 0.02  # of the short side
STRUCTURE_AMOUNT, STRUCTURE_SMOOTHING = 1.0, 0.5  # positive gain; share removed at -100
SHARPEN_AMOUNT = 1.5
BLOOM_RADIUS = 0.03  # of the short side
BLOOM_AMOUNT, BLOOM_DEGLOW = 1.0, 0.5
SELECTIVE_LIGHTEN, SELECTIVE_DARKEN = 0.35, 0.5
SPLIT_TONE_STRENGTH = 0.5

CAPTION_HEIGHT = 22  # px, the bar under each panel
GAP = 4  # px between panels and between contact-sheet rows
LABEL_WIDTH = 180  # px, the contact sheet's label column
BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (235, 235, 235)
FONT_SIZE = 14


class ImageError(WorkbenchError):
    """An image could not be loaded or used; the message names the image and the problem."""


# --------------------------------------------------------------------------------------------
# Loading and saving


def load_image(source: str | Path | bytes, *, max_pixels: int = 25_000_000,
               max_bytes: int = 50 * 2**20) -> RGBImage:
    """A sample name (see SAMPLE_IMAGES), a file path or uploaded bytes -> RGB uint8 (H, W, 3)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageError(f"the uploaded image is {len(data) / 2**20:.1f} MiB; the limit is "
                             f"{max_bytes / 2**20:.1f} MiB")
        return _decode(data, "the uploaded data", max_pixels)
    if isinstance(source, str) and source in SAMPLE_IMAGES:
        return _sample(source)
    path = Path(source)
    if not path.is_file():
        if isinstance(source, str) and _looks_like_name(source):
            raise ImageError(f"'{source}' is neither a sample image ({', '.join(SAMPLE_IMAGES)}) "
                             f"nor an existing file")
        raise ImageError(f"no such image file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"{path} is {size / 2**20:.1f} MiB; the limit is "
                         f"{max_bytes / 2**20:.1f} MiB")
    return _decode(path.read_bytes(), str(path), max_pixels)


def _looks_like_name(text: str) -> bool:
    # A bare word without a folder or an extension was meant as a sample name, not a path.
    return "/" not in text and "\\" not in text and "." not in text


def _sample(name: str) -> RGBImage:
    from skimage import data  # imported here: slow to import, and only samples need it

    return np.ascontiguousarray(getattr(data, name)()[..., :3], dtype=np.uint8)


def _decode(data: bytes, what: str, max_pixels: int) -> RGBImage:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"{what} is not an image that can be read (PNG, JPEG, WebP, TIFF, ...)")
    except Image.DecompressionBombError:
        raise ImageError(f"{what} has too many pixels (over {max_pixels:,})")
    with image:
        # The header gives the size: refuse before decoding a huge bitmap into memory.
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"{what} is {width} x {height} = {width * height:,} pixels; the "
                             f"limit is {max_pixels:,}")
        try:
            image.load()
            return np.asarray(_to_rgb(ImageOps.exif_transpose(image)), dtype=np.uint8).copy()
        except (OSError, ValueError, SyntaxError) as error:
            raise ImageError(f"{what} could not be decoded: {error}") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: alpha composited over white, 16-bit and float scaled to 8 bits."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float32)  # (H, W)
        peak = float(values.max()) if values.size else 0.0
        # 16-bit data -> 8 bits; float data in [0, 1] -> [0, 255]; anything else as it is.
        factor = 1 / 257 if peak > 255 else (255.0 if image.mode == "F" and peak <= 1.0 else 1.0)
        image = Image.fromarray(np.clip(values * factor + 0.5, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def fit_image(image: RGBImage, max_side: int = 1024) -> RGBImage:
    """Downscale (Lanczos, aspect kept) so that neither side exceeds max_side; smaller as is."""
    _check_image(image)
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def save_png(image: RGBImage, path: str | Path) -> None:
    """Write an RGB uint8 image as PNG, creating the folder if needed."""
    _check_image(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def to_png_bytes(image: RGBImage) -> bytes:
    """An RGB uint8 image as PNG bytes (for downloads and the app)."""
    _check_image(image)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ImageError(f"expected an RGB uint8 array of shape (H, W, 3); got {dtype} {shape}")


# --------------------------------------------------------------------------------------------
# Rendering.
#
# Most operations are per pixel. They run strip by strip (a few dozen rows at a time), so that
# their temporaries are small and stay in the CPU cache instead of being fresh 4 MB arrays, whose
# page faults would cost more than the arithmetic. Operations that need the whole image (the
# blurs of structure, sharpen and bloom) are `_WholeImage` stages: the strips are first swept up
# to that point, then the stage looks at all the planes and returns a per-strip step.

Step = Callable[[Planes, slice], Planes]  # strip (3, h, W) and its rows -> new strip (may be in place)


@dataclass(frozen=True)
class _WholeImage:
    """A stage that must see the finished planes (3, H, W) first; returns its per-strip step."""

    prepare: Callable[[Planes], Step]


Stage = Step | _WholeImage


def render(image: RGBImage, answer: Answer) -> RGBImage:
    """Apply an answer to an RGB uint8 image (H, W, 3): adjust, selective_adjust, then the filter.

    Tools and operations whose parameters are all zero are skipped, so a neutral answer returns
    the pixels unchanged (a copy). The input is never modified."""
    _check_image(image)
    adjust = _sliders(answer.adjust or {}, 1.0)
    selective = {colour: channels for colour, channels in (answer.selective_adjust or {}).items()
                 if any(channels.values())}
    look = FILTER_CATALOGUE[answer.filter.name] if answer.filter else None
    strength = answer.filter.intensity / 100 if answer.filter else 0.0
    if not adjust and not selective and (look is None or strength == 0):
        return image.copy()
    # The adjust tool's per-channel curves are applied while converting from 8 bits (exact tables).
    stages = _adjust_stages(adjust, with_tone=False)
    if selective:
        stages.append(_selective_step(selective))
    if look is not None and strength > 0:
        stages += _filter_stages(look, strength)
    return _run(image, _loader(adjust), stages)


def _sliders(adjust: Mapping[str, int], scale: float) -> dict[str, float]:
    """Nonzero sliders as amounts in [-1, 1], multiplied by scale (a filter's intensity)."""
    return {key: value / 100 * scale for key, value in adjust.items() if value and scale}


def _run(image: RGBImage, load: Callable[[RGBImage], Planes], stages: list[Stage]) -> RGBImage:
    """Sweep the strips: load from the image, apply the steps, stop at each whole-image stage."""
    height, width = image.shape[:2]
    rows_per_strip = max(1, STRIP_PIXELS // width)
    strips = [slice(top, min(top + rows_per_strip, height))
              for top in range(0, height, rows_per_strip)]
    planes = np.empty((3, height, width), dtype=np.float32)  # untouched unless a stage needs it
    out = np.empty_like(image)
    steps: list[Step] = []
    loaded = False
    for stage in stages:
        if isinstance(stage, _WholeImage):
            for rows in strips:
                strip = _apply(steps, planes[:, rows] if loaded else load(image[rows]), rows)
                if not np.may_share_memory(strip, planes):
                    planes[:, rows] = strip
            loaded = True
            steps = [stage.prepare(planes)]
        else:
            steps.append(stage)
    for rows in strips:
        strip = _apply(steps, planes[:, rows] if loaded else load(image[rows]), rows)
        # Round half up; every value is a float in [0, 1], so there is never a NaN to cast.
        strip = strip * np.float32(255.0)
        strip += np.float32(0.5)
        pixels = strip.astype(np.uint8)  # (3, h, W)
        for channel in range(3):
            out[rows, :, channel] = pixels[channel]
    return out


def _apply(steps: list[Step], strip: Planes, rows: slice) -> Planes:
    for step in steps:
        strip = step(strip, rows)
    return strip


def _loader(s: Sliders) -> Callable[[RGBImage], Planes]:
    """uint8 strip (h, W, 3) -> float planes (3, h, W), through the adjust curves if any are set."""
    table = _tone_table(s, 256) if _has_tone(s) else None  # (3, 256): exact for 8-bit input

    def load(pixels: RGBImage) -> Planes:
        out = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
        for channel in range(3):
            if table is None:
                out[channel] = pixels[..., channel]
            else:
                out[channel] = table[channel].take(pixels[..., channel].astype(np.intp))
        if table is None:
            out *= np.float32(1 / 255)
        return out

    return load


def _adjust_stages(s: Sliders, with_tone: bool = True) -> list[Stage]:
    """The 14 sliders in a fixed order: per-channel curves, tonal masks, colour, local contrast."""
    stages: list[Stage] = []
    if with_tone and _has_tone(s):
        stages.append(_tone_step(s))
    if s.get("highlights") or s.get("shadows"):
        stages.append(_highlights_shadows_step(s.get("highlights", 0.0), s.get("shadows", 0.0)))
    if s.get("saturation") or s.get("hue"):
        stages.append(_colour_step(s.get("saturation", 0.0), s.get("hue", 0.0)))
    if s.get("vibrance"):
        stages.append(_vibrance_step(s["vibrance"]))
    if s.get("structure"):
        stages.append(_WholeImage(partial(_structure, s["structure"])))
    if s.get("sharpen"):
        stages.append(_WholeImage(partial(_sharpen, s["sharpen"])))
    if s.get("bloom"):
        stages.append(_WholeImage(partial(_bloom, s["bloom"])))
    return stages


def _luma(x: Planes) -> Planes:
    """(3, h, W) -> (h, W) Rec. 709 luma of the display values.

    einsum, not `@`: a matrix product goes to BLAS, whose threads, woken for every small strip,
    cost far more than the arithmetic when the caller has not pinned them to one."""
    return np.einsum("c,chw->hw", LUMA, x)


def _smoothstep(low: float, high: float, v: Planes) -> Planes:
    """A new array: 0 below low, 1 above high, a smooth cubic between."""
    t = v - np.float32(low)
    t *= np.float32(1 / (high - low))
    np.clip(t, 0.0, 1.0, out=t)
    out = t * np.float32(-2.0)
    out += np.float32(3.0)
    out *= t
    out *= t
    return out


def _clip(x: Planes) -> Planes:
    return np.clip(x, 0.0, 1.0, out=x)


def _scale_chroma(x: Planes, factor: Planes) -> Planes:
    """x -> luma + factor * (x - luma) per pixel, in place; factor (h, W)."""
    luma = _luma(x)
    x -= luma
    x *= factor
    x += luma
    return _clip(x)


def _quantise(v: Planes, levels: int) -> npt.NDArray[np.intp]:
    """Values in [0, 1] -> nearest table index in [0, levels - 1]."""
    scaled = v * np.float32(levels - 1)
    scaled += np.float32(0.5)
    return scaled.astype(np.intp)


# --- Global per-channel curves: exposure, white balance, linear offset, brightness, contrast.

TONE_KEYS = ("exposure", "temperature", "tint", "linearOffset", "brightness", "contrast")


def _has_tone(s: Sliders) -> bool:
    return any(s.get(key) for key in TONE_KEYS)


def _tone_step(s: Sliders) -> Step:
    """The per-channel curves on float planes, through LUT_SIZE-entry tables (3, LUT_SIZE)."""
    table = _tone_table(s, LUT_SIZE)

    def step(x: Planes, rows: slice) -> Planes:
        for channel in range(3):
            np.take(table[channel], _quantise(x[channel], LUT_SIZE), out=x[channel])
        return x

    return step


def _tone_table(s: Sliders, levels: int) -> Planes:
    """(3, levels): the curves sampled at `levels` evenly spaced values in [0, 1]."""
    grid = np.broadcast_to(np.linspace(0.0, 1.0, levels), (3, levels))
    return np.ascontiguousarray(_tone_curve(grid, s), dtype=np.float32)


def _tone_curve(v: npt.NDArray[np.float64], s: Sliders) -> npt.NDArray[np.float64]:
    """(3, N) display values -> (3, N): one curve per channel (row)."""
    gains = _white_balance(s.get("temperature", 0.0), s.get("tint", 0.0))
    gains = gains * 2.0 ** (EXPOSURE_STOPS * s.get("exposure", 0.0))
    linear = _srgb_to_linear(v) * gains[:, None] + LINEAR_OFFSET * s.get("linearOffset", 0.0)
    v = _linear_to_srgb(np.clip(linear, 0.0, 1.0))
    b = BRIGHTNESS * s.get("brightness", 0.0)
    v = v + b * v * (1.0 - v)  # monotonic for |b| <= 1; 0 and 1 stay put
    c = s.get("contrast", 0.0)
    if c > 0:
        v = v + c * (v * v * (3.0 - 2.0 * v) - v)  # towards smoothstep: slope 1 + c/2 at mid-grey
    else:
        v = 0.5 + (v - 0.5) * (1.0 + CONTRAST_FLATTEN * c)
    return np.clip(v, 0.0, 1.0)


def _white_balance(temperature: float, tint: float) -> npt.NDArray[np.float64]:
    """(3,) linear-light channel gains, normalised so that white keeps its luminance."""
    warm, magenta = TEMPERATURE_STOPS * temperature, TINT_STOPS * tint
    gains = np.array([2.0 ** (warm + magenta / 2), 2.0 ** -magenta, 2.0 ** (-warm + magenta / 2)])
    return gains / float(LUMA @ gains)


def _srgb_to_linear(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


# --- Tonal ranges on luminance: highlights and shadows.


def _highlights_shadows_step(highlights: float, shadows: float) -> Step:
    """Move each pixel's luminance along a curve; the change is added to all three channels."""
    grid = np.linspace(0.0, 1.0, LUT_SIZE, dtype=np.float32)
    delta = _tonal_curve(grid, highlights, shadows) - grid  # (LUT_SIZE,)

    def step(x: Planes, rows: slice) -> Planes:
        luma = _luma(x)
        x += np.take(delta, _quantise(np.clip(luma, 0.0, 1.0, out=luma), LUT_SIZE))  # (h, W)
        return _clip(x)

    return step


def _tonal_curve(v: Planes, highlights: float, shadows: float) -> Planes:
    """Luminance curve; both amounts pull towards a target inside their smooth mask (monotonic)."""
    bright = _smoothstep(0.25, 1.0, v)  # 0 below 25% luminance: dark tones untouched
    dark = 1.0 - _smoothstep(0.0, 0.75, v)  # 0 above 75%
    target = 1.0 if highlights > 0 else 0.5
    v = v + HIGHLIGHTS * abs(highlights) * bright * (target - v)
    target = 0.5 if shadows > 0 else 0.0
    return v + SHADOWS * abs(shadows) * dark * (target - v)


# --- Colour: saturation, hue, vibrance.


def _colour_step(saturation: float, hue: float) -> Step:
    """Saturation (chroma scale around luma) and hue rotation, fused into one 3x3 matrix."""
    k = 1.0 + saturation
    scale = k * np.eye(3) + (1.0 - k) * np.outer(np.ones(3), LUMA)  # x -> luma + k (x - luma)
    matrix = (_hue_rotation(math.pi * hue) @ scale).astype(np.float32)

    def step(x: Planes, rows: slice) -> Planes:
        return _clip(np.einsum("ij,jhw->ihw", matrix, x))  # not BLAS: see _luma

    return step


def _hue_rotation(angle: float) -> npt.NDArray[np.float64]:
    """(3, 3) rotation about the grey axis (1, 1, 1); positive turns red towards yellow."""
    u = np.ones(3) / math.sqrt(3.0)
    cross = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    return (math.cos(angle) * np.eye(3) + math.sin(angle) * cross
            + (1.0 - math.cos(angle)) * np.outer(u, u))


def _saturation(x: Planes) -> Planes:
    """(3, h, W) -> (h, W) HSV saturation (max - min) / max; 0 for black."""
    high = np.maximum(x[0], x[1])
    np.maximum(high, x[2], out=high)
    low = np.minimum(x[0], x[1])
    np.minimum(low, x[2], out=low)
    np.subtract(high, low, out=low)
    np.maximum(high, np.float32(1e-6), out=high)
    return np.divide(low, high, out=low)


def _vibrance_step(vibrance: float) -> Step:
    """Chroma scale 1 + v (1 - S): full effect on greyish pixels, none on fully saturated ones."""
    def step(x: Planes, rows: slice) -> Planes:
        factor = _saturation(x)
        factor *= np.float32(-vibrance)
        factor += np.float32(1.0 + vibrance)
        return _scale_chroma(x, factor)

    return step


# --- Local contrast and glow: structure, sharpen, bloom (whole-image stages).


def _structure(amount: float, planes: Planes) -> Step:
    """Large-radius unsharp mask on luma, weighted to the mid-tones; added to all channels."""
    blurred = _smooth(planes, lambda x: _luma(x)[None], STRUCTURE_RADIUS * min(planes.shape[1:]))
    # Smoothing is gentler than boosting: removing all large-scale detail reads as a plain blur.
    gain = np.float32(4.0 * (STRUCTURE_AMOUNT * amount if amount > 0
                             else STRUCTURE_SMOOTHING * amount))

    def step(x: Planes, rows: slice) -> Planes:
        luma = _luma(x)
        detail = luma - blurred(rows)[0]  # (h, W) large-scale detail
        midtones = np.float32(1.0) - luma
        midtones *= luma
        midtones *= gain  # 4 L (1 - L): 1 at mid-grey, 0 at black and white
        detail *= midtones
        x += detail
        return _clip(x)

    return step


def _sharpen(amount: float, planes: Planes) -> Step:
    """Unsharp mask on luma with a 3x3 binomial blur; negative amounts blur instead."""
    luma = _luma(planes)  # (H, W), kept: each strip's blur needs the rows around it unchanged
    gain = np.float32(SHARPEN_AMOUNT * amount if amount > 0 else amount)

    def step(x: Planes, rows: slice) -> Planes:
        top, bottom = rows.start, rows.stop
        # The strip's luma plus one row above and below (repeated at the image's edges).
        above, below = max(top - 1, 0), min(bottom, luma.shape[0] - 1)
        window = np.concatenate([luma[above:above + 1], luma[rows], luma[below:below + 1]])
        detail = luma[rows] - _binomial3(window)[1:-1]
        detail *= gain
        x += detail
        return _clip(x)

    return step


def _bloom(amount: float, planes: Planes) -> Step:
    """Blur the highlights (keeping their colour) and screen the glow on top (or remove it)."""
    def highlights(x: Planes) -> Planes:  # (3, h, W): the colour of the bright parts only
        return x * _smoothstep(0.5, 1.0, _luma(x))

    glow = _smooth(planes, highlights, BLOOM_RADIUS * min(planes.shape[1:]))
    one = np.float32(1.0)

    def step(x: Planes, rows: slice) -> Planes:
        spread = glow(rows)  # (3, h, W)
        if amount > 0:  # screen: x + g (1 - x) with 0 <= g <= 1 stays in [0, 1], no clip
            spread *= np.float32(BLOOM_AMOUNT * amount)
            rest = one - x
            rest *= spread
            x += rest
            return x
        # Take away only the glow that spills onto darker surroundings (glow beyond the pixel's
        # own highlight), so bright areas keep their level and their edges get crisper.
        bright = _smoothstep(0.5, 1.0, _luma(x))
        spread -= x * bright
        np.maximum(spread, np.float32(0.0), out=spread)
        spread *= one - bright
        spread *= np.float32(BLOOM_DEGLOW * amount)
        x += spread
        return _clip(x)

    return step


def _binomial3(p: Planes) -> Planes:
    """(n, W) -> (n, W) blurred with the separable [1, 2, 1] / 4 kernel, edges repeated."""
    padded = np.pad(p, 1, mode="edge")
    rows = padded[1:-1] * np.float32(2.0)
    rows += padded[:-2]
    rows += padded[2:]  # (n, W + 2)
    out = rows[:, 1:-1] * np.float32(2.0)
    out += rows[:, :-2]
    out += rows[:, 2:]
    out *= np.float32(1 / 16)
    return out


def _smooth(planes: Planes, values: Callable[[Planes], Planes],
            sigma: float) -> Callable[[slice], Planes]:
    """Gaussian-like blur (sigma in pixels) of values(strip), (k, h, W) per strip of planes.

    Returns a function giving the blurred rows (k, h, W) of any strip. For large sigma the values
    are reduced to d x d block means (strip by strip), blurred at that small size, and
    interpolated back up (bilinear) only for the rows asked for, so nothing full-size is made and
    the cost hardly depends on the radius."""
    from scipy import ndimage  # scikit-image's dependency; imported here to keep imports light

    height, width = planes.shape[1:]
    d = min(16, int(sigma / 2))
    if d < 2 or min(height, width) < 4 * d:  # small radius or image: blur at full size
        full = ndimage.gaussian_filter(values(planes), (0, sigma, sigma), mode="nearest",
                                       truncate=3.0)
        return lambda rows: full[:, rows].copy()
    chunk = max(1, STRIP_PIXELS // (width * d)) * d  # rows per pass, a multiple of d
    small = np.concatenate([_block_means(values(planes[:, top:min(top + chunk, height)]), d)
                            for top in range(0, height - d + 1, chunk)], axis=1)  # (k, H/d, W/d)
    small = ndimage.gaussian_filter(small, (0, sigma / d, sigma / d), mode="nearest",
                                    truncate=3.0)
    first, second, t = _interpolation(small.shape[2], d, width)
    wide = small[:, :, first] * (1.0 - t) + small[:, :, second] * t  # (k, H/d, W)
    first, second, t = _interpolation(small.shape[1], d, height)
    t = t[:, None]

    def rows(strip: slice) -> Planes:
        near = wide[:, first[strip]]
        near *= 1.0 - t[strip]
        near += wide[:, second[strip]] * t[strip]
        return near

    return rows


def _block_means(v: Planes, d: int) -> Planes:
    """(k, n, W) -> (k, n // d, W // d) means of d x d blocks; leftover rows and columns dropped."""
    k, n, width = v.shape[0], v.shape[1] // d, v.shape[2] // d
    rows = v[:, :n * d].reshape(k, n, d, v.shape[2])
    summed = rows[:, :, 0].copy()
    for i in range(1, d):  # adding whole slabs is far faster than a reduction over a small axis
        summed += rows[:, :, i]
    cols = summed[:, :, :width * d].reshape(k, n, width, d)
    out = cols[..., 0].copy()
    for i in range(1, d):
        out += cols[..., i]
    out *= np.float32(1 / (d * d))
    return out


def _interpolation(n: int, d: int, size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp],
                                                       npt.NDArray[np.float32]]:
    """Linear interpolation from n block centres (blocks of d) to `size` pixel centres.

    Returns (first, second, t), each (size,): pixel i = block[first] (1 - t) + block[second] t,
    held at the edge blocks beyond the first and last centres."""
    position = (np.arange(size) + 0.5) / d - 0.5  # in block units
    first = np.clip(np.floor(position), 0, n - 1).astype(np.intp)
    second = np.minimum(first + 1, n - 1)
    t = np.clip(position - first, 0.0, 1.0).astype(np.float32)
    return first, second, t


# --- selective_adjust: six hue bands.


def _selective_step(colours: Mapping[str, Mapping[str, int]]) -> Step:
    """Per-pixel chroma scale and lightness change by hue band, weighted by chroma."""
    def table(channel: str) -> npt.NDArray[np.float32] | None:
        values = np.array([colours.get(c, {}).get(channel, 0) / 100 for c in COLOURS])
        return _hue_table(values) if values.any() else None

    chroma, lightness = table("saturation"), table("luminance")

    def step(x: Planes, rows: slice) -> Planes:
        # Weight by chroma (max - min), full from 30% on: greys and near-black noise stay put.
        high = np.maximum(np.maximum(x[0], x[1]), x[2])
        high -= np.minimum(np.minimum(x[0], x[1]), x[2])
        saturation = _smoothstep(0.0, 0.3, high)  # (h, W)
        hue = _hue_index(x)  # (h, W) bin of the hue tables
        if chroma is not None:
            factor = np.take(chroma, hue)
            factor *= saturation
            factor += np.float32(1.0)  # chroma scale in [0, 2]
            x = _scale_chroma(x, factor)
        if lightness is not None:
            weight = np.take(lightness, hue)
            weight *= saturation  # in [-1, 1]
            lighten = np.maximum(weight, np.float32(0.0))
            lighten *= np.float32(SELECTIVE_LIGHTEN)  # share of the way to white
            gain = np.minimum(weight, np.float32(0.0))
            gain *= np.float32(SELECTIVE_DARKEN)
            gain += np.float32(1.0)
            gain -= lighten  # x + l (1 - x) + d x = x (1 - l + d) + l
            for plane in x:
                plane *= gain
                plane += lighten
            x = _clip(x)
        return x

    return step


def _hue_index(x: Planes) -> npt.NDArray[np.intp]:
    """(3, h, W) -> (h, W) bin of the hue table, from a pseudo-angle (no arctan, no branches).

    The hue is the angle in the opponent plane, a = r - (g + b) / 2, b = sqrt(3) / 2 (g - b),
    which is the plane the hue slider rotates in; it equals the HSV hue at the six primary and
    secondary colours and at orange. The pseudo-angle sign(b) (1 - q), q = a / (|a| + |b'|),
    b' = g - b, grows monotonically with the angle from -2 (-180 deg) to 2 (180 deg)."""
    r, g, b = x
    a = g + b
    a *= np.float32(-0.5)
    a += r
    opponent = g - b
    norm = np.abs(a)
    norm += np.abs(opponent)
    norm += np.float32(1e-6)  # greys: q = 0; their saturation weight is 0 anyway
    a /= norm
    np.subtract(np.float32(1.0), a, out=a)
    np.copysign(a, opponent, out=a)  # pseudo-angle in [-2, 2]
    a *= np.float32(0.25)
    a += np.float32(0.5)
    return _quantise(a, HUE_BINS + 1)


def _hue_table(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """(6,) band values -> (HUE_BINS + 1,) value per pseudo-angle bin (see _hue_index).

    Between two adjacent band centres the weights are (1 + cos(pi t)) / 2 and its complement, so
    they sum to 1 everywhere and a hue exactly at a centre gets only its own band."""
    pseudo = np.linspace(-2.0, 2.0, HUE_BINS + 1)
    q = 1.0 - np.abs(pseudo)
    angle = np.sign(pseudo) * np.arctan2(math.sqrt(3.0) / 2.0 * (1.0 - np.abs(q)), q)
    hue = np.degrees(angle) % 360.0  # the bin's hue in degrees
    centres = np.array([HUE_CENTRES[c] for c in COLOURS] + [360.0])
    values = np.append(values, values[0])  # red again at 360 degrees
    segment = np.clip(np.searchsorted(centres, hue, side="right") - 1, 0, len(COLOURS) - 1)
    t = (hue - centres[segment]) / (centres[segment + 1] - centres[segment])
    near = 0.5 * (1.0 + np.cos(math.pi * t))
    return (near * values[segment] + (1.0 - near) * values[segment + 1]).astype(np.float32)


# --- filter: a catalogue look scaled by intensity.


def _filter_stages(look: FilterLook, strength: float) -> list[Stage]:
    """Mono blend, the look's sliders scaled by strength, then split toning."""
    stages: list[Stage] = [_mono_step(strength)] if look.mono else []
    stages += _adjust_stages(_sliders(look.adjust, strength))
    if look.shadow_tint is not None or look.highlight_tint is not None:
        stages.append(_split_tone_step(look.shadow_tint, look.highlight_tint, strength))
    return stages


def _mono_step(strength: float) -> Step:
    def step(x: Planes, rows: slice) -> Planes:
        luma = _luma(x)
        if strength >= 1:
            x[:] = luma  # exactly grey: R == G == B
        else:
            x -= luma
            x *= np.float32(1.0 - strength)
            x += luma
        return x

    return step


def _split_tone_step(shadow_tint: tuple[int, int, int] | None,
                     highlight_tint: tuple[int, int, int] | None, strength: float) -> Step:
    """Multiply dark and bright tones by each tint's colour relative to its own luminance."""
    def step(x: Planes, rows: slice) -> Planes:
        luma = _luma(x)
        masks = []  # (change of gain (3,), mask (h, W))
        if shadow_tint is not None:
            masks.append((_tint_gain(shadow_tint, strength), 1.0 - _smoothstep(0.0, 0.7, luma)))
        if highlight_tint is not None:
            masks.append((_tint_gain(highlight_tint, strength), _smoothstep(0.3, 1.0, luma)))
        for channel, plane in enumerate(x):
            factor = np.ones_like(plane)
            for gain, mask in masks:
                factor += np.float32(gain[channel]) * mask
            plane *= factor
        return _clip(x)

    return step


def _tint_gain(tint: tuple[int, int, int], strength: float) -> npt.NDArray[np.float64]:
    """(3,) change of channel gain for a tint colour: its colour over its luminance, minus 1."""
    colour = np.array(tint, dtype=np.float64) / 255.0
    return SPLIT_TONE_STRENGTH * strength * (colour / max(float(LUMA @ colour), 1e-3) - 1.0)


# --------------------------------------------------------------------------------------------
# Side-by-side panels with captions


def compare_strip(panels: Sequence[tuple[str, RGBImage]], height: int = 256) -> RGBImage:
    """Panels side by side, each scaled to `height`, with its caption in a bar underneath.

    Returns (height + CAPTION_HEIGHT, sum of panel widths + GAP between panels, 3)."""
    if not panels:
        raise ImageError("compare_strip needs at least one panel")
    if height < 1:
        raise ImageError(f"panel height must be at least 1 pixel (got {height})")
    scaled = [(caption, _scale_to_height(image, height)) for caption, image in panels]
    width = sum(image.shape[1] for _, image in scaled) + GAP * (len(scaled) - 1)
    canvas = Image.new("RGB", (width, height + CAPTION_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    left = 0
    for caption, image in scaled:
        canvas.paste(Image.fromarray(image), (left, 0))
        _draw_text(draw, (left + 4, height + 3), caption, image.shape[1] - 8, font)
        left += image.shape[1] + GAP
    return np.asarray(canvas).copy()


@dataclass(frozen=True)
class ComparisonLabels:
    """The captions of a comparison's panels."""

    original: str = "original"
    teacher: str = "teacher"
    student: str = "student"


def comparison_panels(image: RGBImage, teacher: Answer | None, student: Answer | None = None,
                      labels: ComparisonLabels = ComparisonLabels()) -> list[tuple[str, RGBImage]]:
    """The captioned panels of an original / teacher / student comparison, each answer rendered
    once (for `compare_strip` or a `contact_sheet` row).

    A teacher of None (the intent has no teacher answer in the data) shows the original under
    '<teacher label>: not in the data'; a student of None leaves the student panel out."""
    panels = [(labels.original, image),
              (labels.teacher, render(image, teacher)) if teacher is not None
              else (f"{labels.teacher}: not in the data", image)]
    if student is not None:
        panels.append((labels.student, render(image, student)))
    return panels


def comparison(image: RGBImage, teacher: Answer | None, student: Answer | None = None,
               height: int = 256, labels: ComparisonLabels = ComparisonLabels()) -> RGBImage:
    """The original, the teacher's answer and the student's answer on one image, side by side
    with captions (see `comparison_panels` for None answers and `compare_strip` for the shape)."""
    return compare_strip(comparison_panels(image, teacher, student, labels), height)


def contact_sheet(rows: Sequence[tuple[str, Sequence[tuple[str, RGBImage]]]],
                  height: int = 200) -> RGBImage:
    """One row per intent: its label (wrapped, shortened with an ellipsis) then its panels.

    Returns (sum of row heights + GAP between rows, LABEL_WIDTH + widest strip, 3); each row is
    height + CAPTION_HEIGHT tall."""
    if not rows:
        raise ImageError("contact_sheet needs at least one row")
    strips = [(label, compare_strip(panels, height)) for label, panels in rows]
    width = LABEL_WIDTH + max(strip.shape[1] for _, strip in strips)
    row_height = height + CAPTION_HEIGHT
    canvas = Image.new("RGB", (width, len(strips) * (row_height + GAP) - GAP), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    line_height = FONT_SIZE + 4
    for i, (label, strip) in enumerate(strips):
        top = i * (row_height + GAP)
        canvas.paste(Image.fromarray(strip), (LABEL_WIDTH, top))
        lines = _wrap(draw, label, LABEL_WIDTH - 12, font, max(1, row_height // line_height))
        for j, line in enumerate(lines):
            draw.text((6, top + 4 + j * line_height), line, fill=TEXT_COLOUR, font=font)
    return np.asarray(canvas).copy()


def _scale_to_height(image: RGBImage, height: int) -> RGBImage:
    _check_image(image)
    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font() -> Font:
    return ImageFont.load_default(size=FONT_SIZE)


def _drawable(draw: ImageDraw.ImageDraw, text: str, font: Font) -> str:
    """One line of text the font can draw: whitespace collapsed; the bitmap font (no FreeType)
    only encodes Latin-1, so other characters become '?'."""
    text = re.sub(r"\s+", " ", text).strip()
    try:
        draw.textlength(text, font=font)
        return text
    except UnicodeEncodeError:
        return text.encode("latin-1", "replace").decode("latin-1")


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: Font) -> str:
    """The longest prefix of text (plus an ellipsis when cut) no wider than width pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    ellipsis = "…" if _drawable(draw, "…", font) == "…" else "..."
    low, high = 0, min(len(text), max(1, width))  # a character is at least one pixel wide
    while low < high:  # binary search on the prefix length
        middle = (low + high + 1) // 2
        if draw.textlength(text[:middle].rstrip() + ellipsis, font=font) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ellipsis


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width: int,
               font: Font) -> None:
    line = _fit(draw, _drawable(draw, text, font), max(1, width), font)
    draw.text(xy, line, fill=TEXT_COLOUR, font=font)


def _wrap(draw: ImageDraw.ImageDraw, text: str, width: int, font: Font,
          max_lines: int) -> list[str]:
    """Greedy word wrap into at most max_lines lines; the last one ends in an ellipsis if cut."""
    words = _drawable(draw, text, font).split(" ")
    lines: list[str] = []
    current, start = "", 0  # the line being filled, and the index of its first word
    for index, word in enumerate(words):
        candidate = f"{current} {word}".strip()
        if not current or draw.textlength(candidate, font=font) <= width:
            current = candidate
            continue
        if len(lines) == max_lines - 1:
            break  # no room left: the last line takes the rest of the text
        lines.append(_fit(draw, current, width, font))
        current, start = word, index
    lines.append(_fit(draw, " ".join(words[start:]), width, font))
    return lines
