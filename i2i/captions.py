"""The captions stage: the watermark text for one photo.

The template ``{brand} © {year} {astro_symbol} {location}`` is filled from the metadata and
places records; the astro symbol is the zodiac sign of the day the photo was taken. Fields that
are unknown (no date, no GPS) are left out and the spacing is tidied.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from i2i import I2IError

PROMPT_VERSION = 1

# (last day of the sign in its closing month, month, symbol, name): Capricorn closes on Jan 19.
_ZODIAC = [
    (19, 1, "♑", "Capricorn"),
    (18, 2, "♒", "Aquarius"),
    (20, 3, "♓", "Pisces"),
    (19, 4, "♈", "Aries"),
    (20, 5, "♉", "Taurus"),
    (20, 6, "♊", "Gemini"),
    (22, 7, "♋", "Cancer"),
    (22, 8, "♌", "Leo"),
    (22, 9, "♍", "Virgo"),
    (22, 10, "♎", "Libra"),
    (21, 11, "♏", "Scorpio"),
    (21, 12, "♐", "Sagittarius"),
    (31, 12, "♑", "Capricorn"),
]

TEMPLATE_FIELDS = {"brand", "year", "astro_symbol", "astro_sign", "location", "date"}


def zodiac(month: int, day: int) -> tuple[str, str]:
    """The tropical zodiac sign (symbol, name) of a calendar day."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise ValueError(f"not a calendar day: month {month}, day {day}")
    for last_day, last_month, symbol, name in _ZODIAC:
        if (month, day) <= (last_month, last_day):
            return symbol, name
    raise AssertionError("unreachable: the table ends on December 31")


def check_template(template: str) -> None:
    """Raise ``I2IError`` if the template names a field the captions stage cannot fill."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise I2IError(f"watermark.template {template!r}: {exc}") from exc
    unknown = names - TEMPLATE_FIELDS
    if unknown:
        raise I2IError(
            f"watermark.template: unknown field(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(TEMPLATE_FIELDS))}"
        )


def template_fields(
    metadata: Mapping[str, Any], places: Mapping[str, Any], brand: str
) -> dict[str, str]:
    """The values the template can use; unknown ones are empty strings."""
    date = (metadata.get("exif") or {}).get("date_taken") or ""
    fields = {"brand": brand, "year": "", "astro_symbol": "", "astro_sign": "", "date": ""}
    if date:
        year, month, day = int(date[:4]), int(date[5:7]), int(date[8:10])
        fields["year"], fields["date"] = str(year), date[:10]
        fields["astro_symbol"], fields["astro_sign"] = zodiac(month, day)
    fields["location"] = places.get("location_formatted") or ""
    return fields


def fill_template(template: str, fields: Mapping[str, str]) -> str:
    """Fill the template and tidy what empty fields leave behind (double spaces, stray ©)."""
    check_template(template)
    text = template.format(**fields)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s*©\s*$", "", text)


def make_caption(
    metadata: Mapping[str, Any], places: Mapping[str, Any], watermark: Mapping[str, Any]
) -> dict[str, Any]:
    """The captions record: the watermark text and where it came from."""
    fields = template_fields(metadata, places, watermark["brand"])
    return {
        "watermark_text": fill_template(watermark["template"], fields),
        "source": "template",
        "template": watermark["template"],
        "fields": fields,
        "model": None,
        "prompt_version": PROMPT_VERSION,
        "reason": "ollama.enabled is false",
    }
