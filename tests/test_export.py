"""Photo discovery in a folder of album folders."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from i2i import I2IError
from i2i.stages.library.albums import discover

EXTENSIONS = ["jpg", "jpeg", "heic", "png"]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_sample_album(sample_albums: Path) -> None:
    library = discover(sample_albums, EXTENSIONS)
    assert library.albums() == ["Côte d'Azur & Paris", "Space Coast"]
    assert len(library.photos) == 6
    assert library.skipped == []


def test_unsupported_and_nested_files_are_reported_not_fatal(tmp_path: Path) -> None:
    touch(tmp_path / "Trip" / "a.JPG")
    touch(tmp_path / "Trip" / "clip.mov")
    touch(tmp_path / "Trip" / "notes")
    touch(tmp_path / "Trip" / "nested" / "b.jpg")
    touch(tmp_path / "Trip" / ".DS_Store")
    touch(tmp_path / "loose.jpg")
    library = discover(tmp_path, EXTENSIONS)
    assert [(p.album, p.photo) for p in library.photos] == [("Trip", "a")]
    reasons = {path.name: reason for path, reason in library.skipped}
    assert reasons["clip.mov"] == "unsupported extension .mov"
    assert reasons["notes"] == "unsupported extension .(none)"
    assert reasons["nested"].startswith("nested folder")
    assert reasons["loose.jpg"] == "not inside an album folder"
    assert ".DS_Store" not in reasons


def test_shared_stems_keep_their_extension(tmp_path: Path) -> None:
    touch(tmp_path / "A" / "IMG_1.HEIC")
    touch(tmp_path / "A" / "IMG_1.jpg")
    touch(tmp_path / "A" / "IMG_2.jpg")
    photos = sorted(p.photo for p in discover(tmp_path, EXTENSIONS).photos)
    assert photos == ["IMG_1.HEIC", "IMG_1.jpg", "IMG_2"]


def test_names_are_normalised_to_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Été")
    touch(tmp_path / decomposed / "café.jpg")
    photo = discover(tmp_path, EXTENSIONS).photos[0]
    assert photo.album == "Été" and photo.album == unicodedata.normalize("NFC", photo.album)
    assert photo.path.exists()


def test_names_that_cannot_be_wildcards_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path / "{odd}" / "a.jpg")
    touch(tmp_path / "Fine" / " padded.jpg")
    library = discover(tmp_path, EXTENSIONS)
    assert library.photos == []
    assert len(library.skipped) == 2


def test_missing_library_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(I2IError, match=r"albums_dir .*not a folder"):
        discover(tmp_path / "nope", EXTENSIONS)


def test_hidden_folders_are_listed_as_skipped(tmp_path: Path) -> None:
    touch(tmp_path / "Trip" / "a.jpg")
    touch(tmp_path / "..dots" / "b.jpg")
    touch(tmp_path / ".hidden album" / "c.jpg")
    touch(tmp_path / "Trip" / ".thumbs" / "d.jpg")
    touch(tmp_path / ".osxphotos_export.db")
    touch(tmp_path / ".i2i-photos-export")
    touch(tmp_path / "Trip" / ".DS_Store")
    library = discover(tmp_path, EXTENSIONS)
    assert [(p.album, p.photo) for p in library.photos] == [("Trip", "a")]
    reasons = {path.name: reason for path, reason in library.skipped}
    assert reasons == {
        "..dots": "hidden folder",
        ".hidden album": "hidden folder",
        ".thumbs": "hidden folder",
    }


def test_links_outside_the_library_are_skipped_unless_allowed(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "albums", tmp_path / "elsewhere"
    touch(root / "Trip" / "a.jpg")
    touch(elsewhere / "Far" / "far.jpg")
    touch(elsewhere / "loose.jpg")
    (root / "Trip" / "inside.jpg").symlink_to(root / "Trip" / "a.jpg")
    (root / "Trip" / "outside.jpg").symlink_to(elsewhere / "loose.jpg")
    (root / "Trip" / "gone.jpg").symlink_to(elsewhere / "missing.jpg")
    (root / "Far").symlink_to(elsewhere / "Far")
    library = discover(root, EXTENSIONS)
    assert sorted((p.album, p.photo) for p in library.photos) == [
        ("Trip", "a"),
        ("Trip", "gone"),  # dangling: the inventory sets it aside and names it
        ("Trip", "inside"),
    ]
    reasons = {path.name: reason for path, reason in library.skipped}
    assert reasons == {
        "Far": "a link to a folder outside albums_dir (links_outside: true takes it)",
        "outside.jpg": "a link to a file outside albums_dir (links_outside: true takes it)",
    }
    allowed = discover(root, EXTENSIONS, links_outside=True)
    assert {("Far", "far"), ("Trip", "outside")} <= {(p.album, p.photo) for p in allowed.photos}
    assert allowed.skipped == []


def test_control_characters_in_names_are_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    touch(tmp_path / "Trip" / "a.jpg")
    touch(tmp_path / "Trip" / "two\nlines.jpg")
    touch(tmp_path / "Tab\talbum" / "b.jpg")
    touch(tmp_path / "Trip" / "bell\x07.jpg")
    touch(tmp_path / "Trip" / "\u202ertl.jpg")
    library = discover(tmp_path, EXTENSIONS)
    assert sorted(p.photo for p in library.photos) == ["a", "\u202ertl"], "RTL marks are kept"
    reasons = {path.name: reason for path, reason in library.skipped}
    assert reasons == {
        "two\nlines.jpg": "file name cannot be used as a target name",
        "bell\x07.jpg": "file name cannot be used as a target name",
        "Tab\talbum": "album name cannot be used as a folder name",
    }
    assert all("\n" not in r.getMessage() for r in caplog.records), "one line each"
    assert any("two\\nlines.jpg" in r.getMessage() for r in caplog.records)
