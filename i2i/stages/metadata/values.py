"""EXIF values as JSON: rationals as numbers, GPS as signed decimal degrees, dates as ISO 8601.

Values follow exiftool's numeric output (``exiftool -n``), which the tests compare against.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any


def _number(value: Any) -> float | None:
    """A rational, int or float as a finite float; anything else as None."""
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _rounded(value: Any, digits: int = 6) -> float | None:
    number = _number(value)
    return None if number is None else round(number, digits)


def _integer(value: Any) -> int | None:
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    number = _number(value)
    return None if number is None else int(number)


def exif_text(value: Any) -> str | None:
    """EXIF ASCII/UNDEFINED as clean text: NULs and padding stripped, empty as None.

    Pillow decodes ASCII as Latin-1, but cameras and editors write UTF-8 there (``©``, accents);
    text that is valid UTF-8 is read as UTF-8, like exiftool does.
    """
    if isinstance(value, str) and not value.isascii():
        value = value.encode("latin-1", errors="replace")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    return text or None


_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


def exif_datetime(value: Any, offset: Any = None, subsec: Any = None) -> str | None:
    """``2024:07:05 09:12:30`` (+ ``+02:00``, + ``123``) as ISO 8601; None when not a date."""
    text = exif_text(value)
    if text is None:
        return None
    try:
        moment = dt.datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    digits = exif_text(subsec)
    if digits and digits.isascii() and digits.isdigit():
        iso += "." + digits
    zone = exif_text(offset)
    if zone and _OFFSET.match(zone):
        iso += zone
    return iso


def _offset(value: Any) -> str | None:
    """An EXIF OffsetTime ``+02:00``; anything else as None."""
    text = exif_text(value)
    return text if text and _OFFSET.match(text) else None


def dms_to_degrees(dms: Any, ref: Any) -> float | None:
    """Degrees[/minutes[/seconds]] rationals and an N/S/E/W reference as signed decimal degrees."""
    try:
        parts = [float(x) for x in dms]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3:
        return None
    degrees, minutes, seconds = (*parts, 0.0, 0.0)[:3]
    value = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(value):
        return None
    if (exif_text(ref) or "").upper() in {"S", "W"}:
        value = -value
    return round(value, 7)


def gps_timestamp(date: Any, time: Any) -> str | None:
    """GPSDateStamp ``2024:07:05`` and GPSTimeStamp (h, m, s) as ISO 8601 UTC."""
    day = exif_text(date)
    try:
        hours, minutes, seconds = (float(x) for x in time)
        moment = dt.datetime.strptime(day or "", "%Y:%m:%d")
        moment += dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return moment.isoformat() + "Z"


def speed_kmh(speed: Any, ref: Any) -> float | None:
    """GPSSpeed in its GPSSpeedRef unit (K km/h, M mph, N knots; K when absent) as km/h."""
    value = _number(speed)
    if value is None:
        return None
    factor = {"K": 1.0, "M": 1.609344, "N": 1.852}.get((exif_text(ref) or "K").upper())
    return None if factor is None else round(value * factor, 3)


def altitude_metres(value: Any, ref: Any) -> float | None:
    """GPSAltitude in metres, negative when GPSAltitudeRef says below sea level (1)."""
    number = _number(value)
    if number is None:
        return None
    below_sea_level = ref == b"\x01" or _integer(ref) == 1
    return round(-number if below_sea_level else number, 3)


def apex_to_f_number(value: Any) -> float | None:
    """An APEX aperture value (MaxApertureValue) as an f-number, as exiftool reports it."""
    apex = _number(value)
    if apex is None or abs(apex) > 64:
        return None
    return round(2 ** (apex / 2), 6)


def shutter_text(seconds: float | None) -> str | None:
    """An exposure time as photographers write it: ``1/250``, ``0.8``, ``30``."""
    if seconds is None or seconds <= 0:
        return None
    if seconds >= 1 or round(1 / seconds) < 2:
        return f"{seconds:g}"
    if abs(1 / seconds - round(1 / seconds)) > 0.05:
        return f"{seconds:g}"
    return f"1/{round(1 / seconds):d}"
