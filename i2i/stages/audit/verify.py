"""Upload markers whose copy at the target is gone or differs: :func:`verify_markers` finds
them (the images' markers, and the gallery's, one per album and one for the index, each
with every file its job published), and removing them makes the next ``snakemake`` run
publish those images and gallery files again."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from i2i.core.files import read_json
from i2i.stages.audit.keys import BadMarker, Entry, SiteFile, gallery_markers, site_files
from i2i.stages.audit.store import Store, parallel
from i2i.targets.base import one_line

log = logging.getLogger("i2i.stages.audit")  # the audit's logger name, as before the split


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


def site_problems(marker: Path, settings: Mapping[str, Any]) -> tuple[list[SiteFile], str | None]:
    """The files a gallery marker records, or why the marker itself is bad."""
    try:
        target, files = site_files(marker)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [], f"unreadable marker ({one_line(exc)})"
    if target is not None and target != settings["target"]:
        return [], f"published to {target}; the config now gives {settings['target']}"
    return files, None


def verify_site(
    store: Store, markers: Sequence[Path], settings: Mapping[str, Any]
) -> list[BadMarker]:
    """Every existing gallery marker of ``markers`` whose files are not all at the target as
    it recorded them: one :class:`BadMarker` per file missing or different."""
    bad: list[BadMarker] = []
    checks: list[tuple[Path, SiteFile]] = []
    for marker in markers:
        files, problem = site_problems(marker, settings)
        if problem:
            bad.append(BadMarker(marker, problem))
        checks += [(marker, file) for file in files]
    problems = parallel(lambda check: store.mismatch(*check[1].record()), checks)
    bad += [BadMarker(m, p) for (m, _), p in zip(checks, problems, strict=True) if p]
    return bad


def verify_markers(
    workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]
) -> tuple[int, list[BadMarker]]:
    """Check the copy behind every existing marker of ``images`` and of the gallery's jobs for
    them; nothing is changed.

    Returns how many markers were checked and the bad ones (a gallery marker once per file
    missing or different). A failure to reach the target raises :class:`I2IError`: only a
    definite answer (missing, different) makes a marker bad.
    """
    store = Store(workdir, settings)
    marked = [entry for entry in images if entry.marker.is_file()]
    problems = parallel(lambda entry: marker_problem(store, entry, settings), marked)
    bad = [BadMarker(e.marker, p) for e, p in zip(marked, problems, strict=True) if p]
    site = [marker for marker in gallery_markers(workdir, images) if marker.is_file()]
    bad += verify_site(store, site, settings)
    return len(marked) + len(site), bad


def remove_markers(bad: Iterable[BadMarker]) -> None:
    """Delete bad markers: the next ``snakemake`` run publishes their images and gallery
    files again."""
    for marker in sorted({item.marker for item in bad}):
        marker.unlink(missing_ok=True)
        log.info("removed %s", marker)
