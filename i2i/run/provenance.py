"""What a rule's outputs depend on besides its input files: settings and code.

Snakemake reruns a job when its ``params`` differ from those recorded when it last ran (the
``params`` rerun trigger). Each rule's params are built here from exactly the config values
that change its output bytes, plus a digest of the code that produces them. Operational
settings (timeouts, endpoints of services, caches, devices, retries) are left out, so changing
them reruns nothing; changing the code of a stage reruns that stage and what depends on it,
with no version to bump by hand.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from i2i import backends

PACKAGE = "i2i"
PACKAGE_DIR = Path(__file__).resolve().parent.parent

# The config values each rule's outputs are made from, as {section: keys}. Every key of the
# config schema is either here, in OPERATIONAL, or in LIBRARY_KEYS (tests/test_rebuild.py
# checks that, and that a dry run after changing each key reruns exactly these rules).
RULE_SETTINGS: dict[str, dict[str, tuple[str, ...]]] = {
    # The reader it names is in the rule's params too, with its version (rules/metadata.smk).
    "metadata": {"metadata": ("maker_notes",)},
    "places": {"places": ("providers", "precision", "landmarks_radius_m")},
    "captions": {
        "watermark": ("brand", "template"),
        "ollama": ("enabled", "model", "seed", "temperature", "max_length"),
    },
    "preprocess": {"preprocess": ("long_side", "quality")},
    "watermark": {
        "watermark": (
            "brand",
            "artist",
            "copyright",
            "font",
            "position",
            "opacity",
            "size",
            "margin",
            "quality",
        ),
        "publish": ("keep_gps",),
    },
    "publish": {
        "publish": ("target", "key_template", "endpoint_url", "region", "acl", "cache_control"),
    },
    # The album's rule reads only its own album's entry of gallery.covers (rules/publish.smk).
    # For an s3:// target the gallery rules upload what they write (pages with
    # page_cache_control, image copies with cache_control).
    "gallery_album": {
        "gallery": ("title", "brand", "covers", "locale", "album_locales"),
        "watermark": ("brand", "artist", "copyright"),
        "publish": (
            "target",
            "endpoint_url",
            "region",
            "acl",
            "cache_control",
            "page_cache_control",
        ),
    },
    "gallery": {
        "gallery": ("title", "brand", "locale"),
        "watermark": ("brand", "artist", "copyright"),
        "publish": (
            "target",
            "key_template",
            "endpoint_url",
            "region",
            "acl",
            "page_cache_control",
        ),
    },
    # Only in the workflow while publish.prune is true.
    "prune": {"publish": ("prune", "target", "key_template", "endpoint_url", "region")},
}

# Registry entry fields that describe a style and change none of its images.
STYLE_NOTES: frozenset[str] = frozenset({"description", "source"})

# Publish settings that only some targets read: each counts for the targets that name it in
# their ``output_settings`` (the s3 target names all of them, the file target none).
TARGET_SETTINGS: frozenset[str] = frozenset(
    {"endpoint_url", "region", "acl", "cache_control", "page_cache_control"}
)

# Settings that change how a job runs, never what it writes.
OPERATIONAL: frozenset[str] = frozenset(
    {
        "places.cache",
        "places.cache_only",
        "places.user_agent",
        "places.timeout",
        "places.rate_limits",
        "places.endpoints",
        "places.retries",
        "places.backoff",
        "ollama.endpoint",
        "ollama.timeout",
        "ollama.retries",
        "ollama.backoff",
        "flux.device",
        "flux.memory",
        "flux.offload",
        "flux.idle_timeout",
        "flux.request_timeout",
        "publish.connect_timeout",
        "publish.read_timeout",
        "publish.max_attempts",
    }
)

# Keys that decide which photos and styles there are (which jobs exist), not what a job writes.
# The photos.* keys choose what the Photos export writes into albums_dir; they are params of
# the inventory checkpoint (which runs the export) while photos.library is set.
LIBRARY_KEYS: frozenset[str] = frozenset(
    {
        "albums_dir",
        "links_outside",
        "extensions",
        "styles_file",
        "styles",
        "style_backends",
        "photos.library",
        "photos.edited",
        "photos.unfiled",
        "photos.albums",
        "photos.exclude_albums",
        "photos.favorites_only",
        "photos.keywords",
        "photos.from_date",
        "photos.to_date",
    }
)

# The modules whose code makes each rule's outputs; the package modules they import count too.
RULE_CODE: dict[str, tuple[str, ...]] = {
    "inventory": ("i2i.stages.library.inventory",),
    "metadata": ("i2i.stages.metadata.read",),
    "places": ("i2i.stages.places",),
    "captions": ("i2i.stages.captions",),
    "preprocess": ("i2i.stages.preprocess",),
    "watermark": ("i2i.stages.watermark",),
    "publish": ("i2i.stages.publish",),
    "style_manifest": ("i2i.stages.catalog",),
    "album_catalog": ("i2i.stages.catalog",),
    "catalog": ("i2i.stages.catalog",),
    "contact_sheet": ("i2i.stages.contact_sheet",),
    "progress_report": ("i2i.stages.report",),
    "gallery": ("i2i.stages.gallery.build", "i2i.stages.gallery.upload"),
}

# Pool backends render inside this wrapper, which reads, checks and writes their images.
POOL_CODE = ("i2i.stages.stylize",)


def _backend_rules() -> None:
    """Each registered style backend's rule: the settings and code its images are made from
    (a resident backend's worker transport writes no pixel and is in no digest)."""
    for backend in backends.load().values():
        if backend.settings:
            RULE_SETTINGS[backend.rule] = {k: tuple(v) for k, v in backend.settings.items()}
        RULE_CODE[backend.rule] = backend.code if backend.resident else (*POOL_CODE, *backend.code)


_backend_rules()

# Rules whose outputs record i2i's version (the final images' EXIF Software tag, the master
# catalog's generator): a version bump reruns these; the version is in no other digest.
RECORDS_VERSION: frozenset[str] = frozenset({"watermark", "catalog"})

# Modules that only run jobs (logging, scheduling, run control, the geocode cache's storage
# and locks, retry timing): they never change an output.
NOT_OUTPUT_CODE: frozenset[str] = frozenset(
    {
        "i2i.run.logs",
        "i2i.run.dag_gc",
        "i2i.run.runcontrol",
        "i2i.cli",
        "i2i.run.jobs",
        "i2i.run.provenance",
        "i2i.stages.places.cache",
        "i2i.core.retry",
        "i2i.run.snakemake_internals",
        # Publish targets move bytes (transport): a retry or client change re-uploads nothing.
        "i2i.targets",
        "i2i.targets.base",
        "i2i.targets.breaker",
        "i2i.targets.file",
        "i2i.targets.s3",
    }
)


def register_backends(modules: Iterable[str]) -> dict[str, backends.StyleBackend]:
    """Load the plugin style backends ``modules``, add their rules' settings and code, and
    return the registry."""
    registry = backends.load(modules)
    _backend_rules()
    return registry


def target_settings(url: str) -> frozenset[str]:
    """The publish settings that the target of ``url`` names as its own (none when unknown)."""
    from i2i.targets import factory_for

    factory = factory_for(url.partition("://")[0])
    return frozenset(getattr(factory, "output_settings", ()))


def output_settings(config: Mapping[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    """The config values that ``rule``'s outputs are made from, as ``{section: {key: value}}``.

    Ollama's settings count only while it is enabled (a disabled model writes nothing), and
    a target's own settings (endpoint, ACL, headers) only for the target that names them.
    """
    chosen: dict[str, dict[str, Any]] = {}
    for section, keys in RULE_SETTINGS.get(rule, {}).items():
        values = config.get(section, {})
        if section == "ollama" and not values.get("enabled"):
            keys = ("enabled",)
        if section == "publish":
            own = target_settings(str(values.get("target", "")))
            keys = tuple(k for k in keys if k not in TARGET_SETTINGS or k in own)
        chosen[section] = {key: values.get(key) for key in keys}
    return chosen


# Values the Snakefile derives from the config for the jobs (not schema keys): operational.
DERIVED: frozenset[str] = frozenset({"flux.slot_rank", "publish.breaker_dir"})


def job_config(config: Mapping[str, Any], rule: str) -> dict[str, Any]:
    """What a job of ``rule`` may read: its output settings (exactly its params' ``settings``),
    the operational settings of the same sections, and ``style_backends`` (to find plugin
    backends). A job reads these, never the whole config, so a setting that changes what it
    writes cannot be left out of its rerun trigger unnoticed: reading it fails."""
    view: dict[str, Any] = {"style_backends": list(config.get("style_backends", []))}
    for section, values in output_settings(config, rule).items():
        extra = {
            key: value
            for key, value in config.get(section, {}).items()
            if f"{section}.{key}" in OPERATIONAL | DERIVED
        }
        view[section] = {**values, **extra}
    return view


def gallery_album_settings(config: Mapping[str, Any], album: str) -> dict[str, dict[str, Any]]:
    """The output settings of one album's gallery page: of ``gallery.covers`` and
    ``gallery.album_locales`` only the album's own entries count, so choosing another album's
    cover or locale reruns that album alone."""
    gallery = {
        **config["gallery"],
        **{
            key: {a: value for a, value in config["gallery"][key].items() if a == album}
            for key in ("covers", "album_locales")
        },
    }
    return output_settings({**config, "gallery": gallery}, "gallery_album")


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted: the same params whatever the YAML order."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def style_settings(style: Mapping[str, Any]) -> dict[str, Any]:
    """A registry entry as the stylize rules' params: what renders the style, in a canonical
    order; the description and the source note write nothing."""
    return canonical({k: v for k, v in style.items() if k not in STYLE_NOTES})


def module_file(name: str) -> Path:
    """The source file of package module ``name`` (``i2i.backends.classic``)."""
    relative = Path(*name.split(".")[1:])
    package = PACKAGE_DIR / relative / "__init__.py"
    return package if package.exists() else (PACKAGE_DIR / relative).with_suffix(".py")


def _imported_modules(tree: ast.Module, name: str) -> set[str]:
    """Package modules that module ``name`` imports (absolute and relative imports)."""
    found: set[str] = set()
    is_package = module_file(name).name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name if is_package else name.rsplit(".", 1)[0]
                parts = anchor.split(".")[: len(anchor.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {
        module
        for module in found
        if (module == PACKAGE or module.startswith(PACKAGE + ".")) and module_file(module).exists()
    }


def _without_docstrings(tree: ast.Module) -> ast.Module:
    """``tree`` with module, class and function docstrings removed (they change no output)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _without_version(tree: ast.Module) -> ast.Module:
    """``tree`` without its ``__version__`` assignment (the version is not code)."""
    tree.body = [
        node
        for node in tree.body
        if not (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        )
    ]
    return tree


@cache
def _parsed(name: str) -> tuple[str, frozenset[str]]:
    """The normalised code of one module (no comments, docstrings, layout or version) and its
    imports."""
    path = module_file(name)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imports = frozenset(_imported_modules(tree, name))
    return ast.dump(_without_version(_without_docstrings(tree))), imports


def module_closure(roots: Iterable[str]) -> list[str]:
    """``roots``, every package module they import, directly or not, and the packages of
    each (whose ``__init__`` an import runs), sorted."""
    seen: set[str] = set()
    queue = [r for r in roots if r not in NOT_OUTPUT_CODE]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        # Importing a module runs its packages' __init__ first.
        parents = [".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 1)]
        queue.extend(
            m
            for m in (*_parsed(name)[1], *parents)
            if m not in seen and m not in NOT_OUTPUT_CODE and module_file(m).exists()
        )
    return sorted(seen)


def code_digest(roots: Iterable[str]) -> str:
    """A digest of the code of ``roots`` and the package modules they import.

    Comments, docstrings and formatting do not count; any other change does.
    """
    digest = hashlib.sha256()
    for name in module_closure(roots):
        digest.update(f"{name}\n{_parsed(name)[0]}\n".encode())
    return digest.hexdigest()[:16]


def rule_code(rule: str) -> str:
    """The code digest of ``rule`` (a rule without an entry in RULE_CODE has none)."""
    roots = RULE_CODE.get(rule, ())
    return code_digest(roots) if roots else ""


def recorded_version(rule: str) -> str:
    """The version that ``rule``'s outputs record (its ``version`` param); I2IError for a
    rule whose outputs do not record it, so that no other rule reruns on a version bump."""
    from i2i import I2IError, __version__

    if rule not in RECORDS_VERSION:
        raise I2IError(f"rule {rule} records no version (see provenance.RECORDS_VERSION)")
    return __version__


def record_digest(record: Mapping[str, Any], parts: Sequence[str]) -> str:
    """Digest of ``parts`` of an inventory record, photos by album, photo and file only."""
    chosen = {}
    for part in parts:
        entries = record.get(part, [])
        if part == "photos":
            entries = [{k: e[k] for k in ("album", "photo", "file")} for e in entries]
        chosen[part] = entries
    text = json.dumps(chosen, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
