"""What the target holds that nothing maps to, its pruning, and the publish plan.

:func:`plan` compares the workflow's final images, and the gallery files its markers record,
with what the target holds and changes nothing. :func:`stale` is what the target holds that no
current photo, style or album maps to: image objects the key template could have given (the
plan's ``removed``), and the gallery's own files of photos and albums that are gone (smaller
copies, originals and covers in ``_gallery`` folders, album pages that i2i wrote).
:func:`prune` (rule ``prune``, ``publish.prune``) deletes exactly that, and never anything
else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from i2i.stages.audit.keys import (
    Change,
    Entry,
    SiteFile,
    gallery_files,
    gallery_key,
    gallery_markers,
    gallery_shapes,
    image_key,
    key_pattern,
    site_files,
)
from i2i.stages.audit.store import Store, parallel

log = logging.getLogger("i2i.stages.audit")  # the audit's logger name, as before the split

GALLERY = "gallery"


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


def built_site(workdir: Path, images: Sequence[Entry], target: str) -> list[SiteFile]:
    """The files that the gallery markers of ``images`` record for ``target`` (a marker that
    is unreadable or names another target is left out: ``--verify`` reports it)."""
    files: list[SiteFile] = []
    for marker in gallery_markers(workdir, images):
        try:
            published_to, recorded = site_files(marker)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if published_to in {None, target}:
            files += recorded
    return files


def site_change(store: Store, file: SiteFile, present: Mapping[str, int]) -> Change:
    """What publishing the gallery file ``file`` again would do (detail ``gallery``)."""
    if file.key not in present:
        return Change("new", file.key, GALLERY)
    if present[file.key] != file.size:
        return Change("changed", file.key, f"{GALLERY}: content differs")
    reason = store.site_difference(file)
    return (
        Change("changed", file.key, f"{GALLERY}: {reason}")
        if reason
        else Change("unchanged", file.key)
    )


def plan(workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]) -> list[Change]:
    """What publishing ``images`` would do at the target, read-only: ``new``, ``changed``,
    ``unchanged`` and ``not built`` per image, the same for every gallery file that the
    gallery's markers record (detail ``gallery``), then ``removed`` for each image object at
    the target that no image maps to and each gallery file of a photo or album that is gone
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
    site = built_site(workdir, images, settings["target"])
    changes += parallel(lambda file: site_change(store, file, objects), site)
    return changes + stale(store, images, objects)
