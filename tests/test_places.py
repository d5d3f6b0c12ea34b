"""The places stage: offline lookups, the network provider chain, the shared cache, pacing.

Network providers talk to a local HTTP server on 127.0.0.1 that answers with bodies in each
service's real format (Nominatim ``/reverse`` json/jsonv2, Photon ``/reverse`` GeoJSON, Google
Geocoding JSON) and can be told to time out, rate-limit, fail, reset the connection or send
garbage, always or for its first few requests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import i2i.stages.places
import i2i.stages.places.cache
from i2i import I2IError
from i2i.stages.places import format_location, locate
from i2i.stages.places.cache import GeoCache, cache_key
from i2i.stages.places.common import PlaceSettings, nearby
from i2i.stages.places.nominatim import nominatim_answer
from i2i.stages.places.offline import geonames, offline_provider, reach_km

from conftest import record_sleeps

EIFFEL = (48.8584, 2.2945)
PARIS = (48.8530, 2.3499)
NICE = (43.6950, 7.2650)
RETRIES = 2

NOMINATIM_EIFFEL = {
    "place_id": 87795125,
    "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
    "osm_type": "way",
    "osm_id": 5013364,
    "lat": "48.8582599",
    "lon": "2.2945006",
    "place_rank": 30,
    "importance": 0.6205937724353116,
    "addresstype": "man_made",
    "name": "Tour Eiffel",
    "display_name": "Tour Eiffel, 5, Avenue Anatole France, Quartier du Gros-Caillou, "
    "Paris 7e Arrondissement, Paris, Île-de-France, France métropolitaine, 75007, France",
    "address": {
        "man_made": "Tour Eiffel",
        "house_number": "5",
        "road": "Avenue Anatole France",
        "city_block": "Quartier du Gros-Caillou",
        "suburb": "Paris 7e Arrondissement",
        "city_district": "Paris",
        "city": "Paris",
        "ISO3166-2-lvl6": "FR-75",
        "state": "Île-de-France",
        "ISO3166-2-lvl4": "FR-IDF",
        "region": "France métropolitaine",
        "postcode": "75007",
        "country": "France",
        "country_code": "fr",
    },
    "boundingbox": ["48.8574753", "48.8590453", "2.2933119", "2.2956897"],
}

PHOTON_EIFFEL = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [2.2944990543196795, 48.8582602]},
            "properties": {
                "osm_type": "W",
                "osm_id": 5013364,
                "extent": [2.2933084, 48.8590465, 2.2956897, 48.8574753],
                "country": "France",
                "osm_key": "man_made",
                "housenumber": "5",
                "city": "Paris",
                "street": "Avenue Anatole France",
                "countrycode": "FR",
                "osm_value": "tower",
                "postcode": "75007",
                "name": "Eiffel Tower",
                "county": "Paris",
                "state": "Île-de-France",
                "district": "Gros-Caillou",
                "type": "house",
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [2.2986, 48.8556]},
            "properties": {
                "osm_type": "W",
                "osm_id": 4208595,
                "country": "France",
                "osm_key": "leisure",
                "city": "Paris",
                "countrycode": "FR",
                "osm_value": "park",
                "postcode": "75007",
                "name": "Champ de Mars",
                "state": "Île-de-France",
                "type": "street",
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [2.2931, 48.8588]},
            "properties": {
                "osm_type": "W",
                "osm_id": 4077891,
                "country": "France",
                "osm_key": "highway",
                "city": "Paris",
                "countrycode": "FR",
                "osm_value": "secondary",
                "name": "Avenue Gustave Eiffel",
                "state": "Île-de-France",
                "type": "street",
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [2.3376, 48.8606]},
            "properties": {
                "osm_type": "W",
                "osm_id": 1,
                "country": "France",
                "osm_key": "tourism",
                "osm_value": "museum",
                "name": "Musée du Louvre",
                "city": "Paris",
                "countrycode": "FR",
                "type": "house",
            },
        },
    ],
}

GOOGLE_EIFFEL = {
    "plus_code": {"compound_code": "V75V+8Q Paris, France", "global_code": "8FW4V75V+8Q"},
    "results": [
        {
            "address_components": [
                {
                    "long_name": "Eiffel Tower",
                    "short_name": "Eiffel Tower",
                    "types": ["establishment", "point_of_interest", "tourist_attraction"],
                },
                {
                    "long_name": "Avenue Gustave Eiffel",
                    "short_name": "Av. Gustave Eiffel",
                    "types": ["route"],
                },
                {"long_name": "Paris", "short_name": "Paris", "types": ["locality", "political"]},
                {
                    "long_name": "Département de Paris",
                    "short_name": "Département de Paris",
                    "types": ["administrative_area_level_2", "political"],
                },
                {
                    "long_name": "Île-de-France",
                    "short_name": "IDF",
                    "types": ["administrative_area_level_1", "political"],
                },
                {"long_name": "France", "short_name": "FR", "types": ["country", "political"]},
                {"long_name": "75007", "short_name": "75007", "types": ["postal_code"]},
            ],
            "formatted_address": "Av. Gustave Eiffel, 75007 Paris, France",
            "geometry": {
                "location": {"lat": 48.8583701, "lng": 2.2944813},
                "location_type": "ROOFTOP",
                "viewport": {
                    "northeast": {"lat": 48.8597190802915, "lng": 2.295830280291502},
                    "southwest": {"lat": 48.8570211197085, "lng": 2.293132319708498},
                },
            },
            "place_id": "ChIJLU7jZClu5kcR4PcOOO6p3I0",
            "types": ["establishment", "point_of_interest", "tourist_attraction"],
        },
        {
            "address_components": [
                {"long_name": "5", "short_name": "5", "types": ["street_number"]},
                {
                    "long_name": "Avenue Anatole France",
                    "short_name": "Av. Anatole France",
                    "types": ["route"],
                },
                {"long_name": "Paris", "short_name": "Paris", "types": ["locality", "political"]},
                {"long_name": "France", "short_name": "FR", "types": ["country", "political"]},
            ],
            "formatted_address": "5 Av. Anatole France, 75007 Paris, France",
            "geometry": {"location": {"lat": 48.8582, "lng": 2.2951}, "location_type": "ROOFTOP"},
            "place_id": "ChIJ9QHGLuBv5kcRgk8OlXvlfK0",
            "types": ["street_address"],
        },
    ],
    "status": "OK",
}


def _json_body(provider: str, query: dict[str, list[str]]) -> dict[str, Any]:
    if provider == "photon":
        return PHOTON_EIFFEL
    if provider == "google":
        return GOOGLE_EIFFEL
    body = dict(NOMINATIM_EIFFEL)
    body["category" if query.get("format") == ["jsonv2"] else "class"] = "man_made"
    body["type"] = "tower"
    return body


EMPTY = {
    "photon": {"type": "FeatureCollection", "features": []},
    "nominatim": {"error": "Unable to geocode"},
    "google": {
        "plus_code": {"global_code": "5CFW2222+22"},
        "results": [],
        "status": "ZERO_RESULTS",
    },
}


class GeoServer:
    """Photon, Nominatim and Google on one local port, routed by the first path segment."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode: dict[str, str] = {"photon": "ok", "nominatim": "ok", "google": "ok"}
        self.first: dict[str, list[str]] = {}  # modes for a provider's next requests, in order
        self.on_request: Callable[[str], None] | None = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def endpoints(self) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port}"
        return {name: f"{base}/{name}" for name in self.mode}

    def count(self, provider: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["provider"] == provider)

    def times(self, provider: str) -> list[float]:
        with self.lock:
            return sorted(r["time"] for r in self.requests if r["provider"] == provider)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        provider = url.path.strip("/").split("/")[0]
        query = parse_qs(url.query)
        with self.lock:
            self.requests.append(
                {
                    "provider": provider,
                    "time": time.time(),
                    "path": url.path,
                    "query": query,
                    "agent": handler.headers.get("User-Agent"),
                }
            )
            queued = self.first.get(provider)
            mode = queued.pop(0) if queued else self.mode.get(provider, "404")
        if self.on_request is not None:
            self.on_request(provider)
        if mode == "reset":
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "timeout":
            time.sleep(1.5)
        status, body, headers = 200, b"", {"Content-Type": "application/json; charset=utf-8"}
        if mode == "ok":
            body = json.dumps(_json_body(provider, query)).encode()
        elif mode == "empty":
            body = json.dumps(EMPTY[provider]).encode()
        elif mode == "garbage":
            body = b"<html><body>Bad Gateway</body></html>"
        elif mode == "wrong-shape":
            body = b'{"unexpected": true}'
        elif mode in ("429", "429-soon"):
            status, headers["Retry-After"] = 429, "120" if mode == "429" else "1"
            body = b'{"error": "Too Many Requests"}'
        elif mode.isdigit():
            status, body = int(mode), b'{"error": "server error"}'
        with contextlib.suppress(OSError):
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[GeoServer]:
    geo = GeoServer()
    yield geo
    geo.close()


