"""Loading and validating the workflow config and the style registry against JSON schemas."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from babel import Locale, UnknownLocaleError

from i2i import I2IError, backends
from i2i.core import resources
from i2i.targets import factory_for, usages

CONFIG_SCHEMA = resources.schema("config")
STYLES_SCHEMA = resources.schema("styles")


def _with_defaults(validator_class: type) -> type:
    """A validator class that also fills in ``default`` values of object properties."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: Any, properties: Mapping, instance: Any, schema: Mapping
    ) -> Iterator:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file, naming the file in any error."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise I2IError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise I2IError(f"{path}: invalid YAML: {exc}") from exc


def key_path(error: jsonschema.ValidationError) -> str:
    """Dotted path of the offending key, e.g. ``watermark.opacity`` or ``styles[2]``."""
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate(data: Any, schema: Path | Mapping[str, Any], what: str) -> dict[str, Any]:
    """Validate ``data`` (filling defaults in a copy) against ``schema`` (a file or the schema
    itself) and return it; the error names the bad key."""
    data = copy.deepcopy(data) if data is not None else {}
    if isinstance(schema, Path):
        schema = load_yaml(schema)
    errors = sorted(_Validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {key_path(e)}: {e.message}" for e in errors]
        raise I2IError(f"{what} is invalid:\n" + "\n".join(lines))
    return data


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", type(None): "null"}


def _types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types that ``schema`` allows (through ``type``, ``const``, ``enum``, ``anyOf``
    and ``oneOf``); empty when it does not say."""
    declared = schema.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    values = [schema["const"]] if "const" in schema else list(schema.get("enum", []))
    types |= {"string" if isinstance(v, str) else _JSON_TYPES[type(v)] for v in values}
    for choice in (*schema.get("anyOf", []), *schema.get("oneOf", [])):
        types |= _types(choice)
    return types


def typed_strings(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with each string that the schema wants as a number, integer, boolean or null
    read as YAML: Snakemake hands nested ``--config`` values over as strings
    (``--config 'watermark={opacity: 0.5}'`` gives ``"0.5"``). A string the schema may take as
    a string stays one, unless it reads as another type the schema also allows
    (``flux.lora_rank``: ``auto`` or a number)."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        other = extra if isinstance(extra, Mapping) else {}
        return {k: typed_strings(v, properties.get(k, other)) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [typed_strings(v, items if isinstance(items, Mapping) else {}) for v in value]
    if not isinstance(value, str):
        return value
    allowed = _types(schema) - {"string"}
    if not allowed:
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    kind = _JSON_TYPES.get(type(parsed))
    if kind in allowed or (kind == "integer" and "number" in allowed):
        return parsed
    return value


def known_locale(name: str) -> bool:
    """True if CLDR (babel) has the locale ``name`` (``en_GB``, ``fr``, ``pt-BR``)."""
    try:
        Locale.parse(name.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return False
    return True


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the workflow config (``config.yaml`` plus overrides) and fill defaults.

    Strings where the schema wants numbers, booleans or null are read as YAML first
    (:func:`typed_strings`). ``publish.target`` must name a registered target, the gallery's
    locales known ones. With a Photos library, Photos' own place names come first in the
    places chain unless ``photos`` is already in it.
    """
    schema = load_yaml(CONFIG_SCHEMA)
    valid = validate(typed_strings(dict(config), schema), schema, "config")
    target = valid["publish"]["target"]
    if factory_for(target.partition("://")[0]) is None:
        raise I2IError(f"config is invalid:\n  publish.target: {target!r}: use {usages()}")
    gallery = valid["gallery"]
    for where, name in [("locale", gallery["locale"]), *gallery["album_locales"].items()]:
        if not known_locale(name):
            key = "gallery.locale" if where == "locale" else f"gallery.album_locales[{where!r}]"
            raise I2IError(f"config is invalid:\n  {key}: {name!r} is not a known locale")
    providers = valid["places"]["providers"]
    if valid["photos"]["library"] and "photos" not in providers:
        valid["places"]["providers"] = ["photos", *providers]
    return valid


def load_registry(
    path: str | os.PathLike[str], plugins: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """Load and validate the style registry against the registered backends' schemas (the
    built-in ones and the ``plugins`` modules); return ``{style name: definition}``."""
    backends.load(plugins)
    schema = backends.styles_schema(load_yaml(STYLES_SCHEMA))
    registry = validate(load_yaml(path), schema, f"style registry {path}")
    return registry["styles"]


def select_styles(
    registry: Mapping[str, Mapping[str, Any]], wanted: list[str] | None
) -> dict[str, dict[str, Any]]:
    """The styles to build: the names asked for, or every style of a default backend (the
    classic one) when none are."""
    if not wanted:
        return {n: dict(s) for n, s in registry.items() if backends.backend(s["backend"]).default}
    unknown = [name for name in wanted if name not in registry]
    if unknown:
        raise I2IError(
            f"config: styles: unknown style(s) {', '.join(unknown)}; "
            f"the registry has: {', '.join(sorted(registry))}"
        )
    return {name: dict(registry[name]) for name in wanted}
