"""Gallery settings, and the keys of its pages and gallery-made images with the relative
links between them."""

from __future__ import annotations

import hashlib
import posixpath
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from i2i import I2IError
from i2i.core.files import is_safe_name
from i2i.stages.publish import object_key, template_of
from i2i.targets import target_for

DERIVED_DIR = "_gallery"
ALBUM_DIR = "_albums"
INDEX = "index.html"

SIZES = (400, 800)  # long sides of the smaller copies every image gets for srcset
COVER_SIZES = ((480, 320), (960, 640))  # album covers: 3:2 boxes, the image fitted inside
ORIGINAL = "original"
DEFAULT_LOCALE = "en_GB"  # gallery.locale's default: dates as "21 March 2024, 21:45"


# ---------------------------------------------------------------------------------------------
# Settings


def gallery_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Title, brand, covers, locales and credits from a config (or a rule's ``settings``
    params): the brand is ``gallery.brand``, else ``watermark.brand``; ``credits`` holds the
    watermark's ``brand``, ``artist`` and ``copyright``, from which the published images get
    theirs."""
    gallery = config.get("gallery") or {}
    watermark = config.get("watermark") or {}
    return {
        "title": gallery.get("title") or "Gallery",
        "brand": gallery.get("brand") or watermark.get("brand") or "",
        "covers": dict(gallery.get("covers") or {}),
        "locale": gallery.get("locale") or DEFAULT_LOCALE,
        "album_locales": dict(gallery.get("album_locales") or {}),
        "credits": {k: watermark.get(k) or "" for k in ("brand", "artist", "copyright")},
    }


def album_locale(settings: Mapping[str, Any], album: str) -> str:
    """The locale of an album's page: ``gallery.album_locales[album]``, else
    ``gallery.locale``."""
    return (
        (settings.get("album_locales") or {}).get(album)
        or settings.get("locale")
        or (DEFAULT_LOCALE)
    )


def language_tag(locale: str) -> str:
    """The BCP 47 tag of a locale for ``<html lang>``: ``en_GB`` → ``en-GB``."""
    return locale.replace("_", "-")


# ---------------------------------------------------------------------------------------------
# Keys and links


def relative_url(target: str, page: str) -> str:
    """The URL-quoted relative link from the page at key ``page`` to the file at ``target``."""
    start = posixpath.dirname(page) or "."
    return urllib.parse.quote(posixpath.relpath(target, start))


def index_key(prefix: str = "") -> str:
    """The key of the gallery's index: ``<prefix>/index.html``."""
    return posixpath.join(prefix, INDEX) if prefix else INDEX


def derived_suffixes() -> list[str]:
    """Every suffix :func:`derived_key` gives a published image's copies: sizes and covers."""
    return [*(f".{side}" for side in SIZES), *(f".cover-{width}" for width, _ in COVER_SIZES)]


def original_suffixes() -> list[str]:
    """The suffixes of an original's web copy and of its sizes, after the photo's name."""
    return [f".{ORIGINAL}", *(f".{ORIGINAL}.{side}" for side in SIZES)]


def derived_key(key: str, suffix: str) -> str:
    """A gallery-made image from the one at ``key``: ``<folder>/_gallery/<stem><suffix>.webp``.

    It is one level deeper than every published image key, so no key template can give it.
    """
    folder, name = posixpath.split(key)
    return posixpath.join(folder, DERIVED_DIR, f"{posixpath.splitext(name)[0]}{suffix}.webp")


def size_key(key: str, long_side: int) -> str:
    """The copy of the image at ``key`` whose long side is ``long_side`` (next to it when
    ``key`` is itself gallery-made)."""
    folder, name = posixpath.split(key)
    if posixpath.basename(folder) == DERIVED_DIR:
        return posixpath.join(folder, f"{posixpath.splitext(name)[0]}.{long_side}.webp")
    return derived_key(key, f".{long_side}")


def original_key(first_key: str, photo: str) -> str:
    """The web copy of a photo's original, named for the photo: ``<photo>.original.webp`` in
    the ``_gallery`` folder beside the image at ``first_key`` (its first style's); a digest of
    the name when it is not a safe name."""
    folder = posixpath.dirname(first_key)
    name = (
        photo if is_safe_name(photo) else f"photo-{hashlib.sha256(photo.encode()).hexdigest()[:12]}"
    )
    return posixpath.join(folder, DERIVED_DIR, f"{name}.{ORIGINAL}.webp")


def checked_key(key: str, prefix: str = "") -> str:
    """``key`` when it is a relative key under ``prefix`` that cannot climb out of it: no
    empty, ``.`` or ``..`` part, no backslash, no control character. Else I2IError: a catalog
    can never make the gallery write outside its folder or the target's prefix."""
    parts = key.split("/")
    unsafe = (
        any(part in {"", ".", ".."} for part in parts)
        or "\\" in key
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in key)
        or (bool(prefix) and not key.startswith(f"{prefix.strip('/')}/"))
    )
    if unsafe:
        where = f"the prefix {prefix!r}" if prefix else "the gallery's folder"
        raise I2IError(f"gallery: key {key!r} would be outside {where}")
    return key


def original_keys(first_key: str, photo: str) -> list[str]:
    """The web copy of a photo's original (:func:`original_key`) and its smaller copies."""
    key = original_key(first_key, photo)
    return [key, *(size_key(key, side) for side in SIZES)]


def cover_key(anchor: str, width: int) -> str:
    """The album cover ``width`` pixels wide; ``anchor`` is the album's first image key."""
    return derived_key(anchor, f".cover-{width}")


def sorted_photos(photos: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(photos, key=lambda entry: entry["photo"])


def album_keys(photos: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every image key of one album: photos by name, then styles by name (as
    :func:`planned_keys` gives them); the first one anchors the album's cover."""
    return [
        entry["styles"][style]["key"]
        for entry in sorted_photos(photos)
        for style in sorted(entry["styles"])
    ]


def album_page_key(album: str, keys: Sequence[str], prefix: str = "") -> str:
    """Where the page of ``album`` goes: the folder its images share when that folder is the
    album's own (its name is one of the folder's parts), else ``<prefix>/_albums/<album>.html``.

    It depends on this album's keys alone, so each album's page is built on its own.
    """
    folder = posixpath.commonpath([posixpath.dirname(k) for k in keys]) if keys else ""
    if folder and album in folder.split("/"):
        return f"{folder}/{INDEX}"
    return shared_page_key(album, prefix)


def shared_page_key(album: str, prefix: str = "") -> str:
    """``<prefix>/_albums/<album>.html`` (a digest of the name when it is not a safe name)."""
    digest = hashlib.sha256(album.encode()).hexdigest()[:12]
    name = album if is_safe_name(album) else f"album-{digest}"
    return posixpath.join(prefix, ALBUM_DIR, f"{name}.html")


def planned_keys(
    photos: Sequence[Mapping[str, str]], styles: Sequence[str], publish: Mapping[str, Any]
) -> dict[str, tuple[int, list[str]]]:
    """Each album's photo count and image keys in catalog order (photos, then styles, sorted),
    from the inventory's photos and the publish settings: what the album pages will hold."""
    prefix = target_for(publish["target"], publish).prefix
    template = template_of(publish)
    albums: dict[str, list[str]] = {}
    for photo in sorted(photos, key=lambda p: (p["album"], p["photo"])):
        albums.setdefault(photo["album"], []).append(photo["photo"])
    return {
        album: (
            len(names),
            [
                object_key(template, prefix, album, name, style)
                for name in names
                for style in sorted(styles)
            ],
        )
        for album, names in albums.items()
    }
