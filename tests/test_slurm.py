"""The workflow through profiles/slurm on a real single-node Slurm cluster started here.

One run is interrupted (SIGINT to Snakemake) while its second group job runs: its Slurm jobs must
be cancelled. The rerun resumes (the finished group is not submitted again) and completes with
the same targets as a local run. The cluster has no accounting database, so the test run checks
status with squeue, polls every few seconds and names no account (sacctmgr cannot check one).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from slurm_cluster import Cluster, running_cluster, skip_reason

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.slurm

log = logging.getLogger("i2i.tests.slurm")

STYLE = "cartoon"
FLUX_STYLE = "kontext-3d-chibi"
# One album of the sample (3 photos): every cluster job costs seconds of sbatch and start-up.
ALBUM = "Space Coast"
PHOTOS = 3
CLUSTER_ARGS = (
    "--workflow-profile",
    "profiles/slurm",
    "--default-resources",
    "slurm_partition=cpu",
    "mem_mb=500",
    "runtime=5",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--seconds-between-status-checks",
    "1",
    "--latency-wait",
    "5",
    "--config",
    f"styles=[{STYLE}]",
)
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")


@dataclass(frozen=True)
class Interrupted:
    """A cluster run stopped by SIGINT: its exit code and the jobs Slurm still had after it."""

    workdir: Path
    returncode: int
    left_in_queue: list[str]
    submitted: list[str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """munged, slurmctld and slurmd for this module; skipped where they cannot run."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with running_cluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def start(workdir: Path, *args: str, path: str | None = None) -> subprocess.Popen:
    """Snakemake on the cluster in its own session; output to run.log.

    A shell that starts the tests in the background (``cmd &``) leaves SIGINT ignored, and an
    ignored signal stays ignored across exec: Snakemake would never see the interrupt these
    tests send. So it starts with SIGINT at its default, as from a terminal.
    """
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with (workdir / "run.log").open("ab") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "snakemake", "--cores", "2", *CLUSTER_ARGS, *args],
                cwd=workdir,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PATH": path or os.environ["PATH"]},
            )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for(check, process: subprocess.Popen, workdir: Path, timeout: float = 180) -> None:
    """Poll ``check`` until true; fail when Snakemake exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not check():
        tail = read_log(workdir)[-3000:]
        assert process.poll() is None, f"snakemake exited early:\n{tail}"
        assert time.monotonic() < deadline, f"timed out:\n{tail}"
        time.sleep(0.5)


def read_log(workdir: Path) -> str:
    return (workdir / "run.log").read_text(errors="replace")


def submitted(workdir: Path) -> list[str]:
    """Slurm job IDs that Snakemake reported as submitted in run.log."""
    return SUBMITTED.findall(read_log(workdir))


def holding_path(folder: Path) -> str:
    """A PATH whose ``sbatch`` submits every job held (``--hold``): it stays pending until the
    test releases it, so the moment of the interrupt does not depend on how fast jobs run."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "sbatch"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("sbatch")} --hold "$@"\n')
    wrapper.chmod(0o755)
    return os.pathsep.join([str(folder), os.environ["PATH"]])


def release(job: str) -> None:
    subprocess.run(["scontrol", "release", job], check=True, capture_output=True)


@pytest.fixture(scope="module")
def interrupted(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    """A run interrupted once its first group job is done and the next one is queued.

    Every job is submitted held; the test releases the first one only, waits until it has
    finished and the second is submitted (held, so still queued however fast the jobs are),
    and then interrupts."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-run"))
    for album in (workdir / "sample" / "albums").iterdir():
        if album.name != ALBUM:
            shutil.rmtree(album)
    process = start(workdir, path=holding_path(workdir.parent / "held-bin"))
    try:
        wait_for(lambda: bool(submitted(workdir)), process, workdir)
        first = submitted(workdir)[0]
        release(first)
        wait_for(
            lambda: len(submitted(workdir)) >= 2 and first not in cluster.jobs(), process, workdir
        )
        assert submitted(workdir)[1] in cluster.jobs(), "the second job is held in the queue"
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 15
    while cluster.jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    return Interrupted(workdir, returncode, cluster.jobs(), submitted(workdir))


@pytest.fixture(scope="module")
def resumed(interrupted: Interrupted) -> tuple[Path, str]:
    """The interrupted run run again to the end, and its output."""
    began = time.monotonic()
    result = snakemake(interrupted.workdir, *CLUSTER_ARGS)
    log.info("rerun on Slurm took %.1f s", time.monotonic() - began)
    return interrupted.workdir, result.stdout + result.stderr


def decodes(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_interrupt_cancels_the_runs_slurm_jobs(interrupted: Interrupted, cluster: Cluster) -> None:
    assert interrupted.returncode != 0
    assert len(interrupted.submitted) >= 2, "interrupted while a second group job was queued"
    assert interrupted.left_in_queue == [], cluster.logs()
    assert not (interrupted.workdir / "results" / "catalog" / "master.json").exists()


def test_rerun_resumes_without_redoing_finished_groups(resumed: tuple[Path, str]) -> None:
    _, output = resumed
    assert "Group job prep" not in output
    assert "Group job style" in output
    assert 1 <= len(SUBMITTED.findall(output)) <= 3, "the small jobs are grouped"


def test_every_target_of_the_cluster_run_decodes(resumed: tuple[Path, str]) -> None:
    workdir, _ = resumed
    results = workdir / "results"
    catalog = json.loads((results / "catalog" / "master.json").read_text(encoding="utf-8"))
    photos = [(e["album"], e["photo"]) for e in catalog["photos"]]
    assert len(photos) == PHOTOS
    assert catalog["styles"] == [STYLE]
    assert catalog["image_count"] == PHOTOS
    for album, photo in photos:
        size = decodes(results / "preprocessed" / album / f"{photo}.webp")
        assert decodes(results / "final" / album / STYLE / f"{photo}.webp") == size
        assert (results / "published" / album / STYLE / f"{photo}.json").is_file()
    for album in catalog["albums"]:
        assert decodes(results / "report" / "contact_sheets" / f"{album}.jpg")
    assert (results / "report" / "progress.html").is_file()
    assert (results / "published" / "gallery.json").is_file()
    dry_run = snakemake(workdir, "-n", *CLUSTER_ARGS)
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr


def test_flux_images_share_one_gpu_job(resumed: tuple[Path, str], cluster: Cluster) -> None:
    """All FLUX images of a group go to one Slurm job on the gpu partition with one GPU."""
    workdir, _ = resumed
    catalog = json.loads((workdir / "results" / "catalog" / "master.json").read_text("utf-8"))
    targets = [
        f"results/styled/{p['album']}/{FLUX_STYLE}/{p['photo']}.webp" for p in catalog["photos"]
    ]
    # Explicit targets: --until cannot see the jobs behind the inventory checkpoint.
    flux = ("--verbose", *targets, "--config", f"styles=[{FLUX_STYLE}]")
    (workdir / "run.log").write_bytes(b"")
    process = start(workdir, *flux)
    try:
        wait_for(lambda: "sbatch call:" in read_log(workdir), process, workdir, timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    calls = [line for line in read_log(workdir).splitlines() if "sbatch call:" in line]
    assert len(calls) == 1, calls
    call = calls[0]
    assert " -p gpu " in call and "--gpus=1" in call
    assert call.count("stylize_flux:album=") == PHOTOS
    assert cluster.jobs() == []
