"""The static gallery: an index page and one page per album, for every target.

Pages come from the Jinja2 templates in ``i2i/templates`` (autoescaped) with their CSS and
script inlined: no external assets, no fonts, no network. Every link is relative, so the same
folder works from ``file://`` and from an S3 website. Every name here is a key at the target:
the index is ``<prefix>/index.html`` (``index.html`` for a ``file://`` target, whose prefix is
empty). An album page sits in the folder its images share (``<folder>/index.html``); when that
folder is not the album's own, it goes to ``<prefix>/_albums/<album>.html`` instead.

An album page shows each photo under a human title (its Photos ``title`` when the catalog has
one, else a tidied file name) with a human date, its place once, a camera, lens and exposure
line, and a web-sized copy of its original beside its styles. Every image has smaller sizes for
``srcset``; a click opens a full-size viewer over the page (next and previous, arrow keys,
Escape, swipes on phones, a link back to the album). Derived images live in a ``_gallery``
folder next to the published image they come from, one level deeper than any image key, so
they are never mistaken for published images. The index shows a cover per album: the photo
named in ``gallery.covers``, else the album's first favourite, else its first photo's
original; the album's rule writes it at a key the index knows from the inventory alone, so the
index never waits for an album.

For a target that is not a local folder (``s3://``) the gallery is built in a local folder laid
out like the target (the published images are read from the workflow's finals) and every file a
build wrote is uploaded the way images are published (:func:`upload_site`): pages with
``publish.page_cache_control``, images with ``publish.cache_control``, each with its
Content-Type and its sha256, so a file that already matches is not uploaded again.

Builds are deterministic: the same catalog, originals and settings give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import logging
import math
import mimetypes
import posixpath
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from PIL import Image, ImageOps

from i2i.core.files import is_safe_name, write_bytes
from i2i.stages.publish import DEFAULT_CACHE_CONTROL, object_key, template_of
from i2i.targets import Headers, target_for, upload

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
DERIVED_DIR = "_gallery"
ALBUM_DIR = "_albums"
INDEX = "index.html"

SIZES = (400, 800)  # long sides of the smaller copies every image gets for srcset
ORIGINAL_LONG_SIDE = 2048  # the web copy of an original is never larger than this
COVER_SIZES = ((480, 320), (960, 640))  # album covers: 3:2 crops
QUALITY = 80
ORIGINAL_QUALITY = 86
ORIGINAL = "original"
GENERATOR = b'<meta name="generator" content="i2i">'  # in every page (templates/base.html)

DEFAULT_PAGE_CACHE_CONTROL = "public, max-age=300"
PAGE_SUFFIXES = frozenset({".html"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".json": "application/json",
    ".webp": "image/webp",
}
UPLOAD_WORKERS = 16

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


# ---------------------------------------------------------------------------------------------
# Settings


def gallery_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Title, brand and covers from a config (or a rule's ``settings`` params): the brand is
    ``gallery.brand``, else ``watermark.brand``."""
    gallery = config.get("gallery") or {}
    brand = gallery.get("brand") or (config.get("watermark") or {}).get("brand") or ""
    return {
        "title": gallery.get("title") or "Gallery",
        "brand": brand,
        "covers": dict(gallery.get("covers") or {}),
    }


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
    """Every suffix :func:`derived_key` is given: sizes, the original and its sizes, covers."""
    sizes = [f".{side}" for side in SIZES]
    return [
        *sizes,
        f".{ORIGINAL}",
        *(f".{ORIGINAL}{size}" for size in sizes),
        *(f".cover-{width}" for width, _ in COVER_SIZES),
    ]


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


def original_key(first_key: str) -> str:
    """The web copy of a photo's original, named after the key of its first style."""
    return derived_key(first_key, f".{ORIGINAL}")


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


# ---------------------------------------------------------------------------------------------
# Words: titles, dates, camera lines


def tidy_name(name: str) -> str:
    """A file stem as a title: ``deep_field`` → ``Deep field``, ``IMG_0042`` → ``IMG 0042``."""
    text = re.sub(r"[\s_]+", " ", name).strip() or name
    first = text.split(" ", 1)[0]
    if first.islower():
        text = text[0].upper() + text[1:]
    return text


