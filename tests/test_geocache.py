"""The shared geocode cache under many processes, threads and workflow folders at once."""

from __future__ import annotations

import errno
import itertools
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_long_runs import long_workflow
from test_places import GeoServer

from i2i import I2IError
from i2i.stages.places.cache import Cached, GeoCache, Key, cache_key

PROCESSES = 4
THREADS = 6
KEYS = [cache_key(40.0 + k / 10, 3.0 + k / 10, 3) for k in range(16)]
INTERVAL = 0.1


def answer_for(key: Key) -> dict[str, Any]:
    return {"location": {"city": f"{key[0]},{key[1]}"}, "landmarks": []}


def _lookup_or_fetch(cache: GeoCache, key: Key, fetches: list, errors: list) -> None:
    """What ``places.ask_network`` does: the cache, else one fetch per key under its lock."""
    cached = cache.get("p", key)
    if cached is None:
        with cache.key_lock("p", key):
            cached = cache.get("p", key)
            if cached is None:
                cache.wait_turn("p", INTERVAL)
                fetches.append((time.time(), key))
                cache.put("p", key, answer_for(key))
                return
    if cached.answer != answer_for(key):
        errors.append(f"wrong answer for {key}: {cached.answer}")


def _churn(cache: GeoCache, key: Key, markers: Path, errors: list) -> None:
    """Hold a key's lock briefly; a marker file proves nobody else holds it meanwhile."""
    with cache.key_lock("q", key):
        marker = markers / f"{key[0]}_{key[1]}"
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            errors.append(f"two holders of the lock of {key}")
            return
        time.sleep(0.001)
        marker.unlink()


def _hammer(args: tuple[str, int]) -> tuple[list, list]:
    """One process: threads that look up, store, fetch (rate-limited) and churn the locks."""
    path, seed = args
    fetches: list = []
    errors: list = []
    markers = Path(path).with_name("markers")

    def thread(number: int) -> None:
        rng = random.Random(seed * 100 + number)
        try:
            with GeoCache(path) as cache:
                for step in range(60):
                    key = rng.choice(KEYS)
                    _lookup_or_fetch(cache, key, fetches, errors)
                    _churn(cache, rng.choice(KEYS[:4]), markers, errors)
                    own = cache_key(seed, number * 1000 + step, 3)
                    cache.put("own", own, {"step": step})
                    if cache.get("own", own) != Cached({"step": step}):
                        errors.append(f"lost store {own}")
                    if step % 20 == 0:
                        cache.cool_down("down", 0.5, "test")
                        cache.down("down")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return fetches, errors


def test_processes_and_threads_hammer_one_cache(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "geocode.sqlite"
    (tmp_path / "shared" / "markers").mkdir(parents=True)
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.map(_hammer, [(str(path), seed) for seed in range(PROCESSES)])
    fetches = sorted(f for job, _ in results for f in job)
    errors = [e for _, job in results for e in job]
    assert errors == []
    assert sorted(key for _, key in fetches) == sorted(KEYS), "each key fetched exactly once"
    stamps = [stamp for stamp, _ in fetches]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    slack = 0.07  # a thread waking from its wait on a busy 2-core machine
    assert min(gaps) >= INTERVAL - slack, f"requests {min(gaps):.3f} s apart"
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) * INTERVAL - slack
    with GeoCache(path) as cache:
        rows = cache.db.execute("SELECT COUNT(*) FROM answers WHERE provider = 'own'").fetchone()
        assert rows[0] == PROCESSES * THREADS * 60
        assert all(cache.get("p", key).answer == answer_for(key) for key in KEYS)


HOLD_KEY = """
import sys, time
from i2i.stages.places.cache import GeoCache, cache_key
with GeoCache(sys.argv[1]) as cache, cache.key_lock("p", cache_key(1, 2, 3)):
    print("held", flush=True)
    time.sleep(600)
"""


def test_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    path = tmp_path / "geocode.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_KEY, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    taken = threading.Event()

    def take() -> None:
        with GeoCache(path) as cache, cache.key_lock("p", cache_key(1, 2, 3)):
            taken.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    assert not taken.wait(0.5), "the lock is held by the child"
    child.kill()
    child.wait()
    assert taken.wait(10), "the kernel released the lock of the killed process"


def test_lock_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "geocode.sqlite"
    (tmp_path / "geocode.sqlite.locks").write_text("not a folder")
    with (
        GeoCache(path) as cache,
        pytest.raises(I2IError, match="places cache") as error,
        cache.key_lock("p", cache_key(1, 2, 3)),
    ):
        pass
    assert getattr(error.value.__cause__, "errno", None) in (errno.EEXIST, errno.ENOTDIR)


@pytest.mark.workflow
def test_two_workflows_share_one_cache(tmp_path: Path) -> None:
    server = GeoServer()
    try:
        shared = tmp_path / "shared" / "geocode.sqlite"
        settings = {
            "places": {
                "providers": ["photon", "offline"],
                "cache": str(shared),
                "endpoints": {"photon": server.endpoints()["photon"]},
                "rate_limits": {"photon": 0.05},
                "timeout": 5,
            }
        }
        workdirs = [long_workflow(tmp_path / name) for name in ("one", "two")]
        runs = []
        for workdir in workdirs:
            (workdir / "shared.yaml").write_text(json.dumps(settings), encoding="utf-8")
            runs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "snakemake", "--cores", "2", *SHARED],
                    cwd=workdir,
                    stdout=(workdir / "run.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        codes = [run.wait(timeout=600) for run in runs]
        for workdir, code in zip(workdirs, codes, strict=True):
            assert code == 0, (workdir / "run.log").read_text()[-4000:]
        records = [places_records(workdir) for workdir in workdirs]
        assert records[0].keys() == records[1].keys() and len(records[0]) == 30
        located = [r for r in records[0].values() if r["has_gps"]]
        assert located and all(r["provider"] == "photon" for r in located)
        for name, record in records[0].items():
            assert {k: record[k] for k in SAME} == {k: records[1][name][k] for k in SAME}
        keys = {cache_key(r["gps"]["lat"], r["gps"]["lon"], 3) for r in located}
        assert server.count("photon") == len(keys), "each place fetched once for both folders"
        fetched = [not r["from_cache"] for rs in records for r in rs.values() if r["has_gps"]]
        assert sum(fetched) == len(keys)
    finally:
        server.close()


SHARED = ("--configfile", "shared.yaml", "--config", "styles=[cartoon]")
SAME = ("gps", "location", "location_formatted", "landmarks", "provider")


def places_records(workdir: Path) -> dict[str, dict[str, Any]]:
    root = workdir / "results" / "places"
    return {
        str(p.relative_to(root)): json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(root.rglob("*.json"))
    }
