"""Apple Photos as the source: a Photos library exported into album folders by osxphotos.

The export runs the ``osxphotos`` command (it reads a library on Linux as well as macOS):

- ``osxphotos query --json`` lists the library; :func:`plan_export` picks the photos and the
  album folder(s) of each from the ``photos`` settings, in plain Python;
- ``osxphotos export --update --cleanup`` writes them (the JPEG of a RAW+JPEG pair, not its
  RAW, which no stage reads) with osxphotos' own export database
  (``albums_dir/.osxphotos_export.db``): an unchanged photo's file is not rewritten, so its
  modification time stays and none of its jobs rerun; a photo no longer planned (removed from
  an album, deselected) is deleted from the export folder;
- its JSON report is read, since osxphotos exits 0 whatever went wrong: missing originals
  (iCloud-only photos) and per-photo errors are logged one line each and listed, never fatal.

An album becomes one folder named by its path in Photos, ``Folder › Sub-folder › Album``
("/" in a name becomes "-"); photos in no album go to ``unfiled`` when it is set. osxphotos
runs with its home, configuration and data folders under the workflow's ``.i2i/osxphotos``,
so it never writes to the user's home; the library itself is only read.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.core.files import atomic_path, write_json
from i2i.stages.library.osxphotos_folders import PLAN_VARIABLE

log = logging.getLogger(__name__)

FOLDER_SEPARATOR = " › "
EXPORT_DB = ".osxphotos_export.db"
# Written into albums_dir before the first export: the folder is an i2i export, which the next
# export may clean up.
EXPORT_MARK = ".i2i-photos-export"
FINDER_FILES = frozenset({".DS_Store", ".localized"})
WORK_DIR = Path(".i2i/osxphotos")
CRASH_LOG = "osxphotos_crash.log"
FOLDERS_FUNCTION = Path(__file__).with_name("osxphotos_folders.py")
UNKNOWN_PERSON = "_UNKNOWN_"
# Unicode isolates that Photos puts around the place names it writes into descriptions.
_ISOLATES = re.compile("[\u2066-\u2069]")
_EDITED_OPTIONS = {
    "original": ["--skip-edited"],
    "edited": ["--skip-original-if-edited", "--edited-suffix", ""],
    "both": [],
}


@dataclass(frozen=True)
class ExportSettings:
    """The ``photos`` config section."""

    library: Path
    edited: str = "edited"
    unfiled: str | None = None
    albums: tuple[str, ...] = ()
    exclude_albums: tuple[str, ...] = ()
    favorites_only: bool = False
    keywords: tuple[str, ...] = ()
    from_date: str | None = None
    to_date: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ExportSettings:
        if not section.get("library"):
            raise I2IError("photos.library is not set")
        return cls(
            library=Path(section["library"]).expanduser(),
            edited=section.get("edited", "edited"),
            unfiled=section.get("unfiled"),
            albums=tuple(section.get("albums", ())),
            exclude_albums=tuple(section.get("exclude_albums", ())),
            favorites_only=bool(section.get("favorites_only", False)),
            keywords=tuple(section.get("keywords", ())),
            from_date=section.get("from_date"),
            to_date=section.get("to_date"),
        )


@dataclass
class ExportReport:
    """What one export did, from osxphotos' report: files by uuid, missing originals, errors."""

    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


def library_database(library: str | os.PathLike[str]) -> Path:
    """The library's ``database/Photos.sqlite`` (the export's input); a clear error if absent."""
    root = Path(library)
    database = root / "database" / "Photos.sqlite"
    if not root.is_dir():
        raise I2IError(f"photos.library {root}: not a folder (a .photoslibrary package)")
    if not database.is_file():
        raise I2IError(f"photos.library {root}: no database/Photos.sqlite (not a Photos library?)")
    return database


def database_files(library: str | os.PathLike[str]) -> list[str]:
    """What a change in Photos touches: the database, and its write-ahead log while that holds
    changes not yet written back (an empty one is left by any reader, osxphotos included)."""
    database = library_database(library)
    wal = database.with_name(database.name + "-wal")
    try:
        pending = wal.stat().st_size > 0
    except OSError:
        pending = False
    return [str(database), *([str(wal)] if pending else [])]


def database_state(files: Iterable[str]) -> list[list[Any]]:
    """Each database file's identity as ``[name, size, mtime_ns, inode]``: a database swapped
    for another state (a restored backup, a synced copy) may be older than the last export,
    which Snakemake's modification-time check does not see; a different identity does."""
    state = []
    for name in files:
        info = Path(name).stat()
        state.append([Path(name).name, info.st_size, info.st_mtime_ns, info.st_ino])
    return state


