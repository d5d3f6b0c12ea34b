"""The metadata stage: EXIF, GPS, dimensions and checksum of one photo as normalised JSON.

Rationals become numbers, GPS becomes signed decimal degrees, dates become ISO 8601 with the offset
when the camera recorded one. EXIF is read through Pillow's ``getexif`` so that JPEG, HEIC
(pillow-heif), PNG (eXIf), TIFF and WebP share one code path. Values follow exiftool's numeric
output (``exiftool -n``), which the tests compare against: ``exif.orientation`` is the stored tag
and ``image.width``/``image.height`` the stored pixel size, also for a HEIC whose container rotates
it; ``image.applied_rotation`` says what makes the pixels upright (see
:class:`i2i.core.images.Upright`). Broken EXIF or truncated pixel data gives a partial record whose
``problems`` list says what was wrong (the warnings Pillow emits included); a file that is not a
readable image raises ``I2IError`` naming it once. A GPS fix at 0,0 or marked void counts as no
position. In Apple Photos mode the record's ``apple_photos`` holds what Photos knows about the
photo (uuid, title, description, keywords, persons, favorite, place) as the export stage gives it;
it is None for a photo read from a folder.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms
from PIL.ExifTags import GPS, IFD, Base

from i2i import I2IError
from i2i.core.files import sha256_file
from i2i.core.images import image_error, open_image, orientation, upright

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3


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


_IMAGE_MODULES = re.compile(r"(PIL|pillow_heif)(\.|$)")
_NEVER_RECORDED = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)


class _Capture(threading.local):
    """Per thread: the problems list of the capture running in it, if any."""

    problems: list[str] | None = None
    passing_on: bool = False


_capture = _Capture()
_routing = threading.Lock()
_passed_on: list[Callable[..., None]] = [warnings.showwarning]


@cache
def _library_folders() -> tuple[str, ...]:
    """The folders of Pillow and pillow-heif, whose warnings a capture records."""
    import PIL
    import pillow_heif

    return tuple(str(Path(module.__file__).parent) + os.sep for module in (PIL, pillow_heif))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning``: an image library's warning goes to this thread's capture."""
    problems = _capture.problems
    if (
        problems is not None
        and not issubclass(category, _NEVER_RECORDED)
        and filename.startswith(_library_folders())
    ):
        problems.append(f"{category.__name__}: {message}")
    elif _capture.passing_on:  # a hook installed over this one hands the warning back
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
    else:
        _capture.passing_on = True
        try:
            _passed_on[0](message, category, filename, lineno, file, line)
        finally:
            _capture.passing_on = False


def _route_warnings() -> None:
    """Put :func:`_show_warning` in front of whatever shows warnings now (idempotent).

    Checked at every capture, since ``warnings.catch_warnings`` (pytest wraps each test in one)
    restores an earlier hook on exit. The image libraries' warnings get the ``always`` action:
    with ``default``, a message repeated from one code line is shown once per process, so
    whether a photo's record has it would depend on which photo was read first.
    """
    with _routing:
        if warnings.showwarning is not _show_warning:
            _passed_on[0] = warnings.showwarning
            warnings.showwarning = _show_warning
        for category in (UserWarning, RuntimeWarning):
            if ("always", None, category, _IMAGE_MODULES, 0) not in warnings.filters:
                warnings.filterwarnings("always", category=category, module=_IMAGE_MODULES.pattern)


@contextmanager
def image_warnings_as_problems(problems: list[str]) -> Iterator[None]:
    """Record in ``problems`` what Pillow and pillow-heif warn about in this thread meanwhile.

    Thread-safe: other threads' warnings, and warnings from other code, are shown as usual;
    deprecation and resource warnings (a finalizer can run in any thread) are never recorded,
    and a repeated warning is recorded every time.
    """
    _route_warnings()
    outer, _capture.problems = _capture.problems, problems
    try:
        yield
    finally:
        _capture.problems = outer


