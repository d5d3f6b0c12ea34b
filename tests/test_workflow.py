"""The whole workflow on the sample album, run by Snakemake in a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from i2i.config import load_registry, select_styles, validate_config
from i2i.core.files import sha256_file
from i2i.stages.library.albums import discover
from i2i.stages.report import summarise

from conftest import copy_workflow, job_counts, planned, snakemake

pytestmark = pytest.mark.workflow

STYLE = "cartoon"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy on which the whole workflow has run once."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir)
    return workdir


def decodes(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_every_target_exists_and_decodes(finished_run: Path, sample_albums: Path) -> None:
    results = finished_run / "results"
    catalog = json.loads((results / "catalog" / "master.json").read_text(encoding="utf-8"))
    photos = [(e["album"], e["photo"]) for e in catalog["photos"]]
    sources = sorted(p for p in sample_albums.glob("*/*") if p.is_file())
    assert len(photos) == len(sources) == 6
    styles = catalog["styles"]
    assert len(styles) >= 6
    assert catalog["image_count"] == len(photos) * len(styles)
    for album, photo in photos:
        for stage in ("metadata", "places", "captions"):
            record = json.loads((results / stage / album / f"{photo}.json").read_text("utf-8"))
            assert record
        width, height = decodes(results / "preprocessed" / album / f"{photo}.webp")
        assert width % 16 == 0 and height % 16 == 0
        for style in styles:
            assert decodes(results / "styled" / album / style / f"{photo}.webp") == (width, height)
            final = results / "final" / album / style / f"{photo}.webp"
            assert decodes(final) == (width, height)
            marker = json.loads(
                (results / "published" / album / style / f"{photo}.json").read_text()
            )
            published = finished_run / "results" / "gallery" / marker["key"]
            assert marker["sha256"] == sha256_file(final) == sha256_file(published)
    for album in catalog["albums"]:
        assert decodes(results / "report" / "contact_sheets" / f"{album}.jpg")
    index = (results / "gallery" / "index.html").read_text(encoding="utf-8")
    assert "Côte d&#x27;Azur &amp; Paris" in index or "Côte d'Azur &amp; Paris" in index
    # Pool styles write no benchmark file (it cost as much as the image); their logs time them.
    assert not (finished_run / "benchmarks" / "stylize").exists()
    stages = ("metadata", "places", "captions", "preprocess", "stylize", "watermark", "publish")
    for stage in stages:
        logs = list((finished_run / "logs" / stage).rglob("*.log"))
        assert logs and all("job finished in" in p.read_text("utf-8") for p in logs), stage


def test_orientation_and_captions(finished_run: Path) -> None:
    results = finished_run / "results"
    width, height = decodes(results / "preprocessed" / "Space Coast" / "eileen_collins.webp")
    assert height > width, "EXIF orientation 6 must be applied: the astronaut stands upright"
    caption = json.loads((results / "captions" / "Space Coast" / "falcon9_launch.json").read_text())
    assert "2015" in caption["watermark_text"] and "♒" in caption["watermark_text"]
    assert "Cape Canaveral" in caption["watermark_text"]
    places = json.loads(
        (results / "places" / "Côte d'Azur & Paris" / "chelsea.json").read_text(encoding="utf-8")
    )
    assert places["has_gps"] is False and places["location"] is None


def test_second_dry_run_has_nothing_to_do(finished_run: Path) -> None:
    result = snakemake(finished_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_built_folder_copied_elsewhere_has_nothing_to_do(
    finished_run: Path, tmp_path: Path
) -> None:
    """Inputs inside the folder are named relative to it (the gallery's templates were
    absolute paths, and a copy or move reran the gallery rules)."""
    copy = tmp_path / "moved"
    shutil.copytree(finished_run, copy, symlinks=True)
    assert "Nothing to be done" in snakemake(copy, "-n").stdout


def test_a_current_inventory_is_trusted_and_a_changed_library_is_not(finished_run: Path) -> None:
    """After a run the inventory is current: the dry run plans nothing and Snakemake builds the
    DAG in one pass (no checkpoint update), a touched photo included (Snakemake's checksum says
    it is unchanged). Forced, or with a photo edited since, the inventory runs first again."""
    plain = snakemake(finished_run, "-n")
    assert "Nothing to be done" in plain.stdout + plain.stderr
    assert "Updating checkpoint dependencies" not in plain.stdout + plain.stderr
    assert planned(finished_run, "-R", "inventory") == {"inventory": 1}
    photo = next((finished_run / "sample" / "albums").rglob("*.jpg"))
    content, before = photo.read_bytes(), photo.stat()
    try:
        os.utime(photo, ns=(before.st_atime_ns, time.time_ns() + 10**9))
        touched = snakemake(finished_run, "-n")
        assert "Updating checkpoint dependencies" not in touched.stdout + touched.stderr
        assert job_counts(touched.stdout + touched.stderr) == {}
        photo.write_bytes(content + b"\0")
        assert planned(finished_run).get("inventory") == 1
    finally:
        photo.write_bytes(content)
        os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert planned(finished_run) == {}


def test_one_style_is_rebuilt_alone_and_identically(finished_run: Path) -> None:
    results = finished_run / "results"
    finals = sorted((results / "final").glob(f"*/{STYLE}/*.webp"))
    before = {p: sha256_file(p) for p in finals}
    others = {
        p: p.stat().st_mtime_ns
        for p in (results / "final").glob("*/*/*.webp")
        if p.parent.name != STYLE
    }
    for stage in ("styled", "final", "published"):
        for folder in (results / stage).glob(f"*/{STYLE}"):
            shutil.rmtree(folder)
    target = f"results/catalog/styles/{STYLE}.json"
    (finished_run / target).unlink()
    plan = snakemake(finished_run, "-n", target)
    counts = job_counts(plan.stdout + plan.stderr)
    assert counts == {"stylize_classic": 6, "watermark": 6, "publish": 6, "style_manifest": 1}
    snakemake(finished_run, target)
    assert {p: sha256_file(p) for p in finals} == before
    assert {p: p.stat().st_mtime_ns for p in others} == others


def test_progress_pending_matches_snakemake_after_an_interruption(finished_run: Path) -> None:
    config = validate_config(yaml.safe_load((finished_run / "config.yaml").read_text("utf-8")))
    styles = select_styles(load_registry(finished_run / config["styles_file"]), config["styles"])
    photos = discover(finished_run / config["albums_dir"], config["extensions"]).photos
    results = finished_run / "results"
    for photo in photos[:2]:  # cut off before these, so before the manifest and the catalog
        (results / "final" / photo.album / STYLE / f"{photo.photo}.webp").unlink()
        (results / "published" / photo.album / STYLE / f"{photo.photo}.json").unlink()
    (results / "catalog" / "styles" / f"{STYLE}.json").unlink()
    (results / "catalog" / "master.json").unlink()
    plan = snakemake(finished_run, "-n")
    counts = job_counts(plan.stdout + plan.stderr)
    pending: dict[str, int] = {}
    for row in summarise(finished_run, photos, styles):
        rule = "stylize_classic" if row.stage == "stylize" else row.stage
        pending[rule] = pending.get(rule, 0) + row.pending
    assert {rule: n for rule, n in pending.items() if n} == {"watermark": 2, "publish": 2}
    assert {rule: n for rule, n in counts.items() if rule in pending} == {
        "watermark": 2,
        "publish": 2,
    }
    snakemake(finished_run)
    assert sum(row.pending for row in summarise(finished_run, photos, styles)) == 0
