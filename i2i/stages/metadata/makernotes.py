"""Lens, ISO and exposure time that a camera keeps only in its maker notes.

Many cameras (older Canon, Nikon, Olympus and Pentax bodies, Casio, Kodak) write the lens and
sometimes the ISO into their maker notes, a vendor block that Pillow does not decode. A maker-note
reader fills those fields where the standard EXIF tag is missing; a standard tag always wins.

Readers, the first available taken for ``auto``:

* ``exiftool``: the exiftool command through PyExifTool, one resident ``exiftool -stay_open``
  process per worker process. The lens is the maker notes' ``LensModel``, else exiftool's
  ``LensID`` (its lens tables, for notes that keep a lens number).
* ``exifread``: ExifRead, pure Python. It decodes Canon's lens model and Nikon's ISO setting.
* ``none``: standard EXIF only.

The reader and its version are part of the metadata rule's params, so a change of reader reads
every photo again.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.core.files import write_bytes

# The reader of the last real run, so that a run can say the reader changed.
STAMP = Path(".i2i") / "maker-notes"
# The fields a maker-note reader may fill: the metadata record's ``exif`` keys.
FIELDS = ("lens_model", "iso", "exposure_time")
CHOICES = ("auto", "exiftool", "exifread", "none")
# exiftool tags per field, first present wins: printed values, except numeric (``#``) times.
EXIFTOOL_TAGS: Mapping[str, tuple[str, ...]] = {
    "lens_model": ("MakerNotes:LensModel", "Composite:LensID"),
    "iso": ("MakerNotes:ISO",),
    "exposure_time": ("MakerNotes:ExposureTime#",),
}
UNKNOWN_LENS = re.compile(r"^(Unknown|n/a|none)\b", re.IGNORECASE)

Values = dict[str, Any]


@dataclass(frozen=True)
class Reader:
    """A maker-note reader: ``label`` (name and version) goes into the metadata params."""

    name: str
    version: str
    read: Callable[[Path], Values]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


def clean_lens(value: Any) -> str | None:
    """A lens name, or None for the placeholders readers give for an unknown lens."""
    text = " ".join(str(value).split()) if value is not None else ""
    if not text or UNKNOWN_LENS.match(text) or text.strip("0 ") == "":
        return None
    return text


def clean_iso(value: Any) -> int | None:
    """An ISO speed from a maker-note value (``200``, ``"0 200"``, ``[0, 200]``), else None."""
    if isinstance(value, list | tuple):
        numbers = [float(v) for v in value if isinstance(v, int | float)]
    elif re.fullmatch(r"\s*\d+(\.\d+)?(\s+\d+(\.\d+)?)*\s*", str(value)):
        numbers = [float(n) for n in str(value).split()]
    else:
        return None
    positive = [n for n in numbers if n > 0]
    return round(positive[-1]) if positive else None


def clean_time(value: Any) -> float | None:
    """An exposure time in seconds, else None."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds < 100_000 else None


CLEAN: Mapping[str, Callable[[Any], Any]] = {
    "lens_model": clean_lens,
    "iso": clean_iso,
    "exposure_time": clean_time,
}


def from_exiftool(tags: Mapping[str, Any]) -> Values:
    """The fields from one file's exiftool JSON (``-G`` group names, as PyExifTool asks)."""
    found: Values = {}
    for field, names in EXIFTOOL_TAGS.items():
        for name in names:
            value = CLEAN[field](tags.get(name.rstrip("#")))
            if value is not None:
                found[field] = value
                break
    return found


_helpers: dict[int, Any] = {}


@contextmanager
def _killed_with_parent() -> Iterator[None]:
    """Start exiftool so that Linux kills it when its parent dies.

    PyExifTool asks for SIGTERM, but the pool workers block SIGTERM (:mod:`i2i.run.signals`) and
    exiftool inherits the blocked mask: a worker killed outright would leave it running. SIGKILL
    cannot be blocked.
    """
    import exiftool.exiftool as module

    original = module._set_pdeathsig
    module._set_pdeathsig = lambda sig: original(signal.SIGKILL)
    try:
        yield
    finally:
        module._set_pdeathsig = original


