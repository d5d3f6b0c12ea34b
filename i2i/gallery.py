"""A static gallery for ``file://`` targets: an index page and one page per album.

Pages use generated thumbnails, link to the full images, and need no external assets.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from i2i.files import atomic_path, write_bytes

THUMB_SIZE = 360
THUMB_DIR = "_thumbs"

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
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    ).encode()


def _href(path: str) -> str:
    return html.escape(urllib.parse.quote(path), quote=True)


def make_thumbnail(source: Path, target: Path) -> None:
    """A small WebP of ``source`` (long side ``THUMB_SIZE``)."""
    with Image.open(source) as image:
        thumb = image.convert("RGB")
        thumb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    with atomic_path(target) as tmp:
        thumb.save(tmp, "WEBP", quality=80, method=4)


def album_page(album: str, photos: list[Mapping[str, Any]], styles: list[str]) -> bytes:
    """One album: a row per photo, its styles side by side, caption and place."""
    rows = []
    for entry in photos:
        figures = []
        for style in styles:
            image = entry["styles"].get(style)
            if not image:
                continue
            name = image["key"].rsplit("/", 1)[-1]
            figures.append(
                f'<figure><a href="{_href(name)}"><img src="{_href(THUMB_DIR + "/" + name)}" '
                f'alt="{html.escape(entry["photo"])} in {html.escape(style)}" loading="lazy">'
                f"</a><figcaption>{html.escape(style)}</figcaption></figure>"
            )
        place = entry.get("location_formatted") or "no location"
        date = (entry.get("exif") or {}).get("date_taken") or "no date"
        rows.append(
            f"<section><h2>{html.escape(entry['photo'])}</h2>"
            f'<p class="meta">{html.escape(entry["watermark_text"])} · {html.escape(place)} · '
            f'{html.escape(date)}</p><div class="row">{"".join(figures)}</div></section>'
        )
    body = f'<p><a href="../index.html">All albums</a></p><h1>{html.escape(album)}</h1>'
    return _page(album, body + "".join(rows))


def index_page(
    albums: Mapping[str, list[Mapping[str, Any]]],
    covers: Mapping[str, str],
    links: Mapping[str, str],
) -> bytes:
    """The gallery index: one card per album with a cover thumbnail."""
    cards = []
    for album, photos in albums.items():
        if album not in links:
            continue
        cover = covers.get(album)
        img = f'<img src="{_href(cover)}" alt="">' if cover else ""
        cards.append(
            f'<div class="card"><a href="{_href(links[album])}">{img}'
            f'<h2>{html.escape(album)}</h2></a><p class="meta">{len(photos)} photos</p></div>'
        )
    return _page("i2i gallery", f'<h1>i2i gallery</h1><div class="grid">{"".join(cards)}</div>')


def build_gallery(catalog: Mapping[str, Any], root: Path) -> list[str]:
    """Write thumbnails and pages under ``root``; return the pages written (relative)."""
    albums: dict[str, list[Mapping[str, Any]]] = {}
    for entry in catalog["photos"]:
        albums.setdefault(entry["album"], []).append(entry)
    covers: dict[str, str] = {}
    links: dict[str, str] = {}
    pages = []
    for album, photos in albums.items():
        album_keys = set()
        for entry in photos:
            for image in entry["styles"].values():
                key = image["key"]
                folder, name = key.rsplit("/", 1) if "/" in key else ("", key)
                thumb = root / folder / THUMB_DIR / name
                make_thumbnail(root / key, thumb)
                album_keys.add(folder)
                covers.setdefault(album, f"{folder}/{THUMB_DIR}/{name}" if folder else name)
        for folder in sorted(album_keys):
            page = f"{folder}/index.html" if folder else "index.html"
            write_bytes(root / page, album_page(album, photos, catalog["styles"]))
            pages.append(page)
            links.setdefault(album, page)
    write_bytes(root / "index.html", index_page(albums, covers, links))
    pages.append("index.html")
    return pages
