"""The gallery pages, rendered from the Jinja2 templates in ``i2i/templates``."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from i2i.stages.gallery.keys import (
    COVER_SIZES,
    DEFAULT_LOCALE,
    INDEX,
    ORIGINAL,
    album_locale,
    cover_key,
    language_tag,
    relative_url,
)
from i2i.stages.gallery.words import (
    camera_line,
    credit_lines,
    date_span,
    human_date,
    photo_title,
    slug,
    style_label,
    taken,
    unique,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
GENERATOR = b'<meta name="generator" content="i2i">'  # in every page (templates/base.html)
# A photo's tiles form justified rows (gallery.css), laid out for a phone and for a desktop
# page: (content width, gap, wanted row height) in CSS pixels.
PHONE = (358.0, 9.6, 180.0)
DESKTOP = (1176.0, 12.8, 300.0)


def shown_text(text: str) -> str:
    """``text`` without control characters (C0, DEL, C1) and bidirectional embeddings and
    overrides (U+202A-U+202E: ``\u202egnp.exe`` would show as ``exe.png``); tabs and line
    breaks become spaces. Right-to-left marks stay, and the pages isolate every such text
    (``unicode-bidi: isolate``), so they reorder nothing around it."""
    return "".join(" " if ch in "\t\n\r" else ch for ch in text if not _hidden(ch))


def _hidden(ch: str) -> bool:
    code = ord(ch)
    return (code < 32 and ch not in "\t\n\r") or 127 <= code < 160 or 0x202A <= code <= 0x202E


@cache
def environment() -> jinja2.Environment:
    """The template environment: autoescaped, strict about undefined names.

    Values are escaped as :func:`html.escape` does (``'`` as ``&#x27;``, like the pages made
    before the templates), not as MarkupSafe does (``&#39;``), after their control characters
    are dropped (:func:`shown_text`).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: (
            value
            if isinstance(value, Markup)
            else Markup(html.escape(shown_text(str(value)), quote=True))
        ),
    )
    env.globals["asset"] = lambda name: Markup((TEMPLATES / name).read_text(encoding="utf-8"))
    return env


def render(template: str, **context: Any) -> bytes:
    return environment().get_template(template).render(**context).encode("utf-8")


def srcset(sizes: Sequence[tuple[str, int, int]], page: str) -> str:
    return ", ".join(f"{relative_url(key, page)} {width}w" for key, width, _ in sizes)


def picture(sizes: Sequence[tuple[str, int, int]], page: str) -> dict[str, Any]:
    """What a template needs to show one image: ``src``, ``srcset``, the full image and its
    size (:func:`tile_layout` adds ``sizes`` and ``style``)."""
    full, width, height = sizes[-1]
    small = sizes[0]
    return {
        "src": relative_url(small[0], page),
        "width": small[1],
        "height": small[2],
        "srcset": srcset(sizes, page),
        "full": relative_url(full, page),
        "full_width": width,
        "full_height": height,
    }


def justified_rows(ratios: Sequence[float], width: float, gap: float, target: float) -> list[int]:
    """How many tiles of aspect ``ratios`` go in each row, in order, when every row fills
    ``width`` exactly (so its height follows from its ratios): the split whose row heights
    are nearest ``target`` (least squares)."""
    best = [0.0] + [math.inf] * len(ratios)
    cut = [0] * (len(ratios) + 1)
    for end in range(1, len(ratios) + 1):
        for start in range(end):
            height = (width - gap * (end - start - 1)) / sum(ratios[start:end])
            cost = best[start] + ((height - target) / target) ** 2
            if cost < best[end]:
                best[end], cut[end] = cost, start
    counts, end = [], len(ratios)
    while end:
        counts.append(end - cut[end])
        end = cut[end]
    return counts[::-1]


def row_shares(
    ratios: Sequence[float], screen: tuple[float, float, float]
) -> list[tuple[float, int]]:
    """Each tile's share of its row's width (gaps aside) and how many tiles its row holds."""
    shares: list[tuple[float, int]] = []
    start = 0
    for count in justified_rows(ratios, *screen):
        row = ratios[start : start + count]
        shares += [(ratio / sum(row), count) for ratio in row]
        start += count
    return shares


