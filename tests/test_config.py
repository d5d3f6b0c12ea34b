"""Config and style registry validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from i2i import I2IError
from i2i.config import load_registry, load_yaml, select_styles, validate_config

from conftest import copy_workflow, snakemake


def test_repo_config_is_valid_and_defaults_are_filled(repo: Path) -> None:
    config = validate_config(load_yaml(repo / "config.yaml"))
    assert config["albums_dir"] == "sample/albums"
    assert config["places"]["providers"] == ["offline"]
    assert config["places"]["rate_limits"]["nominatim"] == 1.0
    assert config["publish"]["cache_control"] == "public, max-age=31536000, immutable"
    assert config["watermark"]["margin"] == 0.03


def restated_defaults(active: object, defaults: object, path: str = "") -> list[str]:
    """The keys of ``active`` whose value is the default (mappings compared key by key)."""
    if isinstance(active, dict) and isinstance(defaults, dict):
        return [
            found
            for key, value in active.items()
            if key in defaults
            for found in restated_defaults(value, defaults[key], f"{path}{key}.")
        ]
    return [path.rstrip(".")] if active == defaults else []


def test_the_config_file_restates_no_default_and_its_examples_are_valid(repo: Path) -> None:
    """Defaults live in the schema alone: config.yaml's active keys differ from them, and its
    commented examples (``# key: value``) are keys of the schema with valid values."""
    text = (repo / "config.yaml").read_text(encoding="utf-8")
    active = yaml.safe_load(text) or {}
    assert not restated_defaults(active, validate_config({})), "config.yaml restates defaults"
    example = re.compile(r"^# ( {2,}[a-z_]+:|[a-z_]+:)")
    uncommented = "\n".join(line[2:] for line in text.splitlines() if example.match(line))
    examples = yaml.safe_load(uncommented)
    assert {"albums_dir", "styles", "places", "flux", "publish", "gallery"} <= set(examples)
    validate_config(examples)


def test_empty_config_takes_every_default() -> None:
    config = validate_config({})
    assert config["styles_file"] == "styles.yaml"
    assert config["preprocess"] == {"long_side": 1024, "quality": 92}
    assert config["publish"]["target"] == "file://results/gallery"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"watermark": {"opacity": 2}}, "watermark.opacity"),
        ({"places": {"providers": ["offline", "bing"]}}, "places.providers[1]"),
        ({"publish": {"target": "ftp://host/dir"}}, "publish.target"),
        ({"preprocess": {"long_side": "big"}}, "preprocess.long_side"),
        ({"colour": "blue"}, "(top level)"),
        ({"watermark": {"brnd": "x"}}, "watermark"),
    ],
)
def test_bad_key_is_named_in_the_error(override: dict, named: str) -> None:
    with pytest.raises(I2IError) as error:
        validate_config(override)
    assert f"  {named}:" in str(error.value)


def test_validation_does_not_change_the_caller_config() -> None:
    original = {"watermark": {"brand": "me"}}
    validate_config(original)
    assert original == {"watermark": {"brand": "me"}}


def test_registry_has_at_least_six_classic_styles(repo: Path) -> None:
    registry = load_registry(repo / "styles.yaml")
    classic = select_styles(registry, [])
    assert len(classic) >= 6
    assert all(style["backend"] == "classic" for style in classic.values())
    assert {"pencil_sketch", "oil_paint", "watercolour", "cartoon"} <= set(classic)


def test_selecting_unknown_style_names_it(repo: Path) -> None:
    registry = load_registry(repo / "styles.yaml")
    assert list(select_styles(registry, ["oil_paint"])) == ["oil_paint"]
    with pytest.raises(I2IError, match=r"unknown style.*vaporwave"):
        select_styles(registry, ["oil_paint", "vaporwave"])


def test_registry_errors_name_the_style(tmp_path: Path) -> None:
    path = tmp_path / "styles.yaml"
    path.write_text(
        yaml.safe_dump(
            {"styles": {"odd": {"backend": "classic", "description": "x", "filter": "mosaic"}}}
        )
    )
    with pytest.raises(I2IError, match=r"styles\.odd\.filter"):
        load_registry(path)


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("styles: [unclosed\n")
    with pytest.raises(I2IError, match=r"config\.yaml: invalid YAML"):
        load_yaml(path)


def test_nested_config_strings_take_the_schema_types() -> None:
    """Snakemake reads nested --config values as strings ('watermark={opacity: 0.5}')."""
    config = validate_config(
        {
            "watermark": {"opacity": "0.5", "size": "0.04", "brand": "2024"},
            "flux": {"lora_rank": "64", "compile": "true", "model": "123"},
            "places": {"rate_limits": {"nominatim": "2"}, "precision": "3"},
            "publish": {"endpoint_url": "null", "keep_gps": "false"},
        }
    )
    assert config["watermark"]["opacity"] == 0.5 and config["watermark"]["size"] == 0.04
    assert config["watermark"]["brand"] == "2024", "a string setting stays a string"
    assert config["flux"]["lora_rank"] == 64 and config["flux"]["compile"] is True
    assert config["flux"]["model"] == "123"
    assert config["places"]["rate_limits"]["nominatim"] == 2
    assert config["places"]["precision"] == 3
    assert config["publish"]["endpoint_url"] is None and config["publish"]["keep_gps"] is False
    assert validate_config({"flux": {"lora_rank": "auto"}})["flux"]["lora_rank"] == "auto"
    with pytest.raises(I2IError, match=r"watermark.opacity: 'lots' is not of type 'number'"):
        validate_config({"watermark": {"opacity": "lots"}})
    with pytest.raises(I2IError, match=r"flux.lora_rank"):
        validate_config({"flux": {"lora_rank": "6.5"}})


@pytest.mark.workflow
def test_snakemake_takes_nested_config_values_as_typed(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    run = snakemake(workdir, "-n", "--config", "watermark={opacity: 0.5, brand: 2024}")
    assert "is invalid" not in run.stdout + run.stderr
    bad = snakemake(workdir, "-n", "--config", "watermark={opacity: lots}", check=False)
    assert bad.returncode != 0
    assert "watermark.opacity: 'lots' is not of type 'number'" in bad.stdout + bad.stderr
