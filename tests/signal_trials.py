"""Signals as batch systems send them: one trial is a run stopped by a signal at a random
moment, then a plain run that must resume to the finals of an uninterrupted run.

Shared by ``tests/test_signals.py`` (one seeded trial of each kind) and ``bench/signals.py``
(many). The workflow: the sample album plus copies, a classic style (the worker pool), the
toy resident backend (``toy_resident.py``, each render slowed down as a FLUX image would be) and
the catalogs and report (``script:`` jobs). Each check is on an outcome (exit status, files,
output), never on a time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

from i2i.core.files import sha256_file
from i2i.run.logs import ABANDONED
from i2i.run.runcontrol import RUN_LOCK, is_temp_name

from conftest import REPO, add_copies, copy_workflow

TESTS = REPO / "tests"
STYLES = ["cartoon", "poster"]
EXTRA_COPIES = 1
RENDER_SECONDS = "1.0"
RUN_TIMEOUT = 900
# kind: (signal, whom it is sent to, exit status of the stopped run)
KINDS = {
    "term-group": (signal.SIGTERM, "group", 0),
    "term-tree": (signal.SIGTERM, "tree", 0),
    "int-group": (signal.SIGINT, "group", 130),
    "kill-group": (signal.SIGKILL, "group", -signal.SIGKILL),
}


def workflow(destination: Path) -> Path:
    """A workflow copy: sample album plus ``EXTRA_COPIES`` copies of its photos, a classic and
    a toy resident style."""
    workdir = add_copies(copy_workflow(destination), EXTRA_COPIES)
    registry = yaml.safe_load((workdir / "styles.yaml").read_text(encoding="utf-8"))
    registry["styles"]["poster"] = {"backend": "toy-resident", "description": "4 levels"}
    (workdir / "styles-toy.yaml").write_text(yaml.safe_dump(registry), encoding="utf-8")
    shutil.copy(TESTS / "toy_resident.py", workdir / "toy_resident.py")
    settings = {
        "styles_file": "styles-toy.yaml",
        "style_backends": ["toy_resident"],
        "styles": STYLES,
    }
    (workdir / "trial.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return workdir


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
        "I2I_TOY_RENDER_SECONDS": RENDER_SECONDS,
    }


def start(workdir: Path, log: Path) -> subprocess.Popen:
    """Snakemake in its own process group (a terminal's job, a batch job); output to ``log``."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "trial.yaml"],
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment(),
        )


def run_to_end(workdir: Path, log: Path) -> int:
    """A plain run to the end; its exit status."""
    process = start(workdir, log)
    return process.wait(timeout=RUN_TIMEOUT)


def finals(workdir: Path) -> dict[str, str]:
    root = workdir / "results" / "final"
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*.webp"))}


def temp_files(workdir: Path) -> list[Path]:
    """Temp files of atomic writes left anywhere under ``results``."""
    return [p for p in (workdir / "results").rglob(".*") if is_temp_name(p.name)]


def abandoned_jobs(workdir: Path) -> int:
    """Jobs whose log says the stop abandoned them."""
    return sum(
        ABANDONED in path.read_text(encoding="utf-8", errors="replace")
        for path in (workdir / "logs").rglob("*.log")
    )


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (the resident worker, in its own session, too)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def send(process: subprocess.Popen, signum: int, whom: str) -> None:
    if whom == "group":
        os.killpg(process.pid, signum)
        return
    for member in tree(process.pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signum)


def wait_for_run_lock(process: subprocess.Popen, workdir: Path, log: Path) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not ((workdir / RUN_LOCK).exists() and (workdir / RUN_LOCK).read_text()):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no run lock"
        time.sleep(0.05)


def wait_for_work(process: subprocess.Popen, workdir: Path, log: Path) -> None:
    """Until the resident worker has rendered an image (it renders the others next, while the
    pool works on the classic style)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not list((workdir / "results" / "styled").rglob("poster/*.webp")):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no work done"
        time.sleep(0.1)


def stragglers(workdir: Path, wait: float = 30.0) -> list[psutil.Process]:
    """Processes still running in ``workdir`` after ``wait`` seconds (the forkserver and the
    resource tracker end a moment after the run)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for process in psutil.process_iter(["cwd", "cmdline"]):
            try:
                if process.info["cwd"] == str(workdir) and process.pid != os.getpid():
                    found.append(process)
            except psutil.Error:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@dataclass
