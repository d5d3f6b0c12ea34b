"""A compact console for Snakemake runs: ``snakemake --logger i2i``.

Snakemake's own console prints about 16 lines per job (the job's inputs, outputs, reason,
resources, "Shell command: None", "Finished jobid", "N of M steps"). With this logger a run
prints, instead:

* not on a terminal (a pipe, a CI log, ``nohup``): one line per finished job, with the
  count done of the total, the percentage and the time left (``durations``: the jobs left of
  each rule at that rule's seconds per job, over the cores; the GPU lane one job at a time);
* on a terminal: one status line, redrawn in place, with the same numbers and the jobs running;
* in both: warnings, errors and failed jobs (with their log files, ``--show-failed-logs``) in
  full, exactly as Snakemake formats them, and any other message Snakemake prints once per run
  (``Complete log(s): ...``, ``Nothing to be done ...``), minus set-up chatter; except a job
  that failed as expected (its log ends with i2i's one-line reason: a bad photo, a full disk),
  which is one line, ``FAILED rule: reason (log: path)``.

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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent

from snakemake_logger_plugin_i2i import durations
from snakemake_logger_plugin_i2i.durations import Durations

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
    r"|Removing output files of failed job"
    r"|Will exit after finishing currently running jobs"
    r"|Shutting down, this might take some time"
    r"|None$)"
)
FAILURES = {LogEvent.JOB_ERROR, LogEvent.GROUP_ERROR, LogEvent.ERROR}
# An i2i job's expected failure: Snakemake's report of the JobFailed exception, and the last
# line of the job's log (i2i.run.logs: FORMAT, an ERROR of the i2i logger).
JOB_FAILED = "\nJobFailed in file "
EXPECTED_LINE = re.compile(r"^\S+ \S+ ERROR i2i: (.+)$")
SCRIPT_FAILED = re.compile(
    r"^RuleException:\nCalledProcessError in file .*\n"
    r"Command '.*\.snakemake/scripts/.*' returned non-zero exit status 1\.",
    re.DOTALL,
)


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
    """Jobs started, finished and failed; the done/total count; the time left.

    ``clock`` is ``time.monotonic`` (tests pass their own). ``counts`` (jobs per rule, from the
    run's job stats) and ``durations`` weight the time left by rule; without counts it is the
    mean rate so far.
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
    counts: dict[str, int] = field(default_factory=dict)
    ended: Counter[str] = field(default_factory=Counter)
    starts: dict[int, tuple[str, float]] = field(default_factory=dict)
    durations: Durations = field(default_factory=Durations)
    cores: int | None = None
    peak: int = 0

    def run_info(self, stats: Mapping[str, Any]) -> None:
        """Snakemake's job stats: ``{rule: jobs, ..., "total": jobs}``."""
        self.total = int(stats.get("total", 0))
        self.counts = {str(r): int(n) for r, n in stats.items() if r != "total"}

    def job_info(
        self,
        jobid: int,
        rule: str,
        wildcards: Mapping[str, Any] | None,
        resources: Any = None,
    ) -> None:
        now = self.clock()
        if self.started_at is None:
            self.started_at = now
        self.jobs[jobid] = describe(rule, wildcards)
        self.starts[jobid] = (rule, now)
        self.running.add(jobid)
        self.peak = max(self.peak, len(self.running))
        get = getattr(resources, "get", None)
        if get is not None and (get("gpu", 0) or 0) > 0:
            self.durations.serial.add(rule)

    def job_finished(self, jobid: int) -> None:
        self.running.discard(jobid)
        self.finished.append(self.jobs.pop(jobid, f"job {jobid}"))
        if jobid in self.starts:
            rule, start = self.starts.pop(jobid)
            self.ended[rule] += 1
            self.durations.finished(rule, self.clock() - start)

    def job_failed(self, jobid: int | None) -> None:
        self.failed += 1
        if jobid is not None:
            self.running.discard(jobid)
            self.jobs.pop(jobid, None)
            if jobid in self.starts:
                self.ended[self.starts.pop(jobid)[0]] += 1

    def progress(self, done: int, total: int) -> str:
        """Take Snakemake's count; return what finished since the last count."""
        self.done, self.total = done, total
        finished, self.finished = self.finished, []
        if finished:
            self.last = finished[0] + (f" (+{len(finished) - 1})" if len(finished) > 1 else "")
        return self.last

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    def rate_left(self) -> float | None:
        """Seconds left at the mean rate since the first job started (every job alike)."""
        elapsed = self.elapsed()
        if self.done == 0 or elapsed <= 0:
            return None
        return elapsed / self.done * max(self.total - self.done, 0)

    def left(self) -> float | None:
        """Seconds left: each rule's jobs not yet ended at its expected seconds (less what a
        running job has already run), jobs beyond the counts (added after a checkpoint) at
        ``Durations.per_job`` (None until it knows); over the run's cores (else as many as ran
        at once, at most one a job left), the serial (GPU) lane alone."""
        if not self.counts:
            return self.rate_left()
        expected = {rule: self.durations.expected(rule) for rule in self.counts}
        work = {True: 0.0, False: 0.0}  # seconds of work, serial lane or not
        pending = 0
        for rule, jobs in self.counts.items():
            left = max(jobs - self.ended[rule], 0)
            pending += left
            work[rule in self.durations.serial] += left * expected[rule]
        now = self.clock()
        for rule, start in self.starts.values():
            if rule in expected:
                work[rule in self.durations.serial] -= min(now - start, expected[rule])
        unknown = max(self.total - self.done - pending, 0)
        if unknown:
            per_job = self.durations.per_job(self.counts, self.ended)
            if per_job is None:
                return None
            for lane, seconds in per_job.items():
                work[lane] += unknown * seconds
        serial, parallel = max(work[True], 0.0), max(work[False], 0.0)
        cores = min(self.cores or self.peak, pending + unknown)
        return max(serial, (serial + parallel) / max(cores, 1))

    def eta(self) -> str:
        """``ETA 1m05s`` (see ``left``); at the end ``done in``."""
        if self.total and self.done >= self.total:
            return f"done in {duration(self.elapsed())}"
        left = self.left()
        return "ETA -" if left is None else f"ETA {duration(left)}"

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


def held_back(message: str) -> bool:
    """True for Snakemake's report of an exception that an i2i job's expected failure raises
    (``JobFailed``; a ``script:`` job's exit status 1): the job's own report follows it."""
    return JOB_FAILED in message or SCRIPT_FAILED.search(message) is not None


Held = tuple[logging.LogRecord, str | None]


def take_held(held: list[Held], record: logging.LogRecord) -> Held | None:
    """Remove and return the held exception report (with its reason) of the failed job
    ``record``: the one whose reason names one of the job's files, else the oldest (two jobs
    failing at once may report both exceptions before either job)."""
    files = [
        str(name) for key in ("log", "input", "output") for name in getattr(record, key, None) or []
    ]
    for index, (_, reason) in enumerate(held):
        if reason and any(reason.startswith(f"{name}: ") for name in files):
            return held.pop(index)
    return held.pop(0) if held else None


def job_failed(message: str) -> str | None:
    """The one-line reason in Snakemake's report of an i2i job's ``JobFailed`` exception
    (the reason, then the stack frames); None for any other message."""
    if JOB_FAILED not in message:
        return None
    body = message.split(JOB_FAILED, 1)[1].split("\n", 1)[-1]
    return body.split('\n  File "', 1)[0].strip() or None


def expected_failure(record: logging.LogRecord, reason: str | None) -> str | None:
    """One line for a failed job that failed as expected (a bad photo, a full disk, an
    unreachable target): its log ends with i2i's one-line reason and holds no traceback, or
    (a log that could not be written) its ``JobFailed`` exception gave ``reason``.
    ``FAILED rule: reason (log: path)``; None for any other failure, shown in full."""
    rule = str(getattr(record, "rule_name", "") or "")
    logs = [Path(str(name)) for name in getattr(record, "log", None) or []]
    for path in logs:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        lines = text.strip().splitlines()
        found = EXPECTED_LINE.match(lines[-1]) if lines else None
        if found and "Traceback (most recent call last)" not in text:
            return f"FAILED {rule}: {found.group(1)} (log: {path})"
    if reason:
        return f"FAILED {rule}: {reason}" + (f" (log: {logs[0]})" if logs else "")
    return None


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
        self.history: Path | None = None  # durations.HISTORY of the run's working folder
        self.status_shown = False
        self.held: list[Held] = []  # see held_back
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
            progress.run_info(getattr(record, "stats", {}))
            if self.history is None:  # the working folder is the run's from here on
                self.history = durations.HISTORY.resolve()
                progress.durations = Durations.load(self.history)
        elif event == LogEvent.RESOURCES_INFO and getattr(record, "cores", None):
            progress.cores = int(record.cores)
        elif event == LogEvent.JOB_INFO:
            progress.job_info(
                record.jobid,
                record.rule_name,
                getattr(record, "wildcards", None),
                getattr(record, "resources", None),
            )
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
        elif event == LogEvent.ERROR and held_back(message := record.getMessage()):
            self.held.append((record, job_failed(message)))  # its job's report follows
        elif event == LogEvent.JOB_ERROR:
            report, reason = take_held(self.held, record) or (None, None)
            line = expected_failure(record, reason)
            self.clear()
            if line is not None:
                self.write(line)
            else:
                for shown in (report, record):
                    if shown is not None:
                        self.full.emit(shown)
            self.draw()
        elif (
            event in FAILURES
            or record.levelno >= logging.WARNING
            or (event is None and not CHATTER.match(record.getMessage()))
        ):
            self.clear()
            self.full.emit(record)
            self.draw()
        # Anything else (each job's details, the job stats, the banner) is in the complete log.

    def show_held(self) -> None:
        """Show the held exception reports in full (no job report came for them)."""
        held, self.held = self.held, []
        for record, _ in held:
            self.full.emit(record)

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
        """Leave the last status on screen; give ``sys.stderr`` back; keep the run's job
        durations for the next run's ETA."""
        with self.lock:
            self.show_held()
            self.finished = True
            if self.history is not None and self.progress.durations.run:
                try:
                    durations.save(self.history, self.progress.durations.merged())
                except OSError as exc:
                    logging.getLogger(__name__).debug("job durations not kept: %s", exc)
            if self.status_shown:
                self.stream.write("\n")
                self.stream.flush()
                self.status_shown = False
            if self.shared is not None and sys.stderr is self.shared:
                sys.stderr = self.stream
            self.shared = None
        super().close()
