"""``file://DIR``: a browsable folder; the gallery is built in it in place.

A relative ``DIR`` is under the workflow folder. A copy is written beside its key and renamed
into place; no header is kept, so only the bytes decide whether a file is written again.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from i2i.core.files import atomic_path, sha256_file
from i2i.targets.base import Head, Headers, Spec, Target


class FileTarget(Target):
    """A local folder that holds every key as a file."""

    usage = "file://DIR"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        # Under the workflow's own folder the location is kept as written (the gallery's root).
        self.folder = str(Path(spec.base, spec.location)) if spec.base else spec.location
        self.root = Path(self.folder)

    def head(self, key: str) -> Head | None:
        path = self.root / key
        if not path.is_file():
            return None
        moment = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        return Head(path.stat().st_size, sha256_file(path), modified=moment)

    def put(self, source: Path, key: str, headers: Headers, digest: str) -> None:
        with atomic_path(self.root / key) as tmp:
            shutil.copyfile(source, tmp)

    def objects(self, start: str) -> Iterator[tuple[str, int]]:
        top = self.root / start.rpartition("/")[0]
        if not top.is_dir():
            return
        for folder, _, names in os.walk(top):
            for name in names:
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(start) and path.is_file():
                    yield key, path.stat().st_size

    def read(self, key: str, limit: int) -> bytes | None:
        try:
            with (self.root / key).open("rb") as handle:
                return handle.read(limit)
        except OSError:
            return None

    def delete(self, key: str) -> None:
        """Remove the file, then each folder it leaves empty, up to the root."""
        path = self.root / key
        path.unlink(missing_ok=True)
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def link(self, key: str) -> str:
        return (self.root / key).resolve().as_uri()

    def where(self, key: str) -> str:
        return str(self.root / key)
