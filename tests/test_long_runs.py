"""Long runs: interrupts at random moments, the graceful stop file, bad inputs, the report."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from i2i.files import sha256_file

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

STYLES = "styles=[cartoon,oil_paint,pencil_sketch]"
EXTRA_COPIES = 4


def long_workflow(destination: Path) -> Path:
    """A workflow copy whose library is the sample album plus an album of copies of its
    photos (30 photos), so a run lasts long enough to be interrupted at random moments."""
    workdir = copy_workflow(destination)
    albums = workdir / "sample" / "albums"
    extra = albums / "Extra"
    extra.mkdir()
    for number in range(EXTRA_COPIES):
        for photo in sorted(p for p in albums.glob("*/*") if p.parent != extra):
            shutil.copyfile(photo, extra / f"{photo.stem}_{number}{photo.suffix}")
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


def assert_no_partial_targets(workdir: Path) -> None:
    """Every file standing at a target path is whole: images decode, JSON parses."""
    for path in (workdir / "results").rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix in {".webp", ".jpg"}:
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """sha256 of every final image of an uninterrupted run."""
    workdir = long_workflow(tmp_path_factory.mktemp("reference"))
    snakemake(workdir, "--config", STYLES)
    result = finals(workdir)
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


def test_stop_file_finishes_jobs_in_flight_and_exits_cleanly(
    reference: dict[str, str], tmp_path: Path
) -> None:
    workdir = long_workflow(tmp_path / "work")
    process = start(workdir)
    deadline = time.monotonic() + 120
    while not list((workdir / "results" / "final").rglob("*.webp")):
        assert process.poll() is None, (workdir / "run.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.2)
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


def test_bad_photos_fail_alone_and_the_rest_completes(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "work")
    album = workdir / "sample" / "albums" / "Space Coast"
    good = (album / "falcon9_launch.jpg").read_bytes()
    (album / "corrupt.jpg").write_bytes(good[:200] + b"\x00" * 5000 + good[5200:])
    (album / "truncated.heic").write_bytes((album / "deep_field.heic").read_bytes()[:3000])
    (album / "empty.jpg").write_bytes(b"")
    (album / "notes.jpg").write_text("shopping list, not a photo\n")
    result = snakemake(workdir, "--config", "styles=[cartoon]", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for name in ("truncated.heic", "empty.jpg", "notes.jpg"):
        assert name in output, name
    final = workdir / "results" / "final"
    for photo in ("falcon9_launch", "eileen_collins", "deep_field"):
        assert (final / "Space Coast" / "cartoon" / f"{photo}.webp").is_file()
    assert len(list((final / "Côte d'Azur & Paris" / "cartoon").glob("*.webp"))) == 3
    for photo in ("truncated", "empty", "notes"):
        assert not (final / "Space Coast" / "cartoon" / f"{photo}.webp").exists()


def test_report_opens_in_chromium(browser, tmp_path: Path) -> None:
    from chromium import open_page, problems

    workdir = copy_workflow(tmp_path / "work")
    snakemake(workdir, "--config", "styles=[watercolour]")
    snakemake(workdir, "--config", "styles=[watercolour]", "--report", "report.html")
    report = workdir / "report.html"
    open_page(browser, report.as_uri(), tmp_path / "report.png")
    time.sleep(1)
    text = browser.evaluate("document.body.innerText")
    assert "i2i" in text and "Space Coast" in text
    assert problems(browser) == []
    assert (tmp_path / "report.png").stat().st_size > 5000
