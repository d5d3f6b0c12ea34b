"""A record's ``exif``, ``gps`` and ``titles`` sections from a photo's EXIF, XMP and IPTC, and
its ICC profile's name.

A value of a wrong type is dropped and recorded in the problems list. A GPS fix at 0,0 or
marked void counts as no position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from xml.etree import ElementTree

from PIL import Image, ImageCms, IptcImagePlugin
from PIL.ExifTags import GPS, IFD, Base

from i2i.core.images import orientation
from i2i.stages.metadata.values import (
    _integer,
    _offset,
    _rounded,
    altitude_metres,
    apex_to_f_number,
    dms_to_degrees,
    exif_datetime,
    exif_text,
    gps_timestamp,
    shutter_text,
    speed_kmh,
)


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


DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
RDF_LI = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
IPTC_OBJECT_NAME = (2, 5)
IPTC_CHARSET = (1, 90)
TIFF_XMP = 700


def one_line(text: str | None) -> str | None:
    """``text`` on one line, control characters dropped, spaces collapsed; empty as None."""
    if text is None:
        return None
    kept = "".join(" " if ch.isspace() or ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)
    return " ".join(kept.split()) or None


def xmp_packet(image: Image.Image) -> bytes | str | None:
    """The XMP packet of an image: JPEG, WebP and HEIC (``xmp``), PNG (iTXt), TIFF (tag 700)."""
    packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    tags = getattr(image, "tag_v2", None)
    if packet is None and tags is not None:
        packet = tags.get(TIFF_XMP)
    return packet


def xmp_title(packet: bytes | str | None, problems: list[str]) -> str | None:
    """XMP ``dc:title``: its ``x-default`` alternative, else its first. Parsed by expat, which
    refuses entity expansion attacks; an unreadable packet is a problem, not an error."""
    if not packet:
        return None
    try:
        root = ElementTree.fromstring(
            packet.strip(b"\x00 \r\n\t") if isinstance(packet, bytes) else packet.strip()
        )
    except (ElementTree.ParseError, ValueError) as exc:
        problems.append(f"titles.xmp: unreadable XMP: {_short(str(exc))}")
        return None
    for title in root.iter(DC_TITLE):
        items = list(title.iter(RDF_LI))
        chosen = next((i for i in items if i.get(XML_LANG) == "x-default"), None)
        for item in [chosen, *items] if items else [title]:
            text = one_line(item.text if item is not None else None)
            if text:
                return text
    return None


def iptc_object_name(image: Image.Image, problems: list[str]) -> str | None:
    """IPTC ObjectName (2:5), UTF-8 when the record says so or it decodes, else Latin-1."""
    try:
        info = IptcImagePlugin.getiptcinfo(image) or {}
    except Exception as exc:  # Pillow raises many types on corrupt IPTC blocks
        problems.append(f"titles.iptc: unreadable IPTC: {type(exc).__name__}: {_short(exc)}")
        return None
    value = info.get(IPTC_OBJECT_NAME)
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, bytes):
        return None
    utf8 = info.get(IPTC_CHARSET) == b"\x1b%G"
    try:
        return one_line(value.decode("utf-8"))
    except UnicodeDecodeError:
        return None if utf8 else one_line(value.decode("latin-1"))


def xp_title(value: Any) -> str | None:
    """EXIF XPTitle (Windows): UTF-16LE bytes, NUL-terminated."""
    if isinstance(value, tuple | list):
        value = bytes(value)
    if not isinstance(value, bytes):
        return None
    return one_line(value.decode("utf-16-le", errors="replace").replace("\x00", ""))


def title_fields(image: Image.Image, exif: Image.Exif, problems: list[str]) -> dict[str, Any]:
    """The ``titles`` section: what the file itself calls the photo, from XMP ``dc:title``,
    IPTC ObjectName and EXIF XPTitle (EXIF ImageDescription is in ``exif``)."""
    return {
        "xmp": xmp_title(xmp_packet(image), problems),
        "iptc": iptc_object_name(image, problems),
        "xp": xp_title(exif.get(Base.XPTitle)),
    }
