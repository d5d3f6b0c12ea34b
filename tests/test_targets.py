"""A publish target added from the test folder alone (tests/toy_target.py, ``toy://``) goes
through the same code as file:// and s3://: publish, the gallery upload, `i2i publish
--dry-run` and `--verify`, prune, the config check, and a whole Snakemake run (an entry point
makes it known to the run's processes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from i2i import I2IError
from i2i.cli import main
from i2i.config import validate_config
from i2i.run import provenance
from i2i.stages.audit.keys import entries
from i2i.stages.audit.prune import prune
from i2i.stages.gallery.pages import GENERATOR
from i2i.stages.gallery.upload import upload_site
from i2i.stages.publish import DEFAULT_CACHE_CONTROL, publish, publish_to_marker
from i2i.targets import S3Target, register, target_for

from conftest import copy_workflow, planned, snakemake
from toy_target import ROOT_ENV, SCHEME, ToyTarget, install

TESTS = Path(__file__).resolve().parent
SETTINGS = {"target": "toy://shelf/site"}
STYLE = "oil_paint"
LIBRARY = [("A", "p1"), ("A", "p2"), ("B", "q")]
PAGE = b"<!doctype html>\n<html>\n<head>\n" + GENERATOR + b"\n</head></html>\n"


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``toy://`` registered in this process; the shelf folder its objects go to."""
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "toy"))
    register(SCHEME, ToyTarget)
    return tmp_path / "toy" / "shelf"


