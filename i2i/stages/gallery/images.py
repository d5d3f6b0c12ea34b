"""The gallery-made images: smaller copies for ``srcset``, web copies of the originals and
album covers, as WebP."""

from __future__ import annotations

import io
import logging
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

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


def write_cover(image: Image.Image, anchor: str, root: Path, written: list[str]) -> None:
    for width, height in COVER_SIZES:
        crop = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.45))
        target = cover_key(anchor, width)
        write_if_changed(root / target, webp(crop, QUALITY))
        written.append(target)
