"""The ``nominatim`` provider (OpenStreetMap's Nominatim): its client and its answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from i2i.stages.places.common import (
    CITY_FIELDS,
    LOCALITY_FIELDS,
    POI_KEYS,
    STATE_FIELDS,
    Answer,
    PlaceSettings,
    _landmark,
    _location,
)
from i2i.stages.places.network import geopy_options


def nominatim_answer(place: Mapping[str, Any]) -> Answer:
    """Location and landmark from a Nominatim reverse result (``json`` or ``jsonv2``)."""
    address = place.get("address") or {}
    category = place.get("category") or place.get("class")
    name = place.get("name") or address.get(category or "")
    poi = name if category in POI_KEYS and name else None
    location = _location(
        city=next((address[k] for k in CITY_FIELDS if address.get(k)), None),
        locality=next((address[k] for k in LOCALITY_FIELDS if address.get(k)), None),
        state=next((address[k] for k in STATE_FIELDS if address.get(k)), None),
        country=address.get("country"),
        country_code=address.get("country_code"),
        poi=poi,
    )
    landmarks = [_landmark(poi, category, place.get("type"), place["lat"], place["lon"])]
    return {"location": location, "landmarks": landmarks if poi else []}


def nominatim_geocoder(settings: PlaceSettings) -> Any:
    """A geopy Nominatim client for the configured endpoint."""
    from geopy.geocoders import Nominatim

    return Nominatim(**geopy_options("nominatim", settings))


def nominatim_reverse(geocoder: Any, lat: float, lon: float) -> Answer | None:
    """Nominatim ``/reverse`` at building detail, with the address broken down."""
    found = geocoder.reverse((lat, lon), exactly_one=True, addressdetails=True, zoom=18)
    return nominatim_answer(found.raw) if found else None
