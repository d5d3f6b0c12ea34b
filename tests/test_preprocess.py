"""Orientation, colour and size of the images the styles start from."""

from __future__ import annotations

import errno
import io
import os
import random
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin
from test_metadata import heic, marked, upright_of

from i2i import I2IError
from i2i.core.images import NOT_AN_IMAGE, check_photo, register_heif
from i2i.stages.preprocess import load_for_styling, preprocess, target_size

from conftest import REPO, unprivileged


@pytest.mark.parametrize(
    ("size", "long_side", "expected"),
    [
        ((640, 427), 1024, (640, 416)),
        ((4032, 3024), 1024, (1024, 768)),
        ((3024, 4032), 1024, (768, 1024)),
        ((5, 3), 1024, (16, 16)),
        ((2000, 1000), 512, (512, 256)),
    ],
)
def test_target_size(size: tuple[int, int], long_side: int, expected: tuple[int, int]) -> None:
    assert target_size(*size, long_side) == expected


def test_orientation_6_is_applied(sample_albums: Path) -> None:
    stored = sample_albums / "Space Coast" / "eileen_collins.jpg"
    with Image.open(stored) as raw:
        assert raw.width > raw.height
    upright = load_for_styling(stored)
    assert upright.mode == "RGB" and upright.height > upright.width


def test_every_sample_photo_preprocesses(sample_albums: Path, tmp_path: Path) -> None:
    for source in sorted(sample_albums.glob("*/*")):
        target = tmp_path / f"{source.stem}.webp"
        width, height = preprocess(source, target, 512, 90)
        with Image.open(target) as out:
            assert out.format == "WEBP" and out.size == (width, height) and out.mode == "RGB"
        assert max(width, height) <= 512 and width % 16 == 0 and height % 16 == 0


