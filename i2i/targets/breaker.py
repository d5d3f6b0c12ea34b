"""A circuit breaker in front of a publish target, shared by the jobs of a run on one host.

A dead endpoint costs every job its whole timeout and retries (45 s an image by default),
while it holds a core. The breaker counts connection failures in a row (:class:`Unreachable`:
no connection, no answer) in a small state file, one per host and target, under the run's
folder (``.i2i/breaker``); any answer from the target, an error included, sets the count back
to zero. From :data:`THRESHOLD` failures in a row on, every operation fails at once with
:class:`BreakerOpen`, without a connection. The workflow empties the folder when a run
starts, so the next run tries again; on a cluster each node keeps its own count.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from i2i import I2IError
from i2i.core.files import read_json, write_json

log = logging.getLogger(__name__)

THRESHOLD = 5
#: The ``publish`` setting that names the breaker's folder; the workflow sets it for its jobs
#: (there is no breaker without it: ``i2i publish`` audits, tests).
SETTING = "breaker_dir"


class Unreachable(I2IError):
    """The target could not be reached: no connection, or no answer in time."""


class BreakerOpen(I2IError):
    """The target failed too often in a row in this run: not tried again until the next."""


@dataclass(frozen=True)
class Breaker:
    """The breaker of one target on this host; ``path`` None: none (nothing is counted)."""

    target: str
    path: Path | None = None
    threshold: int = THRESHOLD

    @classmethod
    def in_folder(cls, folder: str | None, target: str) -> Breaker:
        """The breaker of ``target`` on this host under ``folder`` (None: no breaker)."""
        if not folder:
            return cls(target)
        digest = hashlib.sha256(target.encode()).hexdigest()[:12]
        return cls(target, Path(folder) / f"{socket.gethostname()}.{digest}.json")

    def failures(self) -> int:
        """Connection failures in a row so far in this run."""
        if self.path is None:
            return 0
        try:
            return int(read_json(self.path)["failures"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def check(self) -> None:
        """Raise :class:`BreakerOpen` when the breaker is open."""
        failures = self.failures()
        if failures >= self.threshold:
            raise BreakerOpen(
                f"{self.target}: not tried, {failures} connection failures in a row in this run "
                f"on {socket.gethostname()} (the next run tries again)"
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Path]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield self.path

    def failed(self) -> None:
        """Count one more connection failure; say so once when the breaker opens."""
        if self.path is None:
            return
        with self._locked() as path:
            failures = self.failures() + 1
            write_json(path, {"target": self.target, "failures": failures})
        if failures == self.threshold:
            log.error(
                "%s: %d connection failures in a row: the breaker is open, the rest of this "
                "run's uploads there fail at once",
                self.target,
                failures,
            )

    def answered(self) -> None:
        """The target answered: the count starts again from zero."""
        if self.path is None or not self.failures():
            return
        with self._locked() as path:
            write_json(path, {"target": self.target, "failures": 0})

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block unless the breaker is open; count how it ends."""
        self.check()
        try:
            yield
        except Unreachable:
            self.failed()
            raise
        except I2IError:
            self.answered()
            raise
        self.answered()


def reset(folder: str | Path) -> None:
    """Close every breaker under ``folder`` (a run starts)."""
    shutil.rmtree(folder, ignore_errors=True)