def _ifd(exif: Image.Exif, which: IFD, problems: list[str]) -> Mapping[int, Any]:
    """A nested IFD; a pointer that leads nowhere is recorded in ``problems``."""
    if which not in dict(exif):
        return {}
    try:
        ifd = exif.get_ifd(which)
    except Exception as exc:  # Pillow raises many types on corrupt IFDs
        problems.append(f"{which.name} IFD unreadable: {type(exc).__name__}: {exc}")
        return {}
    if not ifd:
        problems.append(f"{which.name} IFD pointer {exif.get(which)!r} leads to no tags")
    return ifd


def _field(problems: list[str], name: str, convert: Callable[..., Any], *values: Any) -> Any:
    """Apply ``convert``; a value of a wrong type is recorded in ``problems`` and dropped."""
    if values[0] is None:
        return None
    try:
        result = convert(*values)
    except Exception as exc:
        problems.append(f"{name}: cannot read {_short(values)}: {type(exc).__name__}: {exc}")
        return None
    if result is None and not _placeholder(values[0]):
        problems.append(f"{name}: unusable value {_short(values[0])}")
    return result


def _placeholder(value: Any) -> bool:
    """True for the blanks cameras write for unknown values: ``""``, spaces, ``0000:00:00 …``."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return isinstance(value, str) and re.fullmatch(r"[\x00 ]*|[0: \x00]{10,}", value) is not None


def _short(value: Any, limit: int = 80) -> str:
    """A value's repr, cut so that garbage does not flood the record."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def exif_fields(exif: Image.Exif, problems: list[str]) -> dict[str, Any]:
    """The ``exif`` section: camera, lens, exposure and dates, normalised."""
    main = dict(exif)
    sub = _ifd(exif, IFD.Exif, problems)
    m, g = main.get, sub.get

    def read(name: str, convert: Callable[..., Any], *values: Any) -> Any:
        return _field(problems, name, convert, *values)

    exposure_time = read("exposure_time", _rounded, g(Base.ExposureTime))
    flash = read("flash", _integer, g(Base.Flash))
    return {
        "make": read("make", exif_text, m(Base.Make)),
        "model": read("model", exif_text, m(Base.Model)),
        "software": read("software", exif_text, m(Base.Software)),
        "artist": read("artist", exif_text, m(Base.Artist)),
        "copyright": read("copyright", exif_text, m(Base.Copyright)),
        "image_description": read("image_description", exif_text, m(Base.ImageDescription)),
        "orientation": read("orientation", orientation, m(Base.Orientation)),
        "date_modified": read(
            "date_modified",
            exif_datetime,
            m(Base.DateTime),
            g(Base.OffsetTime),
            g(Base.SubsecTime),
        ),
        "date_taken": read(
            "date_taken",
            exif_datetime,
            g(Base.DateTimeOriginal),
            g(Base.OffsetTimeOriginal),
            g(Base.SubsecTimeOriginal),
        ),
        "date_digitized": read(
            "date_digitized",
            exif_datetime,
            g(Base.DateTimeDigitized),
            g(Base.OffsetTimeDigitized),
            g(Base.SubsecTimeDigitized),
        ),
        "offset_time": read(
            "offset_time", _offset, g(Base.OffsetTimeOriginal) or g(Base.OffsetTime)
        ),
        "lens_make": read("lens_make", exif_text, g(Base.LensMake)),
        "lens_model": read("lens_model", exif_text, g(Base.LensModel)),
        "body_serial_number": read("body_serial_number", exif_text, g(Base.BodySerialNumber)),
        "lens_serial_number": read("lens_serial_number", exif_text, g(Base.LensSerialNumber)),
        "camera_owner": read("camera_owner", exif_text, g(Base.CameraOwnerName)),
        "focal_length": read("focal_length", _rounded, g(Base.FocalLength)),
        "focal_length_35mm": read("focal_length_35mm", _integer, g(Base.FocalLengthIn35mmFilm)),
        "f_number": read("f_number", _rounded, g(Base.FNumber)),
        "max_aperture_value": read(
            "max_aperture_value", apex_to_f_number, g(Base.MaxApertureValue)
        ),
        "exposure_time": exposure_time,
        "shutter_speed": shutter_text(exposure_time),
        "iso": read("iso", _integer, g(Base.ISOSpeedRatings)),
        "exposure_program": read("exposure_program", _integer, g(Base.ExposureProgram)),
        "exposure_mode": read("exposure_mode", _integer, g(Base.ExposureMode)),
        "exposure_bias": read("exposure_bias", _rounded, g(Base.ExposureBiasValue)),
        "metering_mode": read("metering_mode", _integer, g(Base.MeteringMode)),
        "flash": flash,
        "flash_fired": None if flash is None else bool(flash & 1),
        "white_balance": read("white_balance", _integer, g(Base.WhiteBalance)),
        "light_source": read("light_source", _integer, g(Base.LightSource)),
        "color_space": read("color_space", _integer, g(Base.ColorSpace)),
        "scene_capture_type": read("scene_capture_type", _integer, g(Base.SceneCaptureType)),
        "contrast": read("contrast", _integer, g(Base.Contrast)),
        "saturation": read("saturation", _integer, g(Base.Saturation)),
        "sharpness": read("sharpness", _integer, g(Base.Sharpness)),
        "digital_zoom_ratio": read("digital_zoom_ratio", _rounded, g(Base.DigitalZoomRatio)),
        "subject_distance": read("subject_distance", _rounded, g(Base.SubjectDistance)),
        "brightness_value": read("brightness_value", _rounded, g(Base.BrightnessValue)),
    }


