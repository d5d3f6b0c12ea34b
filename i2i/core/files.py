"""Atomic file writes, hashing and safe names shared by every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temp name keeps the target's suffix so that writers which pick a format from the
    extension (Pillow, OpenCV) still work. A reader never sees a half-written target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem[:40]}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with tmp_path.open("rb+") as handle:
            os.fsync(handle.fileno())
        tmp_path.chmod(0o644)
        tmp_path.replace(target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as stable, human-readable JSON (sorted keys, UTF-8) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    write_bytes(target, text.encode("utf-8"))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_safe_name(name: str) -> bool:
    """True if ``name`` is one path component that cannot escape its folder, with no control
    character (a newline in a wildcard value makes Snakemake warn on every run)."""
    return (
        bool(name)
        and not any(unicodedata.category(c) == "Cc" for c in name)
        and name not in {".", ".."}
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not {"{", "}"} & set(name)
        and not name.startswith(".")
        and name == name.strip()
    )
