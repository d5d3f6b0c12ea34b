"""The watermark stage: visible caption text and copyright EXIF on a styled image.

The text height is a fraction of the image's short side; its colour (light or dark) and shadow
are chosen from the luminance under the text box so it stays readable on any background, and
``position: auto`` puts it in the calmest corner. EXIF is written with piexif; GPS is removed
unless ``publish.keep_gps`` is true.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import piexif
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from i2i import I2IError, __version__
from i2i.files import atomic_path

log = logging.getLogger(__name__)

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left", "bottom-center", "top-center")
LIGHT, DARK = (255, 255, 255), (20, 20, 20)


def bundled_font() -> Path:
    """The bundled DejaVu Sans (Latin, Greek, Cyrillic, ©, zodiac symbols)."""
    return Path(str(resources.files("i2i") / "data" / "fonts" / "DejaVuSans.ttf"))


@cache
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A TrueType font at a pixel size; the error names the file."""
    try:
        return ImageFont.truetype(path, size)
    except OSError as exc:
        raise I2IError(f"watermark.font {path}: cannot load font ({exc})") from exc


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
    """Rec. 709 relative luminance (0..255) of an RGB array."""
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


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
    """(fill, shadow): light text with a dark shadow on dark areas, and the reverse."""
    mean = float(luminance(region.astype(np.float32)).mean()) if region.size else 0.0
    return (DARK, LIGHT) if mean > 140 else (LIGHT, DARK)


def draw_watermark(image: Image.Image, text: str, settings: Mapping[str, Any]) -> Image.Image:
    """Return a copy of ``image`` with ``text`` drawn as a readable watermark."""
    image = image.convert("RGB")
    if not text:
        return image
    short = min(image.size)
    font_path = settings.get("font") or str(bundled_font())
    font = load_font(font_path, max(8, round(short * settings["size"])))
    margin = round(short * settings["margin"])
    left, top, right, bottom = font.getbbox(text)
    text_size = (right - left, bottom - top)
    if text_size[0] > image.width - 2 * margin:
        scaled = max(6, int(font.size * (image.width - 2 * margin) / text_size[0]))
        font = load_font(font_path, scaled)
        left, top, right, bottom = font.getbbox(text)
        text_size = (right - left, bottom - top)
    rgb = np.asarray(image)
    position = settings["position"]
    if position == "auto":
        position = calmest_position(rgb, text_size, margin)
    x, y = text_box(image.size, text_size, position, margin)
    fill, shadow = text_colours(rgb[y : y + text_size[1], x : x + text_size[0]])
    alpha = round(255 * settings["opacity"])
    offset = max(1, font.size // 14)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).text(
        (x - left + offset, y - top + offset), text, font=font, fill=(*shadow, alpha)
    )
    layer = layer.filter(ImageFilter.GaussianBlur(max(1, offset)))
    ImageDraw.Draw(layer).text((x - left, y - top), text, font=font, fill=(*fill, alpha))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _exif_date(iso: str | None) -> tuple[bytes | None, bytes | None]:
    """ISO 8601 back to EXIF ``YYYY:MM:DD HH:MM:SS`` and its ``+HH:MM`` offset."""
    if not iso:
        return None, None
    moment = dt.datetime.fromisoformat(iso)
    offset = None
    if moment.utcoffset() is not None:
        offset = moment.isoformat()[-6:].encode()
    return moment.strftime("%Y:%m:%d %H:%M:%S").encode(), offset


def _rational(value: float, scale: int = 1_000_000) -> tuple[int, int]:
    return round(abs(value) * scale), scale


def _gps_ifd(gps: Mapping[str, Any]) -> dict[int, Any]:
    lat, lon = gps.get("lat"), gps.get("lon")
    if lat is None or lon is None:
        return {}
    ifd: dict[int, Any] = {
        piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
        piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
        piexif.GPSIFD.GPSLatitude: (_rational(lat), (0, 1), (0, 1)),
        piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
        piexif.GPSIFD.GPSLongitude: (_rational(lon), (0, 1), (0, 1)),
    }
    if gps.get("altitude") is not None:
        ifd[piexif.GPSIFD.GPSAltitudeRef] = 1 if gps["altitude"] < 0 else 0
        ifd[piexif.GPSIFD.GPSAltitude] = _rational(gps["altitude"], 1000)
    return ifd


def build_exif(
    metadata: Mapping[str, Any],
    caption: str,
    settings: Mapping[str, Any],
    source_ref: str,
    keep_gps: bool,
) -> bytes:
    """The EXIF block of a published image: copyright, artist, caption, date, source, GPS."""
    exif_in = metadata.get("exif") or {}
    date_taken = exif_in.get("date_taken")
    year = date_taken[:4] if date_taken else ""
    brand = settings["brand"]
    copyright_text = settings["copyright"].format(year=year, brand=brand).replace("©  ", "© ")
    zeroth: dict[int, Any] = {
        piexif.ImageIFD.Copyright: copyright_text.strip().encode(),
        piexif.ImageIFD.Artist: (settings.get("artist") or brand).encode(),
        piexif.ImageIFD.ImageDescription: caption.encode(),
        piexif.ImageIFD.Software: f"i2i {__version__}".encode(),
        piexif.ImageIFD.DocumentName: source_ref.encode(),
    }
    exif: dict[int, Any] = {
        piexif.ExifIFD.ImageUniqueID: metadata["file"]["sha256"][:32].encode(),
    }
    original, offset = _exif_date(date_taken)
    if original:
        exif[piexif.ExifIFD.DateTimeOriginal] = original
        zeroth[piexif.ImageIFD.DateTime] = original
    if offset:
        exif[piexif.ExifIFD.OffsetTimeOriginal] = offset
    for key, tag in (("make", piexif.ImageIFD.Make), ("model", piexif.ImageIFD.Model)):
        if exif_in.get(key):
            zeroth[tag] = exif_in[key].encode()
    gps = _gps_ifd(metadata.get("gps") or {}) if keep_gps else {}
    return piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps})


def watermark(
    styled: str | os.PathLike[str],
    target: str | os.PathLike[str],
    metadata: Mapping[str, Any],
    caption: str,
    settings: Mapping[str, Any],
    source_ref: str,
    keep_gps: bool = False,
) -> None:
    """Write the final WebP: ``styled`` with the visible watermark and the EXIF block."""
    with Image.open(styled) as image:
        marked = draw_watermark(image, caption, settings)
    exif = build_exif(metadata, caption, settings, source_ref, keep_gps)
    with atomic_path(target) as tmp:
        marked.save(tmp, "WEBP", quality=settings["quality"], method=4, exif=exif)