def photo_title(entry: Mapping[str, Any]) -> str:
    """The Photos title when the catalog has one, else the tidied file name."""
    title = entry.get("title")
    if isinstance(title, str) and title.strip():
        return " ".join(title.split())
    return tidy_name(entry["photo"])


def style_label(style: str) -> str:
    """``oil_paint`` → ``Oil paint``."""
    return tidy_name(style.replace("-", " "))


def taken(entry: Mapping[str, Any]) -> dt.datetime | None:
    """When the photo was taken, in the camera's local time (as it was recorded)."""
    value = (entry.get("exif") or {}).get("date_taken")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_date(moment: dt.datetime | None) -> str:
    """``21 March 2024, 21:45`` (no seconds, no zone: the time shown on the camera)."""
    if moment is None:
        return ""
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M}"


def date_span(moments: Sequence[dt.datetime]) -> str:
    """``March 2024``, ``January – March 2024`` or ``May 2015 – March 2024``."""
    if not moments:
        return ""
    first, last = min(moments, key=_naive), max(moments, key=_naive)
    end = f"{MONTHS[last.month - 1]} {last.year}"
    if (first.year, first.month) == (last.year, last.month):
        return end
    if first.year == last.year:
        return f"{MONTHS[first.month - 1]} – {end}"
    return f"{MONTHS[first.month - 1]} {first.year} – {end}"


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _trim(value: float) -> str:
    """``1.78`` → ``1.8``, ``8.0`` → ``8``."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def camera_line(exif: Mapping[str, Any] | None) -> str:
    """``iPhone 15 Pro · Back triple camera 6.765mm f/1.78 · 24 mm · ƒ/1.8 · 1/4 s · ISO 1600``;
    empty when the photo says nothing about its camera."""
    exif = exif or {}
    make = " ".join(str(exif.get("make") or "").split())
    model = " ".join(str(exif.get("model") or "").split())
    parts = []
    if model and make and not model.lower().startswith(make.split(" ")[0].lower()):
        parts.append(f"{make} {model}")
    elif model or make:
        parts.append(model or make)
    lens = " ".join(str(exif.get("lens_model") or "").split())
    if lens and model and lens.lower().startswith(model.lower()) and lens[len(model) :].strip():
        lens = lens[len(model) :].strip()
        lens = lens[0].upper() + lens[1:]
    if lens and lens.lower() != (model or "").lower():
        parts.append(lens)
    focal = _number(exif.get("focal_length_35mm")) or _number(exif.get("focal_length"))
    if focal:
        parts.append(f"{_trim(focal)}\u00a0mm")
    aperture = _number(exif.get("f_number"))
    if aperture:
        parts.append(f"ƒ/{_trim(aperture)}")
    if exif.get("shutter_speed"):
        parts.append(f"{exif['shutter_speed']}\u00a0s")
    iso = _number(exif.get("iso"))
    if iso:
        parts.append(f"ISO\u00a0{int(iso)}")
    return " · ".join(parts)


def slug(text: str) -> str:
    """An ASCII id for ``text`` (``Café crème`` → ``cafe-creme``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower() or "photo"


def unique(name: str, taken_ids: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken_ids:
        number += 1
        candidate = f"{name}-{number}"
    taken_ids.add(candidate)
    return candidate


# ---------------------------------------------------------------------------------------------
# Images


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


# ---------------------------------------------------------------------------------------------
# Pages


@cache
def environment() -> jinja2.Environment:
    """The template environment: autoescaped, strict about undefined names.

    Values are escaped as :func:`html.escape` does (``'`` as ``&#x27;``, like the pages made
    before the templates), not as MarkupSafe does (``&#39;``).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: (
            value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))
        ),
    )
    env.globals["asset"] = lambda name: Markup((TEMPLATES / name).read_text(encoding="utf-8"))
    return env


def render(template: str, **context: Any) -> bytes:
    return environment().get_template(template).render(**context).encode("utf-8")


def srcset(sizes: Sequence[tuple[str, int, int]], page: str) -> str:
    return ", ".join(f"{relative_url(key, page)} {width}w" for key, width, _ in sizes)


def picture(
    sizes: Sequence[tuple[str, int, int]], page: str, *, tile_vw: int, tile_px: int, square: bool
) -> dict[str, Any]:
    """What a template needs to show one image: ``src``, ``srcset``, ``sizes``, the full
    image and its size. A square tile crops, so it needs a copy as wide as the crop's height
    times the image's aspect."""
    full, width, height = sizes[-1]
    factor = max(1.0, width / height) if square else 1.0
    small = sizes[0]
    return {
        "src": relative_url(small[0], page),
        "width": small[1],
        "height": small[2],
        "srcset": srcset(sizes, page),
        "sizes": f"(max-width: 760px) {math.ceil(tile_vw * factor)}vw, "
        f"{math.ceil(tile_px * factor)}px",
        "full": relative_url(full, page),
        "full_width": width,
        "full_height": height,
    }


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
    for entry in photos:
        moment = taken(entry)
        if moment is not None:
            moments.append(moment)
        title = photo_title(entry)
        anchor = unique(slug(title if entry.get("title") else entry["photo"]), ids)
        when = human_date(moment)
        place = str(entry.get("location_formatted") or "").strip()
        detail = " · ".join(x for x in (when, place) if x)
        caption = entry.get("watermark_text") if entry.get("caption_source") == "llm" else ""
        pictures = []
        if (entry["photo"], ORIGINAL) in images:
            pictures.append(
                {
                    **picture(
                        images[entry["photo"], ORIGINAL],
                        page,
                        tile_vw=100,
                        tile_px=460,
                        square=False,
                    ),
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
                    **picture(
                        images[entry["photo"], style], page, tile_vw=34, tile_px=170, square=True
                    ),
                    "id": unique(f"{anchor}--{slug(style)}", ids),
                    "label": label,
                    "alt": f"{title} in {label.lower()}",
                    "original": False,
                }
            )
        if not pictures:
            continue
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
        x for x in (f"{count} photo{'s' if count != 1 else ''}", date_span(moments)) if x
    )
    return render(
        "album.html",
        album=album,
        summary=summary,
        photos=views,
        title=settings["title"],
        brand=settings["brand"],
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
    return render("index.html", albums=cards, title=settings["title"], brand=settings["brand"])


# ---------------------------------------------------------------------------------------------
# Builds


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
    keys = album_keys(photos)
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
            key = original_key(first)
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
        (album, count, album_page_key(album, keys, prefix), keys[0] if keys else "")
        for album, (count, keys) in sorted(albums.items())
    ]
    index = index_key(prefix)
    write_bytes(root / index, index_page(cards, settings, index))
    return index


# ---------------------------------------------------------------------------------------------
# Uploads (targets that are not a local folder)


def site_headers(key: str, publish: Mapping[str, Any]) -> Headers:
    """The Content-Type and Cache-Control of the gallery file at ``key``: pages get
    ``publish.page_cache_control`` (short: they change when the library does), everything else
    ``publish.cache_control``."""
    suffix = posixpath.splitext(key)[1].lower()
    kind = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    if suffix in PAGE_SUFFIXES:
        cache_control = publish.get("page_cache_control") or DEFAULT_PAGE_CACHE_CONTROL
    else:
        cache_control = publish.get("cache_control") or DEFAULT_CACHE_CONTROL
    return {"ContentType": kind, "CacheControl": cache_control}


def upload_site(root: Path, keys: Sequence[str], publish: Mapping[str, Any]) -> list[str]:
    """Upload ``root/key`` to the target of ``publish`` (the whole config section, operational
    keys included) at ``key`` for every key, as images are published (:func:`i2i.targets.upload`:
    not again where the same sha256, size and headers are there; read back and verified).
    Return the keys uploaded."""
    target = target_for(publish["target"], publish)

    def one(key: str) -> str | None:
        return upload(target, root / key, key, site_headers(key, publish)).reason

    unique_keys = sorted(set(keys))
    if len(unique_keys) < 2:
        reasons = [one(key) for key in unique_keys]
    else:
        with ThreadPoolExecutor(min(UPLOAD_WORKERS, len(unique_keys))) as pool:
            reasons = list(pool.map(one, unique_keys))
    uploaded = [key for key, reason in zip(unique_keys, reasons, strict=True) if reason]
    log.info(
        "%s: %d gallery file(s) uploaded, %d unchanged",
        publish["target"],
        len(uploaded),
        len(unique_keys) - len(uploaded),
    )
    return uploaded
