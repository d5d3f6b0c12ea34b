"""A live library: photos added, removed and edited in the albums folder while a run goes on,
and a Photos library whose database is swapped for another state during a run.

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
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PIL import Image

from i2i.run.runcontrol import is_temp_name

from conftest import (
    add_copies,
    assert_no_partial_targets,
    copy_workflow,
    snakemake,
    stage_outputs,
    with_sitecustomize,
)

pytestmark = pytest.mark.workflow

STYLES = "styles=[cartoon,pencil_sketch]"
PHOTOS_FIXTURE = (
    Path(__file__).resolve().parent / "fixtures" / "photos" / "Test-15.4.1.photoslibrary"
)
PHOTOS_CONFIG = {
    "photos": {"library": "Library.photoslibrary", "unfiled": "Unfiled"},
    "albums_dir": "exported",
    "styles": ["pencil_sketch"],
    "preprocess": {"long_side": 128},
}
# Asset and album primary keys in the fixture's database (tests/test_apple_photos.py).
PUMPKINS3, PUMKINS2, PUMPKIN_FARM = 2, 5, 5


def start(workdir: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own process group (so that it can be frozen whole); output to run.log."""
    with (workdir / "run.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", *args],
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


def assert_whole(workdir: Path) -> None:
    """No temp file left, and every file at a target path is whole."""
    for path in (workdir / "results").rglob("*"):
        assert not is_temp_name(path.name), f"left behind: {path}"
    assert_no_partial_targets(workdir)


def test_photos_changed_during_a_run_are_taken_by_the_next(tmp_path: Path) -> None:
    workdir = add_copies(copy_workflow(tmp_path / "live"), 1)
    albums = workdir / "sample" / "albums"
    process = start(workdir, "--config", STYLES)
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


def photos_workdir(destination: Path) -> Path:
    """A workflow copy whose library is a writable copy of the Photos test library."""
    workdir = copy_workflow(destination)
    shutil.copytree(PHOTOS_FIXTURE, workdir / "Library.photoslibrary")
    (workdir / "photos.yaml").write_text(yaml.safe_dump(PHOTOS_CONFIG), encoding="utf-8")
    return workdir


def another_state(library: Path, destination: Path) -> Path:
    """The library's database after Photos removed Pumpkins3 from Pumpkin Farm and retitled
    Pumkins2 (a copy at ``destination``; the library's own file is untouched)."""
    shutil.copyfile(library / "database" / "Photos.sqlite", destination)
    with contextlib.closing(sqlite3.connect(destination)) as db:
        db.execute(
            "DELETE FROM Z_30ASSETS WHERE Z_30ALBUMS = ? AND Z_3ASSETS = ?",
            (PUMPKIN_FARM, PUMPKINS3),
        )
        db.execute(
            "UPDATE ZADDITIONALASSETATTRIBUTES SET ZTITLE = ? WHERE ZASSET = ?",
            ("Found it", PUMKINS2),
        )
        db.commit()
    return destination


