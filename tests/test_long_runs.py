"""Long runs: interrupts and kill -9 at random moments, graceful stops, bad inputs, the report."""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from i2i.core.files import sha256_file
from i2i.run.runcontrol import RUN_LOCK, is_temp_name

from conftest import (
    add_copies,
    assert_no_partial_targets,
    copy_workflow,
    snakemake,
    stage_outputs,
)

pytestmark = pytest.mark.workflow

STYLES = "styles=[cartoon,oil_paint,pencil_sketch]"
EXTRA_COPIES = 4
KILL_TRIALS = 10


def long_workflow(destination: Path) -> Path:
    """A workflow copy whose library is the sample album plus an album of copies of its
    photos (30 photos), so a run lasts long enough to be interrupted at random moments."""
    workdir = add_copies(copy_workflow(destination), EXTRA_COPIES)
    return workdir


def start(workdir: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own process group, as a terminal would run it; output to run.log."""
    log = (workdir / "run.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--config", STYLES, *args],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def finals(workdir: Path) -> dict[str, str]:
    root = workdir / "results" / "final"
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*.webp"))}


def half_done(workdir: Path) -> dict[Path, int]:
    """Outputs that exist although Snakemake marks their job as unfinished: {path: mtime_ns}."""
    markers = workdir / ".snakemake" / "incomplete"
    found = {}
    for marker in markers.rglob("*"):
        if marker.is_file() and marker.name != "migration_underway":
            encoded = "".join(part.lstrip("@") for part in marker.relative_to(markers).parts)
            path = workdir / base64.urlsafe_b64decode(encoded).decode()
            if path.exists():
                found[path] = path.stat().st_mtime_ns
    return found


def wait_for_run_lock(process: subprocess.Popen, workdir: Path) -> None:
    """Wait until the run holds the run lock (its details are in the lock file)."""
    deadline = time.monotonic() + 120
    while not ((workdir / RUN_LOCK).exists() and (workdir / RUN_LOCK).read_text()):
        assert process.poll() is None, (workdir / "run.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def wait_for_first_final(process: subprocess.Popen, workdir: Path) -> None:
    """Wait until the run has written its first final image."""
    deadline = time.monotonic() + 120
    while not list((workdir / "results" / "final").rglob("*.webp")):
        assert process.poll() is None, (workdir / "run.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy after an uninterrupted run."""
    workdir = long_workflow(tmp_path_factory.mktemp("reference"))
    snakemake(workdir, "--config", STYLES)
    return workdir


@pytest.fixture(scope="module")
def reference(reference_workdir: Path) -> dict[str, str]:
    """sha256 of every final image of an uninterrupted run."""
    result = finals(reference_workdir)
    assert len(result) == 6 * (1 + EXTRA_COPIES) * 3
    return result


def test_interrupted_runs_resume_to_identical_files(
    reference: dict[str, str], tmp_path: Path
) -> None:
    workdir = long_workflow(tmp_path / "work")
    rng = random.Random(20261124)
    interrupts = [("SIGINT", True), ("SIGTERM", False), ("SIGINT", True), ("SIGTERM", False)]
    for name, whole_group in interrupts:
        process = start(workdir)
        time.sleep(rng.uniform(1.0, 6.0))
        if process.poll() is None:
            sig = getattr(signal, name)
            if whole_group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        assert process.wait(timeout=180) is not None
        assert_no_partial_targets(workdir)
    snakemake(workdir, "--config", STYLES)
    assert finals(workdir) == reference


def test_kill_9_at_random_moments_resumes_without_unlock(
    reference_workdir: Path, tmp_path: Path
) -> None:
    """kill -9 of the whole run (a crash, a power cut), then plain ``snakemake`` each time."""
    workdir = long_workflow(tmp_path / "work")
    rng = random.Random(20261125)
    rewritten: dict[Path, int] = {}
    for trial in range(KILL_TRIALS):
        process = start(workdir)
        if trial == 0:
            wait_for_run_lock(process, workdir)  # one kill at least lands after the lock
        time.sleep(rng.uniform(1.0, 5.0))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        assert_no_partial_targets(workdir)
        rewritten.update(half_done(workdir))
    final = snakemake(workdir, "--config", STYLES)
    log = (workdir / "run.log").read_text() + final.stdout + final.stderr
    for refusal in ("LockException", "cannot be locked", "another i2i run"):
        assert refusal not in log, refusal
    assert "did not end cleanly" in log, "a kill after the lock was taken is cleaned up"
    assert stage_outputs(workdir) == stage_outputs(reference_workdir)
    assert not [p for p in (workdir / "results").rglob(".*") if is_temp_name(p.name)]
    for path, mtime in rewritten.items():
        assert path.stat().st_mtime_ns != mtime, f"half-done {path} was not rebuilt"


def test_sigterm_finishes_jobs_in_flight_and_exits_cleanly(
    reference: dict[str, str], tmp_path: Path
) -> None:
    workdir = long_workflow(tmp_path / "work")
    process = start(workdir)
    wait_for_first_final(process, workdir)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0, (workdir / "run.log").read_text()[-3000:]
    log = (workdir / "run.log").read_text()
    assert "SIGTERM: finishing the jobs in flight" in log and "stopped on request" in log
    assert "Error in rule" not in log and "did not complete successfully" not in log
    assert_no_partial_targets(workdir)
    assert len(finals(workdir)) < len(reference), "the stop came before the end"
    snakemake(workdir, "--config", STYLES)
    assert finals(workdir) == reference


def test_stop_file_finishes_jobs_in_flight_and_exits_cleanly(
    reference: dict[str, str], tmp_path: Path
) -> None:
    workdir = long_workflow(tmp_path / "work")
    process = start(workdir)
    wait_for_first_final(process, workdir)
    subprocess.run([sys.executable, "-m", "i2i.cli", "-d", str(workdir), "stop"], check=True)
    assert process.wait(timeout=120) == 0, (workdir / "run.log").read_text()[-3000:]
    log = (workdir / "run.log").read_text()
    assert "finishing the jobs in flight" in log and "stopped on request" in log
    assert "Error in rule" not in log
    assert not (workdir / ".i2i" / "stop").exists()
    assert_no_partial_targets(workdir)
    assert len(finals(workdir)) < len(reference), "the stop came before the end"
    pending = snakemake(workdir, "-n", "--config", STYLES)
    assert "Nothing to be done" not in pending.stdout + pending.stderr
    snakemake(workdir, "--config", STYLES)
    assert finals(workdir) == reference


def test_report_opens_in_chromium(browser, tmp_path: Path) -> None:
    from chromium import open_page, problems

    workdir = copy_workflow(tmp_path / "work")
    snakemake(workdir, "--config", "styles=[watercolour]")
    snakemake(workdir, "--config", "styles=[watercolour]", "--report", "report.html")
    report = workdir / "report.html"
    open_page(browser, report.as_uri(), tmp_path / "report.png")
    # The report draws its content with JavaScript after the load event: wait for the text.
    deadline = time.monotonic() + 60
    text = browser.evaluate("document.body.innerText")
    while "Space Coast" not in text and time.monotonic() < deadline:
        time.sleep(0.2)
        text = browser.evaluate("document.body.innerText")
    assert "i2i" in text and "Space Coast" in text
    assert problems(browser) == []
    assert (tmp_path / "report.png").stat().st_size > 5000
