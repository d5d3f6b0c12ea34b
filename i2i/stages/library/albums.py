"""The library stage: find the albums and photos the workflow will process.

On every platform the library is a folder of album folders. Names become Snakemake wildcards,
so they must be single path components; a photo id is the file stem, or ``stem.ext`` when two
files in one album share a stem (``IMG_1.HEIC`` beside ``IMG_1.jpg``).
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from i2i import I2IError
from i2i.core.files import is_safe_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One source photo: its album, its id (the ``{photo}`` wildcard) and its file."""

    album: str
    photo: str
    path: Path


@dataclass
class Library:
    """What discovery found: the photos to process and the files it skipped, with reasons."""

    photos: list[Photo] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def by_key(self) -> dict[tuple[str, str], Photo]:
        """Photos keyed by ``(album, photo)``."""
        return {(p.album, p.photo): p for p in self.photos}

    def albums(self) -> list[str]:
        """Album names, sorted."""
        return sorted({p.album for p in self.photos})


def _nfc(name: str) -> str:
    """macOS stores names decomposed (NFD); wildcards and URLs want one form."""
    return unicodedata.normalize("NFC", name)


# Hidden folders that tools keep beside the albums on purpose: not listed as skipped.
TOOL_FOLDERS = frozenset(
    {".osxphotos_export.db", ".i2i-photos-export", ".Trashes", ".Spotlight-V100", ".fseventsd"}
)


def _hidden(path: Path, library: Library) -> bool:
    """True for a hidden entry (name starting with a dot): a hidden folder is listed as
    skipped, unless a tool keeps it there; hidden files (``.DS_Store``, markers) are not."""
    if not path.name.startswith("."):
        return False
    if path.is_dir() and path.name not in TOOL_FOLDERS:
        library.skipped.append((path, "hidden folder"))
    return True


def _printable(path: Path) -> str:
    """``path`` for one log line: control characters (a newline) written as escapes."""
    return "".join(
        c.encode("unicode_escape").decode() if unicodedata.category(c) == "Cc" else c
        for c in str(path)
    )


OUTSIDE = "a link to {} outside albums_dir (links_outside: true takes it)"


def _outside(path: Path, root: Path) -> bool:
    """True for a symbolic link whose (existing) target lies outside ``root``; a dangling link
    is left to the inventory, which names it."""
    return path.is_symlink() and path.exists() and not path.resolve().is_relative_to(root)


def discover(
    albums_dir: str | os.PathLike[str], extensions: Iterable[str], links_outside: bool = False
) -> Library:
    """Scan ``albums_dir`` for ``album/photo.ext`` files with one of ``extensions``. A link (to
    an album folder or a photo) that leads outside ``albums_dir`` is skipped unless
    ``links_outside``."""
    root = Path(albums_dir)
    if not root.is_dir():
        raise I2IError(f"albums_dir {root}: not a folder (set albums_dir in the config)")
    wanted = {e.lower().lstrip(".") for e in extensions}
    library = Library()
    inside = root.resolve()
    for album_dir in sorted(root.iterdir()):
        if _hidden(album_dir, library):
            continue
        if not links_outside and _outside(album_dir, inside):
            library.skipped.append((album_dir, OUTSIDE.format("a folder")))
            continue
        if not album_dir.is_dir():
            library.skipped.append((album_dir, "not inside an album folder"))
            continue
        album = _nfc(album_dir.name)
        if not is_safe_name(album):
            library.skipped.append((album_dir, "album name cannot be used as a folder name"))
            continue
        files = [f for f in sorted(album_dir.iterdir()) if not _hidden(f, library)]
        candidates = []
        for f in files:
            ext = f.suffix.lower().lstrip(".")
            if not links_outside and _outside(f, inside) and not album_dir.is_symlink():
                library.skipped.append((f, OUTSIDE.format("a file")))
            elif f.is_dir():
                library.skipped.append((f, "nested folder (albums are one level deep)"))
            elif ext not in wanted:
                library.skipped.append((f, f"unsupported extension .{ext or '(none)'}"))
            else:
                candidates.append(f)
        stems: dict[str, int] = {}
        for f in candidates:
            stems[_nfc(f.stem)] = stems.get(_nfc(f.stem), 0) + 1
        for f in candidates:
            photo = _nfc(f.stem) if stems[_nfc(f.stem)] == 1 else _nfc(f.name)
            if not is_safe_name(photo):
                library.skipped.append((f, "file name cannot be used as a target name"))
                continue
            library.photos.append(Photo(album=album, photo=photo, path=f))
    for path, reason in library.skipped:
        log.warning("skipped %s: %s", _printable(path), reason)
    return library
