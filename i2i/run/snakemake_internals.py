"""Every Snakemake internal that i2i uses, in one place, with why no public interface does.

Snakemake's public interfaces (``onstart``/``onsuccess``/``onerror`` hooks, logger plugins,
profiles, ``workflow.basedir``/``cores``/``is_main_process``) cover the rest of i2i. These do
not, and ``tests/test_snakemake_internals.py`` checks each on the installed Snakemake:

- ``Workflow.execute`` (wrapped by :func:`lock_real_runs`): the run lock must be held before
  Snakemake checks its own locks in ``.snakemake/locks`` (so that a run after a crash clears
  them instead of stopping), and ``onstart`` runs after that check. Only a run reaches
  ``execute`` (not ``--unlock``, ``--lint``, ``--report``, ``--summary``); its
  ``executor_plugin`` says whether it is a dry run (``common_settings.dryrun_exec``), and
  ``workflow.exec_mode`` / ``execution_settings.lock`` whether it is a job process or
  ``--nolock``.
- ``workflow.scheduler.exit_gracefully`` (:func:`graceful_stop`): the stop that Ctrl-C asks for
  (jobs in flight finish, nothing new starts); no hook lets a workflow ask for it.
- ``workflow.scheduler._user_kill`` (:func:`stop_asked`): Snakemake's scheduler installs its
  own SIGTERM handler when it is created, a moment before ``onstart`` replaces it; a SIGTERM
  in between is a graceful stop that only the scheduler knows of.
- ``workflow.scheduler.failed`` (:func:`failed_jobs`): ``onerror`` is not told how many jobs
  failed, and a graceful stop on request must exit 0 only when none did.
- The records of Snakemake's logger ``snakemake.logging`` (:func:`hide_abandoned_jobs`): a job
  that a stop abandons on purpose ends as a failed job (the only other end is success with its
  outputs), and no hook keeps its error report off the console.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from typing import Any

from i2i.run.runcontrol import catch_stop_signals, holding_run_lock


def is_real_run(workflow: Any, executor_plugin: Any) -> bool:
    """True when ``workflow.execute`` with ``executor_plugin`` runs jobs in this folder for real.

    Not for a dry run, a ``--nolock`` run, or a job process that Snakemake started (its
    ``exec_mode`` is not the default).
    """
    from snakemake_interface_executor_plugins.settings import ExecMode

    return (
        not executor_plugin.common_settings.dryrun_exec
        and workflow.exec_mode == ExecMode.DEFAULT
        and workflow.execution_settings.lock
    )


def lock_real_runs(workflow: Any) -> None:
    """From the top of the Snakefile: every real run of ``workflow`` holds the run lock, and
    from then on SIGTERM and SIGINT are graceful stops (:mod:`i2i.run.runcontrol`)."""
    execute = workflow.execute

    @functools.wraps(execute)
    def execute_holding_lock(*args: Any, **kwargs: Any) -> Any:
        plugin = kwargs.get("executor_plugin", args[0] if args else None)
        if not is_real_run(workflow, plugin):
            return execute(*args, **kwargs)
        with holding_run_lock():
            catch_stop_signals()
            return execute(*args, **kwargs)

    workflow.execute = execute_holding_lock


def graceful_stop(workflow: Any) -> Callable[[], None]:
    """The scheduler's graceful stop, for the stop file, SIGTERM and Ctrl-C."""
    return workflow.scheduler.exit_gracefully


def stop_asked(workflow: Any) -> bool:
    """True when the scheduler was asked for a graceful stop (by i2i, or by its own SIGTERM
    handler)."""
    return getattr(workflow.scheduler, "_user_kill", None) == "graceful"


def failed_jobs(workflow: Any) -> int:
    """How many jobs of this run failed."""
    return len(workflow.scheduler.failed)


class _AbandonedJobs(logging.Filter):
    def __init__(self, outputs: Callable[[], Collection[str]], marker: str) -> None:
        super().__init__()
        self.outputs, self.marker = outputs, marker

    def filter(self, record: logging.LogRecord) -> bool:
        from snakemake_interface_logger_plugins.common import LogEvent

        event = getattr(record, "event", None)
        if event == LogEvent.JOB_ERROR:
            return not set(map(str, getattr(record, "output", []))) & set(self.outputs())
        return not (event == LogEvent.ERROR and self.marker in record.getMessage())


def hide_abandoned_jobs(outputs: Callable[[], Collection[str]], marker: str) -> None:
    """Keep off Snakemake's console and log the error reports of jobs abandoned by a stop: the
    job's ("Error in rule") when it names one of ``outputs()``, the exception's when its text
    contains ``marker``. The job's own log says why it stopped."""
    logging.getLogger("snakemake.logging").addFilter(_AbandonedJobs(outputs, marker))
