"""The ``photos`` provider: the place Apple Photos stored for the photo."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from i2i.stages.metadata.record import photos_info
from i2i.stages.places.common import Answer, ProviderError, _landmark, _location


def photos_provider(metadata: Mapping[str, Any]) -> Answer:
    """The place Apple Photos stored for the photo, from the metadata record (no network).

    City, state and country come from Photos' own reverse geocoding, its locality when it
    differs from the city; its areas of interest (a park, a venue) are the POI (the first) and
    the landmarks, with no coordinates (``lat``/``lon`` None). A photo without an Apple Photos
    place, or with one that names nothing, gives no result.
    """
    info = photos_info(metadata)
    if not info:
        raise ProviderError("not a photo from Apple Photos", no_result=True)
    place = info.get("place")
    if not place:
        raise ProviderError("Apple Photos has no place for this photo", no_result=True)
    areas = [str(area) for area in place.get("areas_of_interest") or [] if area]
    location = _location(
        city=place.get("city"),
        locality=place.get("locality"),
        state=place.get("state"),
        country=place.get("country"),
        country_code=place.get("country_code"),
        poi=areas[0] if areas else None,
    )
    if not any(location.values()):
        raise ProviderError("the Apple Photos place names nothing", no_result=True)
    landmarks = [_landmark(area, "apple_photos", "area_of_interest", None, None) for area in areas]
    return {"location": location, "landmarks": landmarks}
