"""Graceful stop of a running workflow through a stop file.

``i2i stop`` creates the stop file; a thread that the Snakefile's ``onstart`` handler starts
sees it and sends SIGTERM to its own Snakemake process, which Snakemake handles by finishing the
jobs in flight and starting nothing new. The next run removes the stale file and resumes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)

STOP_FILE = Path(".i2i") / "stop"
POLL_SECONDS = 1.0


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