class Trial:
    """What one trial saw."""

    kind: str
    delay: float
    sent: bool = False
    status: int | None = None
    stop_seconds: float = 0.0
    finals_at_stop: int = 0
    abandoned: int = 0
    resume_status: int | None = None
    identical: bool = False
    temps_after_stop: int = 0
    temps_after_resume: int = 0
    tracebacks: int = 0
    stop_lines: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        """The exit status: a signal that came after the run's end changes nothing."""
        return KINDS[self.kind][2] if self.sent else 0

    @property
    def ok(self) -> bool:
        return not self.errors


def run_trial(
    workdir: Path, kind: str, delay: float, reference: dict[str, str], wait_work: bool
) -> Trial:
    """Stop a run of ``workdir`` (fresh, no results) with ``kind`` ``delay`` seconds after it
    took the run lock, resume it, and check the outcome. ``wait_work``: the delay starts once
    the resident worker has rendered an image (a test must see a stop in the middle of the
    run, whatever the machine's load)."""
    signum, whom, _ = KINDS[kind]
    trial = Trial(kind, round(delay, 2))
    log = workdir / f"{kind}.log"
    process = start(workdir, log)
    wait_for_run_lock(process, workdir, log)
    if wait_work:
        wait_for_work(process, workdir, log)
    time.sleep(trial.delay)
    sent = time.monotonic()
    if process.poll() is None:
        send(process, signum, whom)
        trial.sent = True
    trial.status = process.wait(timeout=RUN_TIMEOUT)
    trial.stop_seconds = round(time.monotonic() - sent, 2)
    output = log.read_text(encoding="utf-8", errors="replace")
    trial.finals_at_stop = len(finals(workdir))
    trial.abandoned = abandoned_jobs(workdir)
    trial.temps_after_stop = len(temp_files(workdir))
    trial.tracebacks = output.count("Traceback")
    trial.stop_lines = output.count("stopped by Ctrl-C")
    if trial.status != trial.expected:
        trial.errors.append(f"exit status {trial.status}, expected {trial.expected}")
    if signum != signal.SIGKILL:
        if trial.tracebacks:
            trial.errors.append("a traceback in the output")
        if trial.temps_after_stop:
            trial.errors.append(f"{trial.temps_after_stop} temp file(s) after the stop")
        if trial.sent and signum == signal.SIGINT and trial.stop_lines != 1:
            trial.errors.append(f"{trial.stop_lines} 'stopped by Ctrl-C' lines")
    resume_log = workdir / f"{kind}-resume.log"
    trial.resume_status = run_to_end(workdir, resume_log)
    trial.identical = finals(workdir) == reference
    trial.temps_after_resume = len(temp_files(workdir))
    if trial.resume_status != 0:
        trial.errors.append(f"the resumed run exited {trial.resume_status}")
    if not trial.identical:
        trial.errors.append("finals differ from an uninterrupted run's")
    if trial.temps_after_resume:
        trial.errors.append(f"{trial.temps_after_resume} temp file(s) after the resumed run")
    for straggler in stragglers(workdir):
        trial.errors.append(f"process {straggler.pid} {straggler.info['cmdline']} left running")
        straggler.kill()
    return trial


def reference_run(destination: Path) -> tuple[dict[str, str], float]:
    """The finals of an uninterrupted run, and its seconds from the run lock to its end."""
    workdir = workflow(destination)
    log = workdir / "reference.log"
    process = start(workdir, log)
    wait_for_run_lock(process, workdir, log)
    locked = time.monotonic()
    status = process.wait(timeout=RUN_TIMEOUT)
    assert status == 0, log.read_text()[-3000:]
    return finals(workdir), time.monotonic() - locked


def reference_finals(destination: Path) -> dict[str, str]:
    """The finals of an uninterrupted run."""
    return reference_run(destination)[0]
