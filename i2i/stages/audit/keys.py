"""The images a publish puts at the target (:class:`Entry`), the gallery files its markers
record (:class:`SiteFile`), the changes and bad markers the audit reports, and the shapes of
keys: those the key template can give, and those of the gallery's own files (smaller copies,
originals and covers in ``_gallery`` folders, album pages, the index)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i.core import paths
from i2i.core.files import is_safe_name, read_json
from i2i.stages.gallery.keys import (
    ALBUM_DIR,
    DERIVED_DIR,
    INDEX,
    album_page_key,
    derived_key,
    derived_suffixes,
    index_key,
    original_keys,
    original_suffixes,
    shared_page_key,
)
from i2i.stages.publish import object_key, template_of
from i2i.targets import target_for

FINAL = paths.FINAL
MARKER = paths.PUBLISHED
KEY_FIELDS = ("album", "photo", "style")


@dataclass(frozen=True)
class Entry:
    """One image of the workflow: its final file, its marker and its key at the target."""

    album: str
    photo: str
    style: str
    final: Path
    marker: Path
    key: str


@dataclass(frozen=True)
class SiteFile:
    """One file a gallery job published: its key, and the sha256 and size its marker (an
    album's or the index's) records."""

    key: str
    sha256: str
    size: int

    def record(self) -> tuple[str, str, int]:
        """Key, sha256 and size, as :meth:`~i2i.stages.audit.store.Store.mismatch` takes them."""
        return self.key, self.sha256, self.size


@dataclass(frozen=True)
class Change:
    """One line of the publish plan: ``new``, ``changed``, ``unchanged``, ``removed`` or
    ``not built`` (the final does not exist yet), the key and why."""

    action: str
    key: str
    detail: str = ""


@dataclass(frozen=True)
class BadMarker:
    """A marker whose copy at the target is gone or differs."""

    marker: Path
    reason: str


def entries(
    workdir: Path,
    photos: Iterable[tuple[str, str]],
    styles: Iterable[str],
    settings: Mapping[str, Any],
) -> list[Entry]:
    """Every ``(album, photo)`` in every style: its final, its marker and its key."""
    prefix = target_for(settings["target"], settings, base=workdir).prefix
    template = template_of(settings)
    names = list(styles)
    return [
        Entry(
            album,
            photo,
            style,
            workdir / FINAL.format(album=album, style=style, photo=photo),
            workdir / MARKER.format(album=album, style=style, photo=photo),
            object_key(template, prefix, album, photo, style),
        )
        for album, photo in photos
        for style in names
    ]


def gallery_markers(workdir: Path, images: Iterable[Entry]) -> list[Path]:
    """The markers of the gallery's jobs for ``images``: one per album, then the index's."""
    albums = sorted({entry.album for entry in images})
    return [workdir / paths.path(paths.GALLERY_ALBUM, album) for album in albums] + [
        workdir / paths.GALLERY
    ]


def site_files(marker: Path) -> tuple[str | None, list[SiteFile]]:
    """The target a gallery marker names (None: a local folder's gallery) and the files it
    records; ``OSError``, ``ValueError``, ``KeyError`` or ``TypeError`` when it is unreadable
    or has no file records (written before they were kept)."""
    record = read_json(marker)
    files = [
        SiteFile(str(key), str(info["sha256"]), int(info["size"]))
        for key, info in record["files"].items()
    ]
    return record.get("target"), files


def key_shape(template: str, prefix: str) -> str:
    """The key ``template`` gives under ``prefix`` with each field as ``\\0name\\0``."""
    return object_key(template, prefix, *(f"\0{name}\0" for name in KEY_FIELDS))


def key_pattern(template: str, prefix: str) -> re.Pattern[str]:
    """A regex that matches every key ``template`` gives under ``prefix``; fields are groups."""
    return re.compile(shape_regex(key_shape(template, prefix)))


def shape_regex(shape: str) -> str:
    """The regex of a key shape (fields as ``\\0name\\0``): literal text escaped, each field a
    group of one path component, a repeated field the same text again."""
    pieces = re.split(f"\0({'|'.join(KEY_FIELDS)})\0", shape)
    regex, seen = [], set()
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            regex.append(re.escape(piece))
        elif piece in seen:
            regex.append(f"(?P={piece})")
        else:
            seen.add(piece)
            regex.append(f"(?P<{piece}>[^/]+)")
    return "".join(regex)


def image_key(pattern: re.Pattern[str], key: str) -> bool:
    """True if the template could have given ``key``: its fields are safe names (this leaves
    out gallery pages and thumbnails, hidden and temporary files)."""
    match = pattern.fullmatch(key)
    return match is not None and all(is_safe_name(v) for v in match.groupdict().values())


def listing_prefix(template: str, prefix: str) -> str:
    """The literal start that every key of ``template`` under ``prefix`` shares."""
    return key_shape(template, prefix).split("\0")[0]


def common_start(*texts: str) -> str:
    """The longest string that every one of ``texts`` starts with."""
    start = min(texts, key=len)
    while not all(text.startswith(start) for text in texts):
        start = start[:-1]
    return start


def gallery_shapes(template: str, prefix: str) -> list[tuple[str, re.Pattern[str]]]:
    """``(kind, regex)`` of every gallery file ``template`` under ``prefix`` can give, the index
    aside: ``copy`` (a smaller copy or a cover in the ``_gallery`` folder beside an image, or
    an original's copy named after a style, as earlier builds named it), ``original``
    (``<photo>.original.webp`` and its sizes there), ``shared``
    (``<prefix>/_albums/<name>.html``) and ``folder`` (``index.html`` in a folder the images
    of one album could share, the album's name one of its parts)."""
    folder, name = posixpath.split(key_shape(template, prefix))
    stem = posixpath.splitext(name)[0]
    copies = "|".join(re.escape(s) for s in [*derived_suffixes(), *original_suffixes()])
    copy = shape_regex(posixpath.join(folder, DERIVED_DIR, stem)) + f"(?:{copies})\\.webp"
    originals = "|".join(re.escape(suffix) for suffix in original_suffixes())
    original = shape_regex(posixpath.join(folder, DERIVED_DIR, "\0photo\0"))
    shapes = [
        ("copy", copy),
        ("original", original + f"(?:{originals})\\.webp"),
        ("shared", re.escape(posixpath.join(prefix, ALBUM_DIR)) + r"/[^/]+\.html"),
    ]
    parts = folder.split("/") if folder else []
    for cut in range(1, len(parts) + 1):
        start = "/".join(parts[:cut])
        if "\0album\0" in start:
            shapes.append(("folder", shape_regex(start) + "/" + re.escape(INDEX)))
    return [(kind, re.compile(regex)) for kind, regex in shapes]


def gallery_key(shapes: Sequence[tuple[str, re.Pattern[str]]], key: str) -> bool:
    """True if ``key`` has the shape of a file the gallery writes (no hidden or temporary
    file ever has: no part of its key starts with a dot)."""
    parts = key.split("/")
    if any(part.startswith(".") for part in parts):
        return False
    for kind, regex in shapes:
        match = regex.fullmatch(key)
        if match and (kind != "folder" or match.group("album") in parts[:-1]):
            return True
    return False


def gallery_files(images: Iterable[Entry], prefix: str) -> set[str]:
    """Every gallery file that the current images and albums may have at the target: the
    index, each album's page (where it goes, and its ``_albums`` form), every copy made from a
    current image (sizes, covers) and the original's copies of each current photo, beside any
    of its images (the gallery puts them beside its first style's)."""
    images = list(images)
    owned = {index_key(prefix)}
    by_album: dict[str, list[str]] = {}
    for entry in images:
        by_album.setdefault(entry.album, []).append(entry.key)
    suffixes = derived_suffixes()
    for album, keys in by_album.items():
        owned.add(album_page_key(album, keys, prefix))
        owned.add(shared_page_key(album, prefix))
        owned.update(derived_key(key, suffix) for key in keys for suffix in suffixes)
    owned.update(key for entry in images for key in original_keys(entry.key, entry.photo))
    return owned
