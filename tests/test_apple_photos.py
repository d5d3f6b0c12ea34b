"""Apple Photos as the source: osxphotos exports the real test library (tests/fixtures/photos)."""

from __future__ import annotations

import contextlib
import json
import logging
import plistlib
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from i2i import I2IError
from i2i.cli import main
from i2i.stages.library.apple_photos import (
    ExportSettings,
    album_folder,
    export_library,
    photo_info,
    plan_export,
    read_report,
)

from conftest import copy_workflow, planned, snakemake

pytest.importorskip("osxphotos")

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "photos" / "Test-15.4.1.photoslibrary"
NESTED = album_folder(["Folder1", "SubFolder2"], "AlbumInFolder")
PER_PHOTO = {"metadata", "places", "captions", "preprocess"}
PER_IMAGE = {"stylize_classic", "watermark", "publish"}
# Asset primary keys and album primary keys in the fixture's database.
TULIPS, PUMPKINS3, PUMKINS2 = 7, 2, 5
PUMPKIN_FARM = 5


def library_copy(tmp_path: Path) -> Path:
    """A writable copy of the test library (the tests change its database)."""
    library = tmp_path / "Library.photoslibrary"
    shutil.copytree(FIXTURE, library)
    return library


def edit_database(library: Path, sql: str, *args: object) -> None:
    """Change the library as Photos would (one statement, committed, the database closed:
    closing checkpoints the write-ahead log into Photos.sqlite, a change of its own)."""
    with contextlib.closing(sqlite3.connect(library / "database" / "Photos.sqlite")) as db:
        db.execute(sql, args)
        db.commit()


