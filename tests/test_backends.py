"""The style backend registry: a backend from the test folder alone plugs into the style
schema, the rules, provenance, progress and the workflow run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from i2i import I2IError, backends
from i2i.config import load_registry, select_styles
from i2i.run import provenance

from conftest import copy_workflow, snakemake

TESTS = Path(__file__).resolve().parent
TOY_STYLES = {
    "negative": {"backend": "toy", "description": "the photographic negative"},
    "red-negative": {"backend": "toy", "description": "red inverted", "red_only": True},
}


@pytest.fixture(autouse=True)
def registries_restored() -> None:
    """What a test registers (backends, their rules' settings and code) is gone after it."""
    saved = (
        dict(backends.REGISTRY),
        dict(provenance.RULE_CODE),
        {k: dict(v) for k, v in provenance.RULE_SETTINGS.items()},
    )
    yield
    for live, kept in zip(
        (backends.REGISTRY, provenance.RULE_CODE, provenance.RULE_SETTINGS), saved, strict=True
    ):
        live.clear()
        live.update(kept)
    for module in ("toy_backend", "toy_resident"):
        sys.modules.pop(module, None)  # imported again, it registers again


def with_toy_styles(workdir: Path) -> Path:
    """The workflow's registry plus the toy backend's styles, as ``styles-toy.yaml``."""
    registry = yaml.safe_load((workdir / "styles.yaml").read_text(encoding="utf-8"))
    registry["styles"].update(TOY_STYLES)
    path = workdir / "styles-toy.yaml"
    path.write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    return path


def test_a_registered_backend_extends_the_style_schema(repo: Path, tmp_path: Path) -> None:
    path = with_toy_styles(copy_workflow(tmp_path / "wf"))
    registry = load_registry(path, ["toy_backend"])
    assert registry["negative"]["red_only"] is False, "the backend's defaults are filled in"
    assert "negative" not in select_styles(registry, []), "built only when asked for"
    assert backends.backend("toy").rule == "stylize_toy"
    bad = yaml.safe_load(path.read_text(encoding="utf-8"))
    bad["styles"]["negative"]["strength"] = 3
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(I2IError, match=r"negative: Additional properties .*'strength'"):
        load_registry(path, ["toy_backend"])
    with pytest.raises(I2IError, match="style_backends: cannot import no_such_backend"):
        load_registry(path, ["no_such_backend"])


def test_a_backend_clash_is_refused() -> None:
    import toy_backend

    other = backends.StyleBackend("toy", "stylize_toy", {}, render="toy_backend:render")
    with pytest.raises(I2IError, match="registered twice"):
        backends.register(other)
    with pytest.raises(I2IError, match="rule stylize_toy is toy's"):
        backends.register(backends.StyleBackend("toy2", "stylize_toy", {}, render="x:y"))
    assert backends.register(toy_backend.BACKEND) is toy_backend.BACKEND


def test_an_installed_plugin_is_found_by_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "sepia_backend").mkdir(parents=True)
    (site / "sepia_backend" / "__init__.py").write_text(
        "from i2i.backends import StyleBackend, register\n"
        "register(StyleBackend('sepia', 'stylize_sepia', {}, render='sepia_backend:render'))\n",
        encoding="utf-8",
    )
    info = site / "sepia_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: sepia-backend\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[i2i.backends]\nsepia = sepia_backend\n")
    monkeypatch.syspath_prepend(str(site))
    backends.installed.cache_clear()
    try:
        assert backends.load()["sepia"].rule == "stylize_sepia"
    finally:
        backends.installed.cache_clear()
        backends.REGISTRY.pop("sepia", None)


def test_a_resident_backend_names_its_model_loader() -> None:
    with pytest.raises(I2IError, match="a resident backend names its model loader"):
        backends.register(backends.StyleBackend("idle", "stylize_idle", {}, resident=True))


def test_provenance_gives_the_backend_its_rule_code() -> None:
    provenance.register_backends(["toy_backend"])
    closure = provenance.module_closure(provenance.RULE_CODE["stylize_toy"])
    assert {"i2i.stages.stylize", "i2i.backends"} <= set(closure)
    assert provenance.rule_code("stylize_toy") != provenance.rule_code("stylize_classic")


@pytest.mark.workflow
def test_the_workflow_runs_a_backend_from_the_test_folder(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    with_toy_styles(workdir)
    shutil.copy(TESTS / "toy_backend.py", workdir / "toy_backend.py")
    config = workdir / "toy.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "styles_file": "styles-toy.yaml",
                "style_backends": ["toy_backend"],
                "styles": ["negative", "red-negative", "cartoon"],
            }
        ),
        encoding="utf-8",
    )
    run = snakemake(workdir, "--configfile", str(config))
    assert "stylize_toy" in run.stdout + run.stderr
    album = "Space Coast"
    prepared = np.asarray(Image.open(workdir / "results/preprocessed" / album / "deep_field.webp"))
    styled = workdir / "results/styled" / album / "negative" / "deep_field.webp"
    negative = np.asarray(Image.open(styled))
    assert np.abs(negative.astype(int) + prepared - 255).mean() < 3, "the negative, up to WebP"
    for style in ("negative", "red-negative"):
        assert len(list((workdir / "results/final").glob(f"*/{style}/*.webp"))) == 6
    master = json.loads((workdir / "results/catalog/master.json").read_text("utf-8"))
    assert "negative" in json.dumps(master)
    again = snakemake(workdir, "--configfile", str(config), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.workflow
def test_the_workflow_runs_a_resident_backend_from_the_test_folder(tmp_path: Path) -> None:
    """The resident worker host is not FLUX's: a backend from the test folder declares a model
    loader, gets its own rule and worker folder, and its model is loaded once for the run."""
    workdir = copy_workflow(tmp_path / "wf")
    registry = yaml.safe_load((workdir / "styles.yaml").read_text(encoding="utf-8"))
    registry["styles"]["poster"] = {"backend": "toy-resident", "description": "4 levels"}
    (workdir / "styles-toy.yaml").write_text(yaml.safe_dump(registry), encoding="utf-8")
    shutil.copy(TESTS / "toy_resident.py", workdir / "toy_resident.py")
    config = workdir / "toy.yaml"
    settings = {
        "styles_file": "styles-toy.yaml",
        "style_backends": ["toy_resident"],
        "styles": ["poster"],
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    run = snakemake(workdir, "--configfile", str(config))
    assert "stylize_toy_resident" in run.stdout + run.stderr
    assert "stopped the toy-resident worker" in run.stdout + run.stderr
    stats = json.loads((workdir / ".i2i/worker/toy-resident/stats.json").read_text("utf-8"))
    assert stats["totals"] == {
        "base_model_loads": 1,
        "workers_started": 1,
        "images": 6,
        "failures": 0,
    }
    assert stats["levels"] == 4 and stats["backend"] == "toy-resident"
    album = "Space Coast"
    styled = np.asarray(Image.open(workdir / "results/styled" / album / "poster/deep_field.webp"))
    assert set(np.unique(styled)) <= {0, 64, 128, 192}, "posterised by the worker's model"
    assert len(list((workdir / "results/final").glob("*/poster/*.webp"))) == 6
    again = snakemake(workdir, "--configfile", str(config), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
