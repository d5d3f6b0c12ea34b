"""A live library: photos added, removed and edited in the albums folder while a run goes on.

The run is frozen (SIGSTOP to its process group) at a moment chosen by what it has written,
not by time: once its first styled image stands. Then one photo whose jobs have not started
is removed, one whose jobs have started is edited, and one is added; the run is resumed. It
must finish what it can without a crash or a half-built output (the removed photo's jobs fail
with one line naming the file), and the next run must take the library as it is then: the
same per-photo files, byte for byte, as a clean run of that library.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from i2i.core.files import sha256_file
from i2i.run.runcontrol import is_temp_name

from conftest import add_copies, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

STYLES = "styles=[cartoon,pencil_sketch]"
# The per-photo stages, whose bytes depend on the photo and the settings alone.
PHOTO_STAGES = ("metadata", "places", "captions", "preprocessed", "styled", "final")


def start(workdir: Path) -> subprocess.Popen:
    """Snakemake in its own process group (so that it can be frozen whole); output to run.log."""
    with (workdir / "run.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", "--config", STYLES],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"},
        )


@contextlib.contextmanager
def frozen(process: subprocess.Popen) -> Iterator[None]:
    """The run and every process of it stopped while the block runs."""
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGCONT)


def wait_for_a_styled_image(process: subprocess.Popen, workdir: Path) -> None:
    deadline = time.monotonic() + 300
    while not list((workdir / "results" / "styled").rglob("*.webp")):
        assert process.poll() is None, (workdir / "run.log").read_text()
        assert time.monotonic() < deadline, "no styled image after 300 s"
        time.sleep(0.05)


def started(workdir: Path, album: str, stem: str) -> bool:
    """True when a job of the photo has begun (its metadata or preprocess log exists)."""
    return any(
        (workdir / "logs" / rule / album / f"{stem}.log").exists()
        for rule in ("metadata", "preprocess")
    )


def stage_outputs(workdir: Path) -> dict[str, str]:
    """sha256 of every output of the per-photo stages."""
    root = workdir / "results"
    return {
        str(p.relative_to(root)): sha256_file(p)
        for stage in PHOTO_STAGES
        for p in sorted((root / stage).rglob("*"))
        if p.is_file()
    }


def assert_whole(workdir: Path) -> None:
    """No temp file left, and every file at a target path is whole."""
    for path in (workdir / "results").rglob("*"):
        assert not is_temp_name(path.name), f"left behind: {path}"
        if not path.is_file():
            continue
        if path.suffix in {".webp", ".jpg"}:
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


def test_photos_changed_during_a_run_are_taken_by_the_next(tmp_path: Path) -> None:
    workdir = add_copies(copy_workflow(tmp_path / "live"), 1)
    albums = workdir / "sample" / "albums"
    process = start(workdir)
    try:
        wait_for_a_styled_image(process, workdir)
        with frozen(process):
            photos = sorted(p for p in albums.glob("*/*") if p.is_file())
            waiting = [p for p in photos if not started(workdir, p.parent.name, p.stem)]
            begun = [p for p in photos if started(workdir, p.parent.name, p.stem)]
            assert waiting and begun, "the run was frozen before or after every photo began"
            removed, edited = waiting[-1], begun[0]
            removed.unlink()
            with Image.open(edited) as image:
                turned = image.rotate(90, expand=True)
            turned.save(edited.with_name(f".{edited.stem}.tmp{edited.suffix}"))
            edited.with_name(f".{edited.stem}.tmp{edited.suffix}").replace(edited)
            added = albums / "Extra" / f"added{begun[-1].suffix}"
            shutil.copyfile(begun[-1], added)
        returncode = process.wait(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = (workdir / "run.log").read_text(errors="replace")
    assert returncode in (0, 1), output
    for crash in ("MissingInputException", "Missing files after", "Traceback"):
        assert crash not in output, output[-3000:]
    assert f"{removed.relative_to(workdir)}: removed from its album during the run" in output
    assert_whole(workdir)

    snakemake(workdir, "--config", STYLES)
    assert "Nothing to be done" in snakemake(workdir, "-n", "--config", STYLES).stdout
    assert_whole(workdir)

    reference = copy_workflow(tmp_path / "reference")
    shutil.rmtree(reference / "sample" / "albums")
    shutil.copytree(albums, reference / "sample" / "albums")
    snakemake(reference, "--config", STYLES)
    assert stage_outputs(workdir) == stage_outputs(reference)
    name = f"{added.stem}.webp"
    assert (workdir / "results" / "final" / "Extra" / "cartoon" / name).exists()
    gone = workdir / "results" / "final" / removed.parent.name / "cartoon" / f"{removed.stem}.webp"
    assert not gone.exists()
