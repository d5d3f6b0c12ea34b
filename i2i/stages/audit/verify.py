"""Upload markers whose copy at the target is gone or differs: :func:`verify_markers` finds
them, and removing them makes the next ``snakemake`` run publish those images again."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from i2i.core.files import read_json
from i2i.stages.audit.keys import BadMarker, Entry
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
