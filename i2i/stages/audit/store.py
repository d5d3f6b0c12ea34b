"""The publish target as the audit sees it: its listing, reads, deletions and checks."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from i2i.core.files import sha256_file
from i2i.stages.audit.keys import SiteFile, common_start, listing_prefix
from i2i.stages.gallery.keys import ALBUM_DIR, index_key
from i2i.stages.gallery.pages import GENERATOR
from i2i.stages.gallery.upload import site_headers
from i2i.stages.publish import image_headers, template_of
from i2i.targets import target_for
from i2i.targets.base import upload_reason

CHECK_WORKERS = 16
PAGE_HEAD = 2048  # bytes of a page read to see whether i2i wrote it

T = TypeVar("T")
R = TypeVar("R")


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

    def site_difference(self, file: SiteFile) -> str | None:
        """Why the gallery file its marker records would be uploaded again, or None."""
        headers = site_headers(file.key, self.settings)
        return upload_reason(self.target.head(file.key), file.sha256, file.size, headers)

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
