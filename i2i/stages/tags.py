"""What a published image says about itself: the allowlisted EXIF and XMP of the final WebP.

Only the fields of :data:`PUBLISHED_FIELDS` are written, each as the tags listed there (exiftool
``-G1`` names); GPS (:data:`GPS_TAGS`) only with ``publish.keep_gps``. Nothing else of the
source photo reaches the published file: not its album or file name, not its hash, not serial
numbers, owner names or maker notes.

Text goes where readers look for Unicode: XMP ``dc:title``, ``dc:description``, ``dc:creator``,
``dc:rights`` (UTF-8) and the EXIF Unicode tags XPTitle, XPComment, XPAuthor (UTF-16LE). The
EXIF ASCII tags (ImageDescription, Artist, Copyright, Make, Model, LensMake, LensModel) get an
ASCII form (``©`` as ``(c)``, accents dropped: :func:`ascii_safe`), and are left out when a
character has none (CJK, Arabic, emoji), instead of UTF-8 bytes that Pillow and other strict
readers show as ``Â©``.

Credits (:func:`credits`): Artist is ``watermark.artist``, else the source photo's Artist;
Copyright is the ``watermark.copyright`` template, else the source photo's Copyright, else
``© {year} {artist}`` when an artist is known. A tag with nothing to say is left out: the
brand is the watermark's label, not the author. The title is the photo's title in Apple Photos;
the description is its Photos description, else the caption drawn on the image.
"""

from __future__ import annotations

import datetime as dt
import logging
import string
import unicodedata
from collections.abc import Mapping
from fractions import Fraction
from typing import Any
from xml.sax.saxutils import escape

import piexif

from i2i import I2IError, __version__

log = logging.getLogger(__name__)

# The fields a published image carries, each with the tags it is written as (exiftool -G1
# names). The only other tags are GPS_TAGS, with publish.keep_gps. Software records the i2i
# version that made the image (a version bump reruns the watermark rule for it).
PUBLISHED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "make": ("IFD0:Make",),
    "model": ("IFD0:Model",),
    "lens_make": ("ExifIFD:LensMake",),
    "lens_model": ("ExifIFD:LensModel",),
    "exposure_time": ("ExifIFD:ExposureTime",),
    "f_number": ("ExifIFD:FNumber",),
    "iso": ("ExifIFD:ISO",),
    "focal_length": ("ExifIFD:FocalLength",),
    "focal_length_35mm": ("ExifIFD:FocalLengthIn35mmFormat",),
    "date_taken": (
        "ExifIFD:DateTimeOriginal",
        "ExifIFD:SubSecTimeOriginal",
        "ExifIFD:OffsetTimeOriginal",
        "XMP-photoshop:DateCreated",
    ),
    "artist": ("IFD0:Artist", "IFD0:XPAuthor", "XMP-dc:Creator"),
    "copyright": ("IFD0:Copyright", "XMP-dc:Rights"),
    "title": ("IFD0:XPTitle", "XMP-dc:Title"),
    "description": ("IFD0:ImageDescription", "IFD0:XPComment", "XMP-dc:Description"),
    "software": ("IFD0:Software",),
}
GPS_TAGS: tuple[str, ...] = (
    "GPS:GPSVersionID",
    "GPS:GPSLatitudeRef",
    "GPS:GPSLatitude",
    "GPS:GPSLongitudeRef",
    "GPS:GPSLongitude",
    "GPS:GPSAltitudeRef",
    "GPS:GPSAltitude",
    "GPS:GPSImgDirectionRef",
    "GPS:GPSImgDirection",
)
CAMERA_FIELDS = (
    "make",
    "model",
    "lens_make",
    "lens_model",
    "exposure_time",
    "f_number",
    "iso",
    "focal_length",
    "focal_length_35mm",
    "date_taken",
)
COPYRIGHT_FIELDS = frozenset({"year", "brand", "artist"})
SOURCE_COPYRIGHT = "© {year} {artist}"
_ASCII_FORMS = str.maketrans(
    {
        "©": "(c)",
        "®": "(R)",
        "™": "(TM)",
        "‘": "'",
        "’": "'",
        "‚": ",",
        "“": '"',
        "”": '"',
        "„": '"',
        "«": '"',
        "»": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "·": "-",
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "þ": "th",
        "Þ": "Th",
    }
)
_XMP_NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
}


def clean_text(value: Any) -> str | None:
    """``value`` as one line of NFC text without control characters; None when empty."""
    text = unicodedata.normalize("NFC", str(value or ""))
    kept = "".join(
        " " if char.isspace() else char
        for char in text
        if char.isspace() or unicodedata.category(char) not in ("Cc", "Cs", "Cn")
    )
    return " ".join(kept.split()) or None


