"""Maker notes: lens, ISO and exposure time from the notes where EXIF lacks them, on a corpus
of real-camera files (tests/fixtures/cameras, SOURCES.md), compared with exiftool's reading."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from i2i import I2IError
from i2i.stages.metadata import makernotes
from i2i.stages.metadata.read import read_metadata

log = logging.getLogger(__name__)

CAMERAS = Path(__file__).resolve().parent / "fixtures" / "cameras"
CORPUS = sorted(CAMERAS.glob("*.jpg"))
EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool not installed (apt-get install libimage-exiftool-perl)"
)
# The camera fields a photographer reads, and exiftool's tags for them (-G, printed values,
# numbers with #): the standard EXIF tag, else the maker notes' (LensID: exiftool's lens tables
# for the notes that keep a lens number, not a name).
REFERENCE: dict[str, tuple[str, ...]] = {
    "make": ("EXIF:Make",),
    "model": ("EXIF:Model",),
    "lens_model": ("EXIF:LensModel", "MakerNotes:LensModel", "Composite:LensID"),
    "iso": ("EXIF:ISO#", "MakerNotes:ISO"),
    "exposure_time": ("EXIF:ExposureTime#", "MakerNotes:ExposureTime#"),
    "f_number": ("EXIF:FNumber#",),
    "focal_length": ("EXIF:FocalLength#",),
    "focal_length_35mm": ("EXIF:FocalLengthIn35mmFormat#",),
}
CLEAN = {"lens_model": makernotes.clean_lens, "iso": makernotes.clean_iso}


@pytest.fixture(scope="module")
def exiftool_reading() -> dict[str, dict[str, Any]]:
    """exiftool's value of each field of :data:`REFERENCE`, per corpus file (None: none)."""
    if EXIFTOOL is None:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    tags = sorted({tag for names in REFERENCE.values() for tag in names})
    reply = subprocess.run(
        [EXIFTOOL, "-j", "-G", *(f"-{tag}" for tag in tags), *map(str, CORPUS)],
        capture_output=True,
        text=True,
        check=True,
    )
    reading = {}
    for found in json.loads(reply.stdout):
        values: dict[str, Any] = {}
        for field, names in REFERENCE.items():
            clean = CLEAN.get(field, lambda v: v)
            candidates = (clean(found.get(name.rstrip("#"))) for name in names)
            values[field] = next((v for v in candidates if v not in (None, "")), None)
        reading[Path(found["SourceFile"]).name] = values
    return reading


def same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, int | float) and isinstance(ours, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-5, abs_tol=1e-6)  # as test_metadata
    return ours == (str(theirs).strip() if isinstance(theirs, str) else theirs)


