"""Run control: the per-folder run lock, clean-up after a crash, SIGTERM as a graceful stop."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from i2i.core.files import atomic_path
from i2i.run import runcontrol
from i2i.run.runcontrol import (
    RUN_LOCK,
    SNAKEMAKE_LOCKS,
    Holder,
    RunLocked,
    acquire_run_lock,
    clean_up_after,
    is_temp_name,
    release_run_lock,
    sweep_temp_files,
)

from conftest import copy_workflow, snakemake

CARTOON = ("--config", "styles=[cartoon]")
HOLD_IN_CHILD = """
import sys, time
from i2i.run.runcontrol import acquire_run_lock
acquire_run_lock(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def hold_in_child(workdir: Path) -> subprocess.Popen:
    """Another process that takes the run lock of ``workdir`` and keeps it."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_CHILD, str(workdir)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_run_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    descriptor, stale = acquire_run_lock(tmp_path)
    assert stale is None
    holder = Holder.parse((tmp_path / RUN_LOCK).read_text())
    assert holder is not None and holder.pid == os.getpid()
    with pytest.raises(RunLocked, match=rf"another i2i run .*\(pid {os.getpid()} on "):
        acquire_run_lock(tmp_path, wait=0)
    result = subprocess.run(
        [sys.executable, "-c", HOLD_IN_CHILD, str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode != 0 and f"pid {os.getpid()} on" in result.stderr
    release_run_lock(descriptor)
    assert (tmp_path / RUN_LOCK).read_text() == "", "a clean end leaves no holder behind"
    descriptor, stale = acquire_run_lock(tmp_path)
    assert stale is None
    release_run_lock(descriptor)


def test_lock_of_a_killed_run_is_stale_and_reported(tmp_path: Path) -> None:
    child = hold_in_child(tmp_path)
    with pytest.raises(RunLocked, match=f"pid {child.pid} on"):
        acquire_run_lock(tmp_path, wait=0)
    child.kill()
    child.wait()
    descriptor, stale = acquire_run_lock(tmp_path)
    try:
        assert stale is not None and stale.pid == child.pid
    finally:
        release_run_lock(descriptor)


def test_temp_names_of_atomic_writes_are_recognised(tmp_path: Path) -> None:
    targets = ["a.webp", "no_suffix", "x" * 80 + ".json", "dotted.name.tar.gz", "Côte d'Azur.jpg"]
    for target in targets:
        with atomic_path(tmp_path / target) as tmp:
            assert is_temp_name(tmp.name), tmp.name
    for name in ("a.webp", ".hidden", ".a.webp", "a.tmp.webp", ".a.tmp.webp", ".a.ABCDEFGH.tmp"):
        assert not is_temp_name(name), name


def test_sweep_removes_only_temp_files_under_results(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "final" / "Album" / "cartoon"
    folder.mkdir(parents=True)
    keep = [folder / "photo.webp", folder / ".photo.webp", tmp_path / "cache" / ".c.abcd1234.tmp"]
    gone = [folder / ".photo.k2_x9abc.tmp.webp", tmp_path / "results" / ".m.abcdefgh.tmp.json"]
    for path in keep + gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert sweep_temp_files(tmp_path) == len(gone)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)


def test_clean_up_after_a_crash_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("i2i"), "propagate", True)
    locks = tmp_path / SNAKEMAKE_LOCKS
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("a\n")
    (locks / "0.output.lock").write_text("b\n")
    temp = tmp_path / "results" / "styled" / ".p.abcd_123.tmp.webp"
    temp.parent.mkdir(parents=True)
    temp.write_bytes(b"")
    stale = Holder(4242, "elsewhere", "2026-01-01 00:00:00+00:00")
    with caplog.at_level("WARNING", logger="i2i.run.runcontrol"):
        clean_up_after(stale, tmp_path)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "pid 4242 on elsewhere" in lines[0] and "removed 2 Snakemake lock" in lines[0]
    assert "removed 1 temp file" in lines[1]
    assert not list(locks.iterdir()) and not temp.exists()
    caplog.clear()
    clean_up_after(None, tmp_path)
    assert caplog.records == [], "nothing stale, nothing said"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_stop_signal_is_a_requested_stop(
    monkeypatch: pytest.MonkeyPatch, signum: int, status: int
) -> None:
    for name in ("_requested", "_interrupted", "_signalled"):
        monkeypatch.setattr(runcontrol, name, threading.Event())
    monkeypatch.setattr(runcontrol, "_on_signal_stop", [])
    runcontrol.on_stop_signal(signum, None)  # before onstart: recorded, nothing to ask yet
    stopped, abandoned = threading.Event(), threading.Event()
    monkeypatch.setattr(runcontrol, "watch_stop_file", lambda stop, workdir: threading.Event())
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        runcontrol.install(stopped.set, abandoned.set)
        assert signal.getsignal(signal.SIGINT) is runcontrol.on_stop_signal
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert stopped.wait(5) and abandoned.wait(5), "the early signal's stop, once onstart came"
    with pytest.raises(SystemExit) as exit_:
        runcontrol.exit_if_stopped_on_request(0)
    assert exit_.value.code == status
    runcontrol.exit_if_stopped_on_request(1)  # a failed job: Snakemake's own exit status stands


def test_a_stop_only_the_scheduler_knew_of_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM that Snakemake's own handler took, in place a moment before ``onstart``."""
    for name in ("_requested", "_interrupted"):
        monkeypatch.setattr(runcontrol, name, threading.Event())
    runcontrol.exit_if_stopped_on_request(0)  # no stop asked for: Snakemake's status stands
    with pytest.raises(SystemExit) as exit_:
        runcontrol.exit_if_stopped_on_request(0, scheduler_stopped=True)
    assert exit_.value.code == 0


@pytest.mark.workflow
def test_only_real_runs_take_the_lock(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "work")
    child = hold_in_child(workdir)
    try:
        refused = snakemake(workdir, *CARTOON, check=False)
        output = refused.stdout + refused.stderr
        lines = [line for line in output.splitlines() if "another i2i run" in line]
        assert refused.returncode == 1 and len(lines) == 1, output[-3000:]
        assert f"pid {child.pid} on" in lines[0]
        assert "Traceback" not in output and not (workdir / "results").exists()
        for args in (("-n", *CARTOON), ("--unlock",), ("--lint",), ("--list-rules",)):
            result = snakemake(workdir, *args, check=False)
            assert "another i2i run" not in result.stdout + result.stderr, args
            assert args[0] == "--lint" or result.returncode == 0, args
    finally:
        child.kill()
        child.wait()
    snakemake(workdir, *CARTOON)


@pytest.mark.workflow
def test_two_runs_started_at_once_one_runs(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "work")
    for trial in range(3):
        shutil.rmtree(workdir / "results", ignore_errors=True)
        logs = [workdir / f"run{trial}-{n}.log" for n in (0, 1)]
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "snakemake", "--cores", "2", *CARTOON],
                cwd=workdir,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        codes = [run.wait(timeout=300) for run in runs]
        assert sorted(codes) == [0, 1], codes
        winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
        text = logs[loser].read_text()
        lines = [line for line in text.splitlines() if "another i2i run" in line]
        assert len(lines) == 1 and f"pid {runs[winner].pid} on" in lines[0], text
        assert "Error in rule" not in text and "Traceback" not in text
        assert "did not end cleanly" not in logs[winner].read_text()
    assert "Nothing to be done" in snakemake(workdir, "-n", *CARTOON).stdout


