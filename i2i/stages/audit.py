"""Audits of a publish target: ``i2i publish --dry-run`` and ``--verify``; and its pruning.

:func:`plan` compares the workflow's final images with what the target holds and changes
nothing; :func:`verify_markers` finds upload markers whose copy at the target is gone or
differs, so that removing them makes the next ``snakemake`` run publish those images again.

:func:`stale` is what the target holds that no current photo, style or album maps to: image
objects the key template could have given (the plan's ``removed``), and the gallery's own files
of photos and albums that are gone (smaller copies, originals and covers in ``_gallery``
folders, album pages that i2i wrote). :func:`prune` (rule ``prune``, ``publish.prune``) deletes
exactly that, and never anything else.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from i2i.core import paths
from i2i.core.files import is_safe_name, read_json, sha256_file
from i2i.stages.gallery.keys import (
    ALBUM_DIR,
    DERIVED_DIR,
    INDEX,
    album_page_key,
    derived_key,
    derived_suffixes,
    index_key,
    shared_page_key,
)
from i2i.stages.gallery.pages import GENERATOR
from i2i.stages.publish import image_headers, object_key, template_of
from i2i.targets import target_for
from i2i.targets.base import one_line, upload_reason

log = logging.getLogger(__name__)

FINAL = paths.FINAL
MARKER = paths.PUBLISHED
KEY_FIELDS = ("album", "photo", "style")
CHECK_WORKERS = 16
PAGE_HEAD = 2048  # bytes of a page read to see whether i2i wrote it
GALLERY = "gallery"

T = TypeVar("T")
R = TypeVar("R")


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
    aside: ``copy`` (a smaller copy, an original or a cover in the ``_gallery`` folder beside an
    image), ``shared`` (``<prefix>/_albums/<name>.html``) and ``folder`` (``index.html`` in a
    folder the images of one album could share, the album's name one of its parts)."""
    folder, name = posixpath.split(key_shape(template, prefix))
    stem = posixpath.splitext(name)[0]
    suffixes = "|".join(re.escape(suffix) for suffix in derived_suffixes())
    copy = shape_regex(posixpath.join(folder, DERIVED_DIR, stem)) + f"(?:{suffixes})\\.webp"
    shapes = [
        ("copy", copy),
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
    index, each album's page (where it goes, and its ``_albums`` form) and every copy made
    from a current image (sizes, original, covers)."""
    owned = {index_key(prefix)}
    by_album: dict[str, list[str]] = {}
    for entry in images:
        by_album.setdefault(entry.album, []).append(entry.key)
    suffixes = derived_suffixes()
    for album, keys in by_album.items():
        owned.add(album_page_key(album, keys, prefix))
        owned.add(shared_page_key(album, prefix))
        owned.update(derived_key(key, suffix) for key in keys for suffix in suffixes)
    return owned


def parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``function`` over ``items`` in threads (network and disk bound), results in order."""
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(CHECK_WORKERS, len(items))) as pool:
        return list(pool.map(function, items))


class Store:
    """Access to the target of a ``publish`` config section (a relative ``file://`` folder is
    under ``workdir``), for plans, checks and pruning."""

    def __init__(self, workdir: Path, settings: Mapping[str, Any]) -> None:
        self.target = target_for(settings["target"], settings, base=workdir)
        self.settings = settings
        self.template = template_of(settings)

    def everything(self) -> dict[str, int]:
        """The size of every object where the images or the gallery could be: under the start
        that the key template, the gallery's index and its ``_albums`` folder share."""
        prefix = self.target.prefix
        starts = (listing_prefix(self.template, prefix), index_key(prefix))
        start = common_start(*starts, posixpath.join(prefix, ALBUM_DIR))
        return dict(self.target.objects(start))

    def written_by_i2i(self, key: str) -> bool:
        """True if the page at ``key`` is one the gallery wrote (its generator tag)."""
        start = self.target.read(key, PAGE_HEAD)
        return start is not None and GENERATOR in start

    def delete(self, key: str) -> str:
        """Delete ``key`` at the target; return where it was."""
        self.target.delete(key)
        return self.target.where(key)

    def difference(self, source: Path, key: str) -> str | None:
        """Why publishing ``source`` at ``key`` would change what is there, or None."""
        digest, size = sha256_file(source), source.stat().st_size
        headers = image_headers(source, self.settings)
        return upload_reason(self.target.head(key), digest, size, headers)

    def mismatch(self, key: str, digest: str, size: int) -> str | None:
        """What is wrong with the copy at ``key`` against a marker's sha256 and size, or None."""
        head = self.target.head(key)
        if head is None:
            return f"{self.target.where(key)} is missing"
        if head.sha256 != digest:
            return f"{key}: sha256 {head.sha256} at the target, {digest} in the marker"
        if head.size != size:
            return f"{key}: {head.size} bytes at the target, {size} in the marker"
        return None


