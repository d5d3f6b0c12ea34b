"""The publish stage: put a final image at its target and write the upload marker.

``file://DIR`` copies into a browsable folder (the embedded default). The key layout is the
same for every target: ``key_template`` with ``prefix``, ``album``, ``photo`` and ``style``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.files import atomic_path, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A parsed ``publish.target``: scheme (``file`` or ``s3``), location and key prefix."""

    scheme: str
    location: str
    prefix: str


def parse_target(target: str) -> Target:
    """``file://results/gallery`` or ``s3://bucket/some/prefix``."""
    scheme, sep, rest = target.partition("://")
    if not sep or scheme not in {"file", "s3"} or not rest:
        raise I2IError(f"publish.target {target!r}: use file://DIR or s3://bucket/prefix")
    if scheme == "file":
        return Target("file", rest, "")
    bucket, _, prefix = rest.partition("/")
    return Target("s3", bucket, prefix.strip("/"))


def object_key(template: str, prefix: str, album: str, photo: str, style: str) -> str:
    """The key of one image under the target, without empty segments or leading slashes."""
    key = template.format(prefix=prefix, album=album, photo=photo, style=style)
    parts = [p for p in key.split("/") if p]
    if any(p in {".", ".."} for p in parts):
        raise I2IError(f"publish.key_template gives an unsafe key {key!r}")
    return "/".join(parts)


def publish_file(source: Path, root: Path, key: str) -> dict[str, Any]:
    """Copy ``source`` to ``root/key`` unless an identical copy is already there."""
    destination = root / key
    digest = sha256_file(source)
    uploaded = not (destination.is_file() and sha256_file(destination) == digest)
    if uploaded:
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)
        if sha256_file(destination) != digest:
            raise I2IError(f"{destination}: copy does not match {source}")
    return {
        "url": destination.resolve().as_uri(),
        "sha256": digest,
        "etag": None,
        "size": source.stat().st_size,
        "uploaded": uploaded,
    }


def publish(
    final: str | os.PathLike[str],
    album: str,
    photo: str,
    style: str,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Publish one final image; return the upload marker record."""
    source = Path(final)
    target = parse_target(settings["target"])
    key = object_key(settings["key_template"], target.prefix, album, photo, style)
    if settings.get("dry_run"):
        log.info("dry run: would publish %s to %s as %s", source, settings["target"], key)
        raise I2IError("publish.dry_run is true: nothing published, no marker written")
    if target.scheme != "file":
        raise I2IError(
            f"publish.target {settings['target']}: S3 publishing is not implemented in this "
            "version; use a file:// target"
        )
    result = publish_file(source, Path(target.location), key)
    log.info("%s %s", "published" if result["uploaded"] else "unchanged", result["url"])
    return {
        "target": settings["target"],
        "key": key,
        "album": album,
        "photo": photo,
        "style": style,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **result,
    }


def relative_url(key: str, from_key: str = "") -> str:
    """A URL-quoted link to ``key`` from a page at ``from_key``."""
    depth = from_key.count("/")
    return "../" * depth + urllib.parse.quote(key)
