"""The rebuild contract: what reruns follows exactly what changed in an output's inputs, code
and output-affecting settings; nothing else reruns; a deleted output comes back."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from i2i.config import CONFIG_SCHEMA, load_registry, select_styles, validate_config
from i2i.core.files import sha256_file
from i2i.run import provenance
from i2i.stages.library.albums import discover
from i2i.stages.report import summarise

from conftest import copy_workflow, planned, snakemake

pytestmark = pytest.mark.workflow

# Which rules read each rule's outputs (rule inventory feeds every other one).
READERS: dict[str, tuple[str, ...]] = {
    "metadata": ("places", "captions", "watermark", "album_catalog"),
    "places": ("captions", "album_catalog"),
    "captions": ("watermark", "album_catalog"),
    "preprocess": ("stylize_classic", "stylize_flux", "contact_sheet"),
    "stylize_classic": ("watermark",),
    "stylize_flux": ("watermark",),
    "watermark": ("publish", "contact_sheet"),
    "publish": ("style_manifest", "album_catalog"),
    "album_catalog": ("catalog", "gallery_album"),
    "catalog": ("progress_report",),
}

# Every key of the config schema: a new value, and the rules whose own params it changes
# (their readers rerun too). The README's "What a config change rebuilds" shows this table.
CONFIG_CHANGES: dict[str, tuple[object, tuple[str, ...]]] = {
    "metadata.maker_notes": ("none", ("metadata",)),
    "preprocess.long_side": (512, ("preprocess",)),
    "preprocess.quality": (90, ("preprocess",)),
    "places.providers": (["offline", "photon"], ("places",)),
    "places.precision": (4, ("places",)),
    "places.landmarks_radius_m": (500, ("places",)),
    "places.cache": ("cache/other.sqlite", ()),
    "places.cache_only": (True, ()),
    "places.user_agent": ("someone else", ()),
    "places.timeout": (11, ()),
    "places.rate_limits": ({"nominatim": 2.0}, ()),
    "places.endpoints": ({"photon": "http://127.0.0.1:9/"}, ()),
    "places.retries": (1, ()),
    "places.backoff": (0.5, ()),
    "ollama.enabled": (True, ("captions",)),
    "ollama.endpoint": ("http://127.0.0.1:9", ()),
    "ollama.model": ("mistral", ()),
    "ollama.timeout": (31, ()),
    "ollama.retries": (1, ()),
    "ollama.backoff": (0.5, ()),
    "ollama.seed": (7, ()),
    "ollama.temperature": (0.2, ()),
    "ollama.max_length": (60, ()),
    "watermark.brand": ("Jane Doe", ("captions", "watermark", "gallery")),
    "watermark.template": ("{brand} {year}", ("captions",)),
    "watermark.artist": ("Jane Doe", ("watermark", "gallery_album", "gallery")),
    "watermark.copyright": ("© {year} {brand}", ("watermark", "gallery_album", "gallery")),
    "watermark.font": ("i2i/data/fonts/DejaVuSans.ttf", ("watermark",)),
    "watermark.position": ("top-left", ("watermark",)),
    "watermark.opacity": (0.5, ("watermark",)),
    "watermark.size": (0.05, ("watermark",)),
    "watermark.margin": (0.05, ("watermark",)),
    "watermark.quality": (80, ("watermark",)),
    "flux.model": ("some/other-model", ()),
    "flux.device": ("cpu", ()),
    "flux.dtype": ("float32", ()),
    "flux.memory": ("explicit", ()),
    "flux.offload": ("model", ()),
    "flux.quantize": ("int8", ()),
    "flux.idle_timeout": (60, ()),
    "flux.request_timeout": (60, ()),
    "flux.compile": (True, ()),
    "flux.lora_rank": (64, ()),
    "flux.cache": ("first_block", ()),
    "flux.cache_threshold": (0.2, ()),
    "publish.target": ("file://results/elsewhere", ("publish", "gallery_album", "gallery")),
    "publish.key_template": ("{prefix}/{album}/{style}/{photo}.webp", ("publish", "gallery")),
    "publish.endpoint_url": ("http://127.0.0.1:9", ()),
    "publish.region": ("eu-west-1", ()),
    "publish.acl": ("public-read", ()),
    "publish.cache_control": ("no-cache", ()),
    "publish.page_cache_control": ("no-cache", ()),
    "publish.prune": (True, ("prune",)),
    "publish.keep_gps": (True, ("watermark",)),
    "publish.connect_timeout": (3, ()),
    "publish.read_timeout": (3, ()),
    "publish.max_attempts": (2, ()),
    "gallery.title": ("Holidays", ("gallery_album", "gallery")),
    "gallery.brand": ("Jane Doe", ("gallery_album", "gallery")),
    "gallery.covers": ({"Space Coast": "falcon9_launch"}, ("gallery_album",)),
    "gallery.locale": ("fr", ("gallery_album", "gallery")),
    "gallery.album_locales": ({"Space Coast": "de"}, ("gallery_album",)),
}


def reruns(rules: Iterable[str]) -> set[str]:
    """``rules`` and every rule that reads their outputs, directly or not."""
    found: set[str] = set()
    queue = list(rules)
    while queue:
        rule = queue.pop()
        if rule not in found:
            found.add(rule)
            queue.extend(READERS.get(rule, ()))
    return found


def schema_keys() -> set[str]:
    """Every config key of the schema, dotted (sections' keys; top-level scalars as they are)."""
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text(encoding="utf-8"))
    keys = set()
    for name, spec in schema["properties"].items():
        if spec.get("type") == "object" and "properties" in spec:
            keys.update(f"{name}.{key}" for key in spec["properties"])
        else:
            keys.add(name)
    return keys