def agreement(reader: makernotes.Reader, reading: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Values that agree with exiftool's, of the values either side has."""
    agreed = total = 0
    for path in CORPUS:
        exif = read_metadata(path, maker_notes=reader)["exif"]
        for field, theirs in reading[path.name].items():
            if theirs is None and exif[field] is None:
                continue
            total += 1
            agreed += same(exif[field], theirs)
    return agreed, total


def test_the_corpus_spans_at_least_fifteen_makers() -> None:
    makers = set()
    for path in CORPUS:
        make = read_metadata(path)["exif"]["make"] or ""
        makers.add(make.split()[0].upper().rstrip(","))
    assert len(CORPUS) >= 25 and len(makers) >= 15, sorted(makers)


@needs_exiftool
def test_with_exiftool_nearly_every_value_agrees(exiftool_reading: dict) -> None:
    agreed, total = agreement(makernotes.choose("exiftool"), exiftool_reading)
    log.info(
        "exiftool reader: %d of %d values agree (%.1f %%)", agreed, total, 100 * agreed / total
    )
    assert total > 150 and agreed / total >= 0.995, (agreed, total)


@needs_exiftool
def test_without_exiftool_no_worse_than_standard_exif(exiftool_reading: dict) -> None:
    standard = agreement(makernotes.choose("none"), exiftool_reading)
    pure = agreement(makernotes.choose("exifread"), exiftool_reading)
    log.info("standard EXIF: %d of %d; exifread: %d of %d", *standard, *pure)
    assert pure[0] / pure[1] > standard[0] / standard[1], (standard, pure)


@needs_exiftool
def test_lens_and_iso_come_from_the_notes_and_standard_tags_win() -> None:
    reader = makernotes.choose("exiftool")
    d70 = read_metadata(CAMERAS / "NikonD70.jpg", maker_notes=reader)
    assert d70["exif"]["lens_model"] == "AF-S DX Zoom-Nikkor 18-70mm f/3.5-4.5G IF-ED"
    assert d70["exif"]["iso"] == 200
    assert d70["maker_notes"] == {"reader": reader.label, "fields": ["lens_model", "iso"]}
    # Canon's notes hold a target exposure of 128 s; the EXIF tag (4 s) stays.
    canon = read_metadata(CAMERAS / "Canon.jpg", maker_notes=reader)
    assert canon["exif"]["exposure_time"] == 4 and canon["exif"]["lens_model"] is None
    assert read_metadata(CAMERAS / "Canon.jpg")["maker_notes"] == {"reader": "none", "fields": []}


def test_exifread_reads_canon_lenses_and_nikon_iso() -> None:
    reader = makernotes.choose("exifread")
    canon = read_metadata(CAMERAS / "Canon1DmkIII.jpg", maker_notes=reader)["exif"]
    assert canon["lens_model"] == "EF16-35mm f/2.8L II USM"
    assert read_metadata(CAMERAS / "NikonD70.jpg", maker_notes=reader)["exif"]["iso"] == 200


def test_a_reader_that_fails_is_a_problem_of_the_record(tmp_path: Path) -> None:
    def broken(path: Path) -> dict[str, Any]:
        raise ValueError("bad vendor block")

    record = read_metadata(CAMERAS / "Casio.jpg", maker_notes=makernotes.Reader("x", "1", broken))
    assert record["exif"]["iso"] is None
    assert record["problems"] == ["maker notes unreadable (x 1): ValueError: bad vendor block"]


@pytest.mark.parametrize(
    ("value", "iso"), [(200, 200), ("0 200", 200), ([0, 800], 800), ("Auto", None), (0, None)]
)
def test_iso_values_as_the_notes_keep_them(value: Any, iso: int | None) -> None:
    assert makernotes.clean_iso(value) == iso


def test_unknown_lenses_are_no_lens() -> None:
    assert makernotes.clean_lens("Unknown 18-55mm") is None
    assert makernotes.clean_lens("n/a") is None
    assert makernotes.clean_lens(" EF 50mm  f/1.8 ") == "EF 50mm f/1.8"


def test_a_named_reader_that_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    makernotes.choose.cache_clear()
    monkeypatch.setattr(makernotes.shutil, "which", lambda name: None)
    try:
        with pytest.raises(I2IError, match="apt-get install libimage-exiftool-perl"):
            makernotes.choose("exiftool")
        assert makernotes.choose("auto").name == "exifread"
    finally:
        makernotes.choose.cache_clear()
    with pytest.raises(I2IError, match="not one of"):
        makernotes.choose("exiv2")


def test_a_change_of_reader_is_said_once(tmp_path: Path) -> None:
    stamp = tmp_path / ".i2i" / "maker-notes"
    assert makernotes.announce_change("exifread 3.5.1", stamp) is None
    assert makernotes.announce_change("exifread 3.5.1", stamp) is None
    line = makernotes.announce_change("exiftool 12.57", stamp)
    assert line == (
        "maker notes are now read by exiftool 12.57 (was exifread 3.5.1): metadata is read again"
    )
    assert makernotes.announce_change("exiftool 12.57", stamp) is None


WORKER = """
import os, signal, sys
from pathlib import Path
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # as pool workers
from i2i.stages.metadata import makernotes
makernotes.choose("exiftool").read(Path(sys.argv[1]))
print(makernotes._helpers[os.getpid()]._process.pid, flush=True)
signal.pause()
"""


def ended(pid: int) -> bool:
    """True once ``pid`` has exited (gone, or a zombie waiting for init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


@needs_exiftool
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="Linux only: parent-death signal")
def test_exiftool_ends_with_a_worker_killed_outright() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(CAMERAS / "Casio.jpg")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert worker.stdout is not None
    exiftool_pid = int(worker.stdout.readline())
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 60
    while not ended(exiftool_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ended(exiftool_pid), "exiftool outlived its worker"
