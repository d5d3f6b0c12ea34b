"""Gallery uploads, for targets that are not a local folder: every file a build wrote, with
its Content-Type and Cache-Control; and the sha256 and size of each file, which the gallery's
markers record for ``i2i publish --verify`` and ``--dry-run``."""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from i2i.core.files import sha256_file
from i2i.stages.publish import DEFAULT_CACHE_CONTROL
from i2i.targets import Headers, target_for, upload

log = logging.getLogger(__name__)

DEFAULT_PAGE_CACHE_CONTROL = "public, max-age=300"
PAGE_SUFFIXES = frozenset({".html"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".json": "application/json",
    ".webp": "image/webp",
}
UPLOAD_WORKERS = 16


def site_headers(key: str, publish: Mapping[str, Any]) -> Headers:
    """The Content-Type and Cache-Control of the gallery file at ``key``: pages get
    ``publish.page_cache_control`` (short: they change when the library does), everything else
    ``publish.cache_control``."""
    suffix = posixpath.splitext(key)[1].lower()
    kind = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    if suffix in PAGE_SUFFIXES:
        cache_control = publish.get("page_cache_control") or DEFAULT_PAGE_CACHE_CONTROL
    else:
        cache_control = publish.get("cache_control") or DEFAULT_CACHE_CONTROL
    return {"ContentType": kind, "CacheControl": cache_control}


def site_files(root: Path, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{key: {"sha256": ..., "size": ...}}`` of ``root/key`` for every key: what a gallery
    marker records of the files its job published."""
    return {
        key: {"sha256": sha256_file(root / key), "size": (root / key).stat().st_size}
        for key in sorted(set(keys))
    }


def upload_site(root: Path, keys: Sequence[str], publish: Mapping[str, Any]) -> list[str]:
    """Upload ``root/key`` to the target of ``publish`` (the whole config section, operational
    keys included) at ``key`` for every key, as images are published (:func:`i2i.targets.upload`:
    not again where the same sha256, size and headers are there; read back and verified).
    Return the keys uploaded."""
    target = target_for(publish["target"], publish)

    def one(key: str) -> str | None:
        return upload(target, root / key, key, site_headers(key, publish)).reason

    unique_keys = sorted(set(keys))
    if len(unique_keys) < 2:
        reasons = [one(key) for key in unique_keys]
    else:
        with ThreadPoolExecutor(min(UPLOAD_WORKERS, len(unique_keys))) as pool:
            reasons = list(pool.map(one, unique_keys))
    uploaded = [key for key, reason in zip(unique_keys, reasons, strict=True) if reason]
    log.info(
        "%s: %d gallery file(s) uploaded, %d unchanged",
        publish["target"],
        len(uploaded),
        len(unique_keys) - len(uploaded),
    )
    return uploaded