def ascii_safe(text: str | None) -> str | None:
    """``text`` for an EXIF ASCII tag: ``©`` as ``(c)``, accents dropped; None when a
    character has no ASCII form."""
    if not text:
        return None
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FORMS))
    plain = "".join(char for char in folded if not unicodedata.combining(char))
    return plain if plain.isascii() else None


def _copyright(template: str, year: str, brand: str, artist: str) -> str | None:
    """A copyright template filled in and tidied; None when only a © would be left."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise I2IError(f"watermark.copyright {template!r}: {exc}") from exc
    unknown = names - COPYRIGHT_FIELDS
    if unknown:
        raise I2IError(
            f"watermark.copyright: unknown field(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(COPYRIGHT_FIELDS))}"
        )
    text = clean_text(template.format(year=year, brand=brand, artist=artist)) or ""
    return text if text.strip("©.,;:- ") else None


def credits(
    metadata: Mapping[str, Any], settings: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """(Artist, Copyright) of a published image; None leaves the tag out.

    Artist: ``watermark.artist``, else the source photo's Artist. Copyright: the
    ``watermark.copyright`` template (fields ``year``, ``brand``, ``artist``), else the source
    photo's own Copyright unchanged, else ``© {year} {artist}`` when an artist is known.
    """
    exif_in = metadata.get("exif") or {}
    date_taken = exif_in.get("date_taken")
    year = str(date_taken)[:4] if date_taken else ""
    artist = clean_text(settings.get("artist")) or clean_text(exif_in.get("artist"))
    template = clean_text(settings.get("copyright"))
    if template:
        brand = clean_text(settings.get("brand")) or ""
        notice = _copyright(template, year, brand, artist or "")
    elif clean_text(exif_in.get("copyright")):
        notice = clean_text(exif_in["copyright"])
    elif artist:
        notice = _copyright(SOURCE_COPYRIGHT, year, "", artist)
    else:
        notice = None
    return artist, notice


def published_fields(
    metadata: Mapping[str, Any], caption: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The values of :data:`PUBLISHED_FIELDS` for one image; fields with no value left out."""
    exif_in = metadata.get("exif") or {}
    photos = metadata.get("apple_photos") or {}
    artist, notice = credits(metadata, settings)
    values: dict[str, Any] = {key: exif_in.get(key) for key in CAMERA_FIELDS}
    values.update(
        artist=artist,
        copyright=notice,
        title=clean_text(photos.get("title")),
        description=clean_text(photos.get("description")) or clean_text(caption),
        software=f"i2i {__version__}",
    )
    for key in ("make", "model", "lens_make", "lens_model"):
        values[key] = clean_text(values[key])
    return {k: v for k, v in values.items() if k in PUBLISHED_FIELDS and v not in (None, "")}


def _exif_date(iso: str | None) -> tuple[bytes | None, bytes | None, bytes | None]:
    """ISO 8601 back to EXIF ``YYYY:MM:DD HH:MM:SS``, sub-seconds and ``+HH:MM`` offset."""
    moment = _moment(iso)
    if moment is None:
        return None, None, None
    offset = moment.isoformat()[-6:].encode() if moment.utcoffset() is not None else None
    subsec = f"{moment.microsecond:06d}".rstrip("0").encode() if moment.microsecond else None
    return moment.strftime("%Y:%m:%d %H:%M:%S").encode(), subsec, offset


def _moment(iso: str | None) -> dt.datetime | None:
    if not iso:
        return None
    try:
        return dt.datetime.fromisoformat(iso)
    except ValueError:
        log.warning("date_taken %r is not ISO 8601: not written to the published image", iso)
        return None


def _rational(value: float, scale: int = 1_000_000) -> tuple[int, int]:
    return round(abs(value) * scale), scale


def _fraction(value: float, limit: int = 10_000) -> tuple[int, int]:
    """A positive number as an EXIF rational; 1/n exactly for shutter speeds like 1/250 s."""
    if 0 < value < 1 and abs(value * round(1 / value) - 1) < 1e-3:
        return 1, round(1 / value)
    fraction = Fraction(value).limit_denominator(limit)
    return fraction.numerator, fraction.denominator


