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
from i2i.stages.stylize import stylize


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


def test_the_quality_gate_refuses_nan_and_flat_renders_and_passes_dark_ones() -> None:
    from i2i.core.quality import BrokenRender, check_render

    rng = np.random.default_rng(1)
    nan = rng.uniform(0, 255, (8, 8, 3))
    nan[2, 3, 1] = np.nan
    with pytest.raises(BrokenRender, match=r"^a\.jpg in oil: broken render, 1 of 64 pixels"):
        check_render(nan, "a.jpg", "oil")
    flat = np.full((8, 8, 3), 12.0) + rng.uniform(-0.4, 0.4, (8, 8, 3))
    with pytest.raises(BrokenRender, match=r"one flat colour \(12, 12, 12\)"):
        check_render(flat, "a.jpg", "oil")
    night = np.zeros((64, 64, 3), np.uint8)
    night[10, 20] = night[40, 50] = 255  # two stars on black: dark, not flat
    check_render(night, "a.jpg", "oil")


def test_a_flat_classic_render_fails_and_writes_nothing(
    sample_albums: Path, registry: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from i2i.backends import classic
    from i2i.core.quality import BrokenRender

    monkeypatch.setattr(classic, "render", lambda rgb, *_: np.zeros_like(rgb))
    target = tmp_path / "out.webp"
    source = next(sample_albums.glob("*/*.jpg"))
    with pytest.raises(BrokenRender, match=r"^Album/x in cartoon: broken render"):
        stylize(source, target, registry["cartoon"], 1, "cartoon", "Album/x")
    assert not target.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("colour", [(0, 0, 0), (208, 16, 16), (255, 255, 255)])
def test_a_photo_of_one_colour_renders_in_every_classic_style(
    registry: dict, tmp_path: Path, colour: tuple[int, int, int]
) -> None:
    """A lens cap's black frame or a blank card is a photo: its flat render is not broken."""
    source = tmp_path / "flat.webp"
    Image.new("RGB", (96, 64), colour).save(source, "WEBP", lossless=True)
    classic_styles = [n for n, s in registry.items() if s["backend"] == "classic"]
    assert classic_styles
    for name in classic_styles:
        target = tmp_path / f"{name}.webp"
        stylize(source, target, registry[name], 1, name, "Album/flat")
        with Image.open(target) as styled:
            assert styled.size == (96, 64)


def test_an_unchanged_render_is_a_warning_that_progress_counts(tmp_path: Path) -> None:
    from i2i.core.quality import unchanged_warning
    from i2i.stages.report import unchanged_renders

    photo = np.random.default_rng(2).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    assert unchanged_warning(photo, photo, "p.jpg", "ghibli").startswith("p.jpg in ghibli look")
    assert unchanged_warning(255 - photo, photo, "p.jpg", "ghibli") is None
    logs = tmp_path / "logs" / "stylize" / "A" / "ghibli"
    logs.mkdir(parents=True)
    (logs / "p.log").write_text("WARNING " + unchanged_warning(photo, photo, "p", "ghibli"))
    (logs / "q.log").write_text("INFO job finished in 1.0 s\n")
    assert unchanged_renders(tmp_path) == [logs / "p.log"]
