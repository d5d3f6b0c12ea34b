"""The metadata stage: EXIF, GPS, dimensions and checksum of one photo as normalised JSON.

Rationals become numbers, GPS becomes signed decimal degrees, dates become ISO 8601 with the
offset when the camera recorded one. EXIF is read through Pillow's ``getexif`` so that JPEG,
HEIC (pillow-heif), PNG (eXIf), TIFF and WebP share one code path. Broken EXIF gives a partial
record whose ``problems`` list says what was wrong; an unreadable image raises ``I2IError``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, UnidentifiedImageError
from PIL.ExifTags import GPS, IFD, Base

from i2i import I2IError
from i2i.files import sha256_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (idempotent)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


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


def _text(value: Any) -> str | None:
    """EXIF ASCII/UNDEFINED as clean text: NULs and padding stripped, empty as None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    return text or None


_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


def exif_datetime(value: Any, offset: Any = None, subsec: Any = None) -> str | None:
    """``2024:07:05 09:12:30`` (+ ``+02:00``, + ``123``) as ISO 8601; None when not a date."""
    text = _text(value)
    if text is None:
        return None
    try:
        moment = dt.datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    digits = _text(subsec)
    if digits and digits.isdigit():
        iso += "." + digits
    zone = _text(offset)
    if zone and _OFFSET.match(zone):
        iso += zone
    return iso