def gps_fields(exif: Image.Exif, problems: list[str]) -> dict[str, Any]:
    """The ``gps`` section: signed decimal degrees, metres, degrees true/magnetic, km/h, UTC."""
    g = _ifd(exif, IFD.GPSInfo, problems).get

    def read(name: str, convert: Callable[..., Any], *values: Any) -> Any:
        return _field(problems, f"gps.{name}", convert, *values)

    lat = read("lat", dms_to_degrees, g(GPS.GPSLatitude), g(GPS.GPSLatitudeRef))
    lon = read("lon", dms_to_degrees, g(GPS.GPSLongitude), g(GPS.GPSLongitudeRef))
    if lat is not None and not -90 <= lat <= 90:
        problems.append(f"gps.lat: {lat} is out of range")
        lat = None
    if lon is not None and not -180 <= lon <= 180:
        problems.append(f"gps.lon: {lon} is out of range")
        lon = None
    if (lat is None) != (lon is None):
        problems.append("gps: latitude or longitude missing, position dropped")
        lat = lon = None
    fields = {
        "lat": lat,
        "lon": lon,
        "altitude": read("altitude", altitude_metres, g(GPS.GPSAltitude), g(GPS.GPSAltitudeRef)),
        "heading": read("heading", _rounded, g(GPS.GPSImgDirection)),
        "heading_ref": read("heading_ref", exif_text, g(GPS.GPSImgDirectionRef)),
        "track": read("track", _rounded, g(GPS.GPSTrack)),
        "speed_kmh": read("speed_kmh", speed_kmh, g(GPS.GPSSpeed), g(GPS.GPSSpeedRef)),
        "timestamp": read("timestamp", gps_timestamp, g(GPS.GPSDateStamp), g(GPS.GPSTimeStamp)),
        "horizontal_error_m": read("horizontal_error_m", _rounded, g(GPS.GPSHPositioningError)),
    }
    no_fix = gps_no_fix(lat, lon, g(GPS.GPSStatus), g(GPS.GPSMeasureMode))
    if no_fix is None or all(value is None for value in fields.values()):
        return fields
    problems.append(f"gps: {no_fix}, GPS fields dropped")
    return dict.fromkeys(fields)


