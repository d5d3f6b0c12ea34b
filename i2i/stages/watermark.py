"""The watermark stage: visible caption text on a styled image, and its published metadata.

The text height is a fraction of the image's short side. Each character is drawn with the first
font of a chain that has a glyph for it (the configured or bundled DejaVu Sans, then bundled Noto
Sans for Arabic, Hebrew, Indic and other scripts, then a CJK subset of Droid Sans Fallback), so
accents, ©, zodiac signs and non-Latin place names never come out as boxes. The text colour
(light or dark) is the one with the higher WCAG contrast against the area under the text, and a
blurred halo in the opposite colour keeps it readable on busy areas; ``position: auto`` puts it
in the calmest corner.

What the published file says about itself (EXIF, XMP) is built in :mod:`i2i.stages.tags`.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from i2i import I2IError
from i2i.core.files import atomic_path
from i2i.stages.tags import exif_block, published_fields, xmp_packet

log = logging.getLogger(__name__)

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
LIGHT, DARK = (255, 255, 255), (20, 20, 20)
FALLBACK_FONTS = (
    "NotoSansArabic-Regular.ttf",
    "NotoSansHebrew-Regular.ttf",
    "NotoSansDevanagari-Regular.ttf",
    "NotoSansBengali-Regular.ttf",
    "NotoSansTamil-Regular.ttf",
    "NotoSansThai-Regular.ttf",
    "NotoSansLao-Regular.ttf",
    "NotoSansKhmer-Regular.ttf",
    "NotoSansGeorgian-Regular.ttf",
    "NotoSansArmenian-Regular.ttf",
    "NotoSansEthiopic-Regular.ttf",
    "DroidSansFallback-CJK.ttf",
)
DEFAULTS: dict[str, Any] = {
    "brand": "i2i",
    "artist": "",
    "copyright": "",
    "font": "",
    "position": "bottom-right",
    "opacity": 0.85,
    "size": 0.035,
    "margin": 0.03,
    "quality": 88,
}
_NEUTRAL = ("Z", "P", "N", "S", "M")
MIN_SIZE = 8


def font_dir() -> Path:
    """The folder of bundled fonts and their licences."""
    return Path(str(resources.files("i2i") / "data" / "fonts"))


def bundled_font() -> Path:
    """The bundled DejaVu Sans (Latin, Greek, Cyrillic, ©, zodiac symbols)."""
    return font_dir() / "DejaVuSans.ttf"


def font_chain(primary: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Font files tried in order for each character: ``primary`` (or DejaVu), then fallbacks."""
    first = str(primary) if primary else str(bundled_font())
    rest = [str(bundled_font()), *(str(font_dir() / name) for name in FALLBACK_FONTS)]
    return tuple(dict.fromkeys([first, *rest]))


