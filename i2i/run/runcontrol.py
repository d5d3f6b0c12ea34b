"""Run control: one run per folder, resuming after a crash, and graceful stops.

**Run lock.** A real run holds ``flock`` on ``.i2i/run.lock`` from the start of Snakemake's
``execute`` (before Snakemake checks its own locks in ``.snakemake/locks``) to its end, with its
pid, host and start time written inside. A second run in the folder stops with one line naming
the first. The kernel drops the lock when its process dies (``kill -9``, a crash, a power cut),
so holding it proves that no other i2i run is alive here: Snakemake lock files left then are
stale and are removed with a warning, as are atomic-write temp files under ``results/``, and
plain ``snakemake`` resumes without ``--unlock``. The Snakefile takes the lock through
:func:`i2i.run.snakemake_internals.lock_real_runs` (Snakemake has no public hook before its
own locks).

**Graceful stop.** ``i2i stop`` creates the stop file. A thread that the Snakefile's
``onstart`` handler starts sees it and asks Snakemake's scheduler for a graceful stop: the jobs
in flight finish, nothing new starts, and the run exits 0. The next run removes a stale stop
file and resumes.

**Signals.** SIGTERM and SIGINT (Ctrl-C) stop the run the same way, whoever sends them: to the
Snakemake process alone (a container runtime), to its process group (``timeout``,
``kill -- -PGID``, a terminal's Ctrl-C) or to every process of the run (Slurm, systemd). The
processes the run starts leave both to it (:mod:`i2i.run.signals`). A signal also abandons
the renders of resident workers in flight (minutes of GPU each: a batch system kills the job
well before; the next run redoes them). SIGTERM exits 0; Ctrl-C exits 130 with one line and no
traceback. Snakemake's own SIGTERM handler takes the scheduler's lock (a plain, non-reentrant
``threading.Lock``) in the main thread; when the signal lands while the scheduler loop holds
that lock, the process deadlocks (seen here: one run in a few), and its Ctrl-C raises
``KeyboardInterrupt`` wherever the main thread is. :func:`catch_stop_signals` replaces both
handlers, from the moment the run lock is taken, with one that only records the signal and
asks for the stop from a helper thread; until ``onstart`` (:func:`install`) the stop waits.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import fcntl
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from i2i import I2IError

log = logging.getLogger(__name__)

STOP_FILE = Path(".i2i") / "stop"
POLL_SECONDS = 1.0
RUN_LOCK = Path(".i2i") / "run.lock"
# The publish targets' breakers (i2i.targets.breaker): shared by a run's jobs on each host.
BREAKER_DIR = Path(".i2i") / "breaker"
SNAKEMAKE_LOCKS = Path(".snakemake") / "locks"
INCOMPLETE_MARKERS = Path(".snakemake") / "incomplete"
TEMP_ROOTS = ("results",)
HOLDER_WAIT_S = 2.0
# i2i.core.files.atomic_path: mkstemp(prefix=".{stem[:40]}.", suffix=".tmp{suffix}"), whose random
# part is 8 characters of [a-z0-9_].
TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")

CTRL_C_EXIT = 130

_requested = threading.Event()
_interrupted = threading.Event()
_signalled = threading.Event()
_on_signal_stop: list[Callable[[], None]] = []


@dataclass(frozen=True)
class Holder:
    """The run that holds (or last held) the run lock."""

    pid: int
    host: str
    since: str

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.since}"

    @classmethod
    def current(cls) -> Holder:
        """This process."""
        started = datetime.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), started)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder written in a lock file, or None when there is none (or it is unreadable)."""
        try:
            fields = json.loads(text)
            return cls(int(fields["pid"]), str(fields["host"]), str(fields["since"]))
        except (ValueError, TypeError, KeyError):
            return None


class RunLocked(I2IError):
    """Another live process holds the run lock of this folder."""

    def __init__(self, holder: Holder | None) -> None:
        who = str(holder) if holder else "details not written yet"
        super().__init__(
            f"another i2i run is using this folder ({who}); wait for it to end or stop it with "
            "`i2i stop`"
        )
        self.holder = holder


def _read(descriptor: int) -> str:
    return os.pread(descriptor, 4096, 0).decode("utf-8", errors="replace")


