"""The places stage's shared vocabulary: settings, answers, errors, distances, landmarks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EARTH_RADIUS_KM = 6371.0088


MAX_LANDMARKS = 10


DEFAULT_RATE_LIMITS = {"nominatim": 1.0, "photon": 0.2, "google": 0.05}


DEFAULT_USER_AGENT = "i2i/0.1 (https://github.com/i2i-workflow/i2i)"


PHOTOS_PROVIDER = "photos"


LOCAL_PROVIDERS = frozenset({PHOTOS_PROVIDER, "offline"})


POI_KEYS = frozenset(
    {"tourism", "historic", "amenity", "leisure", "natural", "man_made", "aeroway", "waterway"}
)


CITY_FIELDS = ("city", "town", "village", "municipality", "hamlet")


LOCALITY_FIELDS = ("suburb", "neighbourhood", "quarter", "city_district", "borough")


STATE_FIELDS = ("state", "region", "province", "state_district")


PLACE_VALUES = frozenset({"city", "town", "village", "hamlet", "municipality"})


Answer = dict[str, Any]


class ProviderError(Exception):
    """A provider could not answer; the chain goes on to the next one.

    ``no_result``: the provider answered that it has nothing there (not a failure);
    ``transient``: asking again soon may succeed; ``retry_in``: seconds after which it will be.
    """

    def __init__(
        self,
        message: str,
        *,
        from_cache: bool = False,
        retry_after: float | None = None,
        no_result: bool = False,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.from_cache = from_cache
        self.retry_after = retry_after
        self.no_result = no_result
        self.transient = transient
        self.retry_in: float | None = None


@dataclass(frozen=True)
class PlaceSettings:
    """The ``places:`` config section, with the schema's defaults for keys left out."""

    cache: str = "cache/geocode.sqlite"
    cache_only: bool = False
    precision: int = 3
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 10.0
    landmarks_radius_m: float = 1000.0
    rate_limits: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    endpoints: Mapping[str, str] = field(default_factory=dict)
    retries: int = 3
    backoff: float = 1.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PlaceSettings:
        """Settings from the config mapping; rate limits not given keep their defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in config.items() if k in known and v not in (None, "")}
        values["rate_limits"] = {**DEFAULT_RATE_LIMITS, **(config.get("rate_limits") or {})}
        return cls(**values)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def empty_location() -> dict[str, Any]:
    """The ``location`` shape every provider fills (``locality``: a finer name than the city)."""
    return {
        "city": None,
        "locality": None,
        "state": None,
        "country": None,
        "country_code": None,
        "poi": None,
    }


def _location(**values: Any) -> dict[str, Any]:
    location = empty_location()
    location.update({k: v or None for k, v in values.items()})
    if location["country_code"]:
        location["country_code"] = location["country_code"].upper()
    if location["locality"] == location["city"]:
        location["locality"] = None
    return location


def _landmark(name: Any, category: Any, kind: Any, lat: Any, lon: Any) -> dict[str, Any]:
    """A landmark; ``lat``/``lon`` None when the provider gives no coordinates for it."""
    return {
        "name": str(name),
        "category": category,
        "type": kind,
        "lat": None if lat is None else float(lat),
        "lon": None if lon is None else float(lon),
    }


def nearby(
    landmarks: Sequence[Mapping[str, Any]],
    lat: float | None,
    lon: float | None,
    radius_m: float,
) -> list[dict[str, Any]]:
    """Landmarks within ``radius_m`` of the photo, nearest first, one per name.

    A landmark whose distance is unknown (it or the photo has no coordinates) has
    ``distance_m`` None and is kept, after the measured ones, in the provider's order.
    """
    measured: dict[str, dict[str, Any]] = {}
    unmeasured: dict[str, dict[str, Any]] = {}
    for mark in landmarks:
        name = mark["name"]
        if name in measured or name in unmeasured:
            continue
        mark_lat, mark_lon = mark.get("lat"), mark.get("lon")
        if lat is None or lon is None or mark_lat is None or mark_lon is None:
            unmeasured[name] = {**mark, "distance_m": None}
            continue
        away = round(distance_km(lat, lon, mark_lat, mark_lon) * 1000)
        if away <= radius_m:
            measured[name] = {**mark, "distance_m": away}
    nearest = sorted(measured.values(), key=lambda m: (m["distance_m"], m["name"]))
    return [*nearest, *unmeasured.values()][:MAX_LANDMARKS]
