"""One bad photo, a crash or an outage never holds back the rest of the library."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import NOBODY, SAMPLE, copy_workflow, planned, snakemake, unprivileged

pytestmark = pytest.mark.workflow

STYLES = "styles=[cartoon,oil_paint]"

# Files the inventory must set aside, and a word of the reason it gives.
BAD = {
    "empty.jpg": "empty file",
    "notes.jpg": "not an image",
    "truncated.jpg": "truncated",
    "dangling.jpg": "dangling link",
    "bomb.png": "decompression bomb",
    "dot.png": "too small",
}
# Rules run in a Python process of their own (script:); the others run in Snakemake's.
SCRIPT_RULES = ("album_catalog", "style_manifest", "contact_sheet", "gallery_album", "gallery")


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` × ``height`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + end)
    return path


def fuzzed_exif(source: Path, target: Path) -> Path:
    """``source`` with bytes of its EXIF block overwritten at random (seeded)."""
    data = bytearray(source.read_bytes())
    start = data.index(b"Exif\x00\x00") + 16
    rng = random.Random(7)
    for _ in range(40):
        data[rng.randrange(start, start + 400)] = rng.randrange(256)
    target.write_bytes(bytes(data))
    return target


def odd_library(root: Path) -> Path:
    """The sample album plus an album of odd photos that work and files that cannot."""
    shutil.copytree(SAMPLE, root)
    odd = root / "Odd Ones"
    odd.mkdir()
    jpeg = SAMPLE / "Space Coast" / "falcon9_launch.jpg"
    fuzzed_exif(jpeg, odd / "fuzzed_exif.jpg")
    gradient = np.tile(np.linspace(0, 65535, 320, dtype=np.uint16), (200, 1))
    Image.frombytes("I;16", (320, 200), gradient.astype("<u2").tobytes()).save(odd / "grey16.tif")
    (odd / "empty.jpg").touch()
    (odd / "notes.jpg").write_text("shopping list: milk, film\n", encoding="utf-8")
    (odd / "truncated.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    (odd / "dangling.jpg").symlink_to(root / "gone" / "nowhere.jpg")
    png_claiming(odd / "bomb.png", 20_000, 20_000)
    Image.new("RGB", (1, 1), "red").save(odd / "dot.png")
    return root


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    workdir = copy_workflow(tmp_path_factory.mktemp("odd") / "workflow")
    odd_library(workdir / "library")
    result = snakemake(workdir, "--config", "albums_dir=library", STYLES, check=False)
    return workdir, result


def test_bad_photos_are_set_aside_and_the_rest_is_published(
    odd_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    workdir, result = odd_run
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    inventory = json.loads((workdir / "results" / "inventory.json").read_text("utf-8"))
    rejected = {Path(r["file"]).name: r["reason"] for r in inventory["rejected"]}
    assert set(rejected) == set(BAD)
    for name, word in BAD.items():
        assert word in rejected[name], (name, rejected[name])
        messages = [line for line in output.splitlines() if not line.startswith(" ")]
        lines = [line for line in messages if name in line]  # not the job's input list
        assert len(lines) == 1, (name, lines)
    assert f"{len(BAD)} set aside" in output

    catalog = json.loads((workdir / "results" / "catalog" / "master.json").read_text("utf-8"))
    good = {(p["album"], p["photo"]) for p in inventory["photos"]}
    assert len(good) == 8 and ("Odd Ones", "grey16") in good
    assert {(p["album"], p["photo"]) for p in catalog["photos"]} == good
    assert catalog["image_count"] == 2 * len(good)
    assert len(catalog["rejected"]) == len(BAD)
    for album, photo in good:
        for style in ("cartoon", "oil_paint"):
            marker = workdir / "results" / "published" / album / style / f"{photo}.json"
            assert marker.is_file(), marker
    fuzzed = next(p for p in catalog["photos"] if p["photo"] == "fuzzed_exif")
    assert fuzzed["problems"]
    gallery = workdir / "results" / "gallery"
    assert (gallery / "index.html").is_file()
    for album in ("Space Coast", "Côte d'Azur & Paris", "Odd Ones"):
        assert (gallery / album / "index.html").is_file()
        assert (workdir / "results" / "report" / "contact_sheets" / f"{album}.jpg").is_file()
    with Image.open(gallery / "Odd Ones" / "grey16_cartoon.webp") as grey:
        assert np.asarray(grey.convert("L")).std() > 20, "the 16-bit gradient is not flat"


def test_a_fixed_photo_is_taken_by_the_next_run(
    odd_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    workdir, _ = odd_run
    odd = workdir / "library" / "Odd Ones"
    shutil.copy(SAMPLE / "Space Coast" / "eileen_collins.jpg", odd / "truncated.jpg")
    snakemake(workdir, "--config", "albums_dir=library", STYLES)
    inventory = json.loads((workdir / "results" / "inventory.json").read_text("utf-8"))
    assert "truncated.jpg" not in {Path(r["file"]).name for r in inventory["rejected"]}
    assert (workdir / "results" / "final" / "Odd Ones" / "cartoon" / "truncated.webp").is_file()


def test_an_unreadable_photo_is_set_aside_for_a_user_who_cannot_read_it(
    shared_tmp: Path,
) -> None:
    """As user nobody (the tests run as root, who reads every file). The interpreter of a
    virtual environment under /root cannot start a second process there, so this run leaves
    out the rules that run a script in a process of their own, and runs on one core (the
    image work then stays in the Snakemake process, with no worker processes)."""
    workdir = copy_workflow(shared_tmp / "workflow")
    album = workdir / "library" / "Locked"
    album.mkdir(parents=True)
    for name in ("falcon9_launch.jpg", "eileen_collins.jpg"):
        shutil.copy(SAMPLE / "Space Coast" / name, album / name)
    if os.geteuid() == 0:
        for path in [shared_tmp, *shared_tmp.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    (album / "eileen_collins.jpg").chmod(0)
    env = {**os.environ, "HOME": str(workdir), "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--config"]  # no worker pool
    command += ["albums_dir=library", "styles=[cartoon]", "--omit-from", *SCRIPT_RULES]
    result = subprocess.run(
        unprivileged(command), cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    inventory = json.loads((workdir / "results" / "inventory.json").read_text("utf-8"))
    assert inventory["rejected"] == [
        {
            "album": "Locked",
            "photo": "eileen_collins",
            "file": "Locked/eileen_collins.jpg",
            "reason": "not readable (permission denied)",
        }
    ]
    assert (workdir / "results/published/Locked/cartoon/falcon9_launch.json").is_file()
    assert [line for line in output.splitlines() if "eileen_collins.jpg" in line] == [
        "WARNING i2i.stages.library.inventory: set aside Locked/eileen_collins.jpg: "
        "not readable (permission denied)"
    ]


@pytest.fixture
def two_albums(tmp_path: Path) -> Path:
    workdir = copy_workflow(tmp_path / "workflow")
    snakemake(workdir, "--config", STYLES)
    return workdir


def test_a_failed_image_holds_back_only_its_album(two_albums: Path) -> None:
    workdir = two_albums
    results = workdir / "results"
    for path in [*results.glob("catalog/**/*.json"), *results.glob("published/gallery*")]:
        if path.is_file():
            path.unlink()
    shutil.rmtree(results / "published" / "gallery", ignore_errors=True)
    shutil.rmtree(results / "report")
    (results / "published" / "Space Coast" / "cartoon" / "falcon9_launch.json").unlink()
    blocked = results / "gallery" / "Space Coast" / "falcon9_launch_cartoon.webp"
    blocked.unlink()
    blocked.mkdir()  # publishing this one image fails: a folder stands where it goes
    result = snakemake(workdir, "--config", STYLES, check=False)
    assert result.returncode != 0
    assert (results / "catalog" / "albums" / "Côte d'Azur & Paris.json").is_file()
    assert (results / "published" / "gallery" / "Côte d'Azur & Paris.json").is_file()
    assert (results / "report" / "contact_sheets" / "Côte d'Azur & Paris.jpg").is_file()
    assert (results / "report" / "contact_sheets" / "Space Coast.jpg").is_file()
    assert (results / "catalog" / "styles" / "oil_paint.json").is_file()
    assert (results / "published" / "gallery.json").is_file()
    assert not (results / "catalog" / "albums" / "Space Coast.json").exists()
    assert not (results / "catalog" / "styles" / "cartoon.json").exists()
    assert not (results / "catalog" / "master.json").exists()
    blocked.rmdir()
    snakemake(workdir, "--config", STYLES)
    assert planned(workdir, "--config", STYLES) == {}