def _holder_of_held_lock(descriptor: int, wait: float) -> Holder | None:
    """The holder's details, waiting up to ``wait`` seconds for a run that just started."""
    deadline = time.monotonic() + wait
    while (holder := Holder.parse(_read(descriptor))) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return holder


def acquire_run_lock(
    workdir: str | os.PathLike[str] = ".", wait: float = HOLDER_WAIT_S
) -> tuple[int, Holder | None]:
    """Take the run lock; return its descriptor and the holder of a stale lock (None: clean).

    Raises :class:`RunLocked` when another live process holds it.
    """
    path = Path(workdir) / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder_of_held_lock(descriptor, wait)
        os.close(descriptor)
        raise RunLocked(holder) from None
    stale = Holder.parse(_read(descriptor))
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(asdict(Holder.current())).encode(), 0)
    return descriptor, stale


def release_run_lock(descriptor: int) -> None:
    """Empty the lock file (a clean end) and release the lock."""
    os.ftruncate(descriptor, 0)
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    os.close(descriptor)


def clear_snakemake_locks(workdir: str | os.PathLike[str] = ".") -> int:
    """Remove Snakemake's lock files (only while holding the run lock); how many there were."""
    removed = 0
    for path in (Path(workdir) / SNAKEMAKE_LOCKS).glob("*.lock"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def is_temp_name(name: str) -> bool:
    """True for the name of a temp file of :func:`i2i.core.files.atomic_path`."""
    return TEMP_NAME.match(name) is not None


def sweep_temp_files(
    workdir: str | os.PathLike[str] = ".", roots: tuple[str, ...] = TEMP_ROOTS
) -> int:
    """Remove atomic-write temp files under ``roots`` (only while holding the run lock)."""
    removed = 0
    for root in roots:
        for folder, _, names in os.walk(Path(workdir) / root):
            for name in names:
                if name.startswith(".") and is_temp_name(name):
                    Path(folder, name).unlink(missing_ok=True)
                    removed += 1
    return removed


def remove_half_done(workdir: str | os.PathLike[str] = ".") -> int:
    """Remove the outputs of jobs a dead run left unfinished, and their markers; how many.

    Snakemake marks a job's outputs incomplete while it runs. It reruns such jobs itself
    (``rerun-incomplete``), but only those in the DAG it builds first: jobs that wait for the
    inventory checkpoint are added later and their half-done outputs would pass as finished.
    Every output is a target, so a removed one is simply rebuilt (only while holding the run
    lock: no job of another run is writing).
    """
    root = Path(workdir).resolve()
    markers = root / INCOMPLETE_MARKERS
    removed = 0
    for marker in sorted(markers.rglob("*")) if markers.is_dir() else []:
        if not marker.is_file() or marker.name == "migration_underway":
            continue
        encoded = "".join(part.lstrip("@") for part in marker.relative_to(markers).parts)
        try:
            output = (root / base64.urlsafe_b64decode(encoded).decode()).resolve()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if output.is_relative_to(root) and output.is_file():
            output.unlink()
            removed += 1
        marker.unlink(missing_ok=True)
    return removed


def clean_up_after(stale: Holder | None, workdir: str | os.PathLike[str] = ".") -> None:
    """With the run lock held: remove what runs that ended without cleaning up left behind."""
    locks = clear_snakemake_locks(workdir)
    if stale or locks:
        who = f"the run {stale}" if stale else "an earlier run"
        log.warning(
            "%s did not end cleanly and no other run is alive here: resuming (its lock is stale; "
            "removed %d Snakemake lock file(s) from %s)",
            who,
            locks,
            SNAKEMAKE_LOCKS,
        )
    half_done = remove_half_done(workdir)
    if half_done:
        log.warning("removed %d output(s) of jobs an earlier run left unfinished", half_done)
    temps = sweep_temp_files(workdir)
    if temps:
        log.warning(
            "removed %d temp file(s) of interrupted jobs under %s", temps, "/".join(TEMP_ROOTS)
        )


@contextlib.contextmanager
def holding_run_lock(workdir: str | os.PathLike[str] = ".") -> Iterator[None]:
    """Hold the run lock for a run and clean up after a crashed one; exit 1 if it is taken."""
    try:
        descriptor, stale = acquire_run_lock(workdir)
    except RunLocked as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    try:
        clean_up_after(stale, workdir)
        yield
    finally:
        release_run_lock(descriptor)


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


def _stop_on_signal(signum: int, first: bool) -> None:
    if first and signum == signal.SIGTERM:
        log.warning("SIGTERM: finishing the jobs in flight, starting no new ones")
    for action in list(_on_signal_stop):
        action()


def on_stop_signal(signum: int, frame: FrameType | None) -> None:
    """The handler of SIGTERM and SIGINT: record the stop, then ask for it in a new thread
    (not in the interrupted one); before :func:`install` there is nothing to ask yet."""
    first = not _signalled.is_set()
    _signalled.set()
    _requested.set()
    if signum == signal.SIGINT:
        _interrupted.set()
    threading.Thread(
        target=_stop_on_signal, args=(signum, first), name="i2i-stop-signal", daemon=True
    ).start()


def _end_before_the_run(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGINT:
        line, status = "i2i: stopped by Ctrl-C before the run began", CTRL_C_EXIT
    else:
        line, status = f"i2i: stopped by {signal.Signals(signum).name} before the run began", 0
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os.write(2, f"{line}; nothing was started\n".encode())
    os._exit(status)


def end_on_stop_signals_until_the_run() -> None:
    """From the top of the Snakefile, in Snakemake's main process: until the run begins
    (:func:`catch_stop_signals`), SIGTERM or Ctrl-C ends the process at once with one line
    and status 0 (130 after Ctrl-C), not Python's traceback. Nothing has started then: no
    job, no run lock, no output. A dry run, ``--dag`` or ``--lint`` keeps this to its end.

    The line goes straight to the file descriptor (the handler may interrupt a write to
    ``sys.stderr``), and the process ends without unwinding the code it interrupted.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _end_before_the_run)


_caught = [signal.SIGTERM, signal.SIGINT]


def catch_stop_signals(ctrl_c: bool | None = None) -> None:
    """Make SIGTERM and SIGINT graceful stops (from the main thread, once the run lock is held).

    ``ctrl_c=False`` (a run on a cluster executor) leaves SIGINT to Snakemake, which cancels
    the run's queued and running cluster jobs; the choice holds for later calls (``install``).
    """
    if ctrl_c is not None:
        _caught[:] = [signal.SIGTERM, signal.SIGINT] if ctrl_c else [signal.SIGTERM]
    for signum in _caught:
        signal.signal(signum, on_stop_signal)
    if signal.SIGINT not in _caught and signal.getsignal(signal.SIGINT) is _end_before_the_run:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def install(
    stop: Callable[[], None],
    abandon: Callable[[], None] = lambda: None,
    workdir: str | os.PathLike[str] = ".",
) -> threading.Event:
    """From ``onstart``: ``stop`` on the stop file; ``stop`` then ``abandon`` on a signal,
    now if one came while the run started."""
    _on_signal_stop[:] = [stop, abandon]
    catch_stop_signals()
    if _signalled.is_set():
        threading.Thread(target=_stop_on_signal, args=(0, False), daemon=True).start()
    return watch_stop_file(stop, workdir)


def exit_if_stopped_on_request(
    failed_jobs: int, abandoned: int = 0, scheduler_stopped: bool = False
) -> None:
    """From ``onerror``: a run stopped on request, with no failed job, exits 0 (130: Ctrl-C).

    Snakemake treats a graceful stop as an unfinished run (exit status 1); when it was asked
    for (``scheduler_stopped``: by Snakemake's own SIGTERM handler, in place for a moment
    before ``onstart``) and nothing failed but the ``abandoned`` jobs (renders a signal gave
    up, counted as failed by Snakemake), this ends the process with status 0 instead, or 130
    after Ctrl-C, as a shell expects of an interrupted command.
    """
    if not (_requested.is_set() or scheduler_stopped) or failed_jobs > abandoned:
        return
    left = f" ({abandoned} image(s) in flight left for it)" if abandoned else ""
    if _interrupted.is_set():
        log.warning("stopped by Ctrl-C; run snakemake again to resume%s", left)
        sys.exit(CTRL_C_EXIT)
    log.warning("stopped on request: the jobs in flight finished; run again to resume%s", left)
    sys.exit(0)
