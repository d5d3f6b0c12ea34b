"""Outputs made by a network fallback, and how to have the next run make them again.

A captions record has ``fallback: true`` when Ollama was enabled but failed (the template was
used), a places record when a provider of the chain failed (error, not "no result") before the
answer. Deleting such a file makes the next ``snakemake`` rebuild it and everything made from
it; nothing else reruns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from i2i.core.files import read_json

log = logging.getLogger(__name__)

STAGES = ("places", "captions")


def is_fallback(path: Path) -> bool:
    """Whether the record at ``path`` says a fallback made it (False if missing or unreadable)."""
    try:
        record = read_json(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        log.warning("fallbacks: skipping unreadable %s (%s)", path, exc)
        return False
    return isinstance(record, dict) and record.get("fallback") is True


def find_fallbacks(workdir: Path, photos: Iterable[tuple[str, str]]) -> list[Path]:
    """The places and captions files of ``photos`` (album, photo) that a fallback made.

    Paths are ``workdir/results/{stage}/{album}/{photo}.json``, in photo order, places first.
    """
    found = []
    for album, photo in photos:
        for stage in STAGES:
            path = Path(workdir) / "results" / stage / album / f"{photo}.json"
            if is_fallback(path):
                found.append(path)
    return found


def redo_fallbacks(paths: Iterable[Path]) -> int:
    """Delete ``paths`` so that the next run makes them and their dependents again.

    Returns how many were deleted; files already gone are not counted.
    """
    deleted = 0
    for path in paths:
        try:
            Path(path).unlink()
        except FileNotFoundError:
            continue
        log.info("redo: removed %s (made by a fallback)", path)
        deleted += 1
    return deleted
