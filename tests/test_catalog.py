"""Style manifests, master.json and contact sheets."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from i2i.stages.catalog import album_catalog, master_catalog, photo_entry, style_manifest
from i2i.stages.contact_sheet import contact_sheet


def marker(album: str, photo: str, style: str) -> dict:
    return {
        "album": album,
        "photo": photo,
        "style": style,
        "key": f"{album}/{photo}_{style}.webp",
        "url": "file:///x",
        "sha256": "0" * 64,
        "etag": None,
        "size": 1,
        "target": "file://x",
        "time": "2026-01-01T00:00:00+00:00",
        "uploaded": True,
    }


def metadata() -> dict:
    return {
        "source_path": "A/p.jpg",
        "file": {"sha256": "1" * 64},
        "image": {"width": 1},
        "exif": {"date_taken": "2024-07-05T09:12:30+02:00"},
        "gps": {"lat": 1.0, "lon": 2.0},
        "problems": [],
    }


def test_style_manifest_is_sorted_and_drops_run_times() -> None:
    manifest = style_manifest("ink", [marker("B", "p", "ink"), marker("A", "q", "ink")])
    assert manifest["count"] == 2
    assert [(i["album"], i["photo"]) for i in manifest["images"]] == [("A", "q"), ("B", "p")]
    assert "time" not in manifest["images"][0]


def test_master_catalog_gathers_photos_and_styles() -> None:
    places = {
        "location": {"city": "Paris"},
        "location_formatted": "Paris, France",
        "landmarks": [],
        "provider": "offline",
    }
    caption = {"watermark_text": "i2i © 2024 ♋ Paris, France", "source": "template"}
    entries = [photo_entry("A", "p", metadata(), places, caption)]
    markers = [marker("A", "p", s) for s in ("oil", "ink")]
    album = album_catalog("A", entries, markers, ["oil", "ink"])
    assert album["styles"] == ["ink", "oil"]
    other = album_catalog("B", [photo_entry("B", "q", metadata(), places, caption)], [], ["ink"])
    rejected = [{"album": "B", "photo": "bad", "file": "B/bad.jpg", "reason": "truncated"}]
    catalog = master_catalog([other, album], ["oil", "ink"], rejected)
    assert catalog["albums"] == ["A", "B"] and catalog["rejected"] == rejected
    assert catalog["photo_count"] == 2 and catalog["image_count"] == 2
    assert "time" not in catalog["photos"][0]["styles"]["ink"]
    entry = catalog["photos"][0]
    assert entry["location_formatted"] == "Paris, France"
    assert entry["watermark_text"].startswith("i2i ©")
    assert set(entry["styles"]) == {"ink", "oil"}
    assert entry["exif"]["date_taken"].startswith("2024")


APPLE_PHOTOS = {
    "uuid": "3DD2C897-F19E-4CA6-8C22-B027D5A71907",
    "title": "Elder Park",
    "description": None,
    "keywords": ["Kids", "Summer"],
    "persons": ["Katie", "Suzy"],
    "favorite": True,
    "place": {"name": "Elder Park, Adelaide", "city": "Adelaide", "areas_of_interest": []},
}
PHOTOS_KEYS = {"title", "description", "keywords", "persons", "favorite"}
PLACES = {"location": None, "location_formatted": "", "landmarks": [], "provider": None}
CAPTION = {"watermark_text": "i2i © 2024 Elder Park", "source": "template"}


def test_entries_carry_what_apple_photos_knows() -> None:
    entry = photo_entry("A", "p", {**metadata(), "apple_photos": APPLE_PHOTOS}, PLACES, CAPTION)
    assert {k: entry[k] for k in PHOTOS_KEYS} == {
        "title": "Elder Park",
        "description": None,
        "keywords": ["Kids", "Summer"],
        "persons": ["Katie", "Suzy"],
        "favorite": True,
    }
    assert "place" not in entry and "uuid" not in entry, "the place is in the places fields"
    catalog = master_catalog([album_catalog("A", [entry], [], ["ink"])], ["ink"])
    assert catalog["photos"][0]["persons"] == ["Katie", "Suzy"]
    bare = photo_entry("A", "q", {**metadata(), "apple_photos": {"uuid": "X"}}, PLACES, CAPTION)
    assert {k: bare[k] for k in PHOTOS_KEYS} == {
        "title": None,
        "description": None,
        "keywords": [],
        "persons": [],
        "favorite": False,
    }


def test_folder_entries_have_no_apple_photos_keys() -> None:
    folder = photo_entry("A", "p", metadata(), PLACES, CAPTION)
    assert photo_entry("A", "p", {**metadata(), "apple_photos": None}, PLACES, CAPTION) == folder
    assert not PHOTOS_KEYS & set(folder)
    assert set(folder) == {
        "album",
        "photo",
        "source_path",
        "sha256",
        "image",
        "exif",
        "gps",
        "titles",
        "location",
        "location_formatted",
        "landmarks",
        "place_provider",
        "watermark_text",
        "caption_source",
        "problems",
        "styles",
    }


def test_contact_sheet_grid(tmp_path: Path) -> None:
    paths = []
    for i, colour in enumerate(["red", "blue", "green"]):
        path = tmp_path / f"{i}.webp"
        Image.new("RGB", (300, 200), colour).save(path)
        paths.append(path)
    target = tmp_path / "sheet.jpg"
    width, height = contact_sheet(
        [("p1", paths), ("p2", [paths[0], None, paths[2]])], ["original", "a", "b"], target
    )
    with Image.open(target) as sheet:
        assert sheet.size == (width, height)
        assert width > 3 * 240 and height > 2 * 240
