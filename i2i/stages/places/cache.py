"""The places stage's shared state on disk: geocoder answers, request pacing, cool-downs.

One SQLite file (WAL mode, busy timeout) is shared by every places job, each job being its own
process or a thread of the Snakemake process (the per-image rules run in threads). It holds:

- ``answers``: one row per (provider, rounded lat, rounded lon). A provider's definite "nothing
  here" (Nominatim's "Unable to geocode", Google's ZERO_RESULTS, an empty Photon collection) is
  cached as a negative answer: it is as stable as a positive one and asking again would only
  spend quota. Errors (timeouts, 429, 5xx, unreadable bodies) are never cached.
- ``providers``: per provider, the time the next request may start (the cross-process rate
  limit) and a cool-down after a failure so that hundreds of queued jobs do not each wait for
  the same dead server.

A job reserves its request slot in an ``IMMEDIATE`` transaction (read the next free time, push
it one interval further, commit) and then sleeps outside the transaction, so no lock is held
while waiting. SQLite's own locks are taken without blocking (a busy timeout retries them), so
any number of processes, threads and workflow folders can share the file.

Fetches of the same key are made one at a time: a per-slot thread lock (a hash of the key picks
one of ``LOCK_SLOTS`` slots), then ``flock`` on that slot's file in the ``<cache>.locks``
folder, opened anew for each fetch. ``flock`` belongs to the open file, so it excludes threads
of one process as well as other processes, the kernel drops it when a process dies, and unlike
POSIX record locks (``lockf``), which belong to the whole process, it has no deadlock detection
that could fail a wait with ``EDEADLK`` when threads of two processes wait on each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import I2IError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 60.0
LOCK_SLOTS = 256
LOCKS_SUFFIX = ".locks"

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    provider TEXT NOT NULL,
    lat TEXT NOT NULL,
    lon TEXT NOT NULL,
    found INTEGER NOT NULL,
    answer TEXT,
    stored_at REAL NOT NULL,
    PRIMARY KEY (provider, lat, lon)
);
CREATE TABLE IF NOT EXISTS providers (
    provider TEXT PRIMARY KEY,
    next_request_at REAL NOT NULL DEFAULT 0,
    down_until REAL NOT NULL DEFAULT 0,
    down_reason TEXT
);
"""

Key = tuple[str, str]

_guard = threading.Lock()
_thread_locks: dict[Path, threading.Lock] = {}


def _thread_lock(path: Path) -> threading.Lock:
    """This process's thread lock for the lock file ``path``."""
    with _guard:
        return _thread_locks.setdefault(path, threading.Lock())


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    """Hold ``path`` locked against every other thread and process (waits for it)."""
    with _thread_lock(path):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


@dataclass(frozen=True)
class Cached:
    """A stored answer; ``answer`` is None for a cached "no result"."""

    answer: dict[str, Any] | None


def cache_key(lat: float, lon: float, precision: int) -> Key:
    """Coordinates rounded to ``precision`` decimals, as fixed-point text (``-0`` folded)."""
    return _fixed(lat, precision), _fixed(lon, precision)


def _fixed(value: float, precision: int) -> str:
    return f"{round(value, precision) + 0.0:.{precision}f}"


class GeoCache:
    """The SQLite cache at ``path`` (created with its folder on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> GeoCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (opened, in WAL mode, on first use)."""
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _retry_locked(lambda: db.execute("PRAGMA journal_mode = WAL"))
            db.execute("PRAGMA synchronous = NORMAL")
            _retry_locked(lambda: db.executescript(SCHEMA))
        except (OSError, sqlite3.Error) as exc:
            raise I2IError(f"places cache {self.path}: cannot open it ({exc})") from exc
        return db

    def close(self) -> None:
        """Close the database connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def get(self, provider: str, key: Key) -> Cached | None:
        """The stored answer for ``key``, or None when it was never stored."""
        row = self.db.execute(
            "SELECT found, answer FROM answers WHERE provider = ? AND lat = ? AND lon = ?",
            (provider, *key),
        ).fetchone()
        if row is None:
            return None
        return Cached(json.loads(row[1]) if row[0] else None)

    def put(self, provider: str, key: Key, answer: dict[str, Any] | None) -> None:
        """Store an answer (None: the provider has nothing there)."""
        self.db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
            (
                provider,
                *key,
                answer is not None,
                None if answer is None else json.dumps(answer, ensure_ascii=False),
                time.time(),
            ),
        )

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def reserve(self, provider: str, interval: float) -> float:
        """Book the next request slot for ``provider``; returns the seconds to wait for it."""
        with self._immediate() as db:
            now = time.time()
            row = db.execute(
                "SELECT next_request_at FROM providers WHERE provider = ?", (provider,)
            ).fetchone()
            slot = max(now, row[0] if row else 0.0)
            db.execute(
                "INSERT INTO providers (provider, next_request_at) VALUES (?, ?) "
                "ON CONFLICT (provider) DO UPDATE SET next_request_at = excluded.next_request_at",
                (provider, slot + interval),
            )
        return slot - now

    def wait_turn(self, provider: str, interval: float) -> None:
        """Sleep until this process may send its next request to ``provider``."""
        if interval <= 0:
            return
        delay = self.reserve(provider, interval)
        if delay > 0:
            log.debug("places: waiting %.2f s for the %s rate limit", delay, provider)
            time.sleep(delay)

    def cool_down(self, provider: str, seconds: float, reason: str) -> None:
        """Skip ``provider`` in every job for ``seconds`` after a failure."""
        self.db.execute(
            "INSERT INTO providers (provider, down_until, down_reason) VALUES (?, ?, ?) "
            "ON CONFLICT (provider) DO UPDATE SET down_until = excluded.down_until, "
            "down_reason = excluded.down_reason",
            (provider, time.time() + seconds, reason),
        )

    def down(self, provider: str) -> str | None:
        """Why ``provider`` is cooling down, or None when it may be asked."""
        row = self.db.execute(
            "SELECT down_until, down_reason FROM providers WHERE provider = ?", (provider,)
        ).fetchone()
        if row is None or row[0] <= time.time():
            return None
        return f"{row[1]} (skipped for another {row[0] - time.time():.0f} s)"

    def slot_file(self, provider: str, key: Key) -> Path:
        """The lock file of the slot that (``provider``, ``key``) falls in."""
        slot = zlib.crc32(f"{provider}|{key[0]}|{key[1]}".encode()) % LOCK_SLOTS
        return self.path.with_name(self.path.name + LOCKS_SUFFIX) / f"{slot:03d}.lock"

    @contextlib.contextmanager
    def key_lock(self, provider: str, key: Key) -> Iterator[None]:
        """Hold the lock of one (provider, key) across threads and processes while fetching it."""
        path = self.slot_file(provider, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise I2IError(f"places cache: cannot create {path.parent} ({exc})") from exc
        with _flocked(path):
            yield


def _retry_locked(action: Any, attempts: int = 50) -> Any:
    """Run ``action``, retrying while another process holds a lock it needs."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return None
