"""Gallery builds: one album's page and images, or the index page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from i2i.core.files import write_bytes
from i2i.stages.gallery.images import (
    ORIGINAL_LONG_SIDE,
    ORIGINAL_QUALITY,
    cover_source,
    load_rgb,
    picture_sizes,
    shrunk,
    webp,
    write_cover,
    write_if_changed,
)
from i2i.stages.gallery.keys import (
    ORIGINAL,
    album_keys,
    album_page_key,
    checked_key,
    gallery_settings,
    index_key,
    original_key,
)
from i2i.stages.gallery.pages import album_page, index_page
from i2i.stages.gallery.words import _naive, taken


def page_order(photos: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Photos as the album page shows them: by when they were taken, undated ones last, then
    by name."""

    def key(entry: Mapping[str, Any]) -> tuple[int, dt.datetime, str]:
        moment = taken(entry)
        return (moment is None, _naive(moment) if moment else dt.datetime.min, entry["photo"])

    return sorted(photos, key=key)


def build_album(
    catalog: Mapping[str, Any],
    root: Path,
    originals: Mapping[str, str | Path] | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    prefix: str = "",
    sources: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """The page, smaller copies, original copies and cover of one album catalog under
    ``root``; ``originals`` maps photo names to their preprocessed originals. The image
    published at a key is read from ``sources[key]`` when given (a final, for a target that is
    not this folder), else from ``root/key``; ``prefix`` is the target's. Returns
    ``{"pages": [...], "assets": [...]}``: every key written."""
    settings = gallery_settings({}) if settings is None else settings
    originals = originals or {}
    sources = sources or {}
    album = catalog["album"]
    photos = page_order(catalog["photos"])
    styles = sorted(catalog["styles"])
    keys = [checked_key(key, prefix) for key in album_keys(photos)]
    written: list[str] = []
    images: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
    cover_entry, cover_style = cover_source(album, photos, settings.get("covers") or {})
    cover: Image.Image | None = None
    for entry in photos:
        first = None
        for style in styles:
            image_info = entry["styles"].get(style)
            if not image_info:
                continue
            first = first or image_info["key"]
            image = load_rgb(Path(sources.get(image_info["key"], root / image_info["key"])))
            images[entry["photo"], style] = picture_sizes(image, image_info["key"], root, written)
            if entry is cover_entry and (style == cover_style or cover is None):
                cover = image
        source = originals.get(entry["photo"])
        if source is not None and first is not None:
            image = load_rgb(Path(source))
            if max(image.size) > ORIGINAL_LONG_SIDE:
                image = shrunk(image, ORIGINAL_LONG_SIDE)
            key = original_key(first, entry["photo"])
            write_if_changed(root / key, webp(image, ORIGINAL_QUALITY))
            written.append(key)
            images[entry["photo"], ORIGINAL] = picture_sizes(image, key, root, written)
            if entry is cover_entry and cover_style is None:
                cover = image
    if cover is not None and keys:
        write_cover(cover, keys[0], root, written)
    page = album_page_key(album, keys, prefix)
    index = index_key(prefix)
    write_bytes(root / page, album_page(album, photos, styles, page, images, settings, index))
    return {"pages": [page], "assets": sorted(set(written))}


def build_index(
    albums: Mapping[str, tuple[int, Sequence[str]]],
    root: Path,
    settings: Mapping[str, Any] | None = None,
    prefix: str = "",
) -> str:
    """The index page (at ``<prefix>/index.html``) from each album's photo count and image
    keys; return its key.

    It needs no album to be finished: each cover is at a key named after the album's first
    image, where the album's own build writes it.
    """
    settings = gallery_settings({}) if settings is None else settings
    cards = [
        (
            album,
            count,
            album_page_key(album, keys, prefix),
            checked_key(keys[0], prefix) if keys else "",
        )
        for album, (count, keys) in sorted(albums.items())
    ]
    index = index_key(prefix)
    write_bytes(root / index, index_page(cards, settings, index))
    return index