@pytest.fixture(autouse=True)
def no_google_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_MAPS_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def settings_for(server: GeoServer, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Places settings pointing at the local server, with fast pacing and short timeouts."""
    return {
        "cache": str(tmp_path / "cache" / "geocode.sqlite"),
        "cache_only": False,
        "precision": 3,
        "user_agent": "i2i-tests/1.0",
        "timeout": 0.5,
        "landmarks_radius_m": 1000,
        "rate_limits": {"nominatim": 0.0, "photon": 0.0, "google": 0.0},
        "endpoints": server.endpoints(),
        "retries": RETRIES,
        "backoff": 0.01,
        **extra,
    }


def photo(lat: float, lon: float) -> dict[str, Any]:
    return {"gps": {"lat": lat, "lon": lon, "altitude": None, "heading": None}}


def _locate_all(args: tuple[list[tuple[float, float]], list[str], dict[str, Any]]) -> list[dict]:
    """Worker: locate several photos in one process (one process per parallel job)."""
    positions, providers, settings = args
    return [locate(photo(lat, lon), providers, settings) for lat, lon in positions]


def in_processes(
    jobs: list[list[tuple[float, float]]], providers: list[str], settings: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run each job in its own process, all at once; the records of every job, flattened."""
    context = multiprocessing.get_context("fork")
    with context.Pool(len(jobs)) as pool:
        results = pool.map(_locate_all, [(job, providers, settings) for job in jobs])
    return [record for job in results for record in job]


def test_offline_names_paris_and_nice(tmp_path: Path) -> None:
    settings = {"cache": str(tmp_path / "c.sqlite")}
    paris = locate(photo(*PARIS), ["offline"], settings)
    nice = locate(photo(*NICE), ["offline"], settings)
    assert paris["provider"] == "offline" and paris["location"]["city"] == "Paris"
    assert paris["location"]["country_code"] == "FR"
    assert paris["location_formatted"] == "Paris, France"
    assert paris["fallback"] is False and paris["fallback_reason"] is None
    assert nice["location"]["city"] == "Nice"
    assert nice["location"]["state"] == "Provence-Alpes-Côte d'Azur"
    assert paris["attempts"] == [
        {"provider": "offline", "ok": True, "error": None, "from_cache": False}
    ]
    assert not (tmp_path / "c.sqlite").exists(), "offline alone never opens the cache"


def test_no_gps_record_says_so() -> None:
    record = locate({"gps": None}, ["photon", "offline"], {})
    assert record["has_gps"] is False and record["gps"] is None and record["location"] is None
    assert record["reason"] == "the photo has no GPS position"
    assert record["provider"] is None and record["attempts"] == [] and record["landmarks"] == []
    assert record["fallback"] is False


def test_photon_answer_with_landmarks(server: GeoServer, tmp_path: Path) -> None:
    record = locate(photo(*EIFFEL), ["photon"], settings_for(server, tmp_path))
    assert record["provider"] == "photon" and record["from_cache"] is False
    assert record["location"] == {
        "city": "Paris",
        "locality": "Gros-Caillou",
        "state": "Île-de-France",
        "country": "France",
        "country_code": "FR",
        "poi": "Eiffel Tower",
    }
    assert record["location_formatted"] == "Eiffel Tower, Paris, France"
    names = [mark["name"] for mark in record["landmarks"]]
    assert names == ["Eiffel Tower", "Champ de Mars"], "streets and far museums are left out"
    assert 0 < record["landmarks"][1]["distance_m"] <= 1000
    sent = server.requests[0]
    assert sent["path"] == "/photon/reverse" and sent["agent"] == "i2i-tests/1.0"
    assert sent["query"]["lat"] == ["48.858"] and sent["query"]["lon"] == ["2.295"]


def test_nominatim_answer_in_both_formats(server: GeoServer, tmp_path: Path) -> None:
    record = locate(photo(*EIFFEL), ["nominatim"], settings_for(server, tmp_path))
    assert record["location"]["poi"] == "Tour Eiffel" and record["location"]["city"] == "Paris"
    assert record["landmarks"][0]["name"] == "Tour Eiffel"
    assert record["landmarks"][0]["category"] == "man_made"
    assert server.requests[0]["query"]["addressdetails"] == ["1"]
    v2 = {**NOMINATIM_EIFFEL, "category": "man_made", "type": "tower"}
    assert nominatim_answer(v2)["location"]["country_code"] == "FR"


def test_google_needs_a_key_from_the_environment(
    server: GeoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(server, tmp_path)
    without = locate(photo(*EIFFEL), ["google", "offline"], settings)
    assert without["provider"] == "offline" and server.count("google") == 0
    assert "GOOGLE_MAPS_API_KEY" in without["attempts"][0]["error"]
    assert without["fallback"] is True and "no API key" in without["fallback_reason"]

    monkeypatch.setenv("GOOGLE_MAPS_API_KEY", "secret-key-123")
    record = locate(photo(*EIFFEL), ["google"], settings)
    assert record["provider"] == "google"
    assert record["location"]["poi"] == "Eiffel Tower" and record["location"]["state"]
    assert server.requests[-1]["query"]["key"] == ["secret-key-123"]
    assert record["landmarks"][0]["name"] == "Eiffel Tower"


def test_google_key_never_reaches_errors_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "secret-key-456")
    settings = {"cache": str(tmp_path / "c.sqlite"), "timeout": 0.5, "backoff": 0.01}
    settings["endpoints"] = {"google": f"http://127.0.0.1:{closed_port()}"}
    with caplog.at_level("DEBUG"):
        record = locate(photo(*EIFFEL), ["google", "offline"], settings)
    assert record["provider"] == "offline" and record["attempts"][0]["ok"] is False
    assert "secret-key-456" not in json.dumps(record)
    assert "retry 3 of 3" in caplog.text and "secret-key-456" not in caplog.text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("mode", "expected", "retried"),
    [
        ("timeout", "GeocoderTimedOut", True),
        ("429", "GeocoderRateLimited", False),  # Retry-After 120 s: longer than a retry waits
        ("500", "GeocoderServiceError", True),
        ("503", "GeocoderTimedOut", True),
        ("reset", "GeocoderUnavailable", True),
        ("garbage", "GeocoderParseError", False),
        ("wrong-shape", "KeyError", False),
        ("400", "GeocoderQueryError", False),
        ("403", "GeocoderInsufficientPrivileges", False),
        ("refused", "GeocoderUnavailable", True),
    ],
)
def test_failures_fall_through_and_are_recorded(
    server: GeoServer, tmp_path: Path, mode: str, expected: str, retried: bool
) -> None:
    settings = settings_for(server, tmp_path)
    if mode == "refused":
        settings["endpoints"] = {
            **server.endpoints(),
            "photon": f"http://127.0.0.1:{closed_port()}",
        }
    else:
        server.mode["photon"] = mode
    record = locate(photo(*EIFFEL), ["photon", "nominatim"], settings)
    assert record["provider"] == "nominatim"
    failed, answered = record["attempts"]
    assert failed["provider"] == "photon" and failed["ok"] is False
    assert failed["error"].startswith(expected), failed["error"]
    assert answered == {"provider": "nominatim", "ok": True, "error": None, "from_cache": False}
    assert record["fallback"] is True
    assert record["fallback_reason"].startswith(f"photon: {expected}")
    tries = 0 if mode == "refused" else 1 + RETRIES if retried else 1
    assert server.count("photon") == tries

    again = locate(photo(*PARIS), ["photon", "nominatim"], settings)
    assert "skipped after a recent failure" in again["attempts"][0]["error"]
    assert again["fallback"] is True and "skipped" in again["fallback_reason"]
    assert server.count("photon") == tries, "a failed provider rests"


