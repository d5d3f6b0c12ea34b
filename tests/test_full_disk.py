"""A full disk under results/, logs/ or .snakemake/ (a 150 KiB tmpfs mounted there): one line
per failed job on the console, no traceback, and a run after space is freed completes."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

PROGRESS = re.compile(r"^\d\d:\d\d:\d\d +\d+/\d+ ")
# Snakemake's own lines around any failed run.
FRAME = re.compile(
    r"^(Using workflow specific profile|Config file \S+ is extended|Building DAG of jobs"
    r"|Exiting because a job execution"
    r"|Complete log\(s\):|Elapsed time:|WorkflowError:|At least one job did not complete)"
)
# A full .snakemake/ stops Snakemake itself: it cannot record a finished job's metadata.
SNAKEMAKE_STOPS = re.compile(
    r"^(Error recording metadata for finished job \(\[Errno 28\] No space left on device\)"
    r"|Ignore corrupted or currently written metadata record )"
)


@contextmanager
def full_disk(folder: Path) -> Iterator[None]:
    """A 150 KiB tmpfs at ``folder`` (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=150k", "tmpfs", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("folder", ["results", "logs", ".snakemake"])
def test_a_full_disk_is_one_line_per_failed_job(tmp_path: Path, folder: str) -> None:
    workdir = copy_workflow(tmp_path / "workflow")
    with full_disk(workdir / folder):
        result = snakemake(workdir, "--config", "styles=[cartoon,pencil_sketch]", check=False)
    console = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 1, "\n".join(console[-40:])
    text = "\n".join(console)
    assert "Traceback" not in text and "Logging error" not in text, text[-4000:]
    failed = [line for line in console if line.startswith("FAILED ")]
    other = [
        line
        for line in console
        if not (PROGRESS.match(line) or line.startswith("FAILED ") or FRAME.match(line))
    ]
    if folder == ".snakemake":
        assert other and all(SNAKEMAKE_STOPS.match(line) for line in other), other
        return
    assert not other, other
    assert failed and all("disk full (no space left on device)" in line for line in failed)
    assert all(re.search(r" \(log: logs/\S.*\.log\)$", line) for line in failed), failed
    if folder == "results":
        snakemake(workdir, "--config", "styles=[cartoon,pencil_sketch]")
        rerun = snakemake(workdir, "-n", "--config", "styles=[cartoon,pencil_sketch]")
        assert "Nothing to be done" in rerun.stdout