def exported(albums_dir: Path) -> set[str]:
    return {
        p.relative_to(albums_dir).as_posix()
        for p in albums_dir.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def query(photos: list[dict]) -> dict[str, dict]:
    return {p["uuid"]: p for p in photos}


def photo(uuid: str, albums: list[tuple[list[str], str]] | None = None, **fields: object) -> dict:
    """A photo as ``osxphotos query --json`` lists it (the fields the plan reads)."""
    return {
        "uuid": uuid,
        "isphoto": True,
        "hidden": False,
        "intrash": False,
        "favorite": False,
        "keywords": [],
        "date": "2020-05-01T10:00:00+02:00",
        "album_info": [{"title": t, "folder_names": f} for f, t in albums or []],
        **fields,
    }


def test_plan_maps_albums_in_folders_and_applies_the_filters() -> None:
    photos = [
        photo("A", [(["Travel", "2019"], "Paris/Lyon"), ([], "Best")], favorite=True),
        photo("B", [([], "Best")], keywords=["cat"], date="2021-01-02T00:00:00"),
        photo("C"),
        photo("D", [([], "Best")], hidden=True),
        photo("E", [([], "Best")], isphoto=False),
    ]
    everything = plan_export(photos, ExportSettings(Path("L")))
    assert everything == {"A": ["Best", "Travel › 2019 › Paris-Lyon"], "B": ["Best"]}
    unfiled = plan_export(photos, ExportSettings(Path("L"), unfiled="No album"))
    assert unfiled["C"] == ["No album"] and "D" not in unfiled and "E" not in unfiled

    def chosen(**settings: object) -> dict[str, list[str]]:
        return plan_export(photos, ExportSettings(Path("L"), unfiled="Loose", **settings))

    assert chosen(albums=("Travel/2019/Paris/Lyon",)) == {"A": ["Travel › 2019 › Paris-Lyon"]}
    assert chosen(albums=("Paris/Lyon", "Loose")) == {
        "A": ["Travel › 2019 › Paris-Lyon"],
        "C": ["Loose"],
    }
    assert chosen(exclude_albums=("Best",)) == {"A": ["Travel › 2019 › Paris-Lyon"], "C": ["Loose"]}
    assert set(chosen(favorites_only=True)) == {"A"}
    assert set(chosen(keywords=("cat", "dog"))) == {"B"}
    assert set(chosen(from_date="2021-01-01")) == {"B"}
    assert set(chosen(to_date="2021-01-02")) == {"A", "C"}


def test_the_library_path_may_start_with_the_home_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/Users/jane")
    settings = ExportSettings.from_config({"library": "~/Pictures/Photos Library.photoslibrary"})
    assert settings.library == Path("/Users/jane/Pictures/Photos Library.photoslibrary")


def test_what_photos_knows_is_cleaned() -> None:
    info = photo_info(
        {
            "uuid": "U",
            "title": "  Elder Park ",
            "description": "\u2068Elder Park\u2069, \u2068Adelaide\u2069",
            "keywords": ["b", "a", "a"],
            "persons": ["Suzy", "_UNKNOWN_", "Katie"],
            "favorite": 1,
            "place": {
                "name": "St James's Park, London",
                "address": {"city": "London", "country": "United Kingdom", "sub_locality": "W1"},
                "names": {"area_of_interest": ["St James's Park", "St James's Park"]},
                "country_code": "GB",
            },
        }
    )
    assert info["title"] == "Elder Park" and info["description"] == "Elder Park, Adelaide"
    assert info["keywords"] == ["a", "b"] and info["persons"] == ["Katie", "Suzy"]
    assert info["favorite"] is True
    assert info["place"]["city"] == "London" and info["place"]["locality"] == "W1"
    assert info["place"]["country_code"] == "GB"
    assert info["place"]["areas_of_interest"] == ["St James's Park"]
    assert photo_info({"uuid": "V"})["place"] is None


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The test library exported once with photos in no album kept under ``Unfiled``."""
    tmp = tmp_path_factory.mktemp("export")
    library = library_copy(tmp)
    settings = ExportSettings(library, unfiled="Unfiled")
    return library, tmp / "albums", export_library(settings, tmp / "albums", tmp / "work")


def test_albums_are_folders_as_in_photos(export: tuple[Path, Path, dict]) -> None:
    _, albums_dir, result = export
    files = exported(albums_dir)
    assert f"{NESTED}/IMG_4547.jpg" in files, "an album inside Photos folders"
    assert "2019-10-11 Paris Clermont/IMG_4547.jpg" in files, "'/' in an album name"
    assert "2018-10 - Sponsion, Museum, Frühstück, Römermuseum/IMG_4547.jpg" in files
    assert {"Pumpkin Farm/Pumkins1.jpg", "Test Album/Pumkins1.jpg"} <= files, "in two albums"
    assert {"Unfiled/Tulips.jpeg", "Unfiled/IMG_3092.heic"} <= files, "in no album"
    assert not any("EmptyAlbum" in f for f in files)
    assert not any("Pumpkins4" in f for f in files), "hidden in Photos"
    assert result["files"]["Pumpkin Farm/Pumkins1.jpg"] == "F12384F6-CD17-4151-ACBA-AE0E3688539E"
    assert set(result["files"]) == files


def test_edited_versions_replace_the_original_under_its_name(
    export: tuple[Path, Path, dict],
) -> None:
    library, albums_dir, _ = export
    renders = library / "resources" / "renders"
    edited = (renders / "6" / "6191423D-8DB8-4D4C-92BE-9BBBA308AAC4_1_201_a.jpeg").read_bytes()
    assert (albums_dir / "Unfiled" / "Tulips.jpeg").read_bytes() == edited
    assert not (albums_dir / "Unfiled" / "Tulips.jpg").exists()


@pytest.mark.parametrize(
    ("edited", "tulips"),
    [("original", {"Tulips.jpg"}), ("both", {"Tulips.jpg", "Tulips_edited.jpeg"})],
)
def test_originals_or_both_versions(tmp_path: Path, edited: str, tulips: set[str]) -> None:
    settings = ExportSettings(FIXTURE, edited=edited, albums=("Unfiled",), unfiled="Unfiled")
    export_library(settings, tmp_path / "albums", tmp_path / "work")
    assert {f for f in exported(tmp_path / "albums") if "Tulips" in f} == {
        f"Unfiled/{name}" for name in tulips
    }


def test_missing_originals_are_listed_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ExportSettings(FIXTURE, albums=("Folder2/Raw",))
    with caplog.at_level(logging.WARNING, logger="i2i.stages.library.apple_photos"):
        result = export_library(settings, tmp_path / "albums", tmp_path / "work")
    missing = {m["file"] for m in result["missing"]}
    assert "Folder2 › Raw/IMG_2000.JPG" in missing
    assert exported(tmp_path / "albums") == {
        "Folder2 › Raw/IMG_1994.JPG",
        "Folder2 › Raw/IMG_1997.JPG",
    }
    assert "original missing (not downloaded?): Folder2 › Raw/IMG_2000.JPG" in caplog.text
    assert result["errors"] == []


def test_errors_in_the_report_are_listed(tmp_path: Path) -> None:
    """osxphotos exits 0 when a photo fails: its report is what says so."""
    albums_dir = tmp_path / "albums"
    (albums_dir / "A").mkdir(parents=True)
    (albums_dir / "A" / "ok.jpg").write_bytes(b"x")
    row = {"exported": False, "missing": False, "skipped": False, "updated": False}
    rows = [
        {**row, "filename": str(albums_dir / "A" / "ok.jpg"), "uuid": "U1", "exported": True},
        {**row, "filename": str(albums_dir / "A" / "bad.jpg"), "uuid": "U2", "error": "disk full"},
        {**row, "filename": str(albums_dir / "A" / "gone.jpg"), "uuid": "U3", "missing": True},
    ]
    (tmp_path / "r.json").write_text(json.dumps(rows), encoding="utf-8")
    report = read_report(tmp_path / "r.json", albums_dir)
    assert report.files == {"A/ok.jpg": "U1"}
    assert report.errors == [{"uuid": "U2", "file": "A/bad.jpg", "error": "disk full"}]
    assert report.missing == [{"uuid": "U3", "file": "A/gone.jpg"}]
    assert report.counts["exported"] == 1 and report.counts["error"] == 1


def test_a_second_export_rewrites_nothing(export: tuple[Path, Path, dict], tmp_path: Path) -> None:
    library, albums_dir, first = export
    stamps = {f: (albums_dir / f).stat().st_mtime_ns for f in exported(albums_dir)}
    again = export_library(ExportSettings(library, unfiled="Unfiled"), albums_dir, tmp_path)
    assert again["counts"]["exported"] == 0 and again["counts"]["skipped"] == len(stamps)
    assert {f: (albums_dir / f).stat().st_mtime_ns for f in exported(albums_dir)} == stamps
    assert again["files"] == first["files"]


def test_osxphotos_writes_nothing_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    export_library(ExportSettings(FIXTURE, albums=("Test Album",)), tmp_path / "a", tmp_path / "w")
    assert list(home.iterdir()) == []
    assert (tmp_path / "a" / ".osxphotos_export.db").is_file()


@pytest.mark.parametrize(
    "mine", ["Mine/keep.jpg", ".git/config", ".osxphotos_export.db", "notes.txt"]
)
def test_a_folder_of_other_files_is_never_an_export_target(tmp_path: Path, mine: str) -> None:
    """osxphotos' cleanup deletes what it did not write, in hidden folders too."""
    albums_dir = tmp_path / "albums"
    (albums_dir / mine).parent.mkdir(parents=True, exist_ok=True)
    (albums_dir / mine).write_bytes(b"not the export's")
    with pytest.raises(I2IError, match="holds files that no i2i export wrote"):
        export_library(ExportSettings(FIXTURE), albums_dir, tmp_path / "work")
    assert (albums_dir / mine).read_bytes() == b"not the export's"


def test_the_export_folder_never_overlaps_the_library(tmp_path: Path) -> None:
    library = library_copy(tmp_path)
    for albums_dir in (tmp_path, library, library / "exported"):
        with pytest.raises(I2IError, match="overlap"):
            export_library(ExportSettings(library), albums_dir, tmp_path / "work")
    assert (library / "database" / "Photos.sqlite").is_file()


def test_a_kept_copy_of_a_now_missing_original_keeps_its_photos_info(tmp_path: Path) -> None:
    """Optimize Storage may evict an original after its export: the copy stays, and so does
    what Photos knows of it."""
    library = library_copy(tmp_path)
    settings = ExportSettings(library, albums=("Test Album",))
    export_library(settings, tmp_path / "albums", tmp_path / "work")
    original = library / "originals" / "F" / "F12384F6-CD17-4151-ACBA-AE0E3688539E.jpeg"
    original.unlink()
    again = export_library(settings, tmp_path / "albums", tmp_path / "work")
    assert "Test Album/Pumkins1.jpg" in [m["file"] for m in again["missing"]]
    assert again["files"]["Test Album/Pumkins1.jpg"] == "F12384F6-CD17-4151-ACBA-AE0E3688539E"


def test_a_work_folder_with_spaces_and_parentheses(tmp_path: Path) -> None:
    """The template function is named relative to it (osxphotos' parser takes no such path)."""
    work = tmp_path / "My Drive (work)" / "osxphotos"
    export_library(ExportSettings(FIXTURE, albums=("Test Album",)), tmp_path / "a", work)
    assert exported(tmp_path / "a") == {"Test Album/Pumkins1.jpg", "Test Album/Pumkins2.jpg"}


def test_braces_and_dots_leave_album_names() -> None:
    assert album_folder(["{Work}"], ".hidden/trip") == "Work › hidden-trip"


def test_osxphotos_failures_are_reported_clearly(tmp_path: Path) -> None:
    """The shared copy of the library declared the wrong model (see fixtures/photos/README)."""
    library = library_copy(tmp_path)
    with contextlib.closing(sqlite3.connect(library / "database" / "Photos.sqlite")) as db:
        plist = plistlib.loads(db.execute("SELECT Z_PLIST FROM Z_METADATA").fetchone()[0])
    plist["PLModelVersion"] = 16320
    edit_database(library, "UPDATE Z_METADATA SET Z_PLIST = ?", plistlib.dumps(plist))
    with pytest.raises(I2IError, match=r"osxphotos query failed: .*no such column"):
        export_library(ExportSettings(library), tmp_path / "albums", tmp_path / "work")
    with pytest.raises(I2IError, match=r"no database/Photos\.sqlite"):
        export_library(ExportSettings(tmp_path), tmp_path / "albums", tmp_path / "work")


def test_check_reports_the_library(tmp_path: Path, repo: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "photos": {"library": str(FIXTURE), "unfiled": "Unfiled"},
                "albums_dir": "exported",
                "styles_file": str(repo / "styles.yaml"),
            }
        )
    )
    main(["-d", str(tmp_path), "--configfile", str(config), "check"])
    lines = capsys.readouterr().out.splitlines()
    assert (
        f"WARN photos library: {FIXTURE}: Photos 10 (model 18301), 14 photos in 8 albums, "
        "13 to export, 3 with the original missing" in lines
    )
    assert "WARN missing original: IMG_2000.JPG (8E1D7BC9-9321-44F9-8CFB-4083F6B9232A)" in lines
    assert "WARN missing original: IMG_1693.tif (8846E3E6-8AC8-4857-8448-E3D025784410)" in lines
    assert "WARN library: exported: not exported from Photos yet" in lines


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow run once on a copy of the library: one style, small images."""
    workdir = copy_workflow(tmp_path_factory.mktemp("photos-workflow"))
    library_copy(workdir)
    config = {
        "photos": {"library": "Library.photoslibrary", "unfiled": "Unfiled"},
        "albums_dir": "exported",
        "styles": ["pencil_sketch"],
        "preprocess": {"long_side": 128},
    }
    (workdir / "photos.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(workdir, "--configfile", "photos.yaml")
    return workdir


def plan(workdir: Path) -> dict[str, int]:
    return planned(workdir, "--configfile", "photos.yaml")


def run(workdir: Path) -> None:
    snakemake(workdir, "--configfile", "photos.yaml")


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def last_run_jobs(workdir: Path) -> list[tuple[str, str]]:
    """``(rule, wildcards)`` of every job the last run started, from its Snakemake log."""
    log = max((workdir / ".snakemake" / "log").glob("*.log"), key=lambda p: p.stat().st_mtime)
    jobs, rule = [], None
    for line in log.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line)
        if match:
            rule = match.group(1)
            jobs.append((rule, ""))
        elif line.strip().startswith("wildcards:") and rule:
            jobs[-1] = (rule, line.split("wildcards:", 1)[1].strip())
    return jobs


def test_a_photos_library_builds_the_whole_pipeline(photos_run: Path) -> None:
    results = photos_run / "results"
    finals = {p.relative_to(results / "final").as_posix() for p in results.rglob("final/**/*.webp")}
    assert f"{NESTED}/pencil_sketch/wedding.webp" in finals
    assert "Pumpkin Farm/pencil_sketch/Pumkins1.webp" in finals
    assert "Test Album/pencil_sketch/Pumkins1.webp" in finals
    assert len(finals) == 15
    elder = "results/metadata/2018-10 - Sponsion, Museum, Frühstück, Römermuseum/IMG_4547.json"
    record = read(photos_run / elder)
    assert record["apple_photos"]["title"] == "Elder Park"
    places = read(Path(str(photos_run / elder).replace("metadata", "places")))
    assert places["provider"] == "photos" and places["location"]["city"] == "Adelaide"
    inventory = read(results / "inventory.json")
    assert "Folder2 › Raw/IMG_2000.JPG" in [m["file"] for m in inventory["export"]["missing"]]
    assert (results / "gallery" / "index.html").is_file()
    assert plan(photos_run) == {}


def test_progress_lists_the_missing_originals(photos_run: Path, capsys) -> None:
    assert (
        main(["-d", str(photos_run), "--configfile", str(photos_run / "photos.yaml"), "progress"])
        == 0
    )
    text = capsys.readouterr().out
    assert "originals missing in Photos: " in text
    assert "  Folder2 › Raw/IMG_2000.JPG\n" in text


def test_a_touched_library_reruns_only_the_export(photos_run: Path) -> None:
    (photos_run / "Library.photoslibrary" / "database" / "Photos.sqlite").touch()
    assert plan(photos_run) == {"inventory": 1}
    source = photos_run / "exported" / "Pumpkin Farm" / "Pumkins1.jpg"
    before = source.stat().st_mtime_ns
    run(photos_run)
    assert source.stat().st_mtime_ns == before
    assert plan(photos_run) == {}


def test_a_photo_added_to_an_album_runs_only_its_own_jobs(photos_run: Path) -> None:
    library = photos_run / "Library.photoslibrary"
    edit_database(library, "INSERT INTO Z_30ASSETS VALUES (?, ?, 4096)", PUMPKIN_FARM, TULIPS)
    run(photos_run)  # the export runs first: what the run did is in its log
    jobs = last_run_jobs(photos_run)
    per_photo = {(rule, w) for rule, w in jobs if "photo=" in w}
    assert {rule for rule, _ in per_photo} == PER_PHOTO | PER_IMAGE
    assert all(
        w.startswith("album=Pumpkin Farm,") and w.endswith("photo=Tulips") for _, w in per_photo
    ), per_photo
    results = photos_run / "results"
    assert (results / "final" / "Pumpkin Farm" / "pencil_sketch" / "Tulips.webp").is_file()
    unfiled = read(results / "catalog" / "albums" / "Unfiled.json")
    assert "Tulips" not in json.dumps(unfiled), "it left the photos in no album"


def test_a_photo_removed_from_an_album_leaves_its_catalog(photos_run: Path) -> None:
    library = photos_run / "Library.photoslibrary"
    edit_database(
        library,
        "DELETE FROM Z_30ASSETS WHERE Z_30ALBUMS = ? AND Z_3ASSETS = ?",
        PUMPKIN_FARM,
        PUMPKINS3,
    )
    run(photos_run)
    catalog = read(photos_run / "results" / "catalog" / "albums" / "Pumpkin Farm.json")
    assert "Pumpkins3" not in json.dumps(catalog)
    page = photos_run / "results" / "gallery" / "Pumpkin Farm" / "index.html"
    assert "Pumpkins3" not in page.read_text(encoding="utf-8")
    assert "Pumkins1" in page.read_text(encoding="utf-8")
    assert not (photos_run / "exported" / "Pumpkin Farm" / "Pumpkins3.jpg").exists()
    assert plan(photos_run) == {}


def test_a_title_changed_in_photos_reruns_its_text_not_its_images(photos_run: Path) -> None:
    edit_database(
        photos_run / "Library.photoslibrary",
        "UPDATE ZADDITIONALASSETATTRIBUTES SET ZTITLE = ? WHERE ZASSET = ?",
        "Found it",
        PUMKINS2,
    )
    run(photos_run)
    rules = [rule for rule, _ in last_run_jobs(photos_run)]
    assert "preprocess" not in rules and "stylize_classic" not in rules
    assert rules.count("metadata") == 2, "Pumkins2 is in two albums"
    record = read(photos_run / "results" / "metadata" / "Test Album" / "Pumkins2.json")
    assert record["apple_photos"]["title"] == "Found it"


def test_an_exported_file_deleted_by_hand_holds_back_nothing(photos_run: Path) -> None:
    exported_file = photos_run / "exported" / "Test Album" / "Pumkins1.jpg"
    exported_file.unlink()
    result = snakemake(photos_run, "--configfile", "photos.yaml")
    assert "exported file Test Album/Pumkins1.jpg is missing: left out of this run" in (
        result.stdout + result.stderr
    )
    snakemake(photos_run, "--configfile", "photos.yaml", "--forcerun", "inventory")
    assert exported_file.is_file()
    final = photos_run / "results" / "final" / "Test Album" / "pencil_sketch" / "Pumkins1.webp"
    assert final.is_file()