def test_a_photos_database_swapped_during_a_run_is_taken_by_the_next(tmp_path: Path) -> None:
    pytest.importorskip("osxphotos")
    workdir = photos_workdir(tmp_path / "live")
    database = workdir / "Library.photoslibrary" / "database" / "Photos.sqlite"
    swapped = another_state(workdir / "Library.photoslibrary", tmp_path / "Photos.sqlite")
    process = start(workdir, "--configfile", "photos.yaml")
    try:
        wait_for_a_styled_image(process, workdir)
        with frozen(process):
            for journal in database.parent.glob("Photos.sqlite-*"):
                journal.unlink()
            swapped.replace(database)
        returncode = process.wait(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = (workdir / "run.log").read_text(errors="replace")
    assert returncode == 0, output[-3000:]
    for crash in ("MissingInputException", "Missing files after", "Traceback"):
        assert crash not in output, output[-3000:]
    assert_whole(workdir)
    catalog = workdir / "results" / "catalog" / "albums" / "Pumpkin Farm.json"
    assert "Pumpkins3" in catalog.read_text(encoding="utf-8"), "the run finishes its plan"

    snakemake(workdir, "--configfile", "photos.yaml")
    assert "Nothing to be done" in snakemake(workdir, "-n", "--configfile", "photos.yaml").stdout
    assert "Pumpkins3" not in catalog.read_text(encoding="utf-8")
    assert_whole(workdir)

    reference = photos_workdir(tmp_path / "reference")
    reference_database = reference / "Library.photoslibrary" / "database" / "Photos.sqlite"
    for journal in reference_database.parent.glob("Photos.sqlite-*"):
        journal.unlink()
    another_state(workdir / "Library.photoslibrary", reference_database)
    snakemake(reference, "--configfile", "photos.yaml")
    live, clean = stage_outputs(workdir), stage_outputs(reference)
    assert {name: live.get(name) for name in clean} == clean
    left = set(live) - set(clean)
    assert left and all("Pumpkin Farm/" in name and "/Pumpkins3." in name for name in left), (
        "only the removed photo's own files are left over"
    )
    title = json.loads(
        (workdir / "results" / "metadata" / "Test Album" / "Pumkins2.json").read_text()
    )["apple_photos"]["title"]
    assert title == "Found it"


# Loaded into the Snakemake process (sitecustomize): removes $I2I_TEST_VANISH right after the
# first listing of the library by the function named $I2I_TEST_VANISH_AFTER, that is at the
# exact moment of the run a test wants, whatever the machine's speed.
VANISH_HOOK = """
import os, sys
import i2i.stages.library.inventory as inventory

listing = inventory.split_present


def split_present(photos):
    result = listing(photos)
    path = os.environ.get("I2I_TEST_VANISH")
    caller = sys._getframe(1).f_code.co_name
    if path and caller == os.environ["I2I_TEST_VANISH_AFTER"] and os.path.exists(path):
        os.unlink(path)
    return result


inventory.split_present = split_present
"""


@pytest.mark.parametrize(
    "after",
    [
        pytest.param("<module>", id="after-the-snakefile-listed-it"),
        pytest.param("inventory_view", id="while-the-dag-is-built"),
    ],
)
def test_a_photo_removed_before_its_jobs_are_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str, without_falcon9: dict[str, str]
) -> None:
    """Removed once the Snakefile listed it, the photo is set aside by the inventory; removed
    after the inventory's view listed it (the DAG half built), its jobs fail with one line.
    Either way the run does the rest and the next run takes the library as it is."""
    workdir = copy_workflow(tmp_path / "live")
    removed = workdir / "sample" / "albums" / "Space Coast" / "falcon9_launch.jpg"
    pythonpath = with_sitecustomize(tmp_path / "hook", VANISH_HOOK)
    with monkeypatch.context() as patched:
        patched.setenv("PYTHONPATH", pythonpath)
        patched.setenv("I2I_TEST_VANISH", str(removed))
        patched.setenv("I2I_TEST_VANISH_AFTER", after)
        result = snakemake(workdir, "--config", STYLES, check=False)
    output = result.stdout + result.stderr
    assert not removed.exists(), "the hook did not remove the photo"
    for crash in ("MissingInputException", "Missing input files", "Traceback"):
        assert crash not in output, output[-3000:]
    relative = removed.relative_to(workdir)
    if after == "<module>":
        assert result.returncode == 0, output[-3000:]
        assert "set aside Space Coast/falcon9_launch.jpg: missing" in output
    else:
        assert result.returncode == 1, output[-3000:]
        assert f"{relative}: removed from its album during the run" in output
        assert f"FAILED metadata: {relative}" in output
        assert f"FAILED preprocess: {relative}" in output
    assert (workdir / "results" / "final" / "Space Coast" / "cartoon" / "deep_field.webp").exists()
    assert_whole(workdir)

    snakemake(workdir, "--config", STYLES)
    assert "Nothing to be done" in snakemake(workdir, "-n", "--config", STYLES).stdout
    assert stage_outputs(workdir) == without_falcon9


@pytest.fixture(scope="module")
def without_falcon9(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The per-photo files of a clean run of the sample without falcon9_launch.jpg."""
    reference = copy_workflow(tmp_path_factory.mktemp("reference"))
    (reference / "sample" / "albums" / "Space Coast" / "falcon9_launch.jpg").unlink()
    snakemake(reference, "--config", STYLES)
    return stage_outputs(reference)