@pytest.mark.parametrize("failures", [["503"], ["reset", "500"], ["timeout", "504"]])
def test_transient_failures_are_retried_with_backoff(
    server: GeoServer, tmp_path: Path, failures: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server.first["photon"] = list(failures)
    waits = record_sleeps(monkeypatch, i2i.stages.places, i2i.stages.places.cache)
    record = locate(photo(*EIFFEL), ["photon", "offline"], settings_for(server, tmp_path))
    assert record["provider"] == "photon" and record["location"]["poi"] == "Eiffel Tower"
    assert record["fallback"] is False and record["fallback_reason"] is None
    assert record["attempts"] == [
        {"provider": "photon", "ok": True, "error": None, "from_cache": False}
    ]
    assert server.count("photon") == len(failures) + 1
    assert sum(waits) < 1, f"back-off of 0.01 s, no long wait: {waits}"
    assert locate(photo(*EIFFEL), ["photon"], settings_for(server, tmp_path))["from_cache"]


def test_backoff_doubles_and_is_bounded(server: GeoServer, tmp_path: Path) -> None:
    server.mode["photon"] = "500"
    settings = settings_for(server, tmp_path, retries=3, backoff=0.2)
    record = locate(photo(*EIFFEL), ["photon"], settings)
    stamps = server.times("photon")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 4 and record["fallback"] is True
    for retry, gap in enumerate(gaps):
        wait = 0.2 * 2**retry
        assert wait / 2 - 0.02 <= gap <= wait + 0.5, gaps  # jitter: half to all of the wait


def test_short_retry_after_is_waited_for(server: GeoServer, tmp_path: Path) -> None:
    server.first["nominatim"] = ["429-soon"]
    record = locate(photo(*EIFFEL), ["nominatim"], settings_for(server, tmp_path))
    first, second = server.times("nominatim")
    assert record["provider"] == "nominatim" and record["fallback"] is False
    assert 0.95 <= second - first < 3, "Retry-After: 1 is longer than the backoff"


def test_retries_stop_when_another_job_gave_up(server: GeoServer, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path, backoff=0.3)
    server.mode["photon"] = "500"

    def another_job_gives_up(provider: str) -> None:
        with GeoCache(settings["cache"]) as cache:
            cache.cool_down(provider, 60, "HTTP 500 in another job")

    server.on_request = another_job_gives_up
    record = locate(photo(*EIFFEL), ["photon", "offline"], settings)
    assert server.count("photon") == 1
    assert record["provider"] == "offline" and record["fallback"] is True
    assert record["fallback_reason"].startswith(
        "photon: skipped after a recent failure: HTTP 500 in another job"
    )


def test_retry_finds_the_answer_another_job_stored(server: GeoServer, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path, backoff=0.3)
    server.first["photon"] = ["503"]

    def another_job_answers(provider: str) -> None:
        with GeoCache(settings["cache"]) as cache:
            cache.put(provider, cache_key(*EIFFEL, 3), {"location": {}, "landmarks": []})

    server.on_request = another_job_answers
    record = locate(photo(*EIFFEL), ["photon", "offline"], settings)
    assert server.count("photon") == 1, "the retry is answered from the cache"
    assert record["provider"] == "photon" and record["from_cache"] is True
    assert record["fallback"] is False


def test_retries_zero_asks_once(server: GeoServer, tmp_path: Path) -> None:
    server.mode["photon"] = "503"
    record = locate(photo(*EIFFEL), ["photon"], settings_for(server, tmp_path, retries=0))
    assert server.count("photon") == 1 and record["fallback"] is True


def test_no_result_is_cached_and_falls_through(server: GeoServer, tmp_path: Path) -> None:
    server.mode["nominatim"] = "empty"
    settings = settings_for(server, tmp_path)
    first = locate(photo(0.0, -30.0), ["nominatim", "offline"], settings)
    second = locate(photo(0.0001, -30.0001), ["nominatim", "offline"], settings)
    assert first["provider"] == second["provider"] == "offline"
    assert first["attempts"][0]["error"] == "no result for this position"
    assert first["fallback"] is second["fallback"] is False, "no result is not a failure"
    assert first["fallback_reason"] is None
    assert second["attempts"][0] == {
        "provider": "nominatim",
        "ok": False,
        "error": "no result for this position (cached)",
        "from_cache": True,
    }
    assert server.count("nominatim") == 1


def test_nothing_answers(server: GeoServer, tmp_path: Path) -> None:
    server.mode["photon"] = "500"
    record = locate(photo(*EIFFEL), ["photon"], settings_for(server, tmp_path))
    assert record["has_gps"] is True and record["provider"] is None
    assert record["reason"] == "no provider answered" and record["location_formatted"] == ""
    assert record["fallback"] is True
    assert record["fallback_reason"].startswith("photon: GeocoderServiceError")
    assert server.count("photon") == 1 + RETRIES


def test_nothing_found_anywhere_is_not_a_fallback(server: GeoServer, tmp_path: Path) -> None:
    server.mode["photon"] = server.mode["nominatim"] = "empty"
    record = locate(photo(0.0, -30.0), ["photon", "nominatim"], settings_for(server, tmp_path))
    assert record["provider"] is None and record["reason"] == "no provider answered"
    assert record["fallback"] is False and record["fallback_reason"] is None


def test_cache_is_shared_across_processes(server: GeoServer, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    first = in_processes([[EIFFEL]], ["photon"], settings)
    second = in_processes([[(EIFFEL[0] - 0.0002, EIFFEL[1] + 0.0002)]], ["photon"], settings)
    assert first[0]["from_cache"] is False and second[0]["from_cache"] is True
    assert second[0]["attempts"][0]["from_cache"] is True
    assert first[0]["location"] == second[0]["location"]
    assert server.count("photon") == 1


def test_threads_of_one_process_fetch_a_place_once(server: GeoServer, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    with ThreadPoolExecutor(6) as pool:
        records = list(pool.map(lambda _: locate(photo(*EIFFEL), ["photon"], settings), range(6)))
    assert server.count("photon") == 1
    assert sum(not r["from_cache"] for r in records) == 1
    assert len({r["location_formatted"] for r in records}) == 1


def test_cache_only_makes_no_request(server: GeoServer, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path, cache_only=True)
    cold = locate(photo(*EIFFEL), ["photon", "nominatim", "offline"], settings)
    assert cold["provider"] == "offline"
    assert [a["error"] for a in cold["attempts"][:2]] == ["not in cache (cache_only is set)"] * 2
    assert cold["fallback"] is True, "a provider not asked may answer once cache_only is off"
    assert server.requests == []

    locate(photo(*EIFFEL), ["nominatim"], {**settings, "cache_only": False})
    assert server.count("nominatim") == 1
    warm = locate(photo(*EIFFEL), ["photon", "nominatim", "offline"], settings)
    assert warm["provider"] == "nominatim" and warm["from_cache"] is True
    assert server.count("nominatim") == 1 and server.count("photon") == 0


def test_rate_limit_holds_across_processes(server: GeoServer, tmp_path: Path) -> None:
    interval = 0.3
    settings = settings_for(server, tmp_path, rate_limits={"nominatim": interval})
    jobs = [[(40.0 + job, 3.0 + i / 10) for i in range(3)] for job in range(3)]
    records = in_processes(jobs, ["nominatim"], settings)
    assert all(r["provider"] == "nominatim" for r in records)
    stamps = server.times("nominatim")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 9
    slack = 0.1  # process start-up and HTTP handling on a busy 2-core machine
    assert min(gaps) >= interval - slack, f"requests {min(gaps):.3f} s apart"
    assert stamps[-1] - stamps[0] >= 8 * interval - slack


def test_two_runs_of_100_photos_over_10_places(server: GeoServer, tmp_path: Path) -> None:
    """Acceptance: one request per place from the provider that answers, the second run cached."""
    rng = random.Random(7)
    places = [(43.0 + k / 10, 5.0 + k / 10) for k in range(10)]
    photos = [
        (lat + rng.uniform(-4e-4, 4e-4), lon + rng.uniform(-4e-4, 4e-4))
        for lat, lon in places
        for _ in range(10)
    ]
    rng.shuffle(photos)
    assert len({cache_key(lat, lon, 3) for lat, lon in photos}) == 10
    server.mode["nominatim"] = "500"
    providers = ["nominatim", "photon", "google", "offline"]
    settings = settings_for(server, tmp_path)
    jobs = [photos[i::4] for i in range(4)]

    first = in_processes(jobs, providers, settings)
    requests_first = {p: server.count(p) for p in ("nominatim", "photon", "google")}
    second = in_processes(jobs, providers, settings)
    requests_total = {p: server.count(p) for p in ("nominatim", "photon", "google")}

    assert all(r["provider"] == "photon" for r in first + second)
    assert requests_first["photon"] == 10 and requests_total["photon"] == 10
    # Nominatim fails: each of the parallel jobs may be on its tries (1 + retries) when the
    # first to give up rests it for all; after that, and in the whole second run, none is sent.
    assert RETRIES + 1 <= requests_first["nominatim"] <= len(jobs) * (RETRIES + 1)
    assert requests_total["nominatim"] == requests_first["nominatim"], requests_total
    assert requests_total["google"] == 0
    assert all(r["from_cache"] for r in second)
    assert sum(r["from_cache"] for r in first) == 90


def test_cache_survives_parallel_writers(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        pool.map(_write_many, [(str(path), worker) for worker in range(4)])
    with GeoCache(path) as cache:
        rows = cache.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        mode = cache.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == 4 * 50 and mode == "wal"


def _write_many(args: tuple[str, int]) -> None:
    path, worker = args
    with GeoCache(path) as cache:
        for i in range(50):
            cache.put("photon", cache_key(worker, i, 3), {"location": {}, "landmarks": []})


def test_bad_endpoint_names_the_provider(tmp_path: Path) -> None:
    settings = {"cache": str(tmp_path / "c.sqlite"), "endpoints": {"photon": "photon.local"}}
    with pytest.raises(I2IError, match=r"places\.endpoints\.photon"):
        locate(photo(*EIFFEL), ["photon"], settings)


def test_format_location_skips_repeats() -> None:
    location = {"poi": "Nice", "city": "Nice", "state": "PACA", "country": "France"}
    assert format_location(location) == "Nice, France"
    assert format_location({"city": None, "state": "PACA", "country": "France"}) == "PACA, France"
    assert format_location(None) == ""


# Well-known points: the city a person would name there, and the country. The GeoNames point
# nearest to most of them is a neighbourhood or a suburb (in brackets), which is what the
# offline geocoder used to draw on the image.
WELL_KNOWN = [
    ("Eiffel Tower", 48.8584, 2.2945, "Paris", "FR"),  # (Neuilly-sur-Seine; Vanves before)
    ("Puerta del Sol", 40.4169, -3.7035, "Madrid", "ES"),  # (Sol)
    ("Berlin, Alexanderplatz", 52.5200, 13.4050, "Berlin", "DE"),  # (Mitte)
    ("Brandenburg Gate", 52.5163, 13.3777, "Berlin", "DE"),  # (Tiergarten)
    ("Big Ben", 51.5007, -0.1246, "London", "GB"),  # (City of Westminster)
    ("Tower Bridge", 51.5055, -0.0754, "London", "GB"),  # (Whitechapel)
    ("Colosseum", 41.8902, 12.4922, "Rome", "IT"),
    ("Sagrada Família", 41.4036, 2.1744, "Barcelona", "ES"),  # (Sagrada Família)
    ("Charles Bridge", 50.0865, 14.4114, "Prague", "CZ"),  # (Malá Strana)
    ("Red Square", 55.7539, 37.6208, "Moscow", "RU"),
    ("Acropolis", 37.9715, 23.7257, "Athens", "GR"),
    ("Shibuya crossing", 35.6595, 139.7005, "Tokyo", "JP"),  # (Sakuragaokachō)
    ("Tokyo Tower", 35.6586, 139.7454, "Tokyo", "JP"),  # (Shibakōen)
    ("The Bund", 31.2400, 121.4900, "Shanghai", "CN"),  # (Hongkou)
    ("Forbidden City", 39.9163, 116.3972, "Beijing", "CN"),
    ("Tsim Sha Tsui", 22.2988, 114.1722, "Hong Kong", "HK"),  # (Tsim Sha Tsui)
    ("Marina Bay Sands", 1.2834, 103.8607, "Singapore", "SG"),  # (Marina Bay)
    ("Petronas Towers", 3.1579, 101.7116, "Kuala Lumpur", "MY"),  # (Kampung Baru)
    ("Gateway of India", 18.9220, 72.8347, "Mumbai", "IN"),  # (Uran, across the harbour)
    ("Taj Mahal", 27.1751, 78.0421, "Agra", "IN"),
    ("Hagia Sophia", 41.0086, 28.9802, "Istanbul", "TR"),  # (Eminönü)
    ("Times Square", 40.7580, -73.9855, "New York City", "US"),  # (Times Square)
    ("Brooklyn Bridge", 40.7061, -73.9969, "New York City", "US"),  # (Financial District)
    ("Golden Gate Bridge", 37.8199, -122.4783, "San Francisco", "US"),  # (Sausalito)
    ("Hollywood Sign", 34.1341, -118.3215, "Los Angeles", "US"),  # (Universal City)
    ("Cloud Gate", 41.8827, -87.6233, "Chicago", "US"),  # (Chicago Loop)
    ("CN Tower", 43.6426, -79.3871, "Toronto", "CA"),  # (Waterfront Communities-The Island)
    ("Zócalo", 19.4326, -99.1332, "Mexico City", "MX"),
    ("Christ the Redeemer", -22.9519, -43.2105, "Rio de Janeiro", "BR"),  # (Rocinha)
    ("Copacabana", -22.9711, -43.1822, "Rio de Janeiro", "BR"),  # (Rocinha)
    ("Avenida Paulista", -23.5614, -46.6559, "São Paulo", "BR"),  # (Bela Vista)
    ("Obelisco", -34.6037, -58.3816, "Buenos Aires", "AR"),
    ("Table Mountain", -33.9628, 18.4098, "Cape Town", "ZA"),  # (Newlands)
    ("V&A Waterfront", -33.9036, 18.4207, "Cape Town", "ZA"),
    ("Pyramids of Giza", 29.9792, 31.1342, "Giza", "EG"),  # (Kirdāsah)
    ("Jemaa el-Fnaa", 31.6258, -7.9892, "Marrakesh", "MA"),
    ("Nairobi CBD", -1.2864, 36.8172, "Nairobi", "KE"),
    ("Sydney Opera House", -33.8568, 151.2153, "Sydney", "AU"),  # (The Rocks)
    ("Bondi Beach", -33.8908, 151.2743, "Sydney", "AU"),  # (Bondi Beach)
    ("Flinders Street", -37.8183, 144.9671, "Melbourne", "AU"),  # (Melbourne City Centre)
    ("Sky Tower", -36.8485, 174.7622, "Auckland", "NZ"),
]

# Places that keep their own name: villages and towns far from any city, and towns that are
# cities of their own next to a larger one (in another region, or in their own centre).
OWN_NAME = [
    ("Zermatt", 46.0207, 7.7491, "Zermatt", "CH"),
    ("Grindelwald", 46.6242, 8.0414, "Grindelwald", "CH"),
    ("Giethoorn", 52.7402, 6.0781, "Giethoorn", "NL"),
    ("Reine, Lofoten", 67.9324, 13.0887, "Reine", "NO"),
    ("Banff", 51.1784, -115.5708, "Banff", "CA"),
    ("Yulara, by Uluru", -25.2400, 130.9890, "Yulara", "AU"),
    ("Queenstown", -45.0312, 168.6626, "Queenstown", "NZ"),
    ("Cape Canaveral launch pad", 28.5619, -80.5772, "Cape Canaveral", "US"),  # 17.6 km away
    ("Kawasaki station, next to Tokyo", 35.5313, 139.6969, "Kawasaki", "JP"),
    ("Yokohama Minato Mirai", 35.4576, 139.6323, "Yokohama", "JP"),
    ("Newark Penn Station", 40.7347, -74.1644, "Newark", "US"),
    ("Hoboken, across from Manhattan", 40.7440, -74.0324, "Hoboken", "US"),
    ("Harvard Square", 42.3736, -71.1190, "Cambridge", "US"),
    ("Oakland City Hall", 37.8053, -122.2725, "Oakland", "US"),
    ("Versailles Palace", 48.8049, 2.1204, "Versailles", "FR"),
    ("Saint-Denis Basilica", 48.9356, 2.3597, "Saint-Denis", "FR"),
    ("Sanssouci, Potsdam", 52.4043, 13.0385, "Potsdam", "DE"),
    ("Kehl, across the Rhine from Strasbourg", 48.5728, 7.8155, "Kehl", "DE"),
    ("Guarulhos, next to São Paulo", -23.4628, -46.5333, "Guarulhos", "BR"),
    ("Sharjah, next to Dubai", 25.3463, 55.4209, "Sharjah", "AE"),
]


@pytest.mark.parametrize(
    ("lat", "lon", "city", "country_code"),
    [pytest.param(*point[1:], id=point[0]) for point in WELL_KNOWN],
)
def test_offline_names_the_city_a_person_would_say(
    lat: float, lon: float, city: str, country_code: str
) -> None:
    record = locate(photo(lat, lon), ["offline"], {})
    assert record["location"]["city"] == city
    assert record["location"]["country_code"] == country_code
    assert record["location_formatted"].startswith(city)


@pytest.mark.parametrize(
    ("lat", "lon", "city", "country_code"),
    [pytest.param(*point[1:], id=point[0]) for point in OWN_NAME],
)
def test_villages_and_neighbouring_towns_keep_their_own_name(
    lat: float, lon: float, city: str, country_code: str
) -> None:
    location = locate(photo(lat, lon), ["offline"], {})["location"]
    assert (location["city"], location["country_code"]) == (city, country_code)


def test_at_least_twenty_well_known_points_on_every_continent() -> None:
    assert len(WELL_KNOWN) >= 20
    continents = {
        "Europe": {"FR", "ES", "DE", "GB", "IT", "CZ", "RU", "GR", "TR"},
        "Asia": {"JP", "CN", "HK", "SG", "MY", "IN"},
        "North America": {"US", "CA", "MX"},
        "South America": {"BR", "AR"},
        "Africa": {"ZA", "EG", "MA", "KE"},
        "Oceania": {"AU", "NZ"},
    }
    codes = {point[4] for point in WELL_KNOWN}
    assert all(codes & members for members in continents.values())


def test_the_finer_name_is_kept_as_locality() -> None:
    settings = PlaceSettings()
    sol = offline_provider(40.4169, -3.7035, settings)
    assert sol["location"]["city"] == "Madrid" and sol["location"]["locality"] == "Sol"
    mitte = offline_provider(52.5200, 13.4050, settings)
    assert mitte["location"]["city"] == "Berlin" and mitte["location"]["locality"] == "Mitte"
    times = offline_provider(40.7580, -73.9855, settings)
    assert times["location"]["locality"] == "Times Square"
    assert times["distance_km"] < 0.5 < 5 < times["city_distance_km"] < 6
    assert locate(photo(40.7580, -73.9855), ["offline"], {})["location_formatted"] == (
        "New York City, United States"
    )


def test_locality_only_when_the_photo_lies_in_it() -> None:
    """The nearest place across the water is no finer name for the Golden Gate Bridge."""
    bridge = offline_provider(37.8199, -122.4783, PlaceSettings())["location"]
    assert bridge["city"] == "San Francisco" and bridge["locality"] is None
    paris = offline_provider(*PARIS, PlaceSettings())["location"]
    assert paris["city"] == "Paris" and paris["locality"] is None, "no repeat of the city"


def test_offline_measures_great_circle_distances() -> None:
    """reverse_geocode compares degrees, so near the Eiffel Tower it found Vanves (3.9 km)
    rather than Neuilly-sur-Seine (3.4 km); the Tower lies in neither, so no locality."""
    eiffel = offline_provider(*EIFFEL, PlaceSettings())
    assert eiffel["distance_km"] == pytest.approx(3.434, abs=0.01)
    assert eiffel["location"]["locality"] is None
    assert eiffel["location"]["city"] == "Paris"


def test_far_from_every_place_names_no_city() -> None:
    ocean = offline_provider(0.0, -30.0, PlaceSettings())
    assert ocean["location"]["city"] is None and ocean["location"]["locality"] is None
    assert ocean["location"]["country_code"] == "BR" and ocean["distance_km"] > 50
    assert ocean["city_distance_km"] is None


def test_reach_grows_with_the_square_root_of_the_population() -> None:
    assert reach_km(0) == pytest.approx(1.0)
    assert reach_km(10_000) == pytest.approx(1.75)
    assert reach_km(2_138_551) == pytest.approx(11.97, abs=0.01)
    table = geonames()
    assert len(table.places) > 100_000 and table.population.min() >= 0


def test_offline_answers_are_stable() -> None:
    points = [point[1:3] for point in WELL_KNOWN + OWN_NAME]
    first = [offline_provider(lat, lon, PlaceSettings()) for lat, lon in points]
    second = [offline_provider(lat, lon, PlaceSettings()) for lat, lon in reversed(points)]
    assert first == second[::-1]


# --- the photos provider: what Apple Photos knows -------------------------------------------

ST_JAMES = (51.5025, -0.1348)
APPLE_PLACE: dict[str, Any] = {
    "name": "St James's Park, London, England, United Kingdom",
    "country": "United Kingdom",
    "country_code": "gb",
    "state": "England",
    "city": "London",
    "locality": "City of Westminster",
    "areas_of_interest": ["St James's Park", "The Mall"],
}


def from_photos(gps: tuple[float, float] | None, place: dict[str, Any] | None) -> dict[str, Any]:
    """A metadata record in Apple Photos mode, with or without a GPS position."""
    apple = {"uuid": "3DD2C897", "title": None, "keywords": [], "persons": [], "place": place}
    record = photo(*gps) if gps else {"gps": {"lat": None, "lon": None}}
    return {**record, "apple_photos": apple}


def test_photos_answers_from_apple_photos_offline_and_uncached(tmp_path: Path) -> None:
    settings = {"cache": str(tmp_path / "c.sqlite"), "landmarks_radius_m": 0}
    record = locate(from_photos(ST_JAMES, APPLE_PLACE), ["photos", "offline"], settings)
    assert record["provider"] == "photos" and record["from_cache"] is False
    assert record["location"] == {
        "city": "London",
        "locality": "City of Westminster",
        "state": "England",
        "country": "United Kingdom",
        "country_code": "GB",
        "poi": "St James's Park",
    }
    assert record["location_formatted"] == "St James's Park, London, United Kingdom"
    assert record["landmarks"] == [
        {
            "name": name,
            "category": "apple_photos",
            "type": "area_of_interest",
            "lat": None,
            "lon": None,
            "distance_m": None,
        }
        for name in ("St James's Park", "The Mall")
    ], "no coordinates: kept whatever the radius, in Photos' order"
    assert record["attempts"] == [
        {"provider": "photos", "ok": True, "error": None, "from_cache": False}
    ]
    assert record["has_gps"] is True and record["gps"] == {"lat": ST_JAMES[0], "lon": ST_JAMES[1]}
    assert record["fallback"] is False
    assert not (tmp_path / "c.sqlite").exists(), "photos never opens the geocode cache"


def test_photos_locality_only_when_it_differs_from_the_city(tmp_path: Path) -> None:
    place = {**APPLE_PLACE, "locality": "London", "areas_of_interest": []}
    record = locate(from_photos(ST_JAMES, place), ["photos"], {"cache": str(tmp_path / "c")})
    assert record["location"]["locality"] is None and record["location"]["poi"] is None
    assert record["landmarks"] == []
    assert record["location_formatted"] == "London, United Kingdom"


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        (photo(*ST_JAMES), "not a photo from Apple Photos"),
        (from_photos(ST_JAMES, None), "Apple Photos has no place for this photo"),
        (
            from_photos(ST_JAMES, {"name": "", "areas_of_interest": []}),
            "the Apple Photos place names nothing",
        ),
    ],
    ids=["folder mode", "no place", "empty place"],
)
def test_photos_without_a_place_is_no_result_and_the_chain_goes_on(
    tmp_path: Path, metadata: dict[str, Any], error: str
) -> None:
    record = locate(metadata, ["photos", "offline"], {"cache": str(tmp_path / "c.sqlite")})
    assert record["provider"] == "offline" and record["location"]["city"] == "London"
    assert record["attempts"] == [
        {"provider": "photos", "ok": False, "error": error, "from_cache": False},
        {"provider": "offline", "ok": True, "error": None, "from_cache": False},
    ]
    assert record["fallback"] is False, "no place is not a failure"
    assert record["fallback_reason"] is None


def test_photos_answers_for_a_photo_without_gps(tmp_path: Path) -> None:
    settings = {"cache": str(tmp_path / "c.sqlite")}
    for providers in (["photos", "offline"], ["offline", "photos"], ["photon", "photos"]):
        record = locate(from_photos(None, APPLE_PLACE), providers, settings)
        assert record["provider"] == "photos" and record["location"]["city"] == "London"
        assert record["has_gps"] is False and record["gps"] is None
        assert [a["provider"] for a in record["attempts"]] == ["photos"], "the rest need GPS"
        assert record["landmarks"][0]["distance_m"] is None
    nothing = locate(from_photos(None, None), ["photos", "offline"], settings)
    assert nothing["provider"] is None and nothing["location"] is None
    assert nothing["reason"] == "the photo has no GPS position"
    assert nothing["attempts"][0]["error"] == "Apple Photos has no place for this photo"
    assert nothing["fallback"] is False
    without_photos = locate(from_photos(None, APPLE_PLACE), ["offline"], settings)
    assert without_photos["provider"] is None and without_photos["attempts"] == []


def test_photos_is_never_asked_of_the_network(server: GeoServer, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    record = locate(from_photos(EIFFEL, APPLE_PLACE), ["photos", "photon"], settings)
    assert record["provider"] == "photos" and server.requests == []
    folder = locate(photo(*EIFFEL), ["photos", "photon"], settings)
    assert folder["provider"] == "photon" and server.count("photon") == 1
    assert folder["location"]["poi"] == "Eiffel Tower"


def test_nearby_keeps_landmarks_of_unknown_distance_after_the_measured() -> None:
    marks = [
        {"name": "Far", "lat": 48.9, "lon": 2.4},
        {"name": "Area", "lat": None, "lon": None},
        {"name": "Champ de Mars", "lat": 48.8556, "lon": 2.2986},
        {"name": "Eiffel Tower", "lat": 48.8583, "lon": 2.2945},
        {"name": "Area", "lat": 48.8584, "lon": 2.2945},
    ]
    found = nearby(marks, *EIFFEL, 1000)
    assert [(m["name"], m["distance_m"]) for m in found] == [
        ("Eiffel Tower", 11),
        ("Champ de Mars", 432),
        ("Area", None),
    ]
    assert [m["distance_m"] for m in nearby(marks[2:4], None, None, 1000)] == [None, None]
