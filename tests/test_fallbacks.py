"""Finding and deleting the outputs that a network fallback made."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from i2i.core.files import write_json
from i2i.stages.captions import make_caption
from i2i.stages.fallbacks import find_fallbacks, redo_fallbacks
from i2i.stages.places import locate

WATERMARK = {"brand": "i2i", "template": "{brand} © {year} {astro_symbol} {location}"}


def output(workdir: Path, stage: str, album: str, photo: str) -> Path:
    return workdir / "results" / stage / album / f"{photo}.json"


def put(workdir: Path, stage: str, album: str, photo: str, record: Any) -> Path:
    path = output(workdir, stage, album, photo)
    write_json(path, record)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A results tree: fallbacks, normal records, an unreadable one and a missing one."""
    paths = {
        "a/1 places": put(tmp_path, "places", "a", "1", {"fallback": True, "provider": None}),
        "a/1 captions": put(tmp_path, "captions", "a", "1", {"fallback": False}),
        "a/2 places": put(tmp_path, "places", "a", "2", {"fallback": False}),
        "a/2 captions": put(tmp_path, "captions", "a", "2", {"fallback": True}),
        "b/3 places": put(tmp_path, "places", "b", "3", {"provider": "offline"}),
        "b/3 captions": put(tmp_path, "captions", "b", "3", {"fallback": True}),
        "b/4 places": put(tmp_path, "places", "b", "4", {"fallback": True}),
        "b/4 captions": put(tmp_path, "captions", "b", "4", {"fallback": True}),
        "c/5 places": put(tmp_path, "places", "c", "5", {"fallback": "yes"}),
        "c/6 places": put(tmp_path, "places", "c", "6", ["fallback"]),
    }
    truncated = output(tmp_path, "captions", "c", "5")
    truncated.parent.mkdir(parents=True)
    truncated.write_text('{"fallback": tru', encoding="utf-8")
    return paths


PHOTOS = [("a", "1"), ("a", "2"), ("b", "3"), ("b", "4"), ("c", "5"), ("c", "6"), ("c", "7")]


def test_find_fallbacks_in_photo_order(
    tmp_path: Path, tree: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        found = find_fallbacks(tmp_path, PHOTOS)
    assert found == [
        tree["a/1 places"],
        tree["a/2 captions"],
        tree["b/3 captions"],
        tree["b/4 places"],
        tree["b/4 captions"],
    ]
    assert "unreadable" in caplog.text and "c/5.json" in caplog.text
    assert find_fallbacks(tmp_path, [("a", "2")]) == [tree["a/2 captions"]]
    assert find_fallbacks(tmp_path, []) == []
    assert find_fallbacks(tmp_path / "elsewhere", PHOTOS) == []


def test_redo_fallbacks_deletes_exactly_those(
    tmp_path: Path, tree: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    found = find_fallbacks(tmp_path, PHOTOS)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="i2i.stages.fallbacks"):
        assert redo_fallbacks(found) == 5
    assert [r.getMessage() for r in caplog.records] == [
        f"redo: removed {path} (made by a fallback)" for path in found
    ]
    assert {name for name, path in tree.items() if not path.exists()} == {
        "a/1 places",
        "a/2 captions",
        "b/3 captions",
        "b/4 places",
        "b/4 captions",
    }
    assert find_fallbacks(tmp_path, PHOTOS) == []
    assert redo_fallbacks(found) == 0, "files already gone are not counted"


def test_records_made_by_the_stages(tmp_path: Path) -> None:
    """Real places and captions records: a failed Ollama is found, a disabled one is not."""
    metadata = {"exif": {"date_taken": "2019-07-14T21:30:00"}, "gps": None}
    places = locate(metadata, ["offline"], {"cache": str(tmp_path / "c.sqlite")})
    down = {"enabled": True, "endpoint": "http://127.0.0.1:9", "timeout": 2, "retries": 0}
    put(tmp_path, "places", "a", "1", places)
    put(tmp_path, "captions", "a", "1", make_caption(metadata, places, WATERMARK, down, None))
    put(tmp_path, "places", "a", "2", places)
    put(tmp_path, "captions", "a", "2", make_caption(metadata, places, WATERMARK, None, None))
    assert find_fallbacks(tmp_path, [("a", "1"), ("a", "2")]) == [
        output(tmp_path, "captions", "a", "1")
    ]
