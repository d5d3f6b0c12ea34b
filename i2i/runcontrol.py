"""Graceful stop of a running workflow: the stop file, and SIGTERM without a deadlock.

``i2i stop`` creates the stop file. A thread that the Snakefile's ``onstart`` handler starts
sees it and asks Snakemake's scheduler for a graceful stop: the jobs in flight finish, nothing
new starts. The next run removes a stale stop file and resumes.

Snakemake's own SIGTERM handler takes the scheduler's lock (a plain, non-reentrant
``threading.Lock``) in the main thread; when the signal lands while the scheduler loop holds
that lock, the process deadlocks (seen here: one run in a few). :func:`install` replaces that
handler with one that asks for the same graceful stop from a helper thread.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

STOP_FILE = Path(".i2i") / "stop"
POLL_SECONDS = 1.0

_requested = threading.Event()


def request_stop(workdir: str | os.PathLike[str] = ".") -> Path:
    """Create the stop file in ``workdir``; return its path."""
    path = Path(workdir) / STOP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stop requested\n", encoding="utf-8")
    return path


def clear_stop(workdir: str | os.PathLike[str] = ".") -> bool:
    """Remove a stale stop file; True if there was one."""
    path = Path(workdir) / STOP_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _watch(path: Path, poll: float, stop: Callable[[], None], ended: threading.Event) -> None:
    while not ended.wait(poll):
        if path.exists():
            log.warning(
                "stop file %s found: finishing the jobs in flight, starting no new ones", path
            )
            path.unlink(missing_ok=True)
            _requested.set()
            stop()
            return


def watch_stop_file(
    stop: Callable[[], None], workdir: str | os.PathLike[str] = ".", poll: float = POLL_SECONDS
) -> threading.Event:
    """Start the watcher thread (a daemon) that calls ``stop``; set the returned event to end it."""
    if clear_stop(workdir):
        log.info("removed a stop file left by an earlier run")
    ended = threading.Event()
    thread = threading.Thread(
        target=_watch,
        args=(Path(workdir) / STOP_FILE, poll, stop, ended),
        daemon=True,
        name="i2i-stop-watcher",
    )
    thread.start()
    return ended


def sigterm_in_thread(stop: Callable[[], None]) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that runs ``stop`` in a new thread instead of the interrupted one."""

    def handler(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop, name="i2i-sigterm", daemon=True).start()

    return handler


def install(stop: Callable[[], None], workdir: str | os.PathLike[str] = ".") -> threading.Event:
    """From ``onstart``: graceful stop on SIGTERM (deadlock-free) and on the stop file."""
    signal.signal(signal.SIGTERM, sigterm_in_thread(stop))
    return watch_stop_file(stop, workdir)


def exit_if_stopped_on_request(failed_jobs: int) -> None:
    """From the ``onerror`` handler: a run stopped by the stop file, with no failed job, exits 0.

    Snakemake treats a graceful stop as an unfinished run (exit status 1); when it was asked
    for and nothing failed, this ends the process with status 0 instead.
    """
    if _requested.is_set() and failed_jobs == 0:
        log.warning("stopped on request: the jobs in flight finished; run again to resume")
        sys.exit(0)