def test_every_config_key_is_classified() -> None:
    output_keys = {
        f"{section}.{key}"
        for sections in provenance.RULE_SETTINGS.values()
        for section, keys in sections.items()
        for key in keys
    }
    classes = [output_keys, set(provenance.OPERATIONAL), set(provenance.LIBRARY_KEYS)]
    assert set.union(*classes) == schema_keys()
    assert sum(map(len, classes)) == len(schema_keys()), "a key is in two classes"
    assert set(CONFIG_CHANGES) == schema_keys() - provenance.LIBRARY_KEYS


def test_settings_only_the_target_reads_count() -> None:
    config = validate_config({"publish": {"target": "file://out"}, "ollama": {"enabled": False}})
    local = provenance.output_settings(config, "publish")["publish"]
    assert set(local) == {"target", "key_template"}
    config["publish"]["target"] = "s3://bucket/prefix"
    assert {"acl", "cache_control", "endpoint_url", "region"} <= set(
        provenance.output_settings(config, "publish")["publish"]
    )
    assert provenance.output_settings(config, "captions")["ollama"] == {"enabled": False}
    config["ollama"]["enabled"] = True
    assert provenance.output_settings(config, "captions")["ollama"]["model"] == "llama3.2"


def test_flux_settings_that_change_the_image_rerun_flux_alone() -> None:
    config = validate_config({})
    before = provenance.output_settings(config, "stylize_flux")
    for key in ("device", "offload", "idle_timeout"):
        changed = validate_config({"flux": {key: CONFIG_CHANGES[f"flux.{key}"][0]}})
        assert provenance.output_settings(changed, "stylize_flux") == before, key
    for key in ("model", "dtype", "quantize", "cache", "cache_threshold"):
        changed = validate_config({"flux": {key: CONFIG_CHANGES[f"flux.{key}"][0]}})
        assert provenance.output_settings(changed, "stylize_flux") != before, key
    others = [rule for rule in READERS if rule != "stylize_flux"]
    assert all("flux" not in provenance.output_settings(config, rule) for rule in others)