@cache
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A TrueType font at a pixel size; the error names the file."""
    try:
        return ImageFont.truetype(path, size)
    except OSError as exc:
        raise I2IError(f"watermark.font {path}: cannot load font ({exc})") from exc


@cache
def coverage(path: str) -> frozenset[int]:
    """Code points the font maps to a glyph (its cmap)."""
    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception as exc:
        raise I2IError(f"watermark.font {path}: cannot read its character map ({exc})") from exc


def split_runs(text: str, chain: Sequence[str]) -> list[tuple[str, str]]:
    """Split ``text`` into (run, font path) pieces, each drawn with a font that has its glyphs.

    Spaces, punctuation, digits and marks stay in the current run when its font has them, so a
    place name keeps one font (and one shaping context); characters that no font has are dropped
    with a warning rather than drawn as boxes.
    """
    runs: list[tuple[str, str]] = []
    for char in unicodedata.normalize("NFC", text):
        code = ord(char)
        current = runs[-1][1] if runs else None
        neutral = unicodedata.category(char).startswith(_NEUTRAL)
        if current is not None and neutral and code in coverage(current):
            font = current
        else:
            font = next((path for path in chain if code in coverage(path)), None)
        if font is None:
            if unicodedata.category(char) not in ("Cf", "Mn"):
                log.warning("no bundled font has U+%04X %r: left out of the watermark", code, char)
            continue
        if font == current:
            runs[-1] = (runs[-1][0] + char, font)
        else:
            runs.append((char, font))
    return runs


@dataclass(frozen=True)
class TextLayout:
    """Runs of text placed along one baseline; ``bbox`` is relative to the baseline origin."""

    runs: tuple[tuple[str, ImageFont.FreeTypeFont, float], ...]
    bbox: tuple[int, int, int, int]
    size: int

    @property
    def extent(self) -> tuple[int, int]:
        """Width and height of the inked box."""
        left, top, right, bottom = self.bbox
        return right - left, bottom - top


def layout_text(text: str, chain: Sequence[str], size: int) -> TextLayout:
    """Lay ``text`` out at ``size`` pixels, one font per run, runs side by side.

    Spaces at the ends of a run are advances, not drawn text, so that a right-to-left run does
    not carry its trailing space to its left side.
    """
    runs: list[tuple[str, ImageFont.FreeTypeFont, float]] = []
    x = 0.0
    left = top = float("inf")
    right = bottom = float("-inf")
    for part, path in split_runs(text, chain):
        font = load_font(path, size)
        core = part.strip()
        x += font.getlength(part[: len(part) - len(part.lstrip())])
        if core:
            x0, y0, x1, y1 = font.getbbox(core, anchor="ls")
            left, top, right, bottom = (
                min(left, x + x0),
                min(top, y0),
                max(right, x + x1),
                max(bottom, y1),
            )
            runs.append((core, font, x))
            x += font.getlength(core)
        x += font.getlength(part[len(part.rstrip()) :])
    if not runs:
        return TextLayout((), (0, 0, 0, 0), size)
    bbox = (int(np.floor(left)), int(np.floor(top)), int(np.ceil(right)), int(np.ceil(bottom)))
    return TextLayout(tuple(runs), bbox, size)


def fit_layout(text: str, chain: Sequence[str], size: int, max_width: int) -> TextLayout:
    """The layout at ``size``, scaled down if wider than ``max_width``; below ``MIN_SIZE`` px
    the text is shortened with an ellipsis instead."""
    layout = layout_text(text, chain, size)
    while layout.extent[0] > max_width and layout.size > MIN_SIZE:
        scaled = int(layout.size * max_width / max(1, layout.extent[0]))
        layout = layout_text(text, chain, max(MIN_SIZE, min(scaled, layout.size - 1)))
    while layout.extent[0] > max_width and len(text) > 1:
        text = text[:-1]
        layout = layout_text(text.rstrip() + "…", chain, layout.size)
    if layout.extent[0] > max_width:
        log.warning("the image is too narrow for the watermark %r", text)
    return layout


def text_box(
    image_size: tuple[int, int], text_size: tuple[int, int], position: str, margin: int
) -> tuple[int, int]:
    """Top-left corner of the text for a named position."""
    width, height = image_size
    tw, th = text_size
    vertical, horizontal = position.split("-")
    x = {"left": margin, "right": width - margin - tw, "center": (width - tw) // 2}[horizontal]
    y = margin if vertical == "top" else height - margin - th
    return max(0, x), max(0, y)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma (0..255) of an RGB array, gamma-encoded: for ranking calmness."""
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance (0..1) of sRGB values (0..255)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear[..., 0] * 0.2126 + linear[..., 1] * 0.7152 + linear[..., 2] * 0.0722


def contrast_ratio(l1: float, l2: float) -> float:
    """WCAG contrast ratio of two relative luminances (1..21)."""
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def calmest_position(
    rgb: np.ndarray, text_size: tuple[int, int], margin: int, candidates: tuple[str, ...] = CORNERS
) -> str:
    """The candidate position whose text box has the least luminance variation."""
    height, width = rgb.shape[:2]
    lum = luminance(rgb.astype(np.float32))
    best, best_score = candidates[0], float("inf")
    for position in candidates:
        x, y = text_box((width, height), text_size, position, margin)
        region = lum[y : y + text_size[1], x : x + text_size[0]]
        score = float(region.std()) if region.size else float("inf")
        if score < best_score - 1e-6:
            best, best_score = position, score
    return best


