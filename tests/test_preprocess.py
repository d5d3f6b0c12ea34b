"""Orientation, colour and size of the images the styles start from."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from i2i import I2IError
from i2i.preprocess import load_for_styling, preprocess, target_size


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
    with pytest.raises(I2IError, match=r"cut\.jpg: cannot decode"):
        load_for_styling(source)


def test_output_is_deterministic(sample_albums: Path, tmp_path: Path) -> None:
    source = sample_albums / "Côte d'Azur & Paris" / "cafe_creme.jpg"
    preprocess(source, tmp_path / "a.webp", 256, 90)
    preprocess(source, tmp_path / "b.webp", 256, 90)
    assert (tmp_path / "a.webp").read_bytes() == (tmp_path / "b.webp").read_bytes()
    assert io.BytesIO((tmp_path / "a.webp").read_bytes()).getbuffer().nbytes > 0