def stale(
    store: Store, images: Sequence[Entry], objects: Mapping[str, int] | None = None
) -> list[Change]:
    """What the target holds that no current image or album maps to, as ``removed`` changes:
    first every image object the key template could have given that no image of ``images``
    has, then the gallery's own files of photos, styles and albums that are gone (detail
    ``gallery``). A page counts only if i2i wrote it. ``objects`` is :meth:`Store.everything`
    when the caller has it."""
    objects = store.everything() if objects is None else objects
    prefix = store.target.prefix
    pattern = key_pattern(store.template, prefix)
    wanted = {entry.key for entry in images}
    removed = [
        Change("removed", key)
        for key in sorted(objects)
        if image_key(pattern, key) and key not in wanted
    ]
    owned = gallery_files(images, prefix)
    shapes = gallery_shapes(store.template, prefix)
    candidates = [k for k in sorted(objects) if k not in owned and gallery_key(shapes, k)]
    pages = [key for key in candidates if key.endswith(".html")]
    written = dict(zip(pages, parallel(store.written_by_i2i, pages), strict=True))
    removed += [Change("removed", k, GALLERY) for k in candidates if written.get(k, True)]
    return removed


def prune(workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]) -> list[str]:
    """Delete from the target exactly what :func:`stale` finds for the current ``images``
    (every photo the inventory took, in every style); log one line per object; return the
    keys deleted."""
    store = Store(workdir, settings)
    keys = [change.key for change in stale(store, images)]
    for place in parallel(store.delete, keys):
        log.info("removed %s", place)
    log.info("pruned %s: %d object(s) removed", settings["target"], len(keys))
    return keys


def plan(workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]) -> list[Change]:
    """What publishing ``images`` would do at the target, read-only: ``new``, ``changed``,
    ``unchanged`` and ``not built`` per image, then ``removed`` for each image object at the
    target that no image maps to and each gallery file of a photo or album that is gone
    (publishing leaves those in place; ``publish.prune`` removes them)."""
    store = Store(workdir, settings)
    objects = store.everything()
    pattern = key_pattern(store.template, store.target.prefix)
    present = {key: size for key, size in objects.items() if image_key(pattern, key)}

    def change(entry: Entry) -> Change:
        if not entry.final.is_file():
            return Change("not built", entry.key)
        if entry.key not in present:
            return Change("new", entry.key)
        if present[entry.key] != entry.final.stat().st_size:
            return Change("changed", entry.key, "content differs")
        reason = store.difference(entry.final, entry.key)
        return Change("changed", entry.key, reason) if reason else Change("unchanged", entry.key)

    changes = parallel(change, images)
    return changes + stale(store, images, objects)


def marker_problem(store: Store, entry: Entry, settings: Mapping[str, Any]) -> str | None:
    """Why the marker of ``entry`` no longer stands for a good copy at the target, or None."""
    try:
        record = read_json(entry.marker)
        digest, size = str(record["sha256"]), int(record["size"])
        published_to = (record["target"], record["key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable marker ({one_line(exc)})"
    if published_to != (settings["target"], entry.key):
        return (
            f"published to {published_to[0]} as {published_to[1]}; the config now gives "
            f"{settings['target']} as {entry.key}"
        )
    return store.mismatch(entry.key, digest, size)


def verify_markers(
    workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]
) -> tuple[int, list[BadMarker]]:
    """Check the copy behind every existing marker of ``images``; nothing is changed.

    Returns how many markers were checked and the bad ones. A failure to reach the target
    raises :class:`I2IError`: only a definite answer (missing, different) makes a marker bad.
    """
    store = Store(workdir, settings)
    marked = [entry for entry in images if entry.marker.is_file()]
    problems = parallel(lambda entry: marker_problem(store, entry, settings), marked)
    bad = [BadMarker(e.marker, p) for e, p in zip(marked, problems, strict=True) if p]
    return len(marked), bad


def remove_markers(bad: Iterable[BadMarker]) -> None:
    """Delete bad markers: the next ``snakemake`` run publishes their images again."""
    for item in bad:
        item.marker.unlink(missing_ok=True)
        log.info("removed %s", item.marker)


def plan_lines(changes: Sequence[Change], target: str) -> list[str]:
    """The plan as text: one line per image to upload or object left over, then a summary."""
    lines = [
        f"{c.action:<8} {c.key}" + (f"  ({c.detail})" if c.detail else "")
        for c in changes
        if c.action in {"new", "changed", "removed"}
    ]
    counts = {action: 0 for action in ("new", "changed", "unchanged", "removed", "not built")}
    for c in changes:
        counts[c.action] += 1
    summary = ", ".join(f"{n} {action}" for action, n in counts.items())
    lines.append(f"dry run for {target}: {summary}; nothing was written or deleted")
    if counts["removed"]:
        lines.append(
            "removed: no current photo, style or album maps to them (publishing deletes nothing; "
            "with publish.prune: true the next snakemake run deletes them)"
        )
    return lines


def verify_lines(checked: int, bad: Sequence[BadMarker], workdir: Path, removed: bool) -> list[str]:
    """The check as text: one line per bad marker, then a summary."""
    lines = [f"bad {relative(item.marker, workdir)}: {item.reason}" for item in bad]
    summary = f"{checked} marker(s) checked, {checked - len(bad)} good, {len(bad)} bad"
    if bad:
        summary += (
            "; removed them: the next snakemake run publishes those images again"
            if removed
            else "; dry run: kept them"
        )
    return [*lines, summary]


def relative(path: Path, workdir: Path) -> str:
    """``path`` relative to ``workdir`` when it is inside it."""
    try:
        return str(path.relative_to(workdir))
    except ValueError:
        return str(path)
