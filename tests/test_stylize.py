"""The classic backend and the stylize stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2i import I2IError
from i2i.backends.classic import FILTERS, render
from i2i.cli import main
from i2i.config import load_registry
from i2i.stylize import stylize


@pytest.fixture(scope="module")
def photo(sample_albums: Path) -> np.ndarray:
    with Image.open(sample_albums / "Space Coast" / "falcon9_launch.jpg") as image:
        return np.asarray(image.convert("RGB").resize((192, 128)))


@pytest.fixture(scope="module")
def registry(repo: Path) -> dict:
    return load_registry(repo / "styles.yaml")


def classic_styles(repo_registry: dict) -> list[str]:
    return [n for n, s in repo_registry.items() if s["backend"] == "classic"]


def test_every_filter_has_a_registry_style(registry: dict) -> None:
    assert {registry[n]["filter"] for n in classic_styles(registry)} == set(FILTERS)


def test_each_style_is_deterministic_and_changes_the_photo(
    photo: np.ndarray, registry: dict
) -> None:
    outputs = {}
    for name in classic_styles(registry):
        first = render(photo, registry[name])
        assert first.shape == photo.shape and first.dtype == np.uint8
        assert np.array_equal(first, render(photo, registry[name])), name
        assert np.abs(first.astype(int) - photo.astype(int)).mean() > 2, name
        outputs[name] = first
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.array_equal(outputs[a], outputs[b]), (a, b)


def test_params_change_the_result(photo: np.ndarray) -> None:
    fine = render(photo, {"filter": "oil_paint", "params": {"size": 3}})
    coarse = render(photo, {"filter": "oil_paint", "params": {"size": 11}})
    assert not np.array_equal(fine, coarse)


def test_unknown_filter_is_a_clear_error(photo: np.ndarray) -> None:
    with pytest.raises(I2IError, match="unknown filter 'mosaic'"):
        render(photo, {"filter": "mosaic"})


def test_stylize_writes_same_bytes_twice(tmp_path: Path, photo: np.ndarray, registry: dict) -> None:
    source = tmp_path / "in.webp"
    Image.fromarray(photo).save(source, "WEBP", quality=92)
    for name in ("a", "b"):
        stylize(source, tmp_path / name / "out.webp", registry["watercolour"])
    a, b = (tmp_path / n / "out.webp" for n in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as out:
        assert out.size == (192, 128)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("out.webp", "WEBP"),
        ("out.png", "PNG"),
        ("out.JPG", "JPEG"),
        ("out.jpeg", "JPEG"),
        ("out.tif", "TIFF"),
    ],
)
def test_stylize_writes_the_format_of_the_extension(
    tmp_path: Path, photo: np.ndarray, registry: dict, name: str, expected: str
) -> None:
    source = tmp_path / "in.webp"
    Image.fromarray(photo).save(source, "WEBP", quality=92)
    stylize(source, tmp_path / name, registry["cartoon"])
    with Image.open(tmp_path / name) as out:
        assert out.format == expected and out.size == (192, 128)


def test_an_unknown_extension_is_refused(tmp_path: Path, photo: np.ndarray, registry: dict) -> None:
    source = tmp_path / "in.webp"
    Image.fromarray(photo).save(source, "WEBP", quality=92)
    for name in ("out.gif", "out"):
        with pytest.raises(I2IError, match=r"must end in \.webp, \.png, \.jpg, \.jpeg or \.tif"):
            stylize(source, tmp_path / name, registry["cartoon"])
        assert not (tmp_path / name).exists()


def test_i2i_stylize_writes_the_format_of_the_extension(
    repo: Path, sample_albums: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    photo = sample_albums / "Space Coast" / "eileen_collins.jpg"
    command = ["-d", str(repo), "stylize", str(photo), "oil_paint"]
    assert main([*command, str(tmp_path / "out.png"), "--long-side", "96"]) == 0
    with Image.open(tmp_path / "out.png") as image:
        assert image.format == "PNG" and image.height == 96
    assert main([*command, str(tmp_path / "out.bmp")]) == 1
    assert "out.bmp: cannot write a .bmp file" in caplog.text
    assert not (tmp_path / "out.bmp").exists()