def test_a_job_reads_its_output_settings_and_operational_ones_only() -> None:
    """A job's settings are its params' settings plus operational keys of the same sections:
    a setting it reads and its rerun trigger lacks fails the job at once (KeyError)."""
    config = validate_config({"places": {"timeout": 3}})
    captions = provenance.job_config(config, "captions")
    assert captions["watermark"] == provenance.output_settings(config, "captions")["watermark"]
    assert set(captions["ollama"]) == {"enabled", "endpoint", "timeout", "retries", "backoff"}
    places = provenance.job_config(config, "places")["places"]
    assert places["timeout"] == 3 and places["providers"] == ["offline"]
    assert set(provenance.job_config(config, "stylize_classic")) == {"style_backends"}
    publish = provenance.job_config(config, "publish")["publish"]
    assert "endpoint_url" not in publish, "an S3 key does not reach a file:// publish job"
    flux = provenance.job_config(
        {**config, "flux": {**config["flux"], "slot_rank": 64}}, "stylize_flux"
    )
    assert flux["flux"]["slot_rank"] == 64 and flux["flux"]["offload"] == "none"


def test_code_of_a_stage_is_its_modules_and_their_package_imports() -> None:
    closure = provenance.module_closure(provenance.RULE_CODE["stylize_classic"])
    assert {"i2i.stages.stylize", "i2i.backends.classic", "i2i.core.files"} <= set(closure)
    assert "i2i.stages.metadata" not in closure
    assert "i2i.run.logs" not in provenance.module_closure(["i2i.stages.report"])
    digests = {rule: provenance.rule_code(rule) for rule in provenance.RULE_CODE}
    assert digests["stylize_classic"] != digests["preprocess"]
    assert digests["catalog"] == digests["album_catalog"]


ALL_CODE = tuple(provenance.RULE_CODE)
# Every module of the package: the rules whose code digest an edit of it changes (their readers
# rerun too). Run machinery and transport are in none; the README's "What a code change
# rebuilds" shows this table.
CODE_EDITS: dict[str, tuple[str, ...]] = {
    "i2i": ALL_CODE,
    "i2i.core": tuple(
        r for r in ALL_CODE if r not in {"style_manifest", "album_catalog", "catalog", "places"}
    ),
    "i2i.core.failures": ("preprocess",),
    "i2i.core.joblog": ("progress_report",),
    "i2i.run": (),
    "i2i.stages": tuple(r for r in ALL_CODE if r != "stylize_flux"),
    "i2i.stages.library": ("inventory", "progress_report"),
    "i2i.stages.library.apple_photos": ("inventory",),
    "i2i.stages.archive": (),
    "i2i.backends": ("stylize_classic", "stylize_flux", "progress_report"),
    "i2i.backends.classic": ("stylize_classic",),
    "i2i.backends.flux": ("stylize_flux",),
    "i2i.backends.flux_kontext": ("stylize_flux",),
    "i2i.backends.flux_run": (),
    "i2i.stages.captions": ("captions",),
    "i2i.stages.catalog": ("style_manifest", "album_catalog", "catalog"),
    "i2i.cli": (),
    "i2i.config": (),
    "i2i.stages.contact_sheet": ("contact_sheet",),
    "i2i.run.dag_gc": (),
    "i2i.stages.library.albums": ("inventory", "progress_report"),
    "i2i.stages.fallbacks": (),
    "i2i.core.files": tuple(
        r for r in ALL_CODE if r not in {"style_manifest", "album_catalog", "catalog", "places"}
    ),
    "i2i.run.resident_client": (),
    "i2i.backends.flux_settings": ("stylize_flux",),
    "i2i.run.resident": (),
    "i2i.core.resources": (),
    "i2i.run.hooks": (),
    "i2i.run.launch": (),
    "i2i.stages.gallery": ("gallery",),
    "i2i.stages.gallery.build": ("gallery",),
    "i2i.stages.gallery.images": ("gallery",),
    "i2i.stages.gallery.keys": ("gallery",),
    "i2i.stages.gallery.pages": ("gallery",),
    "i2i.stages.gallery.upload": ("gallery",),
    "i2i.stages.gallery.words": ("gallery",),
    "i2i.stages.places.cache": (),
    "i2i.core.images": ("inventory", "metadata", "preprocess"),
    "i2i.stages.library.inventory": ("inventory",),
    "i2i.run.jobs": (),
    "i2i.run.logs": (),
    "i2i.backends.lora_files": ("stylize_flux",),
    "i2i.backends.memory_plan": (),
    "i2i.stages.metadata": ("metadata", "places", "captions"),
    "i2i.stages.metadata.fields": ("metadata",),
    "i2i.stages.metadata.makernotes": ("metadata",),
    "i2i.stages.metadata.problems": ("metadata",),
    "i2i.stages.metadata.read": ("metadata",),
    "i2i.stages.metadata.record": ("places", "captions"),
    "i2i.stages.metadata.values": ("metadata",),
    "i2i.stages.library.osxphotos_folders": ("inventory",),
    "i2i.core.paths": ("inventory", "progress_report"),
    "i2i.stages.places": ("places",),
    "i2i.stages.places.common": ("places",),
    "i2i.stages.places.google": ("places",),
    "i2i.stages.places.network": ("places",),
    "i2i.stages.places.nominatim": ("places",),
    "i2i.stages.places.offline": ("places",),
    "i2i.stages.places.photon": ("places",),
    "i2i.stages.places.photos": ("places",),
    "i2i.stages.preprocess": ("preprocess",),
    "i2i.stages.tags": ("watermark", "contact_sheet", "gallery"),
    "i2i.stages.report": ("progress_report",),
    "i2i.run.provenance": (),
    "i2i.stages.publish": ("publish", "gallery"),
    "i2i.stages.audit": (),
    "i2i.stages.audit.keys": (),
    "i2i.stages.audit.lines": (),
    "i2i.stages.audit.prune": (),
    "i2i.stages.audit.store": (),
    "i2i.stages.audit.verify": (),
    "i2i.core.quality": ("stylize_classic", "stylize_flux", "progress_report"),
    "i2i.core.retry": (),
    "i2i.run.runcontrol": (),
    "i2i.run.snakemake_internals": (),
    "i2i.run.signals": (),
    "i2i.stages.stylize": ("stylize_classic",),
    "i2i.targets": (),
    "i2i.targets.base": (),
    "i2i.targets.breaker": (),
    "i2i.targets.file": (),
    "i2i.targets.s3": (),
    "i2i.stages.watermark": ("watermark", "contact_sheet"),
    "i2i.run.workers": (),
}


