"""The words of the gallery pages: titles, dates, camera lines, credits and ids."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_interval, format_skeleton, format_time

from i2i import I2IError
from i2i.stages.gallery.keys import DEFAULT_LOCALE
from i2i.stages.tags import credits

IMAGE_SUFFIX = re.compile(r"\.(jpe?g|heic|heif|png|tiff?|webp|gif|dng|avif)$", re.IGNORECASE)
# What cameras write into ImageDescription when nobody described the photo.
CAMERA_BOILERPLATE = re.compile(
    r"(olympus |konica minolta |minolta |kodak |lg |samsung )?digital (still )?camera"
    r"|sony [dc]sc|exif_jpeg_picture|samsung camera pictures|dcim\S*|default|untitled"
    r"|image|picture|photo",
    re.IGNORECASE,
)


def tidy_name(name: str) -> str:
    """A file name as a title: no image extension, underscores as spaces, a lower-case start
    capitalised, an all-capitals name without digits in sentence case: ``deep_field`` →
    ``Deep field``, ``IMG_0042.JPG`` → ``IMG 0042``, ``CAPE_CANAVERAL`` → ``Cape canaveral``."""
    text = " ".join(re.sub(r"_+", " ", IMAGE_SUFFIX.sub("", name)).split()) or name
    if text.isupper() and not any(ch.isdigit() for ch in text):
        text = text.lower()
    first = text.split(" ", 1)[0]
    if first.islower():
        text = text[0].upper() + text[1:]
    return text


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def embedded_title(entry: Mapping[str, Any]) -> str:
    """What the file calls the photo (the metadata stage's ``titles`` and ``exif``): XMP
    ``dc:title``, else IPTC ObjectName, else EXIF XPTitle, else an EXIF ImageDescription that
    is not a camera's boilerplate (``OLYMPUS DIGITAL CAMERA``); empty if none."""
    titles = entry.get("titles") or {}
    for value in (titles.get("xmp"), titles.get("iptc"), titles.get("xp")):
        if _text(value):
            return _text(value)
    description = _text((entry.get("exif") or {}).get("image_description"))
    return "" if CAMERA_BOILERPLATE.fullmatch(description) else description


def photo_title(entry: Mapping[str, Any]) -> str:
    """The Photos title, else the file's own title (:func:`embedded_title`), else the tidied
    file name."""
    return _text(entry.get("title")) or embedded_title(entry) or tidy_name(entry["photo"])


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


@cache
def locale_of(name: str) -> Locale:
    """The CLDR locale ``name`` names (``en_GB``, ``fr``, ``pt-BR``); I2IError if none."""
    try:
        return Locale.parse(name.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError) as exc:
        raise I2IError(f"gallery locale {name!r}: not a known locale ({exc})") from exc


def human_date(moment: dt.datetime | None, locale: str = DEFAULT_LOCALE) -> str:
    """The day and time in ``locale``'s words, no seconds, no zone (the time shown on the
    camera): ``21 March 2024, 21:45`` (en_GB), ``21 mars 2024, 21:45`` (fr)."""
    if moment is None:
        return ""
    where = locale_of(locale)
    naive = _naive(moment)
    day = format_date(naive, "long", locale=where)
    time = format_time(naive, "short", locale=where)
    return str(where.datetime_formats["medium"]).format(time, day)


def date_span(moments: Sequence[dt.datetime], locale: str = DEFAULT_LOCALE) -> str:
    """The months the photos span in ``locale``'s words: ``March 2024``, ``January – March
    2024`` or ``May 2015 – March 2024`` (en_GB, CLDR's thin spaces around the dash)."""
    if not moments:
        return ""
    where = locale_of(locale)
    first, last = min(map(_naive, moments)), max(map(_naive, moments))
    if (first.year, first.month) == (last.year, last.month):
        return format_skeleton("yMMMM", last, locale=where)
    return format_interval(first, last, "yMMMM", locale=where)


YEAR = re.compile(r"\b\d{4}\b")


def merged_notices(notices: Iterable[str]) -> list[str]:
    """Distinct notices in order, those that differ only in their one year merged into a
    span: ``© 2015 Ann``, ``© 2024 Ann`` → ``© 2015–2024 Ann``."""
    years: dict[str, list[str]] = {}
    for notice in notices:
        found = YEAR.findall(notice)
        shape = YEAR.sub("\0", notice) if len(found) == 1 else notice
        years.setdefault(shape, []).extend(found[:1] if len(found) == 1 else [])
    lines = []
    for shape, found in years.items():
        first, last = min(found, default=""), max(found, default="")
        lines.append(shape.replace("\0", first if first == last else f"{first}–{last}"))
    return lines


def credit_lines(entries: Sequence[Mapping[str, Any]], watermark: Mapping[str, Any]) -> list[str]:
    """The copyright notices of the photos' published images, as the watermark stage writes
    them (``watermark.copyright``, else the photo's own, else ``© {year} {artist}``), merged
    (:func:`merged_notices`). With no photos (the index), the notice without a year. The
    brand is the watermark's label, not the author: it is never a notice of its own."""
    notices = [credits(entry, watermark)[1] for entry in entries or [{}]]
    return merged_notices(n for n in notices if n)


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
