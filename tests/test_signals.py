"""Signals as batch systems send them: helper processes leave SIGINT and SIGTERM to the run,
and a run stopped by a signal to its group or to every process resumes to identical finals."""

from __future__ import annotations

import multiprocessing.forkserver
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from i2i.run import signals, workers

import signal_trials
from conftest import copy_workflow, with_sitecustomize

STOP = (signal.SIGINT, signal.SIGTERM)


def blocked_in(pid: int) -> set[int]:
    """The signals process ``pid`` blocks (Linux: ``SigBlk`` in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    mask = int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )
    return {number for number in range(1, 65) if mask >> (number - 1) & 1}


def _mask_here() -> tuple[int, list[int]]:
    return os.getpid(), sorted(signal.pthread_sigmask(signal.SIG_BLOCK, ()))


def test_processes_started_inside_blocked_never_act_on_stop_signals() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    with signals.blocked():
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
    try:
        assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == before, "the thread's mask is back"
        assert set(STOP) <= blocked_in(child.pid)
        for signum in STOP:
            child.send_signal(signum)
        child.stdin.close()
        assert child.wait(timeout=60) == 0, "it ended on its own, not of the signals"
    finally:
        child.kill()
        child.wait()


def test_forkserver_and_pool_workers_leave_stop_signals_to_the_run() -> None:
    try:
        pid, mask = workers.pool(2).schedule(_mask_here).result(timeout=300)
        forkserver = multiprocessing.forkserver._forkserver._forkserver_pid
        assert forkserver is not None and set(STOP) <= blocked_in(forkserver)
        assert pid != os.getpid() and set(STOP) <= set(mask)
    finally:
        workers.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The finals of an uninterrupted run of the trial workflow."""
    return signal_trials.reference_finals(tmp_path_factory.mktemp("reference"))


@pytest.mark.workflow
@pytest.mark.parametrize("kind", list(signal_trials.KINDS))
def test_a_run_stopped_by_a_signal_resumes_to_identical_finals(
    kind: str, reference: dict[str, str], tmp_path: Path
) -> None:
    """One seeded trial of each kind (``bench/signals.py`` runs many): the signal comes once the
    resident worker has rendered an image, while it renders the next ones and the pool works."""
    delay = random.Random(f"signals-{kind}").uniform(0.0, 1.0)
    workdir = signal_trials.workflow(tmp_path / "work")
    trial = signal_trials.run_trial(workdir, kind, delay, reference, wait_work=True)
    output = (workdir / f"{kind}.log").read_text(encoding="utf-8", errors="replace")
    assert trial.sent, "the signal came before the run's end"
    assert trial.ok, f"{trial.errors}\n{output[-4000:]}"


# Loaded into the Snakemake process (sitecustomize): signals its own process group, as a
# terminal or a batch system would, while the Snakefile lists the library.
SIGNAL_WHILE_READING = """
import os, signal
import i2i.stages.library.albums as albums

listing = albums.discover


def discover(*args, **kwargs):
    os.killpg(os.getpgrp(), int(os.environ["I2I_TEST_SIGNAL"]))
    return listing(*args, **kwargs)


albums.discover = discover
"""


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["term", "int"]
)
def test_a_signal_while_the_snakefile_is_read_ends_the_run_with_one_line(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    workdir = copy_workflow(tmp_path / "work")
    pythonpath = with_sitecustomize(tmp_path / "hook", SIGNAL_WHILE_READING)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": pythonpath, "I2I_TEST_SIGNAL": str(int(signum))},
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert f"i2i: stopped by {name} before the run began; nothing was started" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert not (workdir / "results").exists(), "nothing was started"
    assert not list((workdir / ".snakemake").glob("locks/*")), "no lock left behind"