@pytest.mark.workflow
def test_run_after_kill_9_clears_the_stale_lock_with_a_warning(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "work")
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", *CARTOON],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Wait for what the assertions below need: the run lock with its holder, and Snakemake's
    # lock files themselves (the locks folder exists a moment before they are written).
    deadline = time.monotonic() + 300
    while not (
        (workdir / RUN_LOCK).is_file()
        and (workdir / RUN_LOCK).read_text()
        and list((workdir / SNAKEMAKE_LOCKS).glob("*.lock"))
    ):
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert list((workdir / SNAKEMAKE_LOCKS).glob("*.lock")), "the kill left Snakemake's locks"
    temp = workdir / "results" / "final" / "Space Coast" / "cartoon" / ".d.x1y2z3_4.tmp.webp"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(b"half an image")

    resumed = snakemake(workdir, *CARTOON)
    output = resumed.stdout + resumed.stderr
    warnings = [line for line in output.splitlines() if "did not end cleanly" in line]
    assert len(warnings) == 1 and f"pid {run.pid} on" in warnings[0], output[-3000:]
    assert "temp file(s) of interrupted jobs" in output and not temp.exists()
    assert "LockException" not in output and "cannot be locked" not in output
    assert not (workdir / SNAKEMAKE_LOCKS).exists()
    assert "Nothing to be done" in snakemake(workdir, "-n", *CARTOON).stdout


def test_half_done_outputs_of_a_dead_run_are_removed(tmp_path: Path) -> None:
    output = tmp_path / "results" / "report" / "contact_sheets" / "Space Coast.jpg"
    output.parent.mkdir(parents=True)
    output.write_bytes(b"an older contact sheet")
    kept = tmp_path / "results" / "catalog" / "master.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    markers = tmp_path / ".snakemake" / "incomplete"
    markers.mkdir(parents=True)
    name = base64.urlsafe_b64encode(b"results/report/contact_sheets/Space Coast.jpg").decode()
    (markers / name).write_text("")
    outside = base64.urlsafe_b64encode(b"../elsewhere.jpg").decode()
    (markers / outside).write_text("")
    (tmp_path.parent / "elsewhere.jpg").write_bytes(b"not ours")
    (markers / "migration_underway").write_text("")
    assert runcontrol.remove_half_done(tmp_path) == 1
    assert not output.exists() and kept.exists()
    assert (tmp_path.parent / "elsewhere.jpg").exists()
    assert sorted(p.name for p in markers.iterdir()) == ["migration_underway"]