def text_colours(region: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(fill, halo): the fill with the higher WCAG contrast on the region, halo the other."""
    if not region.size:
        return LIGHT, DARK
    background = float(np.median(relative_luminance(region)))
    light = contrast_ratio(float(relative_luminance(np.array(LIGHT))), background)
    dark = contrast_ratio(float(relative_luminance(np.array(DARK))), background)
    return (LIGHT, DARK) if light >= dark else (DARK, LIGHT)


@dataclass(frozen=True)
class Placement:
    """Where and how the text goes: layout, baseline origin, box, colours."""

    layout: TextLayout
    origin: tuple[int, int]
    box: tuple[int, int, int, int]
    position: str
    fill: tuple[int, int, int]
    halo: tuple[int, int, int]


def plan_watermark(image: Image.Image, text: str, settings: Mapping[str, Any]) -> Placement:
    """Font size, position and colours of ``text`` on ``image``."""
    settings = {**DEFAULTS, **settings}
    short = min(image.size)
    margin = round(short * settings["margin"])
    chain = font_chain(settings.get("font") or None)
    size = max(8, round(short * settings["size"]))
    layout = fit_layout(text, chain, size, image.width - 2 * margin)
    rgb = np.asarray(image.convert("RGB"))
    position = settings["position"]
    if position == "auto":
        position = calmest_position(rgb, layout.extent, margin)
    x, y = text_box(image.size, layout.extent, position, margin)
    w, h = layout.extent
    fill, halo = text_colours(rgb[y : y + h, x : x + w])
    origin = (x - layout.bbox[0], y - layout.bbox[1])
    return Placement(layout, origin, (x, y, x + w, y + h), position, fill, halo)


def text_mask(placement: Placement, size: tuple[int, int], stroke: int = 0) -> Image.Image:
    """8-bit coverage of the glyphs (widened by ``stroke`` pixels) on an image of ``size``."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    ox, oy = placement.origin
    for part, font, dx in placement.layout.runs:
        draw.text((ox + dx, oy), part, font=font, fill=255, anchor="ls", stroke_width=stroke)
    return mask


def achieved_contrast(image: Image.Image, text: str, settings: Mapping[str, Any]) -> float:
    """WCAG contrast between the drawn text's pixels and the other pixels of its box."""
    plan = plan_watermark(image, text, settings)
    marked = np.asarray(draw_watermark(image, text, settings))
    glyphs = np.asarray(text_mask(plan, image.size))
    x0, y0, x1, y1 = plan.box
    lum = relative_luminance(marked[y0:y1, x0:x1])
    core = glyphs[y0:y1, x0:x1]
    return contrast_ratio(float(lum[core >= 250].mean()), float(lum[core == 0].mean()))


def draw_watermark(image: Image.Image, text: str, settings: Mapping[str, Any]) -> Image.Image:
    """Return a copy of ``image`` with ``text`` drawn as a readable watermark."""
    image = image.convert("RGB")
    if not text.strip():
        return image
    placement = plan_watermark(image, text, settings)
    if not placement.layout.runs:
        return image
    opacity = float({**DEFAULTS, **settings}["opacity"])
    stroke = max(2, round(placement.layout.size / 7))
    halo = text_mask(placement, image.size, stroke).filter(ImageFilter.GaussianBlur(stroke / 2))
    glyphs = text_mask(placement, image.size)
    out = Image.composite(
        Image.new("RGB", image.size, placement.halo),
        image,
        halo.point(lambda v: round(v * opacity)),
    )
    return Image.composite(
        Image.new("RGB", image.size, placement.fill),
        out,
        glyphs.point(lambda v: round(v * opacity)),
    )


def watermark(
    styled: str | os.PathLike[str],
    target: str | os.PathLike[str],
    metadata: Mapping[str, Any],
    caption: str,
    settings: Mapping[str, Any],
    *,
    keep_gps: bool = False,
) -> None:
    """Write the final WebP: ``styled`` with the visible watermark, and the allowlisted EXIF
    and XMP (:mod:`i2i.stages.tags`); GPS only with ``keep_gps``."""
    settings = {**DEFAULTS, **settings}
    with Image.open(styled) as image:
        marked = draw_watermark(image, caption, settings)
    fields = published_fields(metadata, caption, settings)
    exif = exif_block(fields, (metadata.get("gps") or {}) if keep_gps else None)
    xmp = xmp_packet(fields)
    extra = {"xmp": xmp} if xmp else {}
    with atomic_path(target) as tmp:
        marked.save(tmp, "WEBP", quality=settings["quality"], method=4, exif=exif, **extra)
