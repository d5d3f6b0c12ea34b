"""The publish stage: put a final image at its target and return the upload marker.

The target (``publish.target``) is any registered :class:`~i2i.targets.base.Target`:
``file://DIR`` (a browsable folder, the embedded default; pages by :mod:`i2i.stages.gallery`),
``s3://bucket/prefix`` (:mod:`i2i.targets.s3`), or a kind added through
:func:`i2i.targets.register`. The image goes with its Content-Type (sniffed from the file) and
``publish.cache_control``; a target keeps the headers it can.

The key layout is the same for every target: ``publish.key_template`` with ``prefix``, ``album``,
``photo`` and ``style``. Publishing is idempotent: a target that already holds the same bytes
(same sha256 and size, and the same headers where it keeps them) is left alone and the marker
says ``uploaded: false``. A marker is returned only once the copy has been read back and
verified.

``i2i publish --dry-run`` and ``--verify`` live in :mod:`i2i.stages.audit`, so that editing
them changes nothing the publish jobs run (their code digest, see :mod:`i2i.run.provenance`).
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from i2i import I2IError
from i2i.core.files import write_json
from i2i.targets import Headers, target_for, upload

log = logging.getLogger(__name__)

DEFAULT_KEY_TEMPLATE = "{prefix}/{album}/{photo}_{style}.webp"
DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"


def object_key(template: str, prefix: str, album: str, photo: str, style: str) -> str:
    """The key of one image under the target, without empty segments or leading slashes."""
    try:
        key = template.format(prefix=prefix, album=album, photo=photo, style=style)
    except (KeyError, IndexError, ValueError) as exc:
        raise I2IError(
            f"publish.key_template {template!r}: use only {{prefix}}, {{album}}, {{photo}}, "
            f"{{style}} ({exc})"
        ) from exc
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in {".", ".."} for p in parts):
        raise I2IError(f"publish.key_template gives an unsafe key {key!r}")
    return "/".join(parts)


def content_type(path: Path) -> str:
    """The MIME type of an image file, sniffed from its bytes, else guessed from its name."""
    try:
        with Image.open(path) as image:
            mime = Image.MIME.get(image.format or "")
    except OSError:
        mime = None
    return mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def image_headers(source: Path, settings: Mapping[str, Any]) -> Headers:
    """The headers a published image goes with (and that must match to skip it)."""
    cache_control = settings.get("cache_control") or DEFAULT_CACHE_CONTROL
    return {"ContentType": content_type(source), "CacheControl": cache_control}


def timestamp(moment: dt.datetime | None) -> str | None:
    """When the copy at the target was written, in UTC: it changes only when the copy does, so
    a marker written again for an unchanged copy has the same bytes."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


def publish(
    final: str | os.PathLike[str],
    album: str,
    photo: str,
    style: str,
    settings: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish one final image; return the upload marker record once the copy is verified.

    ``settings`` is the whole ``publish`` config section, operational keys included;
    ``overrides`` replaces fields of the target's options (an S3 retry mode, multipart sizes).
    """
    source = Path(final)
    target = target_for(settings["target"], settings, overrides=overrides)
    key = object_key(template_of(settings), target.prefix, album, photo, style)
    headers = image_headers(source, settings)
    done = upload(target, source, key, headers)
    url = target.link(key)
    log.info("%s %s", "unchanged" if done.reason is None else "published", url)
    return {
        "target": settings["target"],
        "key": key,
        "album": album,
        "photo": photo,
        "style": style,
        "url": url,
        "sha256": done.sha256,
        "etag": done.head.etag,
        "size": done.size,
        "time": timestamp(done.head.modified),
        **target.details(headers),
        "uploaded": done.reason is not None,
    }


def publish_to_marker(
    final: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    album: str,
    photo: str,
    style: str,
    settings: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish and write the marker JSON; on any failure no marker is written.

    The marker describes the copy at the target, not this job: whether this job uploaded it
    is logged, not recorded, so a marker written again for an unchanged copy has the same
    bytes.
    """
    record = publish(final, album, photo, style, settings, overrides=overrides)
    write_json(marker, {k: v for k, v in record.items() if k != "uploaded"})
    return record


def template_of(settings: Mapping[str, Any]) -> str:
    """``publish.key_template``, or the default when it is unset or empty."""
    return settings.get("key_template") or DEFAULT_KEY_TEMPLATE
