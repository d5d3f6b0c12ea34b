"""The ``google`` provider (Google's Geocoding API): its key, client and answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from i2i.stages.places.common import Answer, PlaceSettings, _landmark, _location
from i2i.stages.places.network import geopy_options, google_api_key

GOOGLE_POI_TYPES = (
    "tourist_attraction",
    "natural_feature",
    "park",
    "museum",
    "church",
    "place_of_worship",
    "airport",
    "stadium",
    "point_of_interest",
    "establishment",
)


def _google_component(results: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any] | None:
    for result in results:
        for component in result.get("address_components", []):
            if kind in component.get("types", []):
                return component
    return None


def _google_poi(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, type) when a Google result is a point of interest."""
    if not set(result.get("types", [])) & set(GOOGLE_POI_TYPES):
        return None
    for component in result.get("address_components", []):
        kinds = component.get("types", [])
        kind = next((t for t in GOOGLE_POI_TYPES if t in kinds), None)
        if kind:
            return component["long_name"], kind
    return None


def google_answer(results: Sequence[Mapping[str, Any]]) -> Answer:
    """Location and landmarks from Google's reverse geocoding results (most precise first)."""
    city = _google_component(results, "locality") or _google_component(results, "postal_town")
    locality = _google_component(results, "sublocality") or _google_component(
        results, "neighborhood"
    )
    state = _google_component(results, "administrative_area_level_1")
    country = _google_component(results, "country") or {}
    landmarks = []
    for result in results:
        poi = _google_poi(result)
        if poi:
            where = result["geometry"]["location"]
            landmarks.append(_landmark(poi[0], "google", poi[1], where["lat"], where["lng"]))
    first = _google_poi(results[0])
    location = _location(
        city=city and city["long_name"],
        locality=locality and locality["long_name"],
        state=state and state["long_name"],
        country=country.get("long_name"),
        country_code=country.get("short_name"),
        poi=first[0] if first else None,
    )
    return {"location": location, "landmarks": landmarks}


def google_geocoder(settings: PlaceSettings) -> Any:
    """A geopy GoogleV3 client; the key comes from the environment."""
    from geopy.geocoders import GoogleV3

    return GoogleV3(api_key=google_api_key(), **geopy_options("google", settings))


def google_reverse(geocoder: Any, lat: float, lon: float) -> Answer | None:
    """Google Geocoding API reverse lookup (all result types, most precise first)."""
    found = geocoder.reverse((lat, lon), exactly_one=False)
    return google_answer([f.raw for f in found]) if found else None