def package_modules(root: Path) -> list[str]:
    """Every module of the package under ``root`` (``i2i``, ``i2i.backends.flux``, ...)."""
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package that provenance reads instead of the installed one."""
    root = tmp_path / "i2i"
    shutil.copytree(provenance.PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE_DIR", root)
    provenance._parsed.cache_clear()
    yield root
    provenance._parsed.cache_clear()


def digests() -> dict[str, str]:
    """The code digests of the workflow's own rules (not of a plugin another test added)."""
    provenance._parsed.cache_clear()
    return {rule: provenance.rule_code(rule) for rule in ALL_CODE}


def test_each_module_edit_changes_exactly_its_rules_code(package_copy: Path) -> None:
    """An edit in each module of the package (a new line of code) changes the code digest of
    exactly the rules in CODE_EDITS: an EXIF parser edit is not a preprocess or stylize edit,
    the FLUX worker's transport is in no digest."""
    assert set(package_modules(package_copy)) == set(CODE_EDITS), "a module not in the table"
    before = digests()
    found = {}
    for module in CODE_EDITS:
        path = provenance.module_file(module)
        original = path.read_text(encoding="utf-8")
        path.write_text(original + "\nEDITED = 1\n", encoding="utf-8")
        after = digests()
        path.write_text(original, encoding="utf-8")
        found[module] = {rule for rule in before if after[rule] != before[rule]}
    wrong = {m: (found[m], set(r)) for m, r in CODE_EDITS.items() if found[m] != set(r)}
    assert not wrong, "module: (changed, expected)\n" + "\n".join(
        f"{k}: {v}" for k, v in wrong.items()
    )
    assert digests() == before


