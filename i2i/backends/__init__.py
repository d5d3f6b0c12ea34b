"""Style backends: the registry that the rules, the style schema, ``i2i styles``, progress and
provenance read.

A backend is one declaration module that calls :func:`register` with a :class:`StyleBackend`:
its name (the ``backend:`` of a style in ``styles.yaml``), the JSON schema of its styles' own
keys, where it renders, the config settings its images are made from and the modules whose code
makes them. A backend that renders in the worker pool names a function ``(rgb, style, threads)
-> rgb`` (NumPy ``uint8`` arrays); :func:`i2i.stylize.stylize` reads, checks and writes around
it. A resident backend (a model loaded once per run, as FLUX is) renders in its own worker
process through its own rule.

Built-in backends are :mod:`i2i.backends.classic` and :mod:`i2i.backends.flux_kontext`; a
plugin is any importable module named in the config's ``style_backends`` list, or the module
of an ``i2i.backends`` entry point of an installed distribution (as publish targets use
``i2i.targets``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from i2i import I2IError

BUILTIN = ("i2i.backends.classic", "i2i.backends.flux_kontext")
ENTRY_POINTS = "i2i.backends"
RULE_PREFIX = "stylize_"


@dataclass(frozen=True)
class StyleBackend:
    """What the workflow needs to know about a style backend."""

    name: str
    rule: str
    schema: Mapping[str, Any]
    render: str = ""
    resident: bool = False
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    code: tuple[str, ...] = ()
    default: bool = False

    def render_function(self) -> Callable[..., Any]:
        """The pool render function (``module:function``), imported on first use."""
        module, _, name = self.render.partition(":")
        if not module or not name:
            raise I2IError(f"style backend {self.name} renders in its own worker, not the pool")
        return getattr(importlib.import_module(module), name)


REGISTRY: dict[str, StyleBackend] = {}


def register(backend: StyleBackend) -> StyleBackend:
    """Add ``backend`` to the registry (again with the same declaration is a no-op)."""
    if not backend.rule.startswith(RULE_PREFIX):
        raise I2IError(f"style backend {backend.name}: its rule must start with {RULE_PREFIX!r}")
    if not backend.resident and not backend.render:
        raise I2IError(f"style backend {backend.name}: a pool backend names its render function")
    known = REGISTRY.get(backend.name)
    if known is not None and known != backend:
        raise I2IError(f"style backend {backend.name} is registered twice, differently")
    clash = [b.name for b in REGISTRY.values() if b.rule == backend.rule and b != backend]
    if clash:
        raise I2IError(f"style backend {backend.name}: rule {backend.rule} is {clash[0]}'s")
    REGISTRY[backend.name] = backend
    return backend


@cache
def installed() -> tuple[str, ...]:
    """The modules of the installed plugins' ``i2i.backends`` entry points (read once)."""
    return tuple(point.module for point in entry_points(group=ENTRY_POINTS))


def load(modules: Iterable[str] = ()) -> dict[str, StyleBackend]:
    """The registry with the built-in backends, installed plugins (entry points) and the
    plugin ``modules`` imported."""
    for module in (*BUILTIN, *installed(), *modules):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise I2IError(f"style_backends: cannot import {module}: {exc}") from exc
    return dict(REGISTRY)


def backend(name: str) -> StyleBackend:
    """The registered backend called ``name``."""
    load()
    if name not in REGISTRY:
        raise I2IError(f"unknown style backend {name!r}; registered: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def by_rule(rule: str) -> StyleBackend | None:
    """The backend whose styles ``rule`` renders, or None."""
    load()
    return next((b for b in REGISTRY.values() if b.rule == rule), None)


def styles_schema(base: Mapping[str, Any]) -> dict[str, Any]:
    """The style registry's schema: ``base`` with each registered backend's keys."""
    schema = dict(base)
    entry = dict(schema["properties"]["styles"]["additionalProperties"])
    entry["properties"] = {**entry["properties"], "backend": {"enum": sorted(REGISTRY)}}
    entry["allOf"] = [
        {
            "if": {"properties": {"backend": {"const": b.name}}},
            "then": {
                **b.schema,
                "additionalProperties": False,
                "properties": {
                    "backend": {},
                    "description": {},
                    "source": {"type": "string", "description": "where it comes from, licence"},
                    **b.schema.get("properties", {}),
                },
            },
        }
        for b in sorted(REGISTRY.values(), key=lambda b: b.name)
    ]
    schema["properties"] = {
        **schema["properties"],
        "styles": {**schema["properties"]["styles"], "additionalProperties": entry},
    }
    return schema
