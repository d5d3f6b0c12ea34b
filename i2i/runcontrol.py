"""Graceful stop of a running workflow through a stop file.

``i2i stop`` creates the stop file; a thread that the Snakefile's ``onstart`` handler starts
sees it and sends SIGTERM to its own Snakemake process, which Snakemake handles by finishing the
jobs in flight and starting nothing new. The next run removes the stale file and resumes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

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


def _watch(path: Path, poll: float, stopped: threading.Event) -> None:
    while not stopped.wait(poll):
        if path.exists():
            log.warning(
                "stop file %s found: finishing the jobs in flight, starting no new ones", path
            )
            path.unlink(missing_ok=True)
            _requested.set()
            os.kill(os.getpid(), signal.SIGTERM)
            return


def watch_stop_file(
    workdir: str | os.PathLike[str] = ".", poll: float = POLL_SECONDS
) -> threading.Event:
    """Start the watcher thread (a daemon); set the returned event to end it."""
    if clear_stop(workdir):
        log.info("removed a stop file left by an earlier run")
    stopped = threading.Event()
    thread = threading.Thread(
        target=_watch,
        args=(Path(workdir) / STOP_FILE, poll, stopped),
        daemon=True,
        name="i2i-stop-watcher",
    )
    thread.start()
    return stopped


def exit_if_stopped_on_request(failed_jobs: int) -> None:
    """From the ``onerror`` handler: a run stopped by the stop file, with no failed job, exits 0.

    Snakemake treats a graceful stop as an unfinished run (exit status 1); when it was asked
    for and nothing failed, this ends the process with status 0 instead.
    """
    if _requested.is_set() and failed_jobs == 0:
        log.warning("stopped on request: the jobs in flight finished; run again to resume")
        sys.exit(0)