def _exiftool_helper() -> Any:
    """This process's resident exiftool (started again if it ended), ended at exit."""
    import exiftool

    helper = _helpers.get(os.getpid())
    if helper is None or not helper.running:
        helper = exiftool.ExifToolHelper(common_args=["-G", "-charset", "filename=utf8"])
        with _killed_with_parent():
            helper.run()
        atexit.register(lambda: helper.running and helper.terminate())
        _helpers[os.getpid()] = helper
    return helper


def read_with_exiftool(path: Path) -> Values:
    """The fields exiftool finds in ``path``'s maker notes."""
    import exiftool.exceptions

    tags = [name for names in EXIFTOOL_TAGS.values() for name in names]
    try:
        found = _exiftool_helper().get_tags([str(path)], tags)
    except exiftool.exceptions.ExifToolException as exc:
        raise I2IError(f"{path}: exiftool cannot read it: {exc}") from exc
    return from_exiftool(found[0] if found else {})


def from_exifread(tags: Mapping[str, Any]) -> Values:
    """The fields from ExifRead's tags (``MakerNote …`` keys, values with ``.values``)."""
    values = {key: getattr(tag, "values", tag) for key, tag in tags.items()}
    found: Values = {}
    lens = clean_lens(values.get("MakerNote LensModel"))
    if lens is not None:
        found["lens_model"] = lens
    iso = clean_iso(values.get("MakerNote ISOSetting") or values.get("MakerNote ISO"))
    if iso is not None:
        found["iso"] = iso
    return found


def read_with_exifread(path: Path) -> Values:
    """The fields ExifRead finds in ``path``'s maker notes."""
    import exifread

    logging.getLogger("exifread").setLevel(logging.ERROR)
    with path.open("rb") as handle:
        tags = exifread.process_file(handle, details=True, extract_thumbnail=False)
    return from_exifread(tags)


def _exiftool_version() -> str | None:
    """exiftool's version, or None when it is not installed or not working."""
    command = shutil.which("exiftool")
    if command is None or importlib.util.find_spec("exiftool") is None:
        return None
    try:
        reply = subprocess.run(
            [command, "-ver"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return reply.stdout.strip() or None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@cache
def choose(choice: str = "auto") -> Reader:
    """The reader for the ``metadata.maker_notes`` setting; a named one that is missing is an
    error saying what to install."""
    if choice not in CHOICES:
        raise I2IError(f"metadata.maker_notes: {choice!r} is not one of {', '.join(CHOICES)}")
    if choice in ("auto", "exiftool"):
        version = _exiftool_version()
        if version is not None:
            return Reader("exiftool", version, read_with_exiftool)
        if choice == "exiftool":
            raise I2IError(
                "metadata.maker_notes: exiftool needs the exiftool command "
                "(apt-get install libimage-exiftool-perl, brew install exiftool) "
                "and PyExifTool (pip install pyexiftool)"
            )
    if choice in ("auto", "exifread"):
        version = _package_version("ExifRead")
        if version is not None:
            return Reader("exifread", version, read_with_exifread)
        if choice == "exifread":
            raise I2IError("metadata.maker_notes: exifread needs ExifRead (pip install exifread)")
    return Reader("none", "", lambda path: {})


def reader_named(label: str) -> Reader:
    """The reader a metadata job's params name (``exiftool 12.57``), in this process."""
    return choose(label.split(" ", 1)[0])


def announce_change(label: str, stamp: Path) -> str | None:
    """A line saying the reader changed since the last run (recorded in ``stamp``), or None."""
    before = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else None
    if before != label:
        write_bytes(stamp, label.encode("utf-8"))
    if before is None or before == label:
        return None
    return f"maker notes are now read by {label} (was {before}): metadata is read again"


def fill(exif: Values, path: Path, reader: Reader, problems: list[str]) -> list[str]:
    """Fill ``exif``'s missing :data:`FIELDS` from the maker notes; the fields filled.

    A reader that fails on this file is one problem in the record, not an error.
    """
    missing = [field for field in FIELDS if exif.get(field) is None]
    if not missing or reader.name == "none":
        return []
    try:
        found = reader.read(path)
    except Exception as exc:  # a vendor block can break a reader in many ways
        problems.append(f"maker notes unreadable ({reader.label}): {type(exc).__name__}: {exc}")
        return []
    filled = [field for field in missing if found.get(field) is not None]
    for field in filled:
        exif[field] = found[field]
    return filled
