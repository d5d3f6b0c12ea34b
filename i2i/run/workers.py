"""Resident worker processes for the image work of the per-image rules.

The rules' jobs run in threads of the Snakemake process (``force-use-threads``): starting a
Python process per job costs more than the work. Image work done in those threads, though,
shares one interpreter lock with the scheduler, so the workflow could use barely more than one
core. Each job therefore only hands its paths and settings to a pool of worker processes, one
per core given to Snakemake, and waits. The workers import the stage modules once, write the
job's log, and are replaced when one dies: a crash fails only the job it was running.

The forkserver and the workers never act on SIGINT or SIGTERM (started with both blocked,
:mod:`i2i.run.signals`; the workers ignore them too): whoever sends them (Ctrl-C, ``timeout``,
Slurm), the Snakemake process decides how the run stops, and the images in flight finish.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pebble import ProcessExpired, ProcessPool

from i2i.run import signals
from i2i.run.logs import JobFailed, job_log, warnings_to_console

PRELOAD = ["i2i.run.jobs"]

_pool: ProcessPool | None = None
_lock = threading.Lock()


def _start_worker() -> None:
    """In each worker: the Snakemake process decides when work stops; i2i's warnings and
    errors reach the console as they do from the Snakemake process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    warnings_to_console()


def pool(size: int) -> ProcessPool:
    """The run's pool of ``size`` workers, started on first use (forkserver: never a fork of
    the threaded Snakemake process; the forkserver starts with SIGINT and SIGTERM blocked)."""
    global _pool
    with _lock:
        if _pool is None or not _pool.active:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            # The tracker unblocks both signals after starting itself (bpo-33613): first.
            multiprocessing.resource_tracker.ensure_running()
            with signals.blocked():
                multiprocessing.forkserver.ensure_running()
            _pool = ProcessPool(max_workers=size, initializer=_start_worker, context=context)
        return _pool


def stop() -> None:
    """End the pool (at the end of the run, or at exit)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.stop()
            _pool.join(timeout=10)
            _pool = None


atexit.register(stop)


@contextlib.contextmanager
def warnings_naming(what: str) -> Iterator[None]:
    """Meanwhile every warning shown (Pillow's ``Truncated File Read``, say) starts with
    ``what``, the job's photo, and a repeated one is shown again for each job. For a worker
    process, which runs one job at a time: the warnings hook is per process."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: Any = None,
            line: str | None = None,
        ) -> None:
            shown(f"{what}: {message}", category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _in_worker(
    function: Callable[..., Any], log_file: str, what: str, args: tuple[Any, ...]
) -> None:
    """Run one job's work in a worker, logging to the job's log file; its warnings name it."""
    with job_log(log_file, what), warnings_naming(what):
        function(*args)


def run(
    function: Callable[..., Any],
    log_file: str,
    what: str,
    *args: Any,
    workers: int = 1,
    inline: bool = False,
) -> None:
    """Do ``function(*args)`` in a worker process and wait; ``inline`` does it in this thread
    (a job process of a cluster executor, which runs one job)."""
    if inline or workers < 2:
        with job_log(log_file, what):
            function(*args)
        return
    future = pool(workers).schedule(_in_worker, args=(function, log_file, what, args))
    try:
        future.result()
    except ProcessExpired as exc:
        message = f"{what}: the worker process died (exit code {exc.exitcode}); it was replaced"
        with Path(log_file).open("a", encoding="utf-8") as handle:
            handle.write(message + "\n")
        raise JobFailed(message) from None


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Snakemake's named inputs, params or wildcards as plain values a worker can receive."""
    return {name: str(v) if isinstance(v, str) else v for name, v in values.items()}
