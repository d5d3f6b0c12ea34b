"""Every Snakemake internal that i2i uses, in one place, with why no public interface does.

Snakemake's public interfaces (``onstart``/``onsuccess``/``onerror`` hooks, logger plugins,
profiles, ``workflow.current_basedir``/``cores``/``is_main_process``) cover the rest of i2i.
These do not, and ``tests/test_snakemake_internals.py`` checks each on the installed Snakemake:

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
- ``workflow.dag_settings`` and ``.snakemake/incomplete`` (:func:`forces_rerun`),
  ``Rule.run_func_src`` (:func:`run_block`) and ``workflow.persistence.metadata``
  (:func:`same_as_recorded`): whether the inventory checkpoint would run again this run,
  decided before the DAG is built (rules/common.smk, ``inventory_is_current``), so that the
  rules that read the inventory need not wait for the checkpoint when it is current.
- ``snakemake.jobs.Job.prepare`` (:func:`let_jobs_of_vanished_originals_start`): Snakemake
  checks a job's input files there, in the scheduler's thread, and a missing one ends the whole
  run (jobs of other photos included); a photo removed from its album after the DAG was built
  must fail its own jobs only (``tests/test_live_library.py``).
- ``JobScheduler._schedule_reevalutation`` (:func:`one_rescheduling_at_a_time`): every
  scheduling round that finds ready jobs starts a timer that, a second later, asks for another
  round, which starts another timer: each finished job adds a chain of rounds that lasts until
  no job waits (snakemake/snakemake#3744). On 100 photos that was 21,736 rounds for
  2,217 jobs; in a long run the rounds grow with the time the run has taken.
- ``JobScheduler.remaining_jobs`` (:func:`remaining_jobs_when_asked`): every round lists every
  job not yet done for the scheduler plugin, which the greedy one ignores: rounds times jobs,
  14 % of the Snakemake process's CPU at 400 photos and growing with the square of the library.
- ``Job.is_pipe_or_service_input`` (:func:`no_pipe_checks_without_pipes`): called for every
  input of a job when it starts, it walks the job's dependencies, so a job with n inputs from n
  jobs (``all``) costs n²/2 set lookups: 0.4 s at 100 photos, minutes at 2,000. A workflow that
  declares no ``pipe()`` or ``service()`` output has no such input.
- The records of Snakemake's logger ``snakemake.logging`` (:func:`hide_abandoned_jobs`): a job
  that a stop abandons on purpose ends as a failed job (the only other end is success with its
  outputs), and no hook keeps its error report off the console.
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from i2i.core.files import sha256_file
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
    from then on SIGTERM and SIGINT are graceful stops (:mod:`i2i.run.runcontrol`); on a
    cluster executor SIGINT stays Snakemake's, which cancels the run's cluster jobs."""
    execute = workflow.execute

    @functools.wraps(execute)
    def execute_holding_lock(*args: Any, **kwargs: Any) -> Any:
        plugin = kwargs.get("executor_plugin", args[0] if args else None)
        if not is_real_run(workflow, plugin):
            return execute(*args, **kwargs)
        with holding_run_lock():
            catch_stop_signals(ctrl_c=not plugin.common_settings.non_local_exec)
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


def forces_rerun(workflow: Any, rule: str, output: str) -> bool:
    """True when this run reruns ``rule`` (whose output is ``output``) whatever its triggers:
    ``--forceall``, ``--forcerun``/``-R`` naming the rule or file, ``--force`` with it as a
    target, or Snakemake's incomplete marker on ``output`` (a job of it was cut short).

    Snakemake sets the DAG settings after it has parsed the Snakefile: call this from an input
    function, not at parse time (without settings it answers True).
    """
    settings = getattr(workflow, "dag_settings", None)
    if settings is None:
        return True
    if settings.forceall or {rule, output} & set(settings.forcerun):
        return True
    if settings.forcetargets and {rule, output} & set(settings.targets):
        return True
    marker = base64.urlsafe_b64encode(output.encode()).decode()
    return (Path(".snakemake") / "incomplete" / marker).exists()


def run_block(workflow: Any, rule: str) -> str:
    """The source text of ``rule``'s ``run:`` block, as Snakemake compares it (code trigger)."""
    return workflow.get_rule(rule).run_func_src or ""