def test_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    source = tmp_path / "alpha.png"
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(source)
    image = load_for_styling(source)
    assert image.getpixel((10, 10)) == (255, 255, 255)


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    lab = ImageCms.createProfile("LAB")
    source_image = Image.new("LAB", (32, 32), (127, 128, 128))
    source = tmp_path / "lab.tif"
    source_image.save(source, icc_profile=ImageCms.ImageCmsProfile(lab).tobytes())
    image = load_for_styling(source)
    grey = np.asarray(image)[0, 0]
    assert image.mode == "RGB"
    assert abs(int(grey[0]) - int(grey[2])) < 6 and 100 < grey[0] < 140


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0garbage"])
def test_unreadable_input_names_the_file(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "broken photo.jpg"
    source.write_bytes(content)
    with pytest.raises(I2IError, match=r"broken photo\.jpg"):
        preprocess(source, tmp_path / "out.webp", 512, 90)
    assert not (tmp_path / "out.webp").exists()


def test_truncated_jpeg_is_an_error(sample_albums: Path, tmp_path: Path) -> None:
    data = (sample_albums / "Space Coast" / "falcon9_launch.jpg").read_bytes()
    source = tmp_path / "cut.jpg"
    source.write_bytes(data[: len(data) // 2])
    with pytest.raises(I2IError, match=r"cut\.jpg: truncated image file$"):
        load_for_styling(source)


def test_output_is_deterministic(sample_albums: Path, tmp_path: Path) -> None:
    source = sample_albums / "Côte d'Azur & Paris" / "cafe_creme.jpg"
    preprocess(source, tmp_path / "a.webp", 256, 90)
    preprocess(source, tmp_path / "b.webp", 256, 90)
    assert (tmp_path / "a.webp").read_bytes() == (tmp_path / "b.webp").read_bytes()
    assert io.BytesIO((tmp_path / "a.webp").read_bytes()).getbuffer().nbytes > 0


# --- photos good and bad ---------------------------------------------------------------------


def photo(size: tuple[int, int] = (640, 480), seed: int = 3) -> Image.Image:
    """A noisy gradient, so that a JPEG of it has plenty of entropy-coded data."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size[0], dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 55, (size[1], size[0], 3))
    return Image.fromarray((ramp + noise).astype(np.uint8))


def saved(path: Path, image: Image.Image, fmt: str, **options: object) -> Path:
    """``image`` saved at ``path`` as ``fmt``."""
    register_heif()
    image.save(path, fmt, **options)
    return path


def gradient16(width: int = 256, height: int = 64) -> np.ndarray:
    """A left-to-right 16-bit ramp over the whole range, 0 to 65535."""
    return np.tile(np.linspace(0, 65535, width).round().astype(np.uint16), (height, 1))


def grey16_tiff(path: Path) -> Path:
    """A 16-bit greyscale TIFF, little-endian (Pillow mode I;16)."""
    Image.fromarray(gradient16()).save(path)
    return path


def grey16_tiff_big_endian(path: Path) -> Path:
    """A 16-bit greyscale TIFF, big-endian (Pillow mode I;16B)."""
    Image.frombytes("I;16B", (256, 64), gradient16().astype(">u2").tobytes()).save(path)
    return path


def grey16_png(path: Path) -> Path:
    """A 16-bit greyscale PNG (OpenCV)."""
    cv2.imwrite(str(path), gradient16())
    return path


def rgb16(path: Path) -> Path:
    """A 16-bit RGB TIFF or PNG (OpenCV): red ramps down, green up to half, blue up."""
    ramp = gradient16()
    cv2.imwrite(str(path), np.dstack([ramp, ramp // 2, 65535 - ramp]))  # OpenCV writes BGR
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text(path: Path) -> Path:
    path.write_text("shopping list: film, batteries\n")
    return path


def noise(path: Path) -> Path:
    path.write_bytes(random.Random(7).randbytes(4096))
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut after 60 % of its data."""
    data = saved(path.with_suffix(".whole"), photo(), "JPEG", quality=90).read_bytes()
    path.with_suffix(".whole").unlink()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` × ``height`` pixels (and holds none)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


GOOD: dict[str, Callable[[Path], Path]] = {
    "good.jpg": lambda p: saved(p, photo(), "JPEG", quality=90),
    "good.png": lambda p: saved(p, photo((64, 48)), "PNG"),
    "good.heic": lambda p: saved(p, photo((64, 48)), "HEIF"),
    "grey16.tif": grey16_tiff,
    "rgb16.tif": rgb16,
    "smallest.png": lambda p: saved(p, photo((16, 16)), "PNG"),
}
NOT_AN_IMAGE_RE = re.escape(NOT_AN_IMAGE)
BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty.jpg": (empty, r"empty file \(0 bytes\), not an image"),
    "notes.jpg": (text, NOT_AN_IMAGE_RE),
    "noise.jpg": (noise, NOT_AN_IMAGE_RE),
    "cut.jpg": (truncated_jpeg, "truncated image file"),
    "bomb.png": (
        lambda p: png_claiming(p, 100_000, 100_000),
        r"too many pixels: 10,000,000,000 \(limit [\d,]+\), possibly a decompression bomb",
    ),
    "dot.png": (
        lambda p: saved(p, photo((1, 1)), "PNG"),
        "too small: 1×1 px, at least 16×16 needed",
    ),
    "sliver.jpg": (
        lambda p: saved(p, photo((800, 12)), "JPEG"),
        "too small: 800×12 px, at least 16×16 needed",
    ),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_check_photo_takes_good_photos(name: str, tmp_path: Path) -> None:
    path = GOOD[name](tmp_path / name)
    assert check_photo(path) is None
    width, height = preprocess(path, tmp_path / "out.webp", 512, 90)
    assert width >= 16 and height >= 16


@pytest.mark.parametrize("name", list(BAD))
def test_check_photo_refuses_with_the_reason_only(name: str, tmp_path: Path) -> None:
    make, reason = BAD[name]
    path = make(tmp_path / name)
    with pytest.raises(I2IError, match=rf"^{reason}$") as refused:
        check_photo(path)
    assert name not in str(refused.value)
    with pytest.raises(I2IError) as failed:
        preprocess(path, tmp_path / "out.webp", 512, 90)
    assert str(failed.value) == f"{path}: {refused.value}", "preprocess agrees, naming the file"
    assert not (tmp_path / "out.webp").exists()


def test_truncated_jpeg_is_caught_at_reduced_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts: list[tuple[int, int] | None] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(image: Image.Image, mode: str | None, size: tuple[int, int] | None) -> object:
        drafts.append(size)
        return draft(image, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = GOOD["good.jpg"](tmp_path / "good.jpg").read_bytes()
    check_photo(tmp_path / "good.jpg")
    for cut in (0.3, 0.6, 0.9, 0.99):
        (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(I2IError, match=r"^truncated image file$"):
            check_photo(tmp_path / "cut.jpg")
    assert drafts == [(80, 60)] * 5, "decoded at 1/8 scale"


def test_a_low_pixel_limit_makes_a_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = GOOD["good.png"](tmp_path / "good.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(
        I2IError, match=r"^too many pixels: 3,072 \(limit 2,000\), possibly a decompression bomb$"
    ):
        check_photo(path)


def test_unreadable_file_is_refused(shared_tmp: Path) -> None:
    path = GOOD["good.jpg"](shared_tmp / "locked.jpg")
    path.chmod(0)
    script = (
        "import sys\nfrom i2i import I2IError\nfrom i2i.core.images import check_photo\n"
        "try:\n    check_photo(sys.argv[1])\nexcept I2IError as exc:\n    print(exc)\n"
    )
    command = unprivileged([sys.executable, "-c", script, str(path)])
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "cannot read: permission denied"


def test_permission_denied_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = GOOD["good.jpg"](tmp_path / "locked.jpg")

    def denied(fp: object, *args: object, **kwargs: object) -> Image.Image:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(fp))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(I2IError, match=r"^cannot read: permission denied$"):
        check_photo(path)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(I2IError, match=r"^cannot read: no such file or directory$"):
        check_photo(tmp_path / "gone.jpg")
    (tmp_path / "album.jpg").mkdir()
    with pytest.raises(I2IError, match=r"^not a regular file$"):
        check_photo(tmp_path / "album.jpg")


# --- 16-bit photos ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "mode"),
    [
        ("ramp.tif", grey16_tiff, "I;16"),
        ("ramp_be.tif", grey16_tiff_big_endian, "I;16B"),
        ("ramp.png", grey16_png, "I;16"),
    ],
)
def test_sixteen_bit_grey_is_scaled_not_clipped(
    name: str, make: Callable[[Path], Path], mode: str, tmp_path: Path
) -> None:
    source = make(tmp_path / name)
    with Image.open(source) as raw:
        assert raw.mode == mode
    preprocess(source, tmp_path / "out.webp", 512, 95)
    with Image.open(tmp_path / "out.webp") as out:
        pixels = np.asarray(out.convert("RGB"), dtype=np.float64)
    grey = pixels.mean(axis=2)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 4, "still grey"
    assert abs(grey.mean() - 127.5) < 3, grey.mean()
    assert abs(grey.std() - 73.9) < 3, grey.std()  # a uniform ramp over 0-255
    assert grey[:, :4].mean() < 8 and grey[:, -4:].mean() > 247


def test_mode_i_is_taken_as_sixteen_bit(tmp_path: Path) -> None:
    source = tmp_path / "ramp_i.tif"
    Image.fromarray(gradient16().astype(np.int32)).save(source)
    with Image.open(source) as raw:
        assert raw.mode == "I"
    grey = np.asarray(load_for_styling(source).convert("L"), dtype=np.float64)
    assert abs(grey.mean() - 127.5) < 1 and grey.min() == 0 and grey.max() == 255


@pytest.mark.parametrize("name", ["rgb16.tif", "rgb16.png"])
def test_sixteen_bit_rgb_keeps_its_colours(name: str, tmp_path: Path) -> None:
    image = load_for_styling(rgb16(tmp_path / name))
    red, green, blue = np.moveaxis(np.asarray(image, dtype=np.float64), 2, 0)
    assert abs(red.mean() - 127.5) < 1 and abs(green.mean() - 63.7) < 1
    assert abs(blue.mean() - 127.5) < 1
    assert red[:, 0].mean() > 254 and red[:, -1].mean() < 1 and blue[:, 0].mean() < 1


# --- HEIC orientation ------------------------------------------------------------------------


@pytest.mark.parametrize("container", [True, False], ids=["irot/imir", "EXIF only"])
@pytest.mark.parametrize("code", range(1, 9))
def test_heic_is_turned_upright_once(code: int, container: bool, tmp_path: Path) -> None:
    register_heif()
    source = heic(tmp_path / "photo.heic", code, container)
    image = load_for_styling(source)
    expected = upright_of(marked(), code)
    assert image.size == expected.size
    difference = np.abs(np.asarray(image, np.int16) - np.asarray(expected, np.int16))
    assert difference.mean() < 4, "upright, neither sideways nor turned twice"