def gps_no_fix(lat: float | None, lon: float | None, status: Any, mode: Any) -> str | None:
    """Why the GPS block holds no real fix (0,0, GPSStatus void, bad GPSMeasureMode), or None.

    Receivers without a fix write 0,0 ("Null Island", reverse-geocoded to the sea off Ghana)
    or mark the block void; neither is a position.
    """
    if lat == 0 and lon == 0:
        return "position 0,0 (no fix)"
    status_text = exif_text(status)
    if status_text is not None and status_text.upper() == "V":
        return "GPSStatus V (void: no fix)"
    mode_text = exif_text(mode)
    if mode_text is not None and mode_text not in {"2", "3"}:
        return f"GPSMeasureMode {_short(mode_text)} is neither 2 nor 3 (no fix)"
    return None


def icc_description(icc: bytes | None) -> str | None:
    """The description of an embedded ICC profile, e.g. ``Display P3``."""
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(ImageCms.core.profile_frombytes(icc))
        return ImageCms.getProfileDescription(profile).strip() or None
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return None


def _read_exif(image: Image.Image, problems: list[str]) -> Image.Exif:
    """The image's EXIF; an unreadable block is recorded in ``problems`` and read as empty."""
    try:
        return image.getexif()
    except Exception as exc:  # Pillow raises many types on corrupt EXIF
        problems.append(f"EXIF unreadable: {type(exc).__name__}: {exc}")
        return Image.Exif()


def _check_pixels(image: Image.Image, problems: list[str]) -> None:
    """Decode the pixels (a reduced JPEG scan) so that truncated or corrupt data is noticed."""
    try:
        if image.format == "JPEG":
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, ...
        problems.append(f"pixel data unreadable: {image_error(exc)}")


def _stored_exif(image: Image.Image, exif: Image.Exif) -> Image.Exif:
    """``exif`` with the Orientation tag as stored: pillow-heif resets it to 1 in a HEIC.

    pillow-heif keeps the EXIF value, or the XMP one when EXIF says 1, so a HEIC whose EXIF
    says 1 and whose XMP says otherwise is read with the XMP value.
    """
    original = orientation(image.info.get("original_orientation"))
    if original is not None and Base.Orientation in exif:
        exif[Base.Orientation] = original
    return exif


def _open_named(path: Path) -> Image.Image:
    """:func:`open_image`, its error naming the file."""
    try:
        return open_image(path)
    except I2IError as exc:
        raise I2IError(f"{path}: {exc}") from exc


def read_metadata(
    path: str | os.PathLike[str],
    source_path: str | None = None,
    apple_photos: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the later stages and the catalog need to know about one photo.

    ``apple_photos`` is what Apple Photos knows about it (None in folder mode), kept as given.
    """
    path = Path(path)
    problems: list[str] = []
    with image_warnings_as_problems(problems), _open_named(path) as image:
        exif = _read_exif(image, problems)
        turn = upright(image, exif)
        width, height = turn.stored_size(image.size)
        image_section = {
            "width": width,
            "height": height,
            "format": image.format,
            "mode": image.mode,
            "icc_description": icc_description(image.info.get("icc_profile")),
            "applied_rotation": turn.record(),
        }
        exif = _stored_exif(image, exif)
        exif_section = exif_fields(exif, problems)
        gps_section = gps_fields(exif, problems)
        _check_pixels(image, problems)
    record = {
        "schema_version": SCHEMA_VERSION,
        "source_path": source_path if source_path is not None else str(path),
        "file": {"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)},
        "image": image_section,
        "exif": exif_section,
        "gps": gps_section,
        "problems": problems,
        "apple_photos": None if apple_photos is None else dict(apple_photos),
    }
    for problem in problems:
        log.warning("%s: %s", path, problem)
    return record


def photos_info(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """What Apple Photos knows about the photo of a metadata record; empty in folder mode."""
    return record.get("apple_photos") or {}


def has_position(record: Mapping[str, Any]) -> bool:
    """True if the record holds usable GPS coordinates (0,0 is no fix, also in old records)."""
    gps = record.get("gps") or {}
    lat, lon = gps.get("lat"), gps.get("lon")
    return lat is not None and lon is not None and not (lat == 0 and lon == 0)
