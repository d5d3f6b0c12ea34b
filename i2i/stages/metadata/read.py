"""One photo's metadata record: EXIF, GPS, dimensions and checksum as normalised JSON.

EXIF is read through Pillow's ``getexif`` so that JPEG, HEIC (pillow-heif), PNG (eXIf), TIFF
and WebP share one code path. Values follow exiftool's numeric output (``exiftool -n``), which
the tests compare against: ``exif.orientation`` is the stored tag and
``image.width``/``image.height`` the stored pixel size, also for a HEIC whose container rotates
it; ``image.applied_rotation`` says what makes the pixels upright (see
:class:`i2i.core.images.Upright`). Broken EXIF or truncated pixel data gives a partial record
whose ``problems`` list says what was wrong (the warnings Pillow emits included); a file that is
not a readable image raises ``I2IError`` naming it once. In Apple Photos mode the record's
``apple_photos`` holds what Photos knows about the photo (uuid, title, description, keywords,
persons, favorite, place) as the export stage gives it; it is None for a photo read from a
folder. ``titles`` holds what the file calls the photo (XMP dc:title, IPTC ObjectName, EXIF
XPTitle), for the gallery. ``maker_notes`` names the maker-note reader and the ``exif`` fields
it filled (:mod:`i2i.stages.metadata.makernotes`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.ExifTags import Base

from i2i import I2IError
from i2i.core.files import sha256_file
from i2i.core.images import image_error, open_image, orientation, upright
from i2i.stages.metadata import makernotes
from i2i.stages.metadata.fields import exif_fields, gps_fields, icc_description, title_fields
from i2i.stages.metadata.problems import image_warnings_as_problems
from i2i.stages.metadata.values import shutter_text

# The stage's logger, as before it became a package: log lines name the stage, not this module.
log = logging.getLogger(__package__)

SCHEMA_VERSION = 5


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
    maker_notes: makernotes.Reader | None = None,
) -> dict[str, Any]:
    """Everything the later stages and the catalog need to know about one photo.

    ``apple_photos`` is what Apple Photos knows about it (None in folder mode), kept as given;
    ``maker_notes`` fills lens, ISO and exposure time where EXIF lacks them (None: EXIF only).
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
        titles_section = title_fields(image, exif, problems)
        _check_pixels(image, problems)
    reader = maker_notes or makernotes.choose("none")
    filled = makernotes.fill(exif_section, path, reader, problems)
    if "exposure_time" in filled:
        exif_section["shutter_speed"] = shutter_text(exif_section["exposure_time"])
    record = {
        "schema_version": SCHEMA_VERSION,
        "source_path": source_path if source_path is not None else str(path),
        "file": {"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)},
        "image": image_section,
        "exif": exif_section,
        "gps": gps_section,
        "titles": titles_section,
        "maker_notes": {"reader": reader.label, "fields": filled},
        "problems": problems,
        "apple_photos": None if apple_photos is None else dict(apple_photos),
    }
    for problem in problems:
        log.warning("%s: %s", path, problem)
    return record
