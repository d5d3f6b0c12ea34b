"""A static gallery for ``file://`` targets: an index page and one page per album.

Pages use generated thumbnails, link to the full images with relative URLs that are right for
any key depth, and need no external assets (inline CSS, no scripts, no fonts, no network).
An album page sits in the folder its images share (``<folder>/index.html``); when that folder
is the root or is shared with another album, it goes to ``_albums/<album>.html`` instead.
"""

from __future__ import annotations

import hashlib
import html
import posixpath
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from i2i.files import atomic_path, is_safe_name, write_bytes
from i2i.publish import DEFAULT_KEY_TEMPLATE, object_key, parse_target

THUMB_SIZE = 360
THUMB_DIR = "_thumbs"
ALBUM_DIR = "_albums"
INDEX = "index.html"

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#111;color:#eee}
a{color:#9cf}h1,h2{font-weight:500}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.card{background:#1c1c1c;padding:.6rem;border-radius:6px;max-width:380px}
.row{display:flex;gap:.6rem;overflow-x:auto;padding-bottom:.6rem}
figure{margin:0}figcaption{font-size:.8rem;color:#aaa;margin-top:.3rem}
img{display:block;max-width:360px;height:auto;border-radius:4px}
.meta{font-size:.9rem;color:#ccc;margin:.2rem 0 .8rem}
"""


def _page(title: str, body: str) -> bytes:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    ).encode()


def relative_href(target: str, page: str) -> str:
    """The escaped, URL-quoted link from the page at key ``page`` to the file at key ``target``."""
    start = posixpath.dirname(page) or "."
    return html.escape(urllib.parse.quote(posixpath.relpath(target, start)), quote=True)


def thumb_key(key: str) -> str:
    """Where the thumbnail of the image at ``key`` lives: ``<folder>/_thumbs/<name>``."""
    folder, name = posixpath.split(key)
    return posixpath.join(folder, THUMB_DIR, name)


def make_thumbnail(source: Path, target: Path) -> None:
    """A small WebP of ``source`` (long side ``THUMB_SIZE``); kept when newer than the source."""
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return
    with Image.open(source) as image:
        thumb = image.convert("RGB")
        thumb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    with atomic_path(target) as tmp:
        thumb.save(tmp, "WEBP", quality=80, method=4)


def album_keys(photos: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every image key of one album, in catalog order."""
    return [image["key"] for entry in photos for image in entry["styles"].values()]


def album_page_key(album: str, keys: Sequence[str]) -> str:
    """Where the page of ``album`` goes: the folder its images share when that folder is the
    album's own (its name is one of the folder's parts), else ``_albums/<album>.html``.

    It depends on this album's keys alone, so each album's page is built on its own.
    """
    folder = posixpath.commonpath([posixpath.dirname(k) for k in keys]) if keys else ""
    if folder and album in folder.split("/"):
        return f"{folder}/{INDEX}"
    if is_safe_name(album):
        return f"{ALBUM_DIR}/{album}.html"
    return f"{ALBUM_DIR}/album-{hashlib.sha256(album.encode()).hexdigest()[:12]}.html"


def album_page(album: str, photos: list[Mapping[str, Any]], styles: list[str], page: str) -> bytes:
    """One album at key ``page``: a row per photo, its styles side by side, caption and place."""
    rows = []
    for entry in photos:
        figures = []
        for style in styles:
            image = entry["styles"].get(style)
            if not image:
                continue
            figures.append(
                f'<figure><a href="{relative_href(image["key"], page)}">'
                f'<img src="{relative_href(thumb_key(image["key"]), page)}" '
                f'alt="{html.escape(entry["photo"])} in {html.escape(style)}" loading="lazy">'
                f"</a><figcaption>{html.escape(style)}</figcaption></figure>"
            )
        if not figures:
            continue
        place = entry.get("location_formatted") or "no location"
        date = (entry.get("exif") or {}).get("date_taken") or "no date"
        caption = entry.get("watermark_text") or ""
        rows.append(
            f"<section><h2>{html.escape(entry['photo'])}</h2>"
            f'<p class="meta">{html.escape(caption)} · {html.escape(place)} · '
            f'{html.escape(date)}</p><div class="row">{"".join(figures)}</div></section>'
        )
    back = f'<p><a href="{relative_href(INDEX, page)}">All albums</a></p>'
    return _page(album, f"{back}<h1>{html.escape(album)}</h1>{''.join(rows)}")


def index_page(albums: Sequence[tuple[str, int, str, str]]) -> bytes:
    """The gallery index (key ``index.html``): a card per album as ``(album, photos, page,
    cover)``, the cover being the key of a thumbnail."""
    cards = []
    for album, count, page, cover in albums:
        img = f'<img src="{relative_href(cover, INDEX)}" alt="">' if cover else ""
        cards.append(
            f'<div class="card"><a href="{relative_href(page, INDEX)}">{img}'
            f'<h2>{html.escape(album)}</h2></a><p class="meta">{count} photos</p></div>'
        )
    return _page("i2i gallery", f'<h1>i2i gallery</h1><div class="grid">{"".join(cards)}</div>')


def build_album(catalog: Mapping[str, Any], root: Path) -> str:
    """Thumbnails and the page of one album catalog under ``root``; return the page's key."""
    photos = catalog["photos"]
    keys = album_keys(photos)
    for key in keys:
        make_thumbnail(root / key, root / thumb_key(key))
    page = album_page_key(catalog["album"], keys)
    write_bytes(root / page, album_page(catalog["album"], photos, catalog["styles"], page))
    return page


def build_index(albums: Mapping[str, tuple[int, Sequence[str]]], root: Path) -> str:
    """The index page from each album's photo count and image keys; return its key.

    It needs no album to be finished: the cover is the thumbnail of the album's first image.
    """
    cards = [
        (album, count, album_page_key(album, keys), thumb_key(keys[0]) if keys else "")
        for album, (count, keys) in albums.items()
    ]
    write_bytes(root / INDEX, index_page(cards))
    return INDEX


def planned_keys(
    photos: Sequence[Mapping[str, str]], styles: Sequence[str], publish: Mapping[str, Any]
) -> dict[str, tuple[int, list[str]]]:
    """Each album's photo count and image keys in catalog order (photos, then styles, sorted),
    from the inventory's photos and the publish settings: what the album pages will hold."""
    target = parse_target(publish["target"])
    template = publish.get("key_template") or DEFAULT_KEY_TEMPLATE
    albums: dict[str, list[str]] = {}
    for photo in sorted(photos, key=lambda p: (p["album"], p["photo"])):
        albums.setdefault(photo["album"], []).append(photo["photo"])
    return {
        album: (
            len(names),
            [
                object_key(template, target.prefix, album, name, style)
                for name in names
                for style in sorted(styles)
            ],
        )
        for album, names in albums.items()
    }


def build_gallery(catalog: Mapping[str, Any], root: Path) -> list[str]:
    """Every album page and the index for a whole catalog; return the pages written."""
    albums: dict[str, list[Mapping[str, Any]]] = {}
    for entry in catalog["photos"]:
        albums.setdefault(entry["album"], []).append(entry)
    pages = [
        build_album({"album": album, "photos": photos, "styles": catalog["styles"]}, root)
        for album, photos in albums.items()
    ]
    pages.append(build_index({a: (len(p), album_keys(p)) for a, p in albums.items()}, root))
    return pages
