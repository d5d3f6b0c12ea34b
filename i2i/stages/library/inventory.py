"""The library inventory: every photo is vetted once before any job needs it.

A photo that is missing (a dangling link), unreadable, or does not decode is set aside with a
one-line reason, so it never blocks the rest of the library. Verdicts are cached by path, size
and modification time: a rerun over an unchanged library stats each file and decodes nothing,
and a photo fixed or replaced later is vetted again and taken.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.core import paths
from i2i.core.files import read_json, write_json
from i2i.core.images import check_photo
from i2i.stages.library.albums import Photo, discover
from i2i.stages.library.apple_photos import ExportSettings, export_library

log = logging.getLogger(__name__)

CACHE_VERSION = 1
RECORD = paths.INVENTORY
CACHE = "cache/inventory.json"


@dataclass(frozen=True)
class Verdict:
    """What the inventory found for one photo: ``reason`` is None when it can be used."""

    album: str
    photo: str
    file: str
    reason: str | None


def present(path: Path) -> str | None:
    """Why ``path`` cannot even be opened (missing, a dangling link, unreadable), else None.

    Cheap enough for every photo while Snakemake parses the workflow: such a file must not
    reach a rule's input, where Snakemake would stop the whole run.
    """
    if not path.exists():
        return "dangling link" if path.is_symlink() else "missing"
    if not path.is_file():
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None


def split_present(photos: Iterable[Photo]) -> tuple[list[Photo], list[Verdict]]:
    """Photos that can be opened, and a verdict for each one that cannot."""
    usable, rejected = [], []
    for photo in photos:
        reason = present(photo.path)
        if reason is None:
            usable.append(photo)
        else:
            rejected.append(Verdict(photo.album, photo.photo, source_ref(photo), reason))
    return usable, rejected


def source_ref(photo: Photo) -> str:
    """``album/file name``: how a photo is named in messages and records."""
    return f"{photo.album}/{photo.path.name}"


def vet(path: Path) -> str | None:
    """Why the photo at ``path`` cannot be used (one line), or None when it decodes."""
    reason = present(path)
    if reason is not None:
        return reason
    try:
        check_photo(path)
    except I2IError as exc:
        return str(exc)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _cache_key(photo: Photo) -> str:
    """The photo's absolute path: the same from the workflow and from ``i2i -d DIR``."""
    return str(Path(photo.path).absolute())


