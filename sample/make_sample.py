"""Build the bundled sample album from scikit-image's free photographs, with EXIF written here.

Run from the repository root (needs the ``dev`` extra for scikit-image):

    python sample/make_sample.py

The pixels come from scikit-image's data folder (public domain and CC0, see LICENSE.md); the
camera tags, dates and GPS positions are written by this script so that every stage has real
inputs: two albums (one with a space, an accent and a quote in its name), one HEIC, one PNG
with an eXIf chunk, one photo stored with EXIF orientation 6 and one without GPS.
"""

from __future__ import annotations

import logging
import shutil
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import piexif
import pillow_heif
import skimage
from PIL import Image

log = logging.getLogger("make_sample")

DATA = Path(skimage.__file__).parent / "data"
OUT = Path(__file__).parent / "albums"
LONG_SIDE = 640


@dataclass
class Shot:
    """One sample photo: where its pixels come from and the tags it gets."""

    album: str
    name: str
    source: str
    date: str
    offset: str
    make: str
    model: str
    lens: str
    focal: float
    focal35: int
    f_number: float
    exposure: Fraction
    iso: int
    gps: tuple[float, float, float, float] | None = None
    orientation: int = 1
    extra: dict = field(default_factory=dict)


SHOTS = [
    Shot(
        "Space Coast",
        "falcon9_launch.jpg",
        "rocket.jpg",
        "2015:02:11 18:03:42",
        "-05:00",
        "Canon",
        "Canon EOS 5D Mark III",
        "EF70-200mm f/2.8L IS II USM",
        200,
        200,
        5.6,
        Fraction(1, 2000),
        400,
        gps=(28.5619, -80.5772, 3.0, 65.0),
    ),
    Shot(
        "Space Coast",
        "eileen_collins.jpg",
        "astronaut.png",
        "2023:07:14 10:21:05",
        "-05:00",
        "NIKON CORPORATION",
        "NIKON D850",
        "AF-S NIKKOR 85mm f/1.4G",
        85,
        85,
        2.8,
        Fraction(1, 250),
        200,
        gps=(29.5593, -95.0900, 12.0, 180.0),
        orientation=6,
    ),
    Shot(
        "Space Coast",
        "deep_field.heic",
        "hubble_deep_field.jpg",
        "2024:03:21 21:45:10",
        "-04:00",
        "Apple",
        "iPhone 15 Pro",
        "iPhone 15 Pro back triple camera 6.765mm f/1.78",
        6.765,
        24,
        1.78,
        Fraction(1, 4),
        1600,
        gps=(39.3326, -76.6232, 45.0, 310.5),
    ),
    Shot(
        "Côte d'Azur & Paris",
        "cafe_creme.jpg",
        "coffee.png",
        "2024:07:05 09:12:30",
        "+02:00",
        "FUJIFILM",
        "X-T4",
        "XF23mmF1.4 R",
        23,
        35,
        2.0,
        Fraction(1, 125),
        320,
        gps=(48.8530, 2.3499, 35.0, 270.0),
    ),
    Shot(
        "Côte d'Azur & Paris",
        "chelsea.png",
        "chelsea.png",
        "2024:07:06 17:40:00",
        "+02:00",
        "SONY",
        "ILCE-7M3",
        "FE 50mm F1.8",
        50,
        50,
        1.8,
        Fraction(1, 160),
        800,
    ),
    Shot(
        "Côte d'Azur & Paris",
        "promenade_des_anglais.jpg",
        "camera.png",
        "2024:08:02 19:30:15",
        "+02:00",
        "Leica Camera AG",
        "LEICA Q2 MONOCHROM",
        "SUMMILUX 1:1.7/28 ASPH.",
        28,
        28,
        8.0,
        Fraction(1, 500),
        100,
        gps=(43.6950, 7.2655, 4.0, 200.0),
    ),
]


def rational(value: float, denominator: int = 10000) -> tuple[int, int]:
    """A float as an EXIF rational."""
    fraction = Fraction(value).limit_denominator(denominator)
    return fraction.numerator, fraction.denominator


