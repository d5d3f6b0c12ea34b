"""publish.prune: what the target holds that no current photo, style or album maps to (images
the key template could have given, and the gallery's own copies and pages) is listed by
`i2i publish --dry-run` and deleted by the prune rule, and nothing else ever is; in a workflow
a removed photo stays at the target while prune is off and is gone, pages included, once it
is on (file:// and s3:// on a moto server)."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from i2i.cli import main
from i2i.stages.audit.keys import Change, entries
from i2i.stages.audit.prune import plan, prune, stale
from i2i.stages.audit.store import Store
from i2i.stages.gallery.pages import GENERATOR
from i2i.targets.s3 import clear_s3_clients

from conftest import copy_workflow, planned, snakemake

moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")

PAGE = b"<!doctype html>\n<html>\n<head>\n" + GENERATOR + b"\n</head></html>\n"
CURRENT = [("A", "p1"), ("A", "p2"), ("B", "q")]
STYLES = ["ink", "oil"]

KEPT = [
    # current images, their copies and pages
    *(f"{a}/{p}_{s}.webp" for a, p in CURRENT for s in STYLES),
    "A/_gallery/p1_ink.400.webp",
    "A/_gallery/p1.original.400.webp",
    "A/_gallery/p1_ink.cover-960.webp",
    "B/_gallery/q.original.webp",
    "index.html",
    "A/index.html",
    "B/index.html",
    "_albums/A.html",
    # not the gallery's and no image key: never touched
    "notes/index.html",
    "A/_thumbs/p3_oil.webp",
    "A/.p3_oil.400.x1y2.tmp.webp",
    "A/_gallery/p3_oil.webp",
    "A/p3_oil.jpg",
    "robots.txt",
]
GONE_IMAGES = ["A/p1_watercolour.webp", "A/p3_oil.webp", "C/r_oil.webp"]
GONE_GALLERY = [
    "A/_gallery/p1_watercolour.400.webp",
    "A/_gallery/p3_ink.cover-480.webp",
    "A/_gallery/p1_ink.original.webp",  # an original's copy as earlier builds named it
    "A/_gallery/p3.original.800.webp",
    "A/_gallery/p3_ink.original.webp",
    "A/_gallery/p3_oil.400.webp",
    "C/_gallery/r_oil.800.webp",
    "C/index.html",
    "_albums/D.html",
]


def fill(site: Path, keys: list[str]) -> None:
    for key in keys:
        path = site / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PAGE if key.endswith(".html") and key != "notes/index.html" else b"x")


def files(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}


def test_stale_is_gone_photos_styles_and_albums_and_nothing_else(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fill(site, KEPT + GONE_IMAGES + GONE_GALLERY)
    settings = {"target": f"file://{site}"}
    images = entries(tmp_path, CURRENT, STYLES, settings)
    expected = [Change("removed", key) for key in sorted(GONE_IMAGES)]
    expected += [Change("removed", key, "gallery") for key in sorted(GONE_GALLERY)]
    assert stale(Store(tmp_path, settings), images) == expected
    removed = [c for c in plan(tmp_path, images, settings) if c.action == "removed"]
    assert removed == expected, "the dry run lists exactly what prune removes"

    assert prune(tmp_path, images, settings) == [c.key for c in expected]
    assert files(site) == set(KEPT)
    assert not (site / "C").exists(), "a folder that prune emptied goes too"
    assert (site / "notes" / "index.html").read_bytes() == b"x"
    assert stale(Store(tmp_path, settings), images) == []
    assert prune(tmp_path, images, settings) == []


def test_pages_are_pruned_only_when_i2i_wrote_them(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fill(site, ["C/index.html", "_albums/D.html"])
    (site / "C" / "index.html").write_bytes(b"<html>someone else's page</html>")
    settings = {"target": f"file://{site}"}
    images = entries(tmp_path, CURRENT, STYLES, settings)
    assert prune(tmp_path, images, settings) == ["_albums/D.html"]
    assert files(site) == {"C/index.html"}


# --- the prune rule in the workflow ----------------------------------------------------------

REMOVED_PHOTO = ("Space Coast", "deep_field")
REMOVED_ALBUM = "Côte d'Azur & Paris"


def configure(workdir: Path, publish: dict[str, Any]) -> None:
    """One style, the given publish settings; and prune.yaml that turns prune on."""
    config_file = workdir / "config.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    config["styles"] = ["cartoon"]
    config.setdefault("publish", {}).update(publish)
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    prune_on = yaml.safe_dump({"publish": {"prune": True}})
    (workdir / "prune.yaml").write_text(prune_on, encoding="utf-8")


def remove_photo(workdir: Path, album: str, photo: str) -> None:
    (source,) = (workdir / "sample" / "albums" / album).glob(f"{photo}.*")
    source.unlink()


def dry_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The keys `i2i publish --dry-run` lists as removed."""
    capsys.readouterr()
    assert main(["-d", str(workdir), "publish", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [line[9:].removesuffix("  (gallery)") for line in lines if line.startswith("removed ")]


def page_text(read: Any, key: str) -> str:
    return read(key).decode("utf-8")


def check_prune_flow(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    listing: Any,
    read: Any,
    prefix: str,
) -> None:
    """Run, remove a photo (and for S3 an album), run with prune off, then on."""
    album, photo = REMOVED_PHOTO
    snakemake(workdir)
    assert dry_run(workdir, capsys) == []
    before = listing()
    image = f"{prefix}{album}/{photo}_cartoon.webp"
    assert image in before

    remove_photo(workdir, album, photo)
    snakemake(workdir)
    listed = dry_run(workdir, capsys)
    assert image in listed
    assert f"{prefix}{album}/_gallery/{photo}_cartoon.400.webp" in listed
    assert all(photo in key for key in listed)
    middle = listing()
    assert before <= middle, "prune is off: nothing is deleted"
    assert not (workdir / "results" / "published" / "prune.json").exists()
    assert photo not in page_text(read, f"{prefix}{album}/index.html")

    assert planned(workdir, "--configfile", "prune.yaml") == {"prune": 1}
    snakemake(workdir, "--configfile", "prune.yaml")
    record = json.loads((workdir / "results/published/prune.json").read_text("utf-8"))
    assert record["removed"] == listed
    lines = (workdir / "logs/publish/prune.log").read_text(encoding="utf-8").splitlines()
    removed_lines = [line for line in lines if " removed " in line]
    assert len(removed_lines) == len(listed), "one line per object"
    assert all(line.endswith(f"/{key}") for line, key in zip(removed_lines, listed, strict=True))
    after = listing()
    assert after == middle - set(listed)
    assert not any(photo in key for key in after if key.startswith(prefix))
    assert photo not in page_text(read, f"{prefix}{album}/index.html")
    assert dry_run(workdir, capsys) == []
    assert planned(workdir, "--configfile", "prune.yaml") == {}


@pytest.mark.workflow
def test_prune_a_removed_photo_from_a_file_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = copy_workflow(tmp_path / "workflow")
    configure(workdir, {})
    site = workdir / "results" / "gallery"
    check_prune_flow(
        workdir, capsys, lambda: files(site), lambda key: (site / key).read_bytes(), ""
    )


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Test credentials in the environment (Snakemake's jobs inherit them); nothing else."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAI2ITEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "i2i-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clear_s3_clients()
    yield
    clear_s3_clients()


@pytest.mark.workflow
def test_prune_a_removed_photo_and_album_from_an_s3_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], moto_url: str, aws_env: None
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket="prune")
    s3.put_object(Bucket="prune", Key="elsewhere/Space Coast/deep_field_cartoon.webp", Body=b"x")
    s3.put_object(Bucket="prune", Key="site/notes.txt", Body=b"x")
    workdir = copy_workflow(tmp_path / "workflow")
    configure(workdir, {"target": "s3://prune/site", "endpoint_url": moto_url})

    def listing() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="prune")
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(key: str) -> bytes:
        return s3.get_object(Bucket="prune", Key=key)["Body"].read()

    check_prune_flow(workdir, capsys, listing, read, "site/")

    # A whole album leaves: its images, copies and page go; the index no longer shows it.
    for source in list((workdir / "sample" / "albums" / REMOVED_ALBUM).iterdir()):
        source.unlink()
    snakemake(workdir)
    listed = dry_run(workdir, capsys)
    assert f"site/{REMOVED_ALBUM}/index.html" in listed
    assert all(key.startswith(f"site/{REMOVED_ALBUM}/") for key in listed)
    assert REMOVED_ALBUM not in html.unescape(read("site/index.html").decode("utf-8"))
    snakemake(workdir, "--configfile", "prune.yaml")
    left = listing()
    assert not any(key.startswith(f"site/{REMOVED_ALBUM}/") for key in left)
    assert {"site/index.html", "site/Space Coast/index.html", "site/notes.txt"} <= left
    assert "elsewhere/Space Coast/deep_field_cartoon.webp" in left, "outside the prefix"
