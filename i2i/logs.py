"""Logging for job entry points: one log file per job, clear one-line errors naming the file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from i2i import I2IError

log = logging.getLogger("i2i")

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_files: Sequence[str] = (), level: int = logging.INFO) -> None:
    """Send log records to stderr and to each of ``log_files`` (created with their folders)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    for name in log_files:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(name, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)


@contextlib.contextmanager
def job(log_files: Sequence[str] = (), what: str = "") -> Iterator[None]:
    """Run one job's body: expected errors become one clear line and exit status 1."""
    configure(log_files)
    try:
        yield
    except I2IError as exc:
        log.error("%s%s", f"{what}: " if what else "", exc)
        logging.shutdown()
        sys.exit(1)
    except Exception:
        log.exception("%sunexpected failure", f"{what}: " if what else "")
        logging.shutdown()
        sys.exit(1)