def same_as_recorded(workflow: Any, output: str, input_file: str) -> bool:
    """True when ``input_file`` has the content Snakemake recorded (its checksum) when it last
    made ``output``: Snakemake then ignores the input being newer (a ``touch``, a copy)."""
    from snakemake.io import IOFile

    record = workflow.persistence.metadata(IOFile(output))
    recorded = (record.input_checksums or {}).get(input_file) if record else None
    if not recorded:
        return False
    algorithm, _, digest = recorded.rpartition(":")
    return algorithm in ("", "sha256") and sha256_file(input_file) == digest


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


def let_jobs_of_vanished_originals_start(
    is_original: Callable[[str], bool], warn: Callable[[str], None]
) -> None:
    """A job whose only missing inputs are originals (``is_original``) starts instead of ending
    the run: its own code then fails with one line naming the file, ``--keep-going`` runs the
    rest, and the next run's inventory drops the photo. Any other missing input stays
    Snakemake's error. Installed once per process."""
    from snakemake.exceptions import WorkflowError
    from snakemake.jobs import Job

    prepare = Job.prepare
    if getattr(prepare, "i2i_originals", False):
        return

    @functools.wraps(prepare)
    async def prepare_without_vanished_originals(self: Any) -> Any:
        try:
            return await prepare(self)
        except WorkflowError:
            missing = [str(f) for f in self.input if not Path(f).exists()]
            if self.is_shadow or not missing or not all(map(is_original, missing)):
                raise
            warn(f"{', '.join(missing)}: removed from its album during the run")
            return None

    prepare_without_vanished_originals.i2i_originals = True  # type: ignore[attr-defined]
    Job.prepare = prepare_without_vanished_originals


def one_rescheduling_at_a_time() -> None:
    """At most one pending "look again later" timer per scheduler: a round asks for one only
    when none is pending, so the rounds follow the jobs instead of multiplying. The scheduler
    still looks again within the job rate limit's timespan, as it relies on. The timer is a
    daemon (Snakemake's is not): at exit nothing waits for it. Installed once per process."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    if getattr(JobScheduler._schedule_reevalutation, "i2i_one", False):
        return
    pending: set[int] = set()
    lock = threading.Lock()

    def look_again(scheduler: Any) -> None:
        with lock:
            pending.discard(id(scheduler))
        scheduler._open_jobs.release()

    def schedule_once(self: Any, delay: float) -> None:
        with lock:
            if id(self) in pending:
                return
            pending.add(id(self))
        timer = threading.Timer(delay, look_again, args=(self,))
        timer.daemon = True
        timer.start()

    schedule_once.i2i_one = True  # type: ignore[attr-defined]
    JobScheduler._schedule_reevalutation = schedule_once


class _ListedWhenRead(Sequence[Any]):
    """A list made by ``make`` the first time it is read."""

    def __init__(self, make: Callable[[], list[Any]]) -> None:
        self._make, self._items = make, None

    def _list(self) -> list[Any]:
        if self._items is None:
            self._items = self._make()
        return self._items

    def __len__(self) -> int:
        return len(self._list())

    def __getitem__(self, index: Any) -> Any:
        return self._list()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._list())


def remaining_jobs_when_asked() -> None:
    """The scheduler's list of jobs not yet done is made when something reads it (the ILP
    scheduler, the end-of-run check), not in every round. Installed once per process."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    listed = JobScheduler.remaining_jobs
    if getattr(listed.fget, "i2i_lazy", False):
        return

    def remaining_jobs(self: Any) -> Sequence[Any]:
        return _ListedWhenRead(lambda: listed.fget(self))

    remaining_jobs.i2i_lazy = True  # type: ignore[attr-defined]
    JobScheduler.remaining_jobs = property(remaining_jobs, doc=listed.__doc__)


def lighter_scheduling() -> None:
    """Both changes to Snakemake's scheduling rounds, as the workflow installs them when its
    Snakefile is read: :func:`one_rescheduling_at_a_time` and
    :func:`remaining_jobs_when_asked`."""
    one_rescheduling_at_a_time()
    remaining_jobs_when_asked()


def no_pipe_checks_without_pipes(workflow: Any) -> bool:
    """When no rule of ``workflow`` declares a ``pipe()`` or ``service()`` output, no job input
    is one: answer that at once instead of walking the job's dependencies per input. Call once
    the rules are defined; True when installed."""
    from snakemake.io import is_flagged
    from snakemake.jobs import Job

    flagged = any(
        is_flagged(f, "pipe") or is_flagged(f, "service")
        for rule in workflow.rules
        for f in rule.output
    )
    if flagged:
        return False
    Job.is_pipe_or_service_input = lambda self, path: False  # type: ignore[method-assign]
    return True