def dms(value: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Decimal degrees as EXIF degrees/minutes/seconds rationals."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return (degrees, 1), (minutes, 1), (round(seconds * 1000), 1000)


def exif_bytes(shot: Shot) -> bytes:
    """The EXIF block for one shot."""
    zeroth = {
        piexif.ImageIFD.Make: shot.make,
        piexif.ImageIFD.Model: shot.model,
        piexif.ImageIFD.Orientation: shot.orientation,
        piexif.ImageIFD.Software: "i2i sample/make_sample.py",
        piexif.ImageIFD.DateTime: shot.date,
        piexif.ImageIFD.Artist: "i2i sample album",
    }
    exif = {
        piexif.ExifIFD.DateTimeOriginal: shot.date,
        piexif.ExifIFD.DateTimeDigitized: shot.date,
        piexif.ExifIFD.OffsetTime: shot.offset,
        piexif.ExifIFD.OffsetTimeOriginal: shot.offset,
        piexif.ExifIFD.OffsetTimeDigitized: shot.offset,
        piexif.ExifIFD.SubSecTimeOriginal: "250",
        piexif.ExifIFD.LensModel: shot.lens,
        piexif.ExifIFD.LensMake: shot.make,
        piexif.ExifIFD.FocalLength: rational(shot.focal),
        piexif.ExifIFD.FocalLengthIn35mmFilm: shot.focal35,
        piexif.ExifIFD.FNumber: rational(shot.f_number),
        piexif.ExifIFD.ExposureTime: (shot.exposure.numerator, shot.exposure.denominator),
        piexif.ExifIFD.ISOSpeedRatings: shot.iso,
        piexif.ExifIFD.ExposureProgram: 3,
        piexif.ExifIFD.ExposureMode: 0,
        piexif.ExifIFD.ExposureBiasValue: (-1, 3),
        piexif.ExifIFD.MeteringMode: 5,
        piexif.ExifIFD.Flash: 16,
        piexif.ExifIFD.WhiteBalance: 0,
        piexif.ExifIFD.ColorSpace: 1,
        piexif.ExifIFD.SceneCaptureType: 0,
        piexif.ExifIFD.BodySerialNumber: f"{zlib.crc32(shot.model.encode()) % 10**7:07d}",
    }
    gps = {}
    if shot.gps:
        lat, lon, altitude, heading = shot.gps
        gps = {
            piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
            piexif.GPSIFD.GPSLatitudeRef: "N" if lat >= 0 else "S",
            piexif.GPSIFD.GPSLatitude: dms(lat),
            piexif.GPSIFD.GPSLongitudeRef: "E" if lon >= 0 else "W",
            piexif.GPSIFD.GPSLongitude: dms(lon),
            piexif.GPSIFD.GPSAltitudeRef: 0,
            piexif.GPSIFD.GPSAltitude: rational(altitude, 100),
            piexif.GPSIFD.GPSImgDirectionRef: "T",
            piexif.GPSIFD.GPSImgDirection: rational(heading, 100),
            piexif.GPSIFD.GPSSpeedRef: "K",
            piexif.GPSIFD.GPSSpeed: (0, 1),
        }
    return piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps})


def pixels(shot: Shot) -> Image.Image:
    """The shot's pixels: resized, and rotated so that its EXIF orientation shows it upright."""
    image = Image.open(DATA / shot.source).convert("L" if shot.source == "camera.png" else "RGB")
    if shot.source == "astronaut.png":
        image = image.crop((64, 0, 448, 512))
    long_side = LONG_SIDE // 2 if shot.name.endswith(".png") else LONG_SIDE
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    if shot.orientation == 6:
        image = image.rotate(90, expand=True)
    return image


def write(shot: Shot) -> Path:
    """Write one sample photo with its EXIF."""
    target = OUT / shot.album / shot.name
    target.parent.mkdir(parents=True, exist_ok=True)
    image = pixels(shot)
    exif = exif_bytes(shot)
    suffix = target.suffix.lower()
    if suffix == ".heic":
        heif = pillow_heif.from_pillow(image)
        heif.save(target, quality=40, exif=exif)
    elif suffix == ".png":
        image.save(target, "PNG", exif=exif, optimize=True)
    else:
        image.save(target, "JPEG", quality=82, exif=exif, optimize=True)
    return target


def main() -> None:
    """Rebuild ``sample/albums`` from scratch."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if OUT.exists():
        shutil.rmtree(OUT)
    for shot in SHOTS:
        target = write(shot)
        log.info("%s  %d bytes", target.relative_to(OUT.parent), target.stat().st_size)


if __name__ == "__main__":
    main()