def _stat_key(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def load_cache(cache_file: Path) -> dict[str, Any]:
    """Cached verdicts ``{path: {"stat": [size, mtime_ns], "reason": ...}}``; empty if unusable."""
    try:
        cached = read_json(cache_file)
    except (OSError, ValueError):
        return {}
    if not isinstance(cached, dict) or cached.get("version") != CACHE_VERSION:
        return {}
    verdicts = cached.get("verdicts")
    return verdicts if isinstance(verdicts, dict) else {}


def take_inventory(
    photos: Sequence[Photo], cache_file: Path, workers: int = 1
) -> tuple[list[Verdict], int]:
    """A verdict per photo (in the order given), and how many photos were decoded this time."""
    cache = load_cache(cache_file)
    keys = {_cache_key(p): _stat_key(p.path) for p in photos}

    def known(name: str) -> bool:
        return keys[name] is not None and (cache.get(name) or {}).get("stat") == keys[name]

    todo = [p for p in photos if not known(_cache_key(p))]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(pool.map(vet, (p.path for p in todo)))
    fresh = {_cache_key(p): reason for p, reason in zip(todo, reasons, strict=True)}
    verdicts = []
    for photo in photos:
        name = _cache_key(photo)
        reason = fresh[name] if name in fresh else cache[name]["reason"]
        verdicts.append(Verdict(photo.album, photo.photo, source_ref(photo), reason))
        if keys[name] is not None:
            cache[name] = {"stat": keys[name], "reason": reason}
    wanted = set(keys)
    write_json(
        cache_file,
        {"version": CACHE_VERSION, "verdicts": {k: v for k, v in cache.items() if k in wanted}},
    )
    return verdicts, len(todo)


def inventory_record(verdicts: Iterable[Verdict]) -> dict[str, Any]:
    """The inventory file: the photos taken and those set aside, each with its reason."""
    verdicts = sorted(verdicts, key=lambda v: (v.album, v.photo))
    return {
        "photos": [
            {"album": v.album, "photo": v.photo, "file": v.file} for v in verdicts if not v.reason
        ],
        "rejected": [
            {"album": v.album, "photo": v.photo, "file": v.file, "reason": v.reason}
            for v in verdicts
            if v.reason
        ],
    }


def accepted(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(album, photo)`` of every photo the inventory took."""
    return [(p["album"], p["photo"]) for p in record["photos"]]


def taken(
    photos: Iterable[Photo], record: Mapping[str, Any], root: str | os.PathLike[str] | None = None
) -> list[Photo]:
    """The photos that the inventory ``record`` took, those of ``photos`` in their order; or,
    when ``root`` (the albums folder) is given, every photo of the record in its order, found
    under ``root`` by its file name (a Photos export may have added some after ``photos`` was
    listed, and the order must not depend on when that was)."""
    if root is not None:
        return [Photo(e["album"], e["photo"], Path(root) / e["file"]) for e in record["photos"]]
    files = {(e["album"], e["photo"]): e["file"] for e in record["photos"]}
    return [p for p in photos if files.get((p.album, p.photo)) == source_ref(p)]


def with_export(record: dict[str, Any], export: Mapping[str, Any]) -> dict[str, Any]:
    """The inventory record of an Apple Photos export: each photo with what Photos knows of it
    (``apple_photos``), and the export's counts, missing originals and errors."""
    for entry in record["photos"]:
        uuid = export["files"].get(entry["file"])
        entry["apple_photos"] = export["info"].get(uuid) if uuid else None
    record["export"] = {
        "counts": export["counts"],
        "missing": sorted(export["missing"], key=lambda m: (m["file"], m["uuid"])),
        "errors": sorted(export["errors"], key=lambda m: (m["file"], m["uuid"])),
    }
    return record


def export_and_vet(
    settings: ExportSettings,
    albums_dir: Path,
    extensions: Sequence[str],
    cache_file: Path,
    workers: int = 1,
) -> tuple[dict[str, Any], int]:
    """Export the Photos library into ``albums_dir``, then vet what is there (see vet_library)."""
    export = export_library(settings, albums_dir)
    record, vetted = vet_library(discover(albums_dir, extensions).photos, cache_file, workers)
    return with_export(record, export), vetted


def vet_library(
    photos: Sequence[Photo], cache_file: Path, workers: int = 1
) -> tuple[dict[str, Any], int]:
    """The inventory record of ``photos`` (cached verdicts), and how many were decoded."""
    usable, unusable = split_present(photos)
    verdicts, vetted = take_inventory(usable, cache_file, workers)
    return inventory_record([*verdicts, *unusable]), vetted


def summary(record: Mapping[str, Any]) -> str:
    """One line: how many photos were taken and how many set aside (and missing in Photos)."""
    taken, rejected = len(record["photos"]), len(record["rejected"])
    missing = len(record.get("export", {}).get("missing", []))
    errors = len(record.get("export", {}).get("errors", []))
    text = f"{taken} photo(s) taken"
    text += f", {rejected} set aside" if rejected else ""
    text += f", {missing} original(s) missing in Photos" if missing else ""
    text += f", {errors} export error(s)" if errors else ""
    return text + (" (see results/inventory.json)" if rejected or missing or errors else "")


def made_from(inputs: Iterable[str], params: Mapping[str, Any], rule: bytes) -> str:
    """Digest of what an inventory record is made from: the checkpoint's input files, its
    params and its rule's code (the rerun triggers Snakemake applies to it, mtime aside)."""
    basis = {"inputs": sorted(inputs), "params": params, "rule": hashlib.sha256(rule).hexdigest()}
    text = json.dumps(basis, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_current(
    record_file: str | os.PathLike[str],
    inputs: Iterable[str],
    basis: str,
    same_content: Callable[[str], bool] = lambda path: False,
) -> bool:
    """True when the record at ``record_file`` was made from ``basis`` (see made_from) and no
    input changed after it was written: taking the inventory again would give the same
    record. A photo added, removed or edited since changes one or the other. An input
    modified later is unchanged when ``same_content`` says so (Snakemake's recorded checksum).
    """
    try:
        written = Path(record_file).stat().st_mtime_ns
        if read_json(record_file).get("made_from") != basis:
            return False
        return all(
            Path(path).stat().st_mtime_ns <= written or same_content(path) for path in inputs
        )
    except (OSError, ValueError, I2IError):
        return False


def write_inventory(
    record: dict[str, Any], vetted: int, output: str | os.PathLike[str], basis: str | None = None
) -> None:
    """Log what the inventory set aside (one line each) and write its record, with the digest
    of what it was made from (``made_from``) when given."""
    if basis is not None:
        record["made_from"] = basis
    for rejected in record["rejected"]:
        log.warning("set aside %s: %s", rejected["file"], rejected["reason"])
    log.info("%s; %d photo(s) decoded, the rest from the cache", summary(record), vetted)
    write_json(output, record)


def inventory_job(
    photos: Sequence[Photo],
    export: ExportSettings | None,
    config: Mapping[str, Any],
    output: str | os.PathLike[str],
    cache_file: str | os.PathLike[str],
    workers: int = 1,
    basis: str | None = None,
) -> None:
    """checkpoint inventory: vet ``photos`` and write the record; with a Photos library, export
    it into albums_dir first and vet what the export left there instead. ``basis`` is what the
    record is made from (see made_from)."""
    if export is None:
        record, vetted = vet_library(photos, Path(cache_file), workers)
    else:
        albums_dir, extensions = Path(config["albums_dir"]), config["extensions"]
        record, vetted = export_and_vet(export, albums_dir, extensions, Path(cache_file), workers)
    write_inventory(record, vetted, output, basis)