def _positive(value: Any, upper: float = float("inf")) -> float | None:
    """``value`` as a number in (0, upper]; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 < value <= upper else None


def _gps_ifd(gps: Mapping[str, Any]) -> dict[int, Any]:
    lat, lon = gps.get("lat"), gps.get("lon")
    if lat is None or lon is None:
        return {}
    ifd: dict[int, Any] = {
        piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
        piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
        piexif.GPSIFD.GPSLatitude: (_rational(lat), (0, 1), (0, 1)),
        piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
        piexif.GPSIFD.GPSLongitude: (_rational(lon), (0, 1), (0, 1)),
    }
    if gps.get("altitude") is not None:
        ifd[piexif.GPSIFD.GPSAltitudeRef] = 1 if gps["altitude"] < 0 else 0
        ifd[piexif.GPSIFD.GPSAltitude] = _rational(gps["altitude"], 1000)
    if gps.get("heading") is not None:
        ifd[piexif.GPSIFD.GPSImgDirectionRef] = (gps.get("heading_ref") or "T").encode()
        ifd[piexif.GPSIFD.GPSImgDirection] = _rational(gps["heading"], 100)
    return ifd


def _ucs2(text: str) -> bytes:
    """Text for a Windows XP tag (XPTitle, XPAuthor, XPComment): UTF-16LE, NUL-terminated."""
    return text.encode("utf-16-le") + b"\0\0"


def _ascii_tags(fields: Mapping[str, Any], tags: Mapping[str, int]) -> dict[int, bytes]:
    """The EXIF ASCII tags of ``tags`` (field → tag) whose field has an ASCII form."""
    chosen = {tag: ascii_safe(fields.get(key)) for key, tag in tags.items()}
    return {tag: text.encode("ascii") for tag, text in chosen.items() if text}


def _camera_ifd(fields: Mapping[str, Any]) -> dict[int, Any]:
    """The Exif IFD: lens, exposure and the date taken."""
    ifd: dict[int, Any] = _ascii_tags(
        fields,
        {"lens_make": piexif.ExifIFD.LensMake, "lens_model": piexif.ExifIFD.LensModel},
    )
    rationals = {
        "exposure_time": (piexif.ExifIFD.ExposureTime, 1_000_000),
        "f_number": (piexif.ExifIFD.FNumber, 100),
        "focal_length": (piexif.ExifIFD.FocalLength, 100),
    }
    for key, (tag, limit) in rationals.items():
        value = _positive(fields.get(key))
        if value is not None:
            ifd[tag] = _fraction(value, limit)
    for key, tag in (
        ("iso", piexif.ExifIFD.ISOSpeedRatings),
        ("focal_length_35mm", piexif.ExifIFD.FocalLengthIn35mmFilm),
    ):
        value = _positive(fields.get(key), 65535)
        if value is not None:
            ifd[tag] = round(value)
    original, subsec, offset = _exif_date(fields.get("date_taken"))
    dates = {
        piexif.ExifIFD.DateTimeOriginal: original,
        piexif.ExifIFD.SubSecTimeOriginal: subsec,
        piexif.ExifIFD.OffsetTimeOriginal: offset,
    }
    ifd.update({tag: value for tag, value in dates.items() if value})
    return ifd


def exif_block(fields: Mapping[str, Any], gps: Mapping[str, Any] | None) -> bytes:
    """The EXIF block of :func:`published_fields` ``fields``; GPS from ``gps`` unless None."""
    zeroth: dict[int, Any] = _ascii_tags(
        fields,
        {
            "make": piexif.ImageIFD.Make,
            "model": piexif.ImageIFD.Model,
            "software": piexif.ImageIFD.Software,
            "artist": piexif.ImageIFD.Artist,
            "copyright": piexif.ImageIFD.Copyright,
            "description": piexif.ImageIFD.ImageDescription,
        },
    )
    for key, tag in (
        ("title", piexif.ImageIFD.XPTitle),
        ("artist", piexif.ImageIFD.XPAuthor),
        ("description", piexif.ImageIFD.XPComment),
    ):
        if fields.get(key):
            zeroth[tag] = _ucs2(fields[key])
    gps_ifd = _gps_ifd(gps) if gps is not None else {}
    return piexif.dump({"0th": zeroth, "Exif": _camera_ifd(fields), "GPS": gps_ifd})


def _xmp_property(name: str, text: str, container: str | None) -> str:
    """One XMP property: simple, or a one-item ``Alt`` (x-default language) or ``Seq``."""
    value = escape(text)
    if container is None:
        return f"<{name}>{value}</{name}>"
    lang = ' xml:lang="x-default"' if container == "Alt" else ""
    return f"<{name}><rdf:{container}><rdf:li{lang}>{value}</rdf:li></rdf:{container}></{name}>"


def xmp_packet(fields: Mapping[str, Any]) -> bytes:
    """The XMP packet (UTF-8) of ``fields``: Dublin Core text and the date taken; empty when
    there is nothing to say."""
    properties = [
        _xmp_property(name, fields[key], container)
        for key, name, container in (
            ("title", "dc:title", "Alt"),
            ("description", "dc:description", "Alt"),
            ("artist", "dc:creator", "Seq"),
            ("copyright", "dc:rights", "Alt"),
        )
        if fields.get(key)
    ]
    if _moment(fields.get("date_taken")) is not None:
        properties.append(_xmp_property("photoshop:DateCreated", fields["date_taken"], None))
    if not properties:
        return b""
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _XMP_NAMESPACES.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" {namespaces}>'
        + "".join(properties)
        + "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode("utf-8")
