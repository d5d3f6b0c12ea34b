"""The metadata stage: normalising helpers, exiftool parity, every format, broken files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
import re
import shutil
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import piexif
import PIL
import pytest
from PIL import Image, ImageCms

from i2i import I2IError
from i2i.core.files import read_json
from i2i.core.images import orientation, register_heif
from i2i.run import jobs
from i2i.stages.metadata.fields import icc_description
from i2i.stages.metadata.problems import image_warnings_as_problems
from i2i.stages.metadata.read import read_metadata
from i2i.stages.metadata.record import has_position
from i2i.stages.metadata.values import (
    altitude_metres,
    apex_to_f_number,
    dms_to_degrees,
    exif_datetime,
    exif_text,
    gps_timestamp,
    shutter_text,
    speed_kmh,
)

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "albums"
SAMPLE_PHOTOS = sorted(p for p in SAMPLE.rglob("*") if p.is_file())
EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None,
    reason="exiftool not installed (apt-get install -y libimage-exiftool-perl)",
)


# --- normalising helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "offset", "subsec", "expected"),
    [
        ("2024:07:05 09:12:30", None, None, "2024-07-05T09:12:30"),
        ("2024:07:05 09:12:30", "+02:00", None, "2024-07-05T09:12:30+02:00"),
        (b"2024:07:05 09:12:30\x00", b"-05:00\x00", b"250", "2024-07-05T09:12:30.250-05:00"),
        ("2024:07:05 09:12:30", "CEST", " 5", "2024-07-05T09:12:30.5"),
        ("0000:00:00 00:00:00", None, None, None),
        ("    :  :     :  :  ", None, None, None),
        ("yesterday", None, None, None),
        (42, None, None, None),
        (None, "+02:00", None, None),
    ],
)
def test_exif_datetime(value: Any, offset: Any, subsec: Any, expected: str | None) -> None:
    assert exif_datetime(value, offset, subsec) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Canon\x00\x00", "Canon"),
        (b"  FE 50mm F1.8 ", "FE 50mm F1.8"),
        ("\xc2\xa9 Zo\xc3\xab", "© Zoë"),
        ("\xa9 Zo\xeb", "© Zoë"),
        (b"\x00\x00", None),
        ((1, 2), None),
    ],
)
def test_exif_text(value: Any, expected: str | None) -> None:
    assert exif_text(value) == expected


@pytest.mark.parametrize(
    ("dms", "ref", "expected"),
    [
        ((Fraction(48), Fraction(51), Fraction(106, 10)), "N", 48.8529444),
        ((Fraction(33, 1), Fraction(52, 1), Fraction(0)), "S", -33.8666667),
        ((70.5,), b"W\x00", -70.5),
        ((10, 30), "E", 10.5),
        ((1, 2, 3, 4), "N", None),
        ("north", "N", None),
        (None, "N", None),
        ((float("nan"), 0, 0), "N", None),
    ],
)
def test_dms_to_degrees(dms: Any, ref: Any, expected: float | None) -> None:
    assert dms_to_degrees(dms, ref) == expected


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        ("2024:07:05", (7, 12, 30), "2024-07-05T07:12:30Z"),
        ("2024:07:05", (23, 59, 59.5), "2024-07-05T23:59:59.500000Z"),
        ("2024:07:05", "noon", None),
        (None, (7, 12, 30), None),
    ],
)
def test_gps_timestamp(date: Any, time: Any, expected: str | None) -> None:
    assert gps_timestamp(date, time) == expected


@pytest.mark.parametrize(
    ("speed", "ref", "expected"),
    [(10, "K", 10.0), (10, None, 10.0), (10, "M", 16.093), (10, "N", 18.52), (10, "X", None)],
)
def test_speed_kmh(speed: Any, ref: Any, expected: float | None) -> None:
    assert speed_kmh(speed, ref) == expected


@pytest.mark.parametrize(
    ("value", "ref", "expected"),
    [(430.5, 1, -430.5), (430.5, b"\x01", -430.5), (12, 0, 12.0), (12, None, 12.0), ("x", 0, None)],
)
def test_altitude_metres(value: Any, ref: Any, expected: float | None) -> None:
    assert altitude_metres(value, ref) == expected


def test_apex_to_f_number() -> None:
    assert apex_to_f_number(Fraction(297, 100)) == pytest.approx(2.799, abs=1e-3)
    assert apex_to_f_number("wide open") is None


@pytest.mark.parametrize(("value", "expected"), [(6, 6), ((8,), 8), (0, None), (9, None)])
def test_orientation(value: Any, expected: int | None) -> None:
    assert orientation(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(1 / 250, "1/250"), (1 / 3, "1/3"), (0.4, "0.4"), (2.0, "2"), (0, None), (None, None)],
)
def test_shutter_text(seconds: float | None, expected: str | None) -> None:
    assert shutter_text(seconds) == expected


def test_icc_description() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert icc_description(srgb) == "sRGB built-in"
    assert icc_description(b"not a profile") is None
    assert icc_description(None) is None


def test_record_helpers() -> None:
    assert has_position({"gps": {"lat": -33.9, "lon": 0.0}})
    assert not has_position({"gps": {"lat": None, "lon": None}})


# --- generated photos ------------------------------------------------------------------------

ZEROTH = {
    piexif.ImageIFD.Make: "Canon",
    piexif.ImageIFD.Model: "Canon EOS R5",
    piexif.ImageIFD.Orientation: 1,
    piexif.ImageIFD.Software: "i2i tests",
    piexif.ImageIFD.DateTime: "2023:01:02 03:04:05",
}
EXIF = {
    piexif.ExifIFD.DateTimeOriginal: "2023:01:02 03:04:05",
    piexif.ExifIFD.DateTimeDigitized: "2023:01:02 03:04:05",
    piexif.ExifIFD.OffsetTimeOriginal: "+11:00",
    piexif.ExifIFD.FNumber: (28, 10),
    piexif.ExifIFD.ExposureTime: (1, 320),
    piexif.ExifIFD.ISOSpeedRatings: 640,
    piexif.ExifIFD.FocalLength: (240, 10),
    piexif.ExifIFD.FocalLengthIn35mmFilm: 24,
    piexif.ExifIFD.LensModel: "RF24-70mm F2.8 L IS USM",
}


def dms(value: float) -> tuple[tuple[int, int], ...]:
    """Decimal degrees as EXIF degrees/minutes/seconds rationals."""
    value = abs(value)
    degrees, minutes = int(value), int(abs(value) * 60 % 60)
    seconds = round((value * 3600 - degrees * 3600 - minutes * 60) * 1000)
    return (degrees, 1), (minutes, 1), (seconds, 1000)


def gps(lat: float, lon: float, **extra: Any) -> dict[int, Any]:
    """A GPS IFD at ``lat``, ``lon`` with ``extra`` tags."""
    return {
        piexif.GPSIFD.GPSLatitudeRef: "N" if lat >= 0 else "S",
        piexif.GPSIFD.GPSLatitude: dms(lat),
        piexif.GPSIFD.GPSLongitudeRef: "E" if lon >= 0 else "W",
        piexif.GPSIFD.GPSLongitude: dms(lon),
        **{getattr(piexif.GPSIFD, name): value for name, value in extra.items()},
    }


def exif_block(
    zeroth: dict[int, Any] | None = None,
    exif: dict[int, Any] | None = None,
    gps_ifd: dict[int, Any] | None = None,
) -> bytes:
    """An EXIF block: the base tags updated with these."""
    return piexif.dump(
        {
            "0th": {**ZEROTH, **(zeroth or {})},
            "Exif": {**EXIF, **(exif or {})},
            "GPS": gps_ifd or {},
        }
    )


def save(path: Path, exif: bytes | Image.Exif, fmt: str = "JPEG", **options: Any) -> Path:
    """A small gradient saved as ``fmt`` with ``exif``."""
    image = Image.linear_gradient("L").resize((96, 64)).convert("RGB")
    image.save(path, fmt, exif=exif, **options)
    return path


SYDNEY = gps(-33.8568, 151.2153, GPSAltitudeRef=0, GPSAltitude=(5, 1))
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def marked() -> Image.Image:
    """96×64 red with a blue top-left and a green top-right corner, so orientation shows."""
    image = Image.new("RGB", (96, 64), (200, 0, 0))
    image.paste((0, 0, 200), (0, 0, 24, 24))
    image.paste((0, 200, 0), (72, 0, 96, 24))
    return image


def upright_of(image: Image.Image, code: int) -> Image.Image:
    """What ``image`` stored with EXIF orientation ``code`` looks like upright."""
    return image.transpose(UPRIGHT[code]) if code != 1 else image.copy()


def heic(path: Path, code: int, container: bool = True) -> Path:
    """A HEIC storing :func:`marked` with EXIF Orientation ``code``.

    ``container``: the rotation is also in the HEIF container (irot/imir), as phones and
    pillow-heif write it; otherwise only the EXIF tag says it (patched in after saving).
    """
    block = exif_block(zeroth={piexif.ImageIFD.Orientation: code if container else 1})
    marked().save(path, "HEIF", exif=block, quality=95)
    if not container and code != 1:
        data = path.read_bytes()
        entry = b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01"  # Orientation SHORT 1, big-endian
        assert data.count(entry) == 1
        path.write_bytes(data.replace(entry, entry[:-2] + struct.pack(">H", code)))
    return path


EDGE_CASES: dict[str, Callable[[Path], Path]] = {
    "tiff.tif": lambda p: save(p, exif_block(gps_ifd=SYDNEY), "TIFF"),
    "webp.webp": lambda p: save(p, exif_block(gps_ifd=SYDNEY), "WEBP", quality=80),
    "png_exif.png": lambda p: save(p, exif_block(gps_ifd=SYDNEY), "PNG", icc_profile=SRGB),
    "heic.heic": lambda p: save(p, exif_block(gps_ifd=gps(-22.9519, -43.2105)), "HEIF"),
    "heic_rotated.heic": lambda p: heic(p, 6),
    "heic_transverse.heic": lambda p: heic(p, 7),
    "heic_exif_only.heic": lambda p: heic(p, 6, container=False),
    "south_west.jpg": lambda p: save(p, exif_block(gps_ifd=gps(-54.8019, -68.3030))),
    "below_sea_level.jpg": lambda p: save(
        p, exif_block(gps_ifd=gps(31.5, 35.5, GPSAltitudeRef=1, GPSAltitude=(4305, 10)))
    ),
    "speed_mph.jpg": lambda p: save(
        p, exif_block(gps_ifd=gps(40.0, -74.0, GPSSpeedRef="M", GPSSpeed=(65, 1)))
    ),
    "speed_knots.jpg": lambda p: save(
        p, exif_block(gps_ifd=gps(43.3, 5.4, GPSSpeedRef="N", GPSSpeed=(125, 10)))
    ),
    "no_offsets.jpg": lambda p: save(
        p, exif_block(exif={piexif.ExifIFD.OffsetTimeOriginal: "     "})
    ),
    "subseconds.jpg": lambda p: save(
        p,
        exif_block(
            exif={
                piexif.ExifIFD.SubSecTime: "07",
                piexif.ExifIFD.SubSecTimeOriginal: "123",
                piexif.ExifIFD.SubSecTimeDigitized: "5",
                piexif.ExifIFD.OffsetTime: "-03:30",
                piexif.ExifIFD.OffsetTimeDigitized: "-03:30",
            }
        ),
    ),
    "everything.jpg": lambda p: save(
        p,
        exif_block(
            zeroth={
                piexif.ImageIFD.Orientation: 8,
                piexif.ImageIFD.Copyright: "© 2023 i2i".encode(),
                piexif.ImageIFD.ImageDescription: "Harbour at dusk",
                piexif.ImageIFD.Artist: "Tester",
            },
            exif={
                piexif.ExifIFD.LensMake: "Canon",
                piexif.ExifIFD.BodySerialNumber: "012345678",
                piexif.ExifIFD.LensSerialNumber: "9000123",
                piexif.ExifIFD.CameraOwnerName: "A. Photographer",
                piexif.ExifIFD.MaxApertureValue: (297, 100),
                piexif.ExifIFD.BrightnessValue: (-125, 100),
                piexif.ExifIFD.SubjectDistance: (325, 100),
                piexif.ExifIFD.DigitalZoomRatio: (15, 10),
                piexif.ExifIFD.ExposureBiasValue: (2, 3),
                piexif.ExifIFD.ExposureProgram: 2,
                piexif.ExifIFD.ExposureMode: 1,
                piexif.ExifIFD.MeteringMode: 3,
                piexif.ExifIFD.Flash: 25,
                piexif.ExifIFD.WhiteBalance: 1,
                piexif.ExifIFD.LightSource: 9,
                piexif.ExifIFD.ColorSpace: 65535,
                piexif.ExifIFD.SceneCaptureType: 2,
                piexif.ExifIFD.Contrast: 1,
                piexif.ExifIFD.Saturation: 2,
                piexif.ExifIFD.Sharpness: 1,
            },
            gps_ifd=gps(
                -41.2865,
                174.7762,
                GPSAltitudeRef=0,
                GPSAltitude=(1234, 100),
                GPSImgDirectionRef="M",
                GPSImgDirection=(12345, 100),
                GPSTrack=(90, 1),
                GPSTrackRef="T",
                GPSSpeedRef="K",
                GPSSpeed=(42, 1),
                GPSDateStamp="2023:01:01",
                GPSTimeStamp=((16, 1), (4, 1), (55, 2)),
                GPSHPositioningError=(47, 10),
            ),
        ),
        icc_profile=SRGB,
    ),
}


def ifd_entry(block: bytes, tag: int, ifd: int | None = None) -> int:
    """Where ``tag``'s 12-byte entry sits in piexif's big-endian block (IFD0, or the IFD that
    IFD0's pointer ``ifd`` leads to)."""
    base = 6  # after "Exif\0\0"
    start = base + 8
    if ifd is not None:
        start = base + struct.unpack_from(">I", block, ifd_entry(block, ifd) + 8)[0]
    for index in range(struct.unpack_from(">H", block, start)[0]):
        entry = start + 2 + 12 * index
        if struct.unpack_from(">H", block, entry)[0] == tag:
            return entry
    raise AssertionError(f"tag {tag:#x} not found")


def retype(block: bytes, tag: int, type_: int, count: int, ifd: int | None = None) -> bytes:
    """``block`` with ``tag`` declared as another TIFF type (the stored bytes unchanged)."""
    data = bytearray(block)
    struct.pack_into(">HI", data, ifd_entry(block, tag, ifd) + 2, type_, count)
    return bytes(data)


def garbage_types(path: Path) -> Path:
    """Tags with the wrong type: Make as SHORTs, FNumber and GPSLatitude as ASCII."""
    block = exif_block(zeroth={piexif.ImageIFD.Make: "Canon Inc."}, gps_ifd=SYDNEY)
    block = retype(block, piexif.ImageIFD.Make, 3, 5)
    block = retype(block, piexif.ExifIFD.FNumber, 2, 8, piexif.ImageIFD.ExifTag)
    block = retype(block, piexif.GPSIFD.GPSLatitude, 2, 24, piexif.ImageIFD.GPSTag)
    return save(path, block)


def patch_pointer(block: bytes, tag: int, value: int) -> bytes:
    """``block`` with IFD0's pointer ``tag`` set to ``value``."""
    data = bytearray(block)
    struct.pack_into(">I", data, ifd_entry(block, tag) + 8, value)
    return bytes(data)


def bad_offsets(path: Path) -> Path:
    """Exif and GPS IFD pointers beyond the end of the block."""
    block = exif_block(gps_ifd=SYDNEY)
    block = patch_pointer(block, piexif.ImageIFD.ExifTag, 0x00FFFFF0)
    return save(path, patch_pointer(block, piexif.ImageIFD.GPSTag, 0x7FFFFFF0))


def truncated(path: Path) -> Path:
    """A JPEG cut in the middle of its pixel data; the EXIF block is intact."""
    whole = save(path.with_suffix(".whole"), exif_block(gps_ifd=SYDNEY), quality=95)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


BROKEN_CASES: dict[str, Callable[[Path], Path]] = {
    "garbage_types.jpg": garbage_types,
    "bad_offsets.jpg": bad_offsets,
    "truncated.jpg": truncated,
}


def corrupted_exif(path: Path, seed: int) -> Path:
    """A JPEG with random bytes flipped inside its EXIF segment."""
    data = bytearray(save(path.with_suffix(".whole"), exif_block(gps_ifd=SYDNEY)).read_bytes())
    path.with_suffix(".whole").unlink()
    start = data.index(b"Exif\x00\x00") + 6
    end = start + struct.unpack(">H", data[start - 8 : start - 6])[0] - 8
    rng = random.Random(seed)
    for _ in range(rng.randint(1, 12)):
        data[rng.randrange(start, end)] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return path


PARIS = (48.8530, 2.3499)
NO_FIX_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "null_island.jpg": (
        lambda p: save(p, exif_block(gps_ifd=gps(0.0, 0.0, GPSAltitude=(0, 1)))),
        "gps: position 0,0 (no fix), GPS fields dropped",
    ),
    "void.jpg": (
        lambda p: save(p, exif_block(gps_ifd=gps(*PARIS, GPSStatus="V", GPSTrack=(90, 1)))),
        "gps: GPSStatus V (void: no fix), GPS fields dropped",
    ),
    "no_measure_mode.jpg": (
        lambda p: save(p, exif_block(gps_ifd=gps(*PARIS, GPSMeasureMode="0"))),
        "gps: GPSMeasureMode '0' is neither 2 nor 3 (no fix), GPS fields dropped",
    ),
}
FIX_CASES: dict[str, Callable[[Path], Path]] = {
    "equator.jpg": lambda p: save(p, exif_block(gps_ifd=gps(0.0, 9.4536))),
    "greenwich.jpg": lambda p: save(p, exif_block(gps_ifd=gps(51.4779, 0.0))),
    "active_3d.jpg": lambda p: save(
        p, exif_block(gps_ifd=gps(*PARIS, GPSStatus="A", GPSMeasureMode="3"))
    ),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every edge case written once into a temp folder."""
    register_heif()
    folder = tmp_path_factory.mktemp("edge cases")
    makers = {
        **EDGE_CASES,
        **BROKEN_CASES,
        **FIX_CASES,
        **{name: make for name, (make, _) in NO_FIX_CASES.items()},
    }
    return {name: make(folder / name) for name, make in makers.items()}


@pytest.fixture(scope="module")
def exiftool(generated: dict[str, Path]) -> dict[Path, dict[str, Any]]:
    """``exiftool -json -n -G1`` of every sample and generated photo, by path (one process)."""
    if EXIFTOOL is None:
        pytest.skip("exiftool not installed (apt-get install -y libimage-exiftool-perl)")
    paths = [str(p) for p in (*SAMPLE_PHOTOS, *generated.values())]
    result = subprocess.run(
        [EXIFTOOL, "-json", "-n", "-G1", "-charset", "filename=utf8", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if not result.stdout:
        raise AssertionError(f"exiftool failed: {result.stderr}")
    return {Path(entry["SourceFile"]): entry for entry in json.loads(result.stdout)}


# --- comparison with exiftool ----------------------------------------------------------------

TEXT_TAGS = {
    "exif.make": "IFD0:Make",
    "exif.model": "IFD0:Model",
    "exif.software": "IFD0:Software",
    "exif.artist": "IFD0:Artist",
    "exif.copyright": "IFD0:Copyright",
    "exif.image_description": "IFD0:ImageDescription",
    "exif.lens_make": "ExifIFD:LensMake",
    "exif.lens_model": "ExifIFD:LensModel",
    "exif.body_serial_number": "ExifIFD:SerialNumber",
    "exif.lens_serial_number": "ExifIFD:LensSerialNumber",
    "exif.camera_owner": "ExifIFD:OwnerName",
    "gps.heading_ref": "GPS:GPSImgDirectionRef",
    "image.icc_description": "ICC_Profile:ProfileDescription",
}
NUMBER_TAGS = {
    "exif.orientation": "IFD0:Orientation",
    "exif.focal_length": "ExifIFD:FocalLength",
    "exif.focal_length_35mm": "ExifIFD:FocalLengthIn35mmFormat",
    "exif.f_number": "ExifIFD:FNumber",
    "exif.max_aperture_value": "ExifIFD:MaxApertureValue",
    "exif.exposure_time": "ExifIFD:ExposureTime",
    "exif.iso": "ExifIFD:ISO",
    "exif.exposure_program": "ExifIFD:ExposureProgram",
    "exif.exposure_mode": "ExifIFD:ExposureMode",
    "exif.exposure_bias": "ExifIFD:ExposureCompensation",
    "exif.metering_mode": "ExifIFD:MeteringMode",
    "exif.flash": "ExifIFD:Flash",
    "exif.white_balance": "ExifIFD:WhiteBalance",
    "exif.light_source": "ExifIFD:LightSource",
    "exif.color_space": "ExifIFD:ColorSpace",
    "exif.scene_capture_type": "ExifIFD:SceneCaptureType",
    "exif.contrast": "ExifIFD:Contrast",
    "exif.saturation": "ExifIFD:Saturation",
    "exif.sharpness": "ExifIFD:Sharpness",
    "exif.digital_zoom_ratio": "ExifIFD:DigitalZoomRatio",
    "exif.subject_distance": "ExifIFD:SubjectDistance",
    "exif.brightness_value": "ExifIFD:BrightnessValue",
    "gps.lat": "Composite:GPSLatitude",
    "gps.lon": "Composite:GPSLongitude",
    "gps.altitude": "Composite:GPSAltitude",
    "gps.heading": "GPS:GPSImgDirection",
    "gps.track": "GPS:GPSTrack",
    "gps.horizontal_error_m": "GPS:GPSHPositioningError",
    "file.size": "System:FileSize",
}
DATE_TAGS = {
    "exif.date_taken": ("Composite:SubSecDateTimeOriginal", "ExifIFD:DateTimeOriginal"),
    "exif.date_digitized": ("Composite:SubSecCreateDate", "ExifIFD:CreateDate"),
    "exif.date_modified": ("Composite:SubSecModifyDate", "IFD0:ModifyDate"),
    "gps.timestamp": ("Composite:GPSDateTime",),
}
SPEED_UNITS = {"K": 1.0, "M": 1.609344, "N": 1.852}


def exiftool_date(value: Any) -> dt.datetime | None:
    """An exiftool date (``2024:07:05 09:12:30.25+02:00``, ``…Z``) as a datetime."""
    text = re.sub(r"^(\d{4}):(\d\d):(\d\d) ", r"\1-\2-\3T", str(value))
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def expected_from_exiftool(tags: dict[str, Any]) -> dict[str, Any]:
    """Our keys with the values exiftool reports (None where it reports nothing)."""
    expected: dict[str, Any] = {}
    for key, tag in TEXT_TAGS.items():
        value = tags.get(tag)
        expected[key] = None if value is None else str(value).strip() or None
    for key, tag in NUMBER_TAGS.items():
        expected[key] = tags.get(tag)
    for key, candidates in DATE_TAGS.items():
        found = next((tags[tag] for tag in candidates if tag in tags), None)
        expected[key] = None if found is None else exiftool_date(found)
    offset = tags.get("ExifIFD:OffsetTimeOriginal", tags.get("ExifIFD:OffsetTime"))
    expected["exif.offset_time"] = (
        offset if offset and re.match(r"[+-]\d\d:\d\d$", offset) else None
    )
    speed = tags.get("GPS:GPSSpeed")
    unit = SPEED_UNITS[tags.get("GPS:GPSSpeedRef", "K")]
    expected["gps.speed_kmh"] = None if speed is None else speed * unit
    width, height = (int(n) for n in tags["Composite:ImageSize"].split())
    expected["image.width"], expected["image.height"] = width, height
    return expected


def ours(record: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of a record."""
    section, name = key.split(".")
    value = record[section][name]
    if key in DATE_TAGS and value is not None:
        return dt.datetime.fromisoformat(value.removesuffix("Z") + ("+00:00" * value.endswith("Z")))
    return value


def assert_matches_exiftool(
    record: dict[str, Any], tags: dict[str, Any], skip: frozenset[str] = frozenset()
) -> int:
    """Every mapped field equals exiftool's value, and is None exactly where exiftool has none."""
    expected = expected_from_exiftool(tags)
    mismatches = []
    for key, want in expected.items():
        if key in skip:
            continue
        got = ours(record, key)
        if isinstance(want, float | int) and not isinstance(want, bool) and got is not None:
            same = math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6)
        else:
            same = got == want and (
                not isinstance(want, dt.datetime) or got.utcoffset() == want.utcoffset()
            )
        if not same:
            mismatches.append(f"{key}: ours {got!r}, exiftool {want!r}")
    assert not mismatches, "\n".join(mismatches)
    return sum(value is not None for value in expected.values())


