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
from i2i.core.failures import failure_reason
from i2i.core.joblog import FINISHED

log = logging.getLogger("i2i")

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Marks a failed job's one ERROR line: it goes to the job's log, and Snakemake's report of the
# failed job (or the console's one line for it) brings it to the console once.
JOB_FAILURE = "i2i_job_failure"


def _not_a_job_failure(record: logging.LogRecord) -> bool:
    """Console filter: a failed job's one line reaches the console through its job's log."""
    return not getattr(record, JOB_FAILURE, False)


def _unwritable(log_file: str, error: OSError) -> str:
    """The one line of a job whose log file could not be written."""
    return error_line(error, log_file) or f"{log_file}: {error}"


def _names(message: str, what: str) -> bool:
    """True if ``message`` starts by naming ``what`` (as given or as a normalised path)."""
    return any(message.startswith(f"{name}: ") for name in (what, str(Path(what))))


def error_line(exc: BaseException, what: str = "") -> str | None:
    """The one error line for an expected failure, naming ``what`` once; None when unexpected.

    Stage functions name the file they fail on at the start of their ``I2IError`` message;
    ``what`` is only added when the message does not already start with it.
    """
    reason = failure_reason(exc)
    if reason is None:
        return None
    return reason if not what or _names(reason, what) else f"{what}: {reason}"


class JobLogFile(logging.FileHandler):
    """A job's log file. A write that fails with an OS error (a full disk) is kept in
    ``failure`` for the job to fail with one line, instead of logging's ``--- Logging error
    ---`` traceback on the console."""

    failure: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
        elif self.failure is None:
            self.failure = error

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:
            self.failure = self.failure or error


def configure(log_files: Sequence[str] = (), level: int = logging.INFO) -> list[JobLogFile]:
    """Send log records to stderr and to each of ``log_files`` (created with their folders);
    a failed job's one line (marked :data:`JOB_FAILURE`) goes to the log files only, from
    which the console shows it."""
    files = []
    for name in log_files:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        files.append(JobLogFile(name, mode="w", encoding="utf-8"))
    console = logging.StreamHandler(sys.stderr)
    if files:
        console.addFilter(_not_a_job_failure)
    logging.basicConfig(level=level, format=FORMAT, handlers=[console, *files], force=True)
    return files


@contextlib.contextmanager
def job(log_files: Sequence[str] = (), what: str = "") -> Iterator[None]:
    """Run one job's body: expected errors become one clear line and exit status 1 (on stderr
    too when no log file could take it, a full disk under ``logs/`` say)."""
    try:
        files = configure(log_files)
    except OSError as exc:
        sys.stderr.write(f"ERROR i2i: {_unwritable(log_files[0] if log_files else what, exc)}\n")
        sys.exit(1)
    try:
        yield
    except Exception as exc:
        line = error_line(exc, what)
        if line is None:
            log.exception("%sunexpected failure", f"{what}: " if what else "")
        else:
            log.error("%s", line, extra={JOB_FAILURE: True})
            if not files or any(file.failure for file in files):
                sys.stderr.write(f"ERROR i2i: {line}\n")
        logging.shutdown()
        sys.exit(1)


def warnings_to_console() -> None:
    """In the Snakemake process: i2i warnings and errors go to stderr (once), jobs' INFO to logs."""
    if any(getattr(h, "i2i_console", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_not_a_job_failure)
    handler.i2i_console = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class JobFailed(Exception):
    """An in-process job (a rule's ``run:`` block) failed with a message a user can act on."""


ABANDONED = "abandoned: the run is stopping"


class Abandoned(I2IError):
    """A job given up because the run stops on a signal; the next run redoes it. Its message
    contains :data:`ABANDONED` and goes to the job's log only: not an error of the job."""


@contextlib.contextmanager
def job_log(log_file: str, what: str = "") -> Iterator[None]:
    """Log one in-process job's records to its log file; ``I2IError`` becomes ``JobFailed``.

    Jobs of ``run:`` blocks run in threads of the Snakemake process, so the file handler only
    takes records from this thread, and nothing here touches the root logger or exits. The
    last line of a successful job's log says how long it took (``i2i progress`` reads it).
    An expected failure (see :func:`failure_reason`) is one ERROR line naming the file once,
    without a traceback; anything else is logged with its traceback and re-raised.
    """
    try:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = JobLogFile(log_file, mode="w", encoding="utf-8")
    except OSError as exc:
        raise JobFailed(_unwritable(log_file, exc)) from None
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
    except Abandoned as exc:
        line = error_line(exc, what) or str(exc)
        log.info("%s", line)
        raise JobFailed(line) from None
    except Exception as exc:
        line = error_line(exc, what)
        if line is None:
            log.exception("%sunexpected failure", f"{what}: " if what else "")
            raise
        log.error("%s", line, extra={JOB_FAILURE: True})
        raise JobFailed(line) from None
    finally:
        log.removeHandler(handler)
        handler.close()
    if handler.failure is not None:
        raise JobFailed(_unwritable(log_file, handler.failure))
