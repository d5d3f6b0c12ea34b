"""What the other stages ask of a metadata record (no EXIF parsing: their code digests
hold this module and the package's ``__init__`` only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def photos_info(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """What Apple Photos knows about the photo of a metadata record; empty in folder mode."""
    return record.get("apple_photos") or {}


def has_position(record: Mapping[str, Any]) -> bool:
    """True if the record holds usable GPS coordinates (0,0 is no fix, also in old records)."""
    gps = record.get("gps") or {}
    lat, lon = gps.get("lat"), gps.get("lon")
    return lat is not None and lon is not None and not (lat == 0 and lon == 0)
