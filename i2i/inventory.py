"""The library inventory: every photo is vetted once before any job needs it.

A photo that is missing (a dangling link), unreadable, or does not decode is set aside with a
one-line reason, so it never blocks the rest of the library. Verdicts are cached by path, size
and modification time: a rerun over an unchanged library stats each file and decodes nothing,
and a photo fixed or replaced later is vetted again and taken.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.export import Photo
from i2i.files import read_json, write_json
from i2i.preprocess import check_photo

log = logging.getLogger(__name__)

CACHE_VERSION = 1
RECORD = "results/inventory.json"
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


def taken(photos: Iterable[Photo], record: Mapping[str, Any]) -> list[Photo]:
    """The photos of ``photos`` that the inventory ``record`` took, in their order."""
    keys = set(accepted(record))
    return [p for p in photos if (p.album, p.photo) in keys]


def vet_library(
    photos: Sequence[Photo], cache_file: Path, workers: int = 1
) -> tuple[dict[str, Any], int]:
    """The inventory record of ``photos`` (cached verdicts), and how many were decoded."""
    usable, unusable = split_present(photos)
    verdicts, vetted = take_inventory(usable, cache_file, workers)
    return inventory_record([*verdicts, *unusable]), vetted


def summary(record: Mapping[str, Any]) -> str:
    """One line: how many photos were taken and how many set aside."""
    taken, rejected = len(record["photos"]), len(record["rejected"])
    text = f"{taken} photo(s) taken"
    return text + (f", {rejected} set aside (see results/inventory.json)" if rejected else "")