def test_the_version_is_in_no_code_digest(package_copy: Path) -> None:
    import i2i

    before = digests()
    init = package_copy / "__init__.py"
    edit(init, f'__version__ = "{i2i.__version__}"', '__version__ = "99.0.0"')
    assert digests() == before, "the version line is not code"
    assert {"watermark", "catalog"} == provenance.RECORDS_VERSION
    with pytest.raises(i2i.I2IError, match="records no version"):
        provenance.recorded_version("stylize_flux")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy on which the whole workflow has run once."""
    workdir = copy_workflow(tmp_path_factory.mktemp("rebuild"))
    snakemake(workdir)
    return workdir


def nested(key: str, value: object) -> dict:
    section, name = key.split(".")
    return {section: {name: value}}


def test_each_config_key_reruns_exactly_its_rules(finished_run: Path) -> None:
    def plan(item: tuple[str, tuple[object, tuple[str, ...]]]) -> tuple[str, set[str]]:
        key, (value, _) = item
        configfile = finished_run / f"changed-{key}.yaml"
        configfile.write_text(yaml.safe_dump(nested(key, value)), encoding="utf-8")
        return key, set(planned(finished_run, "--configfile", str(configfile)))

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(pool.map(plan, CONFIG_CHANGES.items()))
    expected = {key: reruns(rules) - {"stylize_flux"} for key, (_, rules) in CONFIG_CHANGES.items()}
    wrong = {key: (found[key], expected[key]) for key in expected if found[key] != expected[key]}
    assert not wrong, "key: (reran, expected)\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


def test_a_changed_style_reruns_that_style_alone(finished_run: Path) -> None:
    registry = yaml.safe_load((finished_run / "styles.yaml").read_text(encoding="utf-8"))
    registry["styles"]["cartoon"]["params"]["passes"] += 1
    registry["styles"]["oil_paint"]["description"] = "a description writes no pixel"
    changed = finished_run / "styles-changed.yaml"
    changed.write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")  # sorted
    counts = planned(finished_run, "--config", f"styles_file={changed.name}")
    photos = 6
    assert counts == {
        "stylize_classic": photos,
        "watermark": photos,
        "publish": photos,
        "style_manifest": 1,
        "contact_sheet": 2,
        "album_catalog": 2,
        "gallery_album": 2,
        "catalog": 1,
        "progress_report": 1,
    }


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A fresh workflow copy, run once, for tests that edit its code."""
    workdir = copy_workflow(tmp_path / "edited")
    snakemake(workdir, "--config", "styles=[cartoon,oil_paint]")
    return workdir


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_code_edits_rerun_the_stage_and_what_reads_it(workflow_copy: Path) -> None:
    styles = ("--config", "styles=[cartoon,oil_paint]")
    classic = workflow_copy / "i2i" / "backends" / "classic.py"
    edit(classic, '"""', '"""A docstring edit.\n\n')
    classic.write_text(classic.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    assert planned(workflow_copy, *styles) == {}

    classic.write_text(classic.read_text(encoding="utf-8") + "EDITED = 1\n", encoding="utf-8")
    counts = planned(workflow_copy, *styles)
    assert set(counts) == reruns(["stylize_classic"]) - {"stylize_flux"}
    assert counts["stylize_classic"] == 12
    snakemake(workflow_copy, *styles)

    gallery = workflow_copy / "i2i" / "stages" / "gallery" / "pages.py"
    gallery.write_text(gallery.read_text(encoding="utf-8") + "EDITED = 1\n", encoding="utf-8")
    assert planned(workflow_copy, *styles) == {"gallery_album": 2, "gallery": 1}
    snakemake(workflow_copy, *styles)

    # An EXIF parser edit reruns metadata and what reads it, no preprocess or stylize job.
    metadata = workflow_copy / "i2i" / "stages" / "metadata" / "fields.py"
    original = metadata.read_text(encoding="utf-8")
    metadata.write_text(original + "EDITED = 1\n", encoding="utf-8")
    assert set(planned(workflow_copy, *styles)) == reruns(["metadata"])
    metadata.write_text(original, encoding="utf-8")

    # A version bump rewrites what records the version; no image is made again.
    init = workflow_copy / "i2i" / "__init__.py"
    version = init.read_text(encoding="utf-8")
    edit(init, "__version__ = ", '__version__ = "99.0.0"  # ')
    counts = planned(workflow_copy, *styles)
    assert set(counts) == reruns(["watermark", "catalog"]), counts
    init.write_text(version, encoding="utf-8")
    assert planned(workflow_copy, *styles) == {}


OUTPUTS = [
    "results/metadata/Space Coast/eileen_collins.json",
    "results/places/Space Coast/falcon9_launch.json",
    "results/captions/Côte d'Azur & Paris/chelsea.json",
    "results/preprocessed/Côte d'Azur & Paris/cafe_creme.webp",
    "results/styled/Space Coast/cartoon/deep_field.webp",
    "results/final/Space Coast/oil_paint/falcon9_launch.webp",
    "results/published/Côte d'Azur & Paris/pencil_sketch/promenade_des_anglais.json",
    "results/catalog/albums/Space Coast.json",
    "results/catalog/styles/watercolour.json",
    "results/catalog/master.json",
    "results/report/contact_sheets/Space Coast.jpg",
    "results/published/gallery/Space Coast.json",
    "results/published/gallery.json",
    "results/inventory.json",
]


def content(path: Path, *, across_runs: bool = False) -> bytes | dict:
    """A file's bytes; across two runs an upload marker without the time of its upload."""
    marker = "published" in path.parts and path.parent.name not in {"published", "gallery"}
    if across_runs and marker:
        record = json.loads(path.read_text(encoding="utf-8"))
        record.pop("time", None)
        return record
    return path.read_bytes()


@pytest.mark.parametrize("output", OUTPUTS)
def test_a_deleted_output_comes_back_identical(finished_run: Path, output: str) -> None:
    target = finished_run / output
    before = content(target)
    target.unlink()
    counts = planned(finished_run)
    assert counts, f"snakemake -n does not list {output}"
    snakemake(finished_run)
    assert content(target) == before
    assert planned(finished_run) == {}


def test_progress_agrees_with_the_dry_run_after_deletions(finished_run: Path) -> None:
    config = validate_config(
        yaml.safe_load((finished_run / "config.yaml").read_text(encoding="utf-8"))
    )
    styles = select_styles(load_registry(finished_run / config["styles_file"]), config["styles"])
    photos = discover(finished_run / config["albums_dir"], config["extensions"]).photos
    results = finished_run / "results"
    (results / "preprocessed" / "Space Coast" / "deep_field.webp").unlink()
    (results / "final" / "Space Coast" / "cartoon" / "eileen_collins.webp").unlink()
    (results / "published" / "Space Coast" / "oil_paint" / "falcon9_launch.json").unlink()
    (results / "metadata" / "Côte d'Azur & Paris" / "chelsea.json").unlink()
    pending: dict[str, int] = {}
    for row in summarise(finished_run, photos, styles):
        rule = "stylize_classic" if row.stage == "stylize" else row.stage
        pending[rule] = pending.get(rule, 0) + row.pending
    counts = planned(finished_run)
    assert {rule: n for rule, n in pending.items() if n} == {
        rule: n for rule, n in counts.items() if rule in pending
    }
    assert pending["stylize_classic"] == len(styles)
    snakemake(finished_run)
    assert sum(row.pending for row in summarise(finished_run, photos, styles)) == 0


def test_two_clean_runs_give_identical_catalogs_and_images(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "workflow")
    snakemake(workdir)
    first = tmp_path / "first"
    shutil.copytree(workdir / "results", first)
    for folder in ("results", "cache", "logs", "benchmarks", ".snakemake"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
    snakemake(workdir)
    compared = 0
    for path in sorted(first.rglob("*")):
        relative = path.relative_to(first)
        if not path.is_file() or relative.name == "progress.html":
            continue
        again = workdir / "results" / relative
        assert content(again, across_runs=True) == content(path, across_runs=True), relative
        compared += 1
    assert compared > 250
    assert sha256_file(first / "catalog/master.json") == sha256_file(
        workdir / "results/catalog/master.json"
    )