def osxphotos_command() -> list[str]:
    """How to start osxphotos: the interpreter running i2i has it, or a clear error."""
    if importlib.util.find_spec("osxphotos") is None:
        raise I2IError(
            "photos.library is set but osxphotos is not installed: "
            "pip install 'i2i-workflow[photos]'"
        )
    return [sys.executable, "-m", "osxphotos"]


def sandbox(work_dir: Path) -> dict[str, str]:
    """The environment osxphotos runs in: home, config, data and cache under ``work_dir``."""
    home = (work_dir / "home").absolute()
    env = dict(os.environ)
    for name, sub in (
        ("HOME", ""),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _crash_reason(output: str, work_dir: Path) -> str:
    """The error osxphotos stopped on: from its crash log when it wrote one, else its output."""
    crash = work_dir / CRASH_LOG
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if crash.exists():
        logged = crash.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [line.removeprefix("Error: ") for line in logged if line.startswith("Error: ")]
        if errors:
            return f"{errors[-1]} (osxphotos' crash log: {crash.absolute()})"
    marker = "encountered an error:"
    after = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.endswith(marker)]
    return (after or lines or ["no output"])[-1]


def run_osxphotos(args: Sequence[str], work_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """Run one osxphotos command in ``work_dir``; its standard output, or a clear error."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / CRASH_LOG).unlink(missing_ok=True)
    command = [*osxphotos_command(), *args]
    log.debug("running %s", " ".join(command))
    result = subprocess.run(
        command,
        cwd=work_dir,
        env={**sandbox(work_dir), **(env or {})},
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    if result.returncode != 0:
        reason = _crash_reason(result.stdout + "\n" + result.stderr, work_dir)
        raise I2IError(f"osxphotos {args[0]} failed: {reason}")
    return result.stdout


def query_library(library: Path, work_dir: Path) -> list[dict[str, Any]]:
    """Every photo of the library outside the trash, as ``osxphotos query --json`` gives it."""
    out = run_osxphotos(["query", "--library", str(library.absolute()), "--json"], work_dir)
    start = out.find("[")
    try:
        photos = json.loads(out[start:]) if start >= 0 else []
    except ValueError as exc:
        raise I2IError(f"photos.library {library}: osxphotos query gave no JSON ({exc})") from None
    return [p for p in photos if isinstance(p, dict) and p.get("uuid")]


def folder_name(part: str) -> str:
    """One path component from an album or folder name: "/" would nest folders, braces are
    Snakemake's wildcard syntax, a leading "." would hide it."""
    for char in "/\\":
        part = part.replace(char, "-")
    for char in "{}":
        part = part.replace(char, "")
    return part.strip().lstrip(".").strip() or "_"


def album_folder(folders: Sequence[str], album: str) -> str:
    """The export folder of an album inside Photos folders: ``Folder › Sub-folder › Album``."""
    return FOLDER_SEPARATOR.join(folder_name(part) for part in [*folders, album])


def _names(folders: Sequence[str], album: str) -> set[str]:
    """What a user may write in ``albums``/``exclude_albums`` for this album."""
    return {album, "/".join([*folders, album]), album_folder(folders, album)}


def _taken_on(photo: Mapping[str, Any]) -> date | None:
    try:
        return date.fromisoformat(str(photo.get("date", ""))[:10])
    except ValueError:
        return None


def _selected(photo: Mapping[str, Any], settings: ExportSettings) -> bool:
    """The photo passes the non-album filters (kind, hidden, favourite, keywords, dates)."""
    if photo.get("intrash") or photo.get("hidden") or not photo.get("isphoto", True):
        return False
    if settings.favorites_only and not photo.get("favorite"):
        return False
    if settings.keywords and not set(settings.keywords) & set(photo.get("keywords") or []):
        return False
    taken = _taken_on(photo)
    if settings.from_date and (taken is None or taken < date.fromisoformat(settings.from_date)):
        return False
    return not (
        settings.to_date and (taken is None or taken >= date.fromisoformat(settings.to_date))
    )


def photo_folders(photo: Mapping[str, Any], settings: ExportSettings) -> list[str]:
    """The album folders ``photo`` is exported into (none: not exported)."""
    if not _selected(photo, settings):
        return []
    folders = set()
    albums = photo.get("album_info") or []
    for info in albums:
        path, title = info.get("folder_names") or [], str(info.get("title") or "")
        names = _names(path, title)
        if settings.albums and not names & set(settings.albums):
            continue
        if names & set(settings.exclude_albums):
            continue
        folders.add(album_folder(path, title))
    if not albums and settings.unfiled:
        unfiled = folder_name(settings.unfiled)
        if not settings.albums or {settings.unfiled, unfiled} & set(settings.albums):
            folders.add(unfiled)
    return sorted(folders)


def plan_export(photos: Sequence[Mapping[str, Any]], settings: ExportSettings) -> dict[str, list]:
    """``uuid → album folders`` for every photo to export, in the library's order."""
    plan = {}
    for photo in photos:
        folders = photo_folders(photo, settings)
        if folders:
            plan[str(photo["uuid"])] = folders
    return plan


def _text(value: Any) -> str | None:
    text = _ISOLATES.sub("", str(value or "")).strip()
    return text or None


def _first(values: Any) -> str | None:
    return _text(values[0]) if isinstance(values, list) and values else None


def place_info(place: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Photos' own place names for a photo (its reverse geocoding), or None."""
    if not place or not place.get("name"):
        return None
    address = place.get("address") or {}
    names = place.get("names") or {}
    city = _text(address.get("city")) or _first(names.get("city"))
    locality = _text(address.get("sub_locality")) or _first(names.get("additional_city_info"))
    areas = dict.fromkeys(
        t for t in (_text(a) for a in names.get("area_of_interest") or []) if t is not None
    )
    return {
        "name": _text(place["name"]),
        "country": _text(address.get("country")) or _first(names.get("country")),
        "country_code": _text(address.get("iso_country_code") or place.get("country_code")),
        "state": _text(address.get("state_province")) or _first(names.get("state_province")),
        "city": city,
        "locality": locality if locality != city else None,
        "areas_of_interest": list(areas),
    }


def photo_info(photo: Mapping[str, Any]) -> dict[str, Any]:
    """What Photos knows of a photo that i2i carries into its metadata record."""
    persons = {p for p in (photo.get("persons") or []) if p and p != UNKNOWN_PERSON}
    return {
        "uuid": str(photo["uuid"]),
        "title": _text(photo.get("title")),
        "description": _text(photo.get("description")),
        "keywords": sorted({str(k) for k in photo.get("keywords") or [] if k}),
        "persons": sorted(str(p) for p in persons),
        "favorite": bool(photo.get("favorite")),
        "place": place_info(photo.get("place")),
    }


def check_export_folder(albums_dir: Path, library: Path) -> None:
    """Refuse a folder the export must not write to: osxphotos' ``--cleanup`` deletes whatever
    it did not write, hidden folders included. Taken: a folder that does not exist yet, an empty
    one (Finder's ``.DS_Store`` aside), or one an i2i export marked (``EXPORT_MARK``)."""
    target, source = albums_dir.resolve(), library.resolve()
    if target == source or target in source.parents or source in target.parents:
        raise I2IError(
            f"albums_dir {albums_dir} and photos.library {library} overlap; the export needs a "
            "folder of its own, outside the library"
        )
    if not albums_dir.exists() or (albums_dir / EXPORT_MARK).is_file():
        return
    if not albums_dir.is_dir():
        raise I2IError(f"albums_dir {albums_dir}: not a folder")
    if any(entry.name not in FINDER_FILES for entry in albums_dir.iterdir()):
        raise I2IError(
            f"albums_dir {albums_dir} holds files that no i2i export wrote; with "
            "photos.library set, albums_dir must be a new or empty folder, or an earlier i2i "
            "export (the export deletes whatever it did not write)"
        )


def export_command(
    library: Path, albums_dir: Path, settings: ExportSettings, uuids: Path, report: Path
) -> list[str]:
    """The ``osxphotos export`` arguments for the planned photos."""
    return [
        "export",
        str(albums_dir.absolute()),
        "--library",
        str(library.absolute()),
        "--uuid-from-file",
        str(uuids.absolute()),
        "--directory",
        f"{{function:{FOLDERS_FUNCTION.name}::album_folders}}",
        "--skip-raw",
        "--skip-bursts",
        "--skip-live",
        "--update",
        "--cleanup",
        "--no-progress",
        "--report",
        str(report.absolute()),
        *_EDITED_OPTIONS[settings.edited],
    ]


def read_report(path: Path, albums_dir: Path) -> ExportReport:
    """Files written or kept by the export (relative path → uuid), missing originals, errors."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise I2IError(f"osxphotos wrote no readable report {path}: {exc}") from None
    report = ExportReport()
    counts = dict.fromkeys(("exported", "new", "updated", "skipped", "missing", "error"), 0)
    root = albums_dir.absolute()
    for row in rows:
        filename = Path(str(row.get("filename") or ""))
        relative = filename.relative_to(root).as_posix() if filename.is_relative_to(root) else ""
        uuid = str(row.get("uuid") or "")
        for key in ("exported", "new", "updated", "skipped", "missing"):
            counts[key] += bool(row.get(key))
        if row.get("error"):
            counts["error"] += 1
            report.errors.append({"uuid": uuid, "file": relative, "error": str(row["error"])})
        elif row.get("missing"):
            report.missing.append({"uuid": uuid, "file": relative})
        if relative and filename.is_file():
            report.files[relative] = uuid  # an earlier export's copy is kept by the cleanup
    report.counts = counts
    return report


def export_library(settings: ExportSettings, albums_dir: Path, work_dir: Path = WORK_DIR) -> dict:
    """Export the library into ``albums_dir``: the export's summary with every photo's info.

    Returns ``{"files": {album/file: uuid}, "info": {uuid: photo_info}, "counts", "missing",
    "errors", "planned"}``.
    """
    library_database(settings.library)
    check_export_folder(albums_dir, settings.library)
    albums_dir.mkdir(parents=True, exist_ok=True)
    note = (
        "albums_dir of an i2i export of a Photos library: the export deletes what it did not write"
    )
    (albums_dir / EXPORT_MARK).write_text(note + "\n", encoding="utf-8")
    photos = query_library(settings.library, work_dir)
    plan = plan_export(photos, settings)
    if not plan:
        raise I2IError(
            f"photos.library {settings.library}: no photo passes the photos settings "
            f"(albums, exclude_albums, favorites_only, keywords, dates) out of {len(photos)}"
        )
    plan_file, uuids, report_file = (
        work_dir / "folders.json",
        work_dir / "uuids.txt",
        work_dir / "report.json",
    )
    write_json(plan_file, plan)
    # osxphotos runs in work_dir: a relative path, as its template parser takes no spaces or
    # parentheses in the path of a template function (i2i may be installed under such a path).
    shutil.copyfile(FOLDERS_FUNCTION, work_dir / FOLDERS_FUNCTION.name)
    with atomic_path(uuids) as tmp:
        tmp.write_text("".join(f"{uuid}\n" for uuid in plan), encoding="utf-8")
    report_file.unlink(missing_ok=True)
    run_osxphotos(
        export_command(settings.library, albums_dir, settings, uuids, report_file),
        work_dir,
        {PLAN_VARIABLE: str(plan_file.absolute())},
    )
    report = read_report(report_file, albums_dir)
    for missing in report.missing:
        log.warning("Photos: original missing (not downloaded?): %s", missing["file"])
    for error in report.errors:
        log.warning("Photos: could not export %s: %s", error["file"], error["error"])
    by_uuid = {str(p["uuid"]): p for p in photos}
    return {
        "files": report.files,
        "info": {uuid: photo_info(by_uuid[uuid]) for uuid in plan},
        "counts": report.counts,
        "missing": report.missing,
        "errors": report.errors,
        "planned": len(plan),
    }


def photos_version(library: Path) -> str:
    """The Photos version that wrote the library, from its database model (osxphotos' table)."""
    from osxphotos.photosdb.photosdb_utils import get_model_version, get_photos_version_from_model

    database = str(library_database(library))
    return f"{get_photos_version_from_model(database)} (model {get_model_version(database)})"


def original_missing(photo: Mapping[str, Any]) -> bool:
    """Photos marks it missing (in iCloud only), or its file is not in the library."""
    path = photo.get("path")
    return bool(photo.get("ismissing")) or not path or not Path(path).is_file()


def describe_library(settings: ExportSettings, work_dir: Path = WORK_DIR) -> dict[str, Any]:
    """For ``i2i check``: the library's Photos version, photos, albums and missing originals."""
    photos = query_library(settings.library, work_dir)
    albums = {a.get("uuid") for p in photos for a in p.get("album_info") or []}
    plan = plan_export(photos, settings)
    return {
        "library": str(settings.library),
        "photos_version": photos_version(settings.library),
        "photos": len(photos),
        "albums": len(albums),
        "to_export": len(plan),
        "missing": sorted(
            f"{p.get('original_filename')} ({p['uuid']})"
            for p in photos
            if str(p["uuid"]) in plan and original_missing(p)
        ),
    }
