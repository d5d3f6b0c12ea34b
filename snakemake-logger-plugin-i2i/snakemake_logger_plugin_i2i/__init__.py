"""A compact console for Snakemake runs: ``snakemake --logger i2i``.

Snakemake's own console prints about 16 lines per job (the job's inputs, outputs, reason,
resources, "Shell command: None", "Finished jobid", "N of M steps"). With this logger a run
prints, instead:

* not on a terminal (a pipe, a CI log, ``nohup``): one line per finished job, with the
  count done of the total, the percentage and the time left at the rate so far;
* on a terminal: one status line, redrawn in place, with the same numbers and the jobs running;
* in both: warnings, errors and failed jobs (with their log files, ``--show-failed-logs``) in
  full, exactly as Snakemake formats them, and any other message Snakemake prints once per run
  (``Complete log(s): ...``, ``Nothing to be done ...``), minus set-up chatter.

Dry runs (``-n``), ``--verbose`` and ``--debug-dag`` print exactly what Snakemake's own console
prints. The complete log is still written to ``.snakemake/log/`` by Snakemake's file handler,
which does not pass through this plugin.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent

# Messages without an event that only describe the set-up or the scheduler's inner loop; they
# are all in the complete log. Anything not listed here reaches the console.
CHATTER = re.compile(
    r"^(Assuming unrestricted shared filesystem"
    r"|Using shell:"
    r"|Provided (cores|resources):"
    r"|Rules claiming more threads"
    r"|(Conda environments|Singularity containers|Apptainer containers): ignored"
    r"|Select jobs to execute"
    r"|Execute \d+ jobs"
    r"|Job rate limit reached"
    r"|DAG of jobs will be updated after completion"
    r"|Updating checkpoint dependencies"
    r"|Will exit after finishing currently running jobs"
    r"|Shutting down, this might take some time"
    r"|None$)"
)
FAILURES = {LogEvent.JOB_ERROR, LogEvent.GROUP_ERROR, LogEvent.ERROR}


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def describe(rule: str, wildcards: Mapping[str, Any] | None) -> str:
    """A job in a few words: its rule and its wildcard values (``watermark Album/style/photo``)."""
    values = "/".join(str(value) for value in (wildcards or {}).values())
    return f"{rule} {values}" if values else rule


@dataclass
class Progress:
    """Jobs started, finished and failed; the done/total count; the time left at the rate so far.

    ``clock`` is ``time.monotonic`` (tests pass their own).
    """

    clock: Callable[[], float] = time.monotonic
    started_at: float | None = None
    done: int = 0
    total: int = 0
    failed: int = 0
    jobs: dict[int, str] = field(default_factory=dict)
    running: set[int] = field(default_factory=set)
    finished: list[str] = field(default_factory=list)
    last: str = ""

    def job_info(self, jobid: int, rule: str, wildcards: Mapping[str, Any] | None) -> None:
        if self.started_at is None:
            self.started_at = self.clock()
        self.jobs[jobid] = describe(rule, wildcards)
        self.running.add(jobid)

    def job_finished(self, jobid: int) -> None:
        self.running.discard(jobid)
        self.finished.append(self.jobs.pop(jobid, f"job {jobid}"))

    def job_failed(self, jobid: int | None) -> None:
        self.failed += 1
        if jobid is not None:
            self.running.discard(jobid)
            self.jobs.pop(jobid, None)

    def progress(self, done: int, total: int) -> str:
        """Take Snakemake's count; return what finished since the last count."""
        self.done, self.total = done, total
        finished, self.finished = self.finished, []
        if finished:
            self.last = finished[0] + (f" (+{len(finished) - 1})" if len(finished) > 1 else "")
        return self.last

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    def eta(self) -> str:
        """``ETA 1m05s`` at the mean rate since the first job started; at the end ``done in``."""
        elapsed = self.elapsed()
        if self.total and self.done >= self.total:
            return f"done in {duration(elapsed)}"
        if self.done == 0 or elapsed <= 0:
            return "ETA -"
        return f"ETA {duration(elapsed / self.done * (self.total - self.done))}"

    def count(self) -> str:
        """``  37/187  19%``: percent rounded down, so 100% means all done."""
        width = len(str(self.total))
        percent = 100 * self.done // self.total if self.total else 0
        return f"{self.done:>{width}}/{self.total} {percent:>3}%"

    def line(self) -> str:
        """The line a finished job prints when the console is not a terminal."""
        failed = f"  {self.failed} failed" if self.failed else ""
        return f"{time.strftime('%H:%M:%S')} {self.count()}  {self.eta():<13}{failed}  {self.last}"

    def status(self) -> str:
        """The terminal's status line."""
        parts = [self.count(), self.eta(), f"{len(self.running)} running"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.last:
            parts.append(f"last: {self.last}")
        return "  ".join(parts)


def is_terminal(stream: TextIO) -> bool:
    """A terminal that understands carriage returns and ``ESC [K`` (not ``TERM=dumb``)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class SharedTerminal:
    """``sys.stderr`` while a status line is on it: what others write there (i2i's warnings,
    Python's) takes the status line's place, and the status line is redrawn below it."""

    def __init__(self, handler: LogHandler, stream: TextIO) -> None:
        self.handler, self.stream = handler, stream

    def write(self, text: str) -> int:
        with self.handler.lock:
            self.handler.clear()
            written = self.stream.write(text)
            if text.endswith("\n"):
                self.handler.draw()
            return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class LogHandler(LogHandlerBase):
    """Snakemake's console, compact during a run (see the module's docstring)."""

    def __post_init__(self) -> None:
        from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter

        common = self.common_settings
        self.stream: TextIO = sys.stdout if common.stdout else sys.stderr
        # Snakemake's own console, as LoggerManager builds it without a plugin: the dry-run,
        # verbose and debug output, and every failure and warning, are formatted by it.
        self.full = ColorizingTextHandler(
            nocolor=common.nocolor,
            stream=self.stream,
            formatter=DefaultFormatter(common.quiet, common.show_failed_logs),
            filter=DefaultFilter(
                common.quiet,
                common.debug_dag,
                common.verbose,
                common.dryrun,
                common.printshellcmds,
            ),
        )
        self.passthrough = bool(common.dryrun or common.verbose or common.debug_dag)
        self.terminal = is_terminal(self.stream)
        self.progress = Progress()
        self.status_shown = False
        self.finished = False
        self.shared: SharedTerminal | None = None
        if self.terminal and not self.passthrough and self.stream is sys.stderr:
            # Set up before the Snakefile is read, so that handlers it creates write through it.
            self.shared = sys.stderr = SharedTerminal(self, self.stream)  # type: ignore[assignment]

    # LogHandlerBase's questions: one console stream, Snakemake's filter and formatter inside.
    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.passthrough:
                self.full.handle(record)
            else:
                self.track(record)
                if self.full.filter(record):  # --quiet as for Snakemake's console
                    self.show(record)
        except Exception:
            self.handleError(record)

    def track(self, record: logging.LogRecord) -> None:
        """Count jobs started, finished and failed (whatever is shown)."""
        event = getattr(record, "event", None)
        progress = self.progress
        if event == LogEvent.RUN_INFO and not progress.total:
            progress.total = getattr(record, "stats", {}).get("total", 0)
        elif event == LogEvent.JOB_INFO:
            progress.job_info(record.jobid, record.rule_name, getattr(record, "wildcards", None))
        elif event == LogEvent.JOB_FINISHED:
            progress.job_finished(record.job_id)
        elif event == LogEvent.PROGRESS:
            progress.progress(record.done, record.total)
        elif event == LogEvent.JOB_ERROR:
            progress.job_failed(getattr(record, "jobid", None))
        elif event == LogEvent.GROUP_ERROR:
            progress.job_failed(None)

    def show(self, record: logging.LogRecord) -> None:
        """A progress line (or the status line redrawn), or a message in full, or nothing."""
        event = getattr(record, "event", None)
        if event == LogEvent.JOB_INFO:
            self.draw()
        elif event == LogEvent.PROGRESS:
            if self.terminal:
                self.draw()
            else:
                self.write(self.progress.line())
        elif (
            event in FAILURES
            or record.levelno >= logging.WARNING
            or (event is None and not CHATTER.match(record.getMessage()))
        ):
            self.clear()
            self.full.emit(record)
            self.draw()
        # Anything else (each job's details, the job stats, the banner) is in the complete log.

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def draw(self) -> None:
        """Redraw the status line in place (terminals only)."""
        if not self.terminal or self.finished or self.progress.started_at is None:
            return
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r\x1b[K" + self.progress.status()[:width])
        self.stream.flush()
        self.status_shown = True

    def clear(self) -> None:
        """Take the status line away before a message prints in its place."""
        if self.status_shown:
            self.stream.write("\r\x1b[K")
            self.status_shown = False

    def close(self) -> None:
        """Leave the last status on screen; give ``sys.stderr`` back."""
        with self.lock:
            self.finished = True
            if self.status_shown:
                self.stream.write("\n")
                self.stream.flush()
                self.status_shown = False
            if self.shared is not None and sys.stderr is self.shared:
                sys.stderr = self.stream
            self.shared = None
        super().close()