@needs_exiftool
@pytest.mark.parametrize("photo", SAMPLE_PHOTOS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_matches_exiftool(photo: Path, exiftool: dict[Path, dict[str, Any]]) -> None:
    record = read_metadata(photo)
    assert record["problems"] == []
    assert record["file"]["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert assert_matches_exiftool(record, exiftool[photo]) >= 25


@needs_exiftool
@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_case_matches_exiftool(
    name: str, generated: dict[str, Path], exiftool: dict[Path, dict[str, Any]]
) -> None:
    record = read_metadata(generated[name])
    assert record["problems"] == []
    assert_matches_exiftool(record, exiftool[generated[name]])


def test_edge_case_values(generated: dict[str, Path]) -> None:
    """The edge cases hold what they were written with (checked without exiftool too)."""
    read = {name: read_metadata(generated[name]) for name in EDGE_CASES}
    assert read["tiff.tif"]["image"]["format"] == "TIFF"
    assert read["tiff.tif"]["gps"]["lat"] == pytest.approx(-33.8568, abs=1e-6)
    assert read["webp.webp"]["exif"]["f_number"] == 2.8
    assert read["png_exif.png"]["image"]["icc_description"] == "sRGB built-in"
    assert read["heic.heic"]["gps"]["lon"] == pytest.approx(-43.2105, abs=1e-6)
    assert read["south_west.jpg"]["gps"]["lat"] < 0 < -read["south_west.jpg"]["gps"]["lon"]
    assert read["below_sea_level.jpg"]["gps"]["altitude"] == -430.5
    assert read["speed_mph.jpg"]["gps"]["speed_kmh"] == pytest.approx(104.607, abs=1e-3)
    assert read["speed_knots.jpg"]["gps"]["speed_kmh"] == pytest.approx(23.15, abs=1e-3)
    assert read["no_offsets.jpg"]["exif"]["date_taken"] == "2023-01-02T03:04:05"
    assert read["no_offsets.jpg"]["exif"]["offset_time"] is None
    subsec = read["subseconds.jpg"]["exif"]
    assert subsec["date_taken"] == "2023-01-02T03:04:05.123+11:00"
    assert subsec["date_digitized"] == "2023-01-02T03:04:05.5-03:30"
    assert subsec["date_modified"] == "2023-01-02T03:04:05.07-03:30"
    everything = read["everything.jpg"]
    assert everything["gps"]["timestamp"] == "2023-01-01T16:04:27.500000Z"
    assert everything["gps"]["heading"] == 123.45
    assert everything["exif"]["body_serial_number"] == "012345678"
    assert everything["exif"]["flash_fired"] is True
    fields = sum(len(everything[section]) for section in ("exif", "gps", "image", "file"))
    assert fields >= 30


# --- broken files ----------------------------------------------------------------------------


def test_garbage_types_give_problems(
    generated: dict[str, Path], exiftool: dict[Path, dict[str, Any]]
) -> None:
    path = generated["garbage_types.jpg"]
    record = read_metadata(path)
    problems = "\n".join(record["problems"])
    for field in ("make", "f_number", "gps.lat"):
        assert re.search(rf"^{re.escape(field)}: unusable value", problems, re.M), problems
    assert record["exif"]["model"] == "Canon EOS R5"
    assert record["exif"]["iso"] == 640
    assert not has_position(record)
    assert_matches_exiftool(
        record,
        exiftool[path],
        skip=frozenset({"exif.make", "exif.f_number", "gps.lat", "gps.lon"}),
    )


def test_bad_ifd_offsets_give_problems(generated: dict[str, Path]) -> None:
    record = read_metadata(generated["bad_offsets.jpg"])
    problems = "\n".join(record["problems"])
    assert "Exif IFD" in problems
    assert "GPSInfo IFD" in problems
    assert record["exif"]["make"] == "Canon"
    assert record["exif"]["f_number"] is None
    assert not has_position(record)


def test_truncated_jpeg_keeps_exif(
    generated: dict[str, Path], exiftool: dict[Path, dict[str, Any]]
) -> None:
    path = generated["truncated.jpg"]
    record = read_metadata(path)
    assert any(p.startswith("pixel data unreadable") for p in record["problems"])
    assert_matches_exiftool(record, exiftool[path])


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(I2IError, match=r"empty\.jpg.*0 bytes"):
        read_metadata(path)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: film, batteries\n")
    with pytest.raises(I2IError, match=r"notes\.jpg: not an image"):
        read_metadata(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(I2IError, match=r"gone\.jpg: cannot read"):
        read_metadata(tmp_path / "gone.jpg")
    (tmp_path / "album.jpg").mkdir()
    with pytest.raises(I2IError, match=r"album\.jpg: not a regular file"):
        read_metadata(tmp_path / "album.jpg")


def test_cut_inside_header(tmp_path: Path) -> None:
    """A JPEG cut inside its EXIF segment: an I2IError or a record with problems, nothing else."""
    data = save(tmp_path / "whole.jpg", exif_block(gps_ifd=SYDNEY)).read_bytes()
    for cut in (3, 40, 120, 300):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        try:
            record = read_metadata(path)
        except I2IError as exc:
            assert path.name in str(exc)
        else:
            assert record["problems"], cut


@pytest.mark.parametrize("seed", range(40))
def test_corrupted_exif_never_crashes(seed: int, tmp_path: Path) -> None:
    """Random bytes flipped inside the EXIF segment: I2IError or a JSON-safe record."""
    path = corrupted_exif(tmp_path / "corrupt.jpg", seed)
    try:
        record = read_metadata(path)
    except I2IError as exc:
        assert "corrupt.jpg" in str(exc)
    else:
        json.dumps(record, allow_nan=False)
        assert isinstance(record["problems"], list)


# --- orientation and size of HEICs -----------------------------------------------------------

HEIC_ORIENTATIONS = [(code, container) for code in range(1, 9) for container in (True, False)]


@pytest.fixture(scope="module")
def heics(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, bool], Path]:
    """:func:`heic` for every orientation, rotated by the container and by EXIF only."""
    register_heif()
    folder = tmp_path_factory.mktemp("heic orientations")
    return {
        (code, container): heic(
            folder / f"o{code}_{'heif' if container else 'exif'}.heic", code, container
        )
        for code, container in HEIC_ORIENTATIONS
    }


@pytest.mark.parametrize(("code", "container"), HEIC_ORIENTATIONS)
def test_heic_orientation_is_recorded_as_stored(
    code: int, container: bool, heics: dict[tuple[int, bool], Path]
) -> None:
    record = read_metadata(heics[code, container])
    assert record["problems"] == []
    assert record["exif"]["orientation"] == code
    assert (record["image"]["width"], record["image"]["height"]) == (96, 64)
    by = None if code == 1 else "heif" if container else "exif"
    mirror, rotate_cw = {
        1: (False, 0),
        2: (True, 0),
        3: (False, 180),
        4: (True, 180),
        5: (True, 270),
        6: (False, 90),
        7: (True, 90),
        8: (False, 270),
    }[code]
    assert record["image"]["applied_rotation"] == {
        "orientation": code,
        "mirror": mirror,
        "rotate_cw": rotate_cw,
        "by": by,
    }
    turned = marked()
    if mirror:
        turned = turned.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    turned = turned.rotate(-rotate_cw, expand=True)
    assert turned.tobytes() == upright_of(marked(), code).tobytes(), "the steps describe it"


@needs_exiftool
def test_heic_orientation_and_size_match_exiftool(heics: dict[tuple[int, bool], Path]) -> None:
    result = subprocess.run(
        [EXIFTOOL, "-json", "-n", "-G1", *map(str, heics.values())],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tags = {Path(entry["SourceFile"]): entry for entry in json.loads(result.stdout)}
    for path in heics.values():
        record = read_metadata(path)
        assert record["exif"]["orientation"] == tags[path]["IFD0:Orientation"], path.name
        size = f"{record['image']['width']} {record['image']['height']}"
        assert size == tags[path]["Composite:ImageSize"], path.name


# --- GPS without a fix -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(NO_FIX_CASES))
def test_gps_without_a_fix_is_no_position(name: str, generated: dict[str, Path]) -> None:
    record = read_metadata(generated[name])
    assert record["problems"] == [NO_FIX_CASES[name][1]]
    assert set(record["gps"].values()) == {None}
    assert not has_position(record)
    assert record["exif"]["make"] == "Canon"


@needs_exiftool
@pytest.mark.parametrize("name", [*NO_FIX_CASES, *FIX_CASES])
def test_gps_fix_cases_match_exiftool(
    name: str, generated: dict[str, Path], exiftool: dict[Path, dict[str, Any]]
) -> None:
    record = read_metadata(generated[name])
    gps_keys = frozenset(k for k in (*NUMBER_TAGS, *DATE_TAGS, "gps.speed_kmh") if "gps." in k)
    assert_matches_exiftool(
        record, exiftool[generated[name]], gps_keys if name in NO_FIX_CASES else frozenset()
    )


@pytest.mark.parametrize("name", list(FIX_CASES))
def test_a_zero_coordinate_alone_is_a_position(name: str, generated: dict[str, Path]) -> None:
    record = read_metadata(generated[name])
    assert record["problems"] == []
    assert has_position(record)


def test_old_records_at_null_island_have_no_position() -> None:
    assert not has_position({"gps": {"lat": 0.0, "lon": 0.0}})
    assert not has_position({"gps": {"lat": 0, "lon": -0.0}})
    assert has_position({"gps": {"lat": 0.0, "lon": 1e-7}})


# --- warnings captured per thread ------------------------------------------------------------

PIL_IMAGE_PY = str(Path(PIL.__file__).parent / "Image.py")
NOISE = ("unclosed", "resource_in_pil", "deprecation_in_pil", "own_code")


def noisy_capture(kind: str, scratch: Path) -> list[str]:
    """A capture in which only warnings it must not record happen; what it recorded."""
    problems: list[str] = []
    with image_warnings_as_problems(problems):
        if kind == "unclosed":
            handle = scratch.open("rb")
            del handle  # a ResourceWarning from the finalizer, in this thread
        elif kind == "resource_in_pil":
            warnings.warn_explicit(
                f"unclosed file <{scratch}>", ResourceWarning, PIL_IMAGE_PY, 1, "PIL.Image"
            )
        elif kind == "deprecation_in_pil":
            warnings.warn_explicit("old API", DeprecationWarning, PIL_IMAGE_PY, 2, "PIL.Image")
        else:
            warnings.warn("a warning from other code", UserWarning, stacklevel=1)
    return problems


def test_each_capture_records_only_its_own_warnings(
    generated: dict[str, Path], tmp_path: Path
) -> None:
    """Reads of damaged photos in many threads, among threads whose captures see only other
    warnings: every record's problems are exactly those of a read on its own, repeated
    warnings included, and the other warnings are shown as usual."""
    photos = [
        generated["bad_offsets.jpg"],
        generated["garbage_types.jpg"],
        generated["everything.jpg"],
        corrupted_exif(tmp_path / "corrupt15.jpg", 15),
        corrupted_exif(tmp_path / "corrupt29.jpg", 29),
    ]
    alone = {path: read_metadata(path)["problems"] for path in photos}
    assert alone == {path: read_metadata(path)["problems"] for path in photos}, "repeatable"
    for path in photos[:2] + photos[3:]:
        assert any(p.startswith("UserWarning: ") for p in alone[path]), path.name
    for path in (photos[0], photos[3], photos[4]):
        warned = [p for p in alone[path] if p.startswith("UserWarning: ")]
        assert len(set(warned)) < len(warned), f"{path.name} repeats a warning"
    scratch = tmp_path / "scratch.bin"
    scratch.write_bytes(b"x")
    tasks = [("read", photos[i % len(photos)]) for i in range(60)]
    tasks += [(NOISE[i % len(NOISE)], scratch) for i in range(60)]
    random.Random(1).shuffle(tasks)

    def run(task: tuple[str, Path]) -> tuple[str, Path, list[str]]:
        kind, path = task
        if kind == "read":
            return kind, path, read_metadata(path)["problems"]
        return kind, path, noisy_capture(kind, path)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            with ThreadPoolExecutor(max_workers=12) as pool:
                results = list(pool.map(run, tasks))
    finally:
        sys.setswitchinterval(interval)
    for kind, path, problems in results:
        assert problems == (alone[path] if kind == "read" else []), (kind, path.name)
    categories = [w.category for w in shown]
    assert categories.count(ResourceWarning) == 30 and categories.count(DeprecationWarning) == 15
    assert not any("PIL" in w.filename and w.category is UserWarning for w in shown)


# --- Apple Photos ----------------------------------------------------------------------------

APPLE_PHOTOS: dict[str, Any] = {
    "uuid": "3DD2C897-F19E-4CA6-8C22-B027D5A71907",
    "title": "Elder Park",
    "description": "Elder Park, Adelaide, Australia",
    "keywords": ["Kids", "Summer"],
    "persons": ["Katie", "Suzy"],
    "favorite": True,
    "place": {
        "name": "Elder Park, Adelaide, South Australia, Australia",
        "country": "Australia",
        "country_code": "AU",
        "state": "South Australia",
        "city": "Adelaide",
        "locality": None,
        "areas_of_interest": ["Elder Park"],
    },
}


def test_the_record_carries_what_apple_photos_knows(tmp_path: Path) -> None:
    path = save(tmp_path / "p.jpg", exif_block())
    record = read_metadata(path, "Travel/p.jpg", APPLE_PHOTOS)
    assert record["apple_photos"] == APPLE_PHOTOS
    assert record["apple_photos"] is not APPLE_PHOTOS, "the record holds its own dict"
    assert record["source_path"] == "Travel/p.jpg"
    assert read_metadata(path)["apple_photos"] is None, "folder mode"


def test_the_metadata_job_passes_apple_photos_and_writes_stable_bytes(tmp_path: Path) -> None:
    path = save(tmp_path / "p.jpg", exif_block())
    shuffled = dict(reversed(list(APPLE_PHOTOS.items())))
    outputs = []
    for name, photos in (("a", APPLE_PHOTOS), ("b", shuffled)):
        params = {"source_ref": "Travel/p.jpg", "apple_photos": photos}
        jobs.metadata({"photo": str(path)}, str(tmp_path / f"{name}.json"), params, {}, {})
        outputs.append((tmp_path / f"{name}.json").read_bytes())
    assert outputs[0] == outputs[1], "key order of the params does not change the bytes"
    assert read_json(tmp_path / "a.json")["apple_photos"] == APPLE_PHOTOS
    for name, params in (
        ("c", {"source_ref": "p.jpg"}),
        ("d", {"source_ref": "p.jpg", "apple_photos": None}),
    ):
        jobs.metadata({"photo": str(path)}, str(tmp_path / f"{name}.json"), params, {}, {})
        assert read_json(tmp_path / f"{name}.json")["apple_photos"] is None
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "d.json").read_bytes()
