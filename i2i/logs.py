"""Logging for job entry points: one log file per job, clear one-line errors naming the file."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from i2i import I2IError

log = logging.getLogger("i2i")

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FINISHED = "job finished in"


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


def warnings_to_console() -> None:
    """In the Snakemake process: i2i warnings and errors go to stderr (once), jobs' INFO to logs."""
    if any(getattr(h, "i2i_console", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.i2i_console = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class JobFailed(Exception):
    """An in-process job (a rule's ``run:`` block) failed with a message a user can act on."""


@contextlib.contextmanager
def job_log(log_file: str, what: str = "") -> Iterator[None]:
    """Log one in-process job's records to its log file; ``I2IError`` becomes ``JobFailed``.

    Jobs of ``run:`` blocks run in threads of the Snakemake process, so the file handler only
    takes records from this thread, and nothing here touches the root logger or exits. The
    last line of a successful job's log says how long it took (``i2i progress`` reads it).
    """
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    log.addHandler(handler)
    started = time.perf_counter()
    try:
        yield
        log.info("%s %.3f s", FINISHED, time.perf_counter() - started)
    except I2IError as exc:
        message = f"{what}: {exc}" if what else str(exc)
        log.error("%s", message)
        raise JobFailed(message) from None
    except Exception:
        log.exception("%sunexpected failure", f"{what}: " if what else "")
        raise
    finally:
        log.removeHandler(handler)
        handler.close()