def dms_to_degrees(dms: Any, ref: Any) -> float | None:
    """Degrees/minutes/seconds rationals and an N/S/E/W reference as signed decimal degrees."""
    try:
        degrees, minutes, seconds = (float(x) for x in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(value):
        return None
    if (_text(ref) or "").upper() in {"S", "W"}:
        value = -value
    return round(value, 7)


def _gps_timestamp(date: Any, time: Any) -> str | None:
    day = _text(date)
    try:
        hours, minutes, seconds = (float(x) for x in time)
        moment = dt.datetime.strptime(day or "", "%Y:%m:%d")
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    moment += dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    return moment.isoformat() + "Z"


def _speed_kmh(speed: Any, ref: Any) -> float | None:
    value = _number(speed)
    if value is None:
        return None
    factor = {"K": 1.0, "M": 1.609344, "N": 1.852}.get((_text(ref) or "K").upper(), 1.0)
    return round(value * factor, 3)


def _altitude(value: Any, ref: Any) -> float | None:
    number = _number(value)
    if number is None:
        return None
    below_sea_level = ref in (1, b"\x01") or _integer(ref) == 1
    return round(-number if below_sea_level else number, 3)


def _shutter_text(seconds: float | None) -> str | None:
    if seconds is None or seconds <= 0:
        return None
    if seconds >= 1:
        return f"{seconds:g}"
    return f"1/{round(1 / seconds):d}"


def _ifd(exif: Image.Exif, which: IFD, problems: list[str]) -> Mapping[int, Any]:
    try:
        return exif.get_ifd(which)
    except Exception as exc:  # Pillow raises many types on corrupt IFDs
        problems.append(f"{which.name} IFD unreadable: {exc}")
        return {}


def _field(problems: list[str], name: str, convert: Callable[..., Any], *values: Any) -> Any:
    """Apply ``convert``; a value of a wrong type is recorded in ``problems`` and dropped."""
    if values[0] is None:
        return None
    try:
        result = convert(*values)
    except Exception as exc:
        problems.append(f"{name}: cannot read {values!r}: {exc}")
        return None
    if result is None:
        problems.append(f"{name}: unusable value {values[0]!r}")
    return result


def exif_fields(exif: Image.Exif, problems: list[str]) -> dict[str, Any]:
    """The ``exif`` section: camera, lens, exposure and dates, normalised."""
    main = dict(exif)
    sub = _ifd(exif, IFD.Exif, problems) if IFD.Exif in main else {}
    g = sub.get
    exposure_time = _field(problems, "exposure_time", _rounded, g(Base.ExposureTime))
    flash = _field(problems, "flash", _integer, g(Base.Flash))
    values = {
        "make": _text(main.get(Base.Make)),
        "model": _text(main.get(Base.Model)),
        "software": _text(main.get(Base.Software)),
        "artist": _text(main.get(Base.Artist)),
        "copyright": _text(main.get(Base.Copyright)),
        "image_description": _text(main.get(Base.ImageDescription)),
        "orientation": _field(problems, "orientation", _integer, main.get(Base.Orientation)),
        "date_modified": _field(
            problems,
            "date_modified",
            exif_datetime,
            main.get(Base.DateTime),
            g(Base.OffsetTime),
            g(Base.SubsecTime),
        ),
        "date_taken": _field(
            problems,
            "date_taken",
            exif_datetime,
            g(Base.DateTimeOriginal),
            g(Base.OffsetTimeOriginal),
            g(Base.SubsecTimeOriginal),
        ),
        "date_digitized": _field(
            problems,
            "date_digitized",
            exif_datetime,
            g(Base.DateTimeDigitized),
            g(Base.OffsetTimeDigitized),
            g(Base.SubsecTimeDigitized),
        ),
        "offset_time": _text(g(Base.OffsetTimeOriginal) or g(Base.OffsetTime)),
        "lens_make": _text(g(Base.LensMake)),
        "lens_model": _text(g(Base.LensModel)),
        "body_serial_number": _text(g(Base.BodySerialNumber)),
        "lens_serial_number": _text(g(Base.LensSerialNumber)),
        "camera_owner": _text(g(Base.CameraOwnerName)),
        "focal_length": _field(problems, "focal_length", _rounded, g(Base.FocalLength)),
        "focal_length_35mm": _field(
            problems, "focal_length_35mm", _integer, g(Base.FocalLengthIn35mmFilm)
        ),
        "f_number": _field(problems, "f_number", _rounded, g(Base.FNumber)),
        "max_aperture_value": _field(
            problems, "max_aperture_value", _rounded, g(Base.MaxApertureValue)
        ),
        "exposure_time": exposure_time,
        "shutter_speed": _shutter_text(exposure_time),
        "iso": _field(problems, "iso", _integer, g(Base.ISOSpeedRatings)),
        "exposure_program": _field(problems, "exposure_program", _integer, g(Base.ExposureProgram)),
        "exposure_mode": _field(problems, "exposure_mode", _integer, g(Base.ExposureMode)),
        "exposure_bias": _field(problems, "exposure_bias", _rounded, g(Base.ExposureBiasValue)),
        "metering_mode": _field(problems, "metering_mode", _integer, g(Base.MeteringMode)),
        "flash": flash,
        "flash_fired": None if flash is None else bool(flash & 1),
        "white_balance": _field(problems, "white_balance", _integer, g(Base.WhiteBalance)),
        "light_source": _field(problems, "light_source", _integer, g(Base.LightSource)),
        "color_space": _field(problems, "color_space", _integer, g(Base.ColorSpace)),
        "scene_capture_type": _field(
            problems, "scene_capture_type", _integer, g(Base.SceneCaptureType)
        ),
        "contrast": _field(problems, "contrast", _integer, g(Base.Contrast)),
        "saturation": _field(problems, "saturation", _integer, g(Base.Saturation)),
        "sharpness": _field(problems, "sharpness", _integer, g(Base.Sharpness)),
        "digital_zoom_ratio": _field(
            problems, "digital_zoom_ratio", _rounded, g(Base.DigitalZoomRatio)
        ),
        "subject_distance": _field(problems, "subject_distance", _rounded, g(Base.SubjectDistance)),
        "brightness_value": _field(problems, "brightness_value", _rounded, g(Base.BrightnessValue)),
    }
    return values


def gps_fields(exif: Image.Exif, problems: list[str]) -> dict[str, Any]:
    """The ``gps`` section: signed decimal degrees, metres, degrees true/magnetic, km/h, UTC."""
    gps = _ifd(exif, IFD.GPSInfo, problems) if IFD.GPSInfo in dict(exif) else {}
    g = gps.get
    lat = _field(problems, "gps.lat", dms_to_degrees, g(GPS.GPSLatitude), g(GPS.GPSLatitudeRef))
    lon = _field(problems, "gps.lon", dms_to_degrees, g(GPS.GPSLongitude), g(GPS.GPSLongitudeRef))
    if lat is not None and not -90 <= lat <= 90:
        problems.append(f"gps.lat: {lat} is out of range")
        lat = None
    if lon is not None and not -180 <= lon <= 180:
        problems.append(f"gps.lon: {lon} is out of range")
        lon = None
    if (lat is None) != (lon is None):
        lat = lon = None
    return {
        "lat": lat,
        "lon": lon,
        "altitude": _field(
            problems, "gps.altitude", _altitude, g(GPS.GPSAltitude), g(GPS.GPSAltitudeRef)
        ),
        "heading": _field(problems, "gps.heading", _rounded, g(GPS.GPSImgDirection)),
        "heading_ref": _text(g(GPS.GPSImgDirectionRef)),
        "track": _field(problems, "gps.track", _rounded, g(GPS.GPSTrack)),
        "speed_kmh": _field(
            problems, "gps.speed_kmh", _speed_kmh, g(GPS.GPSSpeed), g(GPS.GPSSpeedRef)
        ),
        "timestamp": _field(
            problems, "gps.timestamp", _gps_timestamp, g(GPS.GPSDateStamp), g(GPS.GPSTimeStamp)
        ),
        "horizontal_error_m": _field(
            problems, "gps.horizontal_error_m", _rounded, g(GPS.GPSHPositioningError)
        ),
    }


def icc_description(icc: bytes | None) -> str | None:
    """The description of an embedded ICC profile, e.g. ``Display P3``."""
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(ImageCms.core.profile_frombytes(icc))
        return ImageCms.getProfileDescription(profile).strip() or None
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return None


def read_metadata(path: str | os.PathLike[str], source_path: str | None = None) -> dict[str, Any]:
    """Everything the later stages and the catalog need to know about one photo."""
    path = Path(path)
    register_heif()
    problems: list[str] = []
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise I2IError(f"{path}: cannot read: {exc.strerror}") from exc
    if size == 0:
        raise I2IError(f"{path}: empty file (0 bytes), not an image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            image_format, mode = image.format, image.mode
            icc = image.info.get("icc_profile")
            try:
                exif = image.getexif()
            except Exception as exc:
                problems.append(f"EXIF unreadable: {exc}")
                exif = Image.Exif()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise I2IError(f"{path}: not a readable image ({exc})") from exc
    record = {
        "schema_version": SCHEMA_VERSION,
        "source_path": source_path if source_path is not None else str(path),
        "file": {"name": path.name, "size": size, "sha256": sha256_file(path)},
        "image": {
            "width": width,
            "height": height,
            "format": image_format,
            "mode": mode,
            "icc_description": icc_description(icc),
        },
        "exif": exif_fields(exif, problems),
        "gps": gps_fields(exif, problems),
        "problems": problems,
    }
    for problem in problems:
        log.warning("%s: %s", path, problem)
    return record


def year_taken(record: Mapping[str, Any]) -> int | None:
    """The year the photo was taken, from a metadata record."""
    date = (record.get("exif") or {}).get("date_taken")
    return int(date[:4]) if date else None


def has_position(record: Mapping[str, Any]) -> bool:
    """True if the record holds usable GPS coordinates."""
    gps = record.get("gps") or {}
    return gps.get("lat") is not None and gps.get("lon") is not None
