"""The catalog: per-style manifests and ``master.json``, gathered from the per-photo files.

A photo from Apple Photos also carries its ``title``, ``description``, ``keywords``, ``persons``
and ``favorite``; a photo read from a folder has none of these keys, so its entry is as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from i2i import __version__

MARKER_FIELDS = ("url", "key", "sha256", "etag", "size", "target")


def style_manifest(style: str, markers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every published image of one style, sorted by album and photo."""
    images = sorted(
        (
            {"album": m["album"], "photo": m["photo"], **{k: m.get(k) for k in MARKER_FIELDS}}
            for m in markers
        ),
        key=lambda m: (m["album"], m["photo"]),
    )
    return {"style": style, "count": len(images), "images": images}


def photo_entry(
    album: str,
    photo: str,
    metadata: Mapping[str, Any],
    places: Mapping[str, Any],
    caption: Mapping[str, Any],
) -> dict[str, Any]:
    """One photo as in the original pipeline's master.json, plus :func:`photos_fields`."""
    return {
        "album": album,
        "photo": photo,
        "source_path": metadata["source_path"],
        "sha256": metadata["file"]["sha256"],
        "image": metadata["image"],
        "exif": metadata["exif"],
        "gps": metadata["gps"],
        "titles": metadata.get("titles") or {},
        "location": places.get("location"),
        "location_formatted": places.get("location_formatted", ""),
        "landmarks": places.get("landmarks", []),
        "place_provider": places.get("provider"),
        "watermark_text": caption["watermark_text"],
        "caption_source": caption["source"],
        "problems": metadata.get("problems", []),
        "styles": {},
        **photos_fields(metadata),
    }


def photos_fields(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What Apple Photos knows that the catalog lists; no keys for a photo from a folder."""
    info = metadata.get("apple_photos")
    if info is None:
        return {}
    return {
        "title": info.get("title"),
        "description": info.get("description"),
        "keywords": list(info.get("keywords") or []),
        "persons": list(info.get("persons") or []),
        "favorite": bool(info.get("favorite")),
    }


def album_catalog(
    album: str,
    entries: Sequence[dict[str, Any]],
    markers: Sequence[Mapping[str, Any]],
    styles: Sequence[str],
) -> dict[str, Any]:
    """One album's photos with their published images per style (from the upload markers)."""
    by_photo = {e["photo"]: e for e in entries}
    for marker in markers:
        entry = by_photo.get(marker["photo"])
        if entry is not None:
            entry["styles"][marker["style"]] = {k: marker.get(k) for k in MARKER_FIELDS}
    return {
        "album": album,
        "styles": sorted(styles),
        "photos": sorted(by_photo.values(), key=lambda e: e["photo"]),
    }


def master_catalog(
    albums: Sequence[Mapping[str, Any]],
    styles: Sequence[str],
    rejected: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The whole catalog from the album catalogs; photos the inventory set aside are listed."""
    photos = sorted(
        (entry for album in albums for entry in album["photos"]),
        key=lambda e: (e["album"], e["photo"]),
    )
    return {
        "generator": f"i2i {__version__}",
        "albums": sorted({a["album"] for a in albums}),
        "styles": sorted(styles),
        "photo_count": len(photos),
        "image_count": sum(len(e["styles"]) for e in photos),
        "photos": photos,
        "rejected": sorted(rejected, key=lambda r: (r["album"], r["photo"])),
    }
