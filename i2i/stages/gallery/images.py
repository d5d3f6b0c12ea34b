"""The gallery-made images: smaller copies for ``srcset``, web copies of the originals and
album covers, as WebP. Every one is the whole image scaled down, never cropped: the watermark
caption in a corner stays in every thumbnail and cover."""

from __future__ import annotations

import io
import logging
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from i2i.core.files import write_bytes
from i2i.stages.gallery.keys import COVER_SIZES, SIZES, cover_key, size_key

log = logging.getLogger(__name__)

ORIGINAL_LONG_SIDE = 2048  # the web copy of an original is never larger than this
QUALITY = 80
ORIGINAL_QUALITY = 86


def webp(image: Image.Image, quality: int) -> bytes:
    """``image`` as WebP bytes (no metadata: no GPS ever leaves through the gallery)."""
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=quality, method=4)
    return buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` unless ``path`` already holds exactly it (its time stays then)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    write_bytes(path, data)


def shrunk(image: Image.Image, long_side: int) -> Image.Image:
    """A copy of ``image`` whose long side is at most ``long_side``, its shape kept."""
    copy = image.copy()
    copy.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return copy


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def picture_sizes(
    image: Image.Image, key: str, root: Path, written: list[str]
) -> list[tuple[str, int, int]]:
    """Write the smaller copies of ``image`` (published at ``key``); return ``(key, width,
    height)`` for each, smallest first, the full image last."""
    found = []
    for long_side in SIZES:
        if long_side >= max(image.size):
            break
        small = shrunk(image, long_side)
        target = size_key(key, long_side)
        write_if_changed(root / target, webp(small, QUALITY))
        written.append(target)
        found.append((target, *small.size))
    found.append((key, *image.size))
    return found


def cover_source(
    album: str, photos: Sequence[Mapping[str, Any]], covers: Mapping[str, str]
) -> tuple[Mapping[str, Any], str | None]:
    """The cover: the photo (``photo`` or ``photo/style``) named in ``covers``, else the first
    favourite, else the first photo; its original unless a style is named."""
    wanted = covers.get(album)
    if wanted:
        name, _, style = wanted.partition("/")
        for entry in photos:
            source = posixpath.basename(str(entry.get("source_path") or ""))
            if name in {entry["photo"], source}:
                if style and style not in entry["styles"]:
                    log.warning(
                        "gallery.covers: %s has no style %r; its original is used", name, style
                    )
                    style = ""
                return entry, style or None
        log.warning("gallery.covers: no photo %r in album %r; the cover falls back", name, album)
    favourite = next((e for e in photos if e.get("favorite") is True), None)
    return (favourite or photos[0]), None


def fitted(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """``image`` scaled to fit inside ``box`` (up or down), its shape kept: nothing is cut."""
    scale = min(box[0] / image.width, box[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def write_cover(image: Image.Image, anchor: str, root: Path, written: list[str]) -> None:
    """The album's cover in every :data:`COVER_SIZES` box, the whole image fitted inside."""
    for width, height in COVER_SIZES:
        target = cover_key(anchor, width)
        write_if_changed(root / target, webp(fitted(image, (width, height)), QUALITY))
        written.append(target)
