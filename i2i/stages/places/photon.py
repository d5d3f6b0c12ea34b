"""The ``photon`` provider (komoot's Photon, OpenStreetMap data): its client and its answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from i2i.stages.places.common import (
    PLACE_VALUES,
    POI_KEYS,
    Answer,
    PlaceSettings,
    _landmark,
    _location,
)
from i2i.stages.places.network import geopy_options

PHOTON_LIMIT = 10


def photon_answer(features: Sequence[Mapping[str, Any]]) -> Answer:
    """Location and landmarks from Photon's reverse GeoJSON features (nearest first)."""
    props = features[0]["properties"]
    city = props.get("city")
    if not city and props.get("osm_key") == "place" and props.get("osm_value") in PLACE_VALUES:
        city = props.get("name")
    landmarks = []
    for feature in features:
        p = feature["properties"]
        if p.get("osm_key") in POI_KEYS and p.get("name"):
            lon, lat = feature["geometry"]["coordinates"][:2]
            landmarks.append(_landmark(p["name"], p["osm_key"], p.get("osm_value"), lat, lon))
    first_is_poi = props.get("osm_key") in POI_KEYS and props.get("name")
    location = _location(
        city=city,
        locality=props.get("district") or props.get("locality"),
        state=props.get("state"),
        country=props.get("country"),
        country_code=props.get("countrycode"),
        poi=props.get("name") if first_is_poi else None,
    )
    return {"location": location, "landmarks": landmarks}


def photon_geocoder(settings: PlaceSettings) -> Any:
    """A geopy Photon client for the configured endpoint."""
    from geopy.geocoders import Photon

    return Photon(**geopy_options("photon", settings))


def photon_reverse(geocoder: Any, lat: float, lon: float) -> Answer | None:
    """Photon ``/reverse``: the nearest features around the position."""
    found = geocoder.reverse((lat, lon), exactly_one=False, limit=PHOTON_LIMIT)
    return photon_answer([f.raw for f in found]) if found else None