def tile_layout(pictures: Sequence[dict[str, Any]]) -> None:
    """Give each of a photo's pictures its place in justified rows on phones and desktops
    (``style``: CSS variables for gallery.css) and its displayed width (``sizes``). Every
    image shows whole, every row is full and the images of a row are equally tall."""
    ratios = [p["full_width"] / p["full_height"] for p in pictures]
    phones, desktops = row_shares(ratios, PHONE), row_shares(ratios, DESKTOP)
    for tile, (phone, on_phone), (desktop, on_desktop) in zip(
        pictures, phones, desktops, strict=True
    ):
        tile["style"] = (
            f"--pp: {phone:.5f}; --np: {on_phone}; --pd: {desktop:.5f}; --nd: {on_desktop}"
        )
        tile["sizes"] = (
            f"(max-width: 759px) {math.ceil(phone * 100)}vw, {math.ceil(desktop * DESKTOP[0])}px"
        )


def album_page(
    album: str,
    photos: Sequence[Mapping[str, Any]],
    styles: Sequence[str],
    page: str,
    images: Mapping[tuple[str, str], Sequence[tuple[str, int, int]]],
    settings: Mapping[str, Any],
    index: str = INDEX,
) -> bytes:
    """The page of one album at key ``page``; ``images`` holds the sizes of every image as
    ``(photo, style or "original") -> [(key, width, height), ...]``, the full one last; its
    back link goes to the index at key ``index``."""
    ids: set[str] = set()
    views = []
    moments = []
    locale = album_locale(settings, album)
    for entry in photos:
        moment = taken(entry)
        if moment is not None:
            moments.append(moment)
        title = photo_title(entry)
        anchor = unique(slug(title if entry.get("title") else entry["photo"]), ids)
        when = human_date(moment, locale)
        place = str(entry.get("location_formatted") or "").strip()
        detail = " · ".join(x for x in (when, place) if x)
        caption = entry.get("watermark_text") if entry.get("caption_source") == "llm" else ""
        pictures = []
        if (entry["photo"], ORIGINAL) in images:
            pictures.append(
                {
                    **picture(images[entry["photo"], ORIGINAL], page),
                    "id": unique(f"{anchor}--{ORIGINAL}", ids),
                    "label": "Original",
                    "alt": f"{title}, the original photo",
                    "original": True,
                }
            )
        for style in styles:
            if (entry["photo"], style) not in images:
                continue
            label = style_label(style)
            pictures.append(
                {
                    **picture(images[entry["photo"], style], page),
                    "id": unique(f"{anchor}--{slug(style)}", ids),
                    "label": label,
                    "alt": f"{title} in {label.lower()}",
                    "original": False,
                }
            )
        if not pictures:
            continue
        tile_layout(pictures)
        views.append(
            {
                "id": anchor,
                "title": title,
                "when": when,
                "datetime": moment.isoformat() if moment else "",
                "place": place,
                "detail": detail,
                "camera": camera_line(entry.get("exif")),
                "caption": caption or "",
                "original": pictures[0] if pictures[0]["original"] else None,
                "styles": [p for p in pictures if not p["original"]],
            }
        )
    count = len(views)
    summary = " · ".join(
        x for x in (f"{count} photo{'s' if count != 1 else ''}", date_span(moments, locale)) if x
    )
    return render(
        "album.html",
        lang=language_tag(locale),
        album=album,
        summary=summary,
        photos=views,
        title=settings["title"],
        brand=settings["brand"],
        credits=credit_lines(photos, settings.get("credits") or {}),
        index_url=relative_url(index, page),
    )


def index_page(
    albums: Sequence[tuple[str, int, str, str]], settings: Mapping[str, Any], index: str = INDEX
) -> bytes:
    """The gallery index (at key ``index``): a card per album as ``(album, photos, page,
    anchor)``, the anchor being the album's first image key (its cover's name)."""
    cards = []
    for album, count, page, anchor in albums:
        cover = None
        if anchor:
            sizes = [(cover_key(anchor, w), w, h) for w, h in COVER_SIZES]
            cover = {
                "src": relative_url(sizes[0][0], index),
                "srcset": srcset(sizes, index),
                "width": sizes[0][1],
                "height": sizes[0][2],
            }
        cards.append(
            {
                "name": album,
                "count": f"{count} photo{'s' if count != 1 else ''}",
                "url": relative_url(page, index),
                "cover": cover,
            }
        )
    return render(
        "index.html",
        lang=language_tag(settings.get("locale") or DEFAULT_LOCALE),
        albums=cards,
        title=settings["title"],
        brand=settings["brand"],
        credits=credit_lines([], settings.get("credits") or {}),
    )