def workflow_folder(root: Path, repo: Path, publish_settings: dict[str, Any]) -> Path:
    """A config, a library of three photos and a final image of each in one style."""
    workdir = root / "work"
    config = {
        "albums_dir": "albums",
        "styles_file": str(repo / "styles.yaml"),
        "styles": [STYLE],
        "publish": publish_settings,
    }
    for n, (album, photo) in enumerate(LIBRARY):
        source = workdir / "albums" / album / f"{photo}.jpg"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"not decoded by discovery")
        final = workdir / f"results/final/{album}/{STYLE}/{photo}.webp"
        final.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20 + n, 16), (60 * n, 90, 120)).save(final, "WEBP", lossless=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return workdir


def cli(workdir: Path, *args: str) -> int:
    return main(["-d", str(workdir), "publish", *args])


def test_a_toy_target_publishes_verifies_and_prunes(
    toy: Path, tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = workflow_folder(tmp_path, repo, SETTINGS)
    images = entries(workdir, LIBRARY, [STYLE], SETTINGS)
    for image in images:
        record = publish_to_marker(
            image.final, image.marker, image.album, image.photo, image.style, SETTINGS
        )
        assert record["uploaded"] is True
        assert (toy / "data" / image.key).read_bytes() == image.final.read_bytes()
    first = images[0]
    marker = json.loads(first.marker.read_text(encoding="utf-8"))
    assert (marker["key"], marker["url"]) == (first.key, f"toy://shelf/{first.key}")
    assert first.key == "site/A/p1_oil_paint.webp"
    assert "bucket" not in marker and marker["time"]
    head = target_for(SETTINGS["target"]).head(first.key)
    assert head is not None
    assert head.headers == {"ContentType": "image/webp", "CacheControl": DEFAULT_CACHE_CONTROL}

    again = publish(first.final, first.album, first.photo, STYLE, SETTINGS)
    assert again["uploaded"] is False
    shorter = {**SETTINGS, "cache_control": "no-cache"}
    assert publish(first.final, first.album, first.photo, STYLE, shorter)["uploaded"] is True
    publish(first.final, first.album, first.photo, STYLE, SETTINGS)

    assert cli(workdir, "--verify") == 0
    assert capsys.readouterr().out.strip() == "3 marker(s) checked, 3 good, 0 bad"
    target_for(SETTINGS["target"]).delete(first.key)
    assert cli(workdir, "--verify", "--dry-run") == 1
    assert f"toy://shelf/{first.key} is missing" in capsys.readouterr().out
    assert first.marker.exists()
    publish(first.final, first.album, first.photo, STYLE, SETTINGS)

    site = tmp_path / "gallery-site"
    pages = ["site/index.html", "site/A/index.html", "site/_albums/Gone.html"]
    for key in pages:
        (site / key).parent.mkdir(parents=True, exist_ok=True)
        (site / key).write_bytes(PAGE)
    assert upload_site(site, pages, SETTINGS) == sorted(pages)
    assert upload_site(site, pages, SETTINGS) == []
    assert target_for(SETTINGS["target"]).head(pages[0]).headers["CacheControl"] == (
        "public, max-age=300"
    )
    leftover = "site/A/gone_oil_paint.webp"
    publish(first.final, "A", "gone", STYLE, SETTINGS)

    assert cli(workdir, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"removed  {leftover}" in out and "removed  site/_albums/Gone.html  (gallery)" in out
    assert "0 new, 0 changed, 3 unchanged, 2 removed, 0 not built" in out
    assert prune(workdir, images, SETTINGS) == [leftover, "site/_albums/Gone.html"]
    kept = {key for key, _ in target_for(SETTINGS["target"]).objects("")}
    assert kept == {image.key for image in images} | set(pages[:2])


def test_the_config_takes_any_registered_target(toy: Path) -> None:
    assert validate_config({"publish": SETTINGS})["publish"]["target"] == SETTINGS["target"]
    with pytest.raises(I2IError, match=r"publish\.target: 'nope://x': use file://DIR or s3://"):
        validate_config({"publish": {"target": "nope://x"}})
    with pytest.raises(I2IError, match="toy://shelf/prefix"):
        target_for("nope://x")


@pytest.mark.parametrize("url", ["file://out", "s3://bucket/prefix", "toy://shelf/site"])
def test_provenance_counts_the_settings_the_target_names(toy: Path, url: str) -> None:
    """The rules' publish params are the shared settings and those the target names as its
    own: the s3 target names every target-specific setting, the file target none."""
    assert S3Target.output_settings == provenance.TARGET_SETTINGS
    config = validate_config({"publish": {"target": url}})
    own = target_for(url, config["publish"]).output_settings
    for rule, sections in provenance.RULE_SETTINGS.items():
        keys = sections.get("publish", ())
        wanted = {k for k in keys if k not in provenance.TARGET_SETTINGS or k in own}
        assert set(provenance.output_settings(config, rule).get("publish", {})) == wanted, rule


@pytest.mark.workflow
def test_a_snakemake_run_publishes_to_a_toy_target(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's processes find ``toy://`` through an entry point: the images and a browsable
    gallery go to it, a second run has nothing to do, and prune removes a photo that left."""
    site = install(tmp_path / "site-packages")
    paths = [str(site), str(TESTS), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    workdir = copy_workflow(tmp_path / "workflow")
    config_file = workdir / "config.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["styles"] = ["cartoon"]
    config.setdefault("publish", {}).update(SETTINGS)
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (workdir / "prune.yaml").write_text(yaml.safe_dump({"publish": {"prune": True}}))
    snakemake(workdir)

    target = target_for(SETTINGS["target"])
    keys = {key for key, _ in target.objects("")}
    albums = ["Côte d'Azur & Paris", "Space Coast"]
    pages = {"site/index.html", *(f"site/{album}/index.html" for album in albums)}
    assert {key for key in keys if key.endswith(".html")} == pages
    assert target.head("site/index.html").headers["ContentType"] == "text/html; charset=utf-8"
    image = "site/Space Coast/deep_field_cartoon.webp"
    assert image in keys and "site/Space Coast/_gallery/deep_field_cartoon.400.webp" in keys
    marker = json.loads(
        (workdir / "results/published/Space Coast/cartoon/deep_field.json").read_text("utf-8")
    )
    assert marker["url"] == "toy://shelf/site/Space%20Coast/deep_field_cartoon.webp"
    gallery = json.loads((workdir / "results/published/gallery.json").read_text("utf-8"))
    assert gallery["target"] == SETTINGS["target"]
    assert gallery["root"] == "results/gallery-site"
    assert planned(workdir) == {}
    assert cli(workdir, "--verify") == 0

    (source,) = (workdir / "sample/albums/Space Coast").glob("deep_field.*")
    source.unlink()
    snakemake(workdir, "--configfile", "prune.yaml")
    left = {key for key, _ in target.objects("")}
    assert image not in left and not any("deep_field" in key for key in left)
    assert pages <= left
    capsys.readouterr()
    assert cli(workdir, "--dry-run") == 0
    assert " 0 removed" in capsys.readouterr().out
