"""Style backends: the registry that the rules, the style schema, ``i2i styles``, progress and
provenance read.

A backend is one declaration module that calls :func:`register` with a :class:`StyleBackend`:
its name (the ``backend:`` of a style in ``styles.yaml``), the JSON schema of its styles' own
keys, where it renders, the config settings its images are made from and the modules whose code
makes them.

- A **pool** backend names a function ``(rgb, style, threads) -> rgb`` (NumPy ``uint8``
  arrays); :func:`i2i.stages.stylize.stylize` reads, checks and writes around it, in the run's
  worker pool.
- A **resident** backend (a model loaded once per run, as FLUX is) names a loader ``(settings)
  -> model`` that runs in its own long-lived worker process (:mod:`i2i.run.resident`); the
  model's ``render(source, target, style_name, style)`` writes one image and returns a dict with
  its ``seconds``. Its settings are the config section named by ``section``; ``identity`` names
  a function that picks the values identifying a loaded model (a worker with other ones is
  replaced), and ``prepare`` one that adjusts the section once at the start of a run.

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
    worker: str = ""
    section: str = ""
    identity: str = ""
    prepare: str = ""
    resources: Mapping[str, int] = field(default_factory=dict)

    def render_function(self) -> Callable[..., Any]:
        """The pool render function (``module:function``), imported on first use."""
        if not self.render:
            raise I2IError(f"style backend {self.name} renders in its own worker, not the pool")
        return function_named(self.render)

    def worker_settings(self, section: Mapping[str, Any]) -> dict[str, Any]:
        """What identifies a resident backend's loaded model, from its config ``section``
        (without an ``identity`` function: the section less its worker timeouts)."""
        if self.identity:
            return dict(function_named(self.identity)(section))
        return {k: v for k, v in section.items() if k not in WORKER_TIMEOUTS}

    def prepare_run(self, config: dict[str, Any], styles: Mapping[str, Any]) -> str | None:
        """Adjust ``config`` once before the jobs are built, for the run's ``styles`` of this
        backend; a line to log, or None."""
        return function_named(self.prepare)(config, styles) if self.prepare else None


# The resident worker's own timeouts: they change how long it waits, never what it loads.
WORKER_TIMEOUTS = frozenset({"idle_timeout", "request_timeout"})


def function_named(spec: str) -> Callable[..., Any]:
    """The function ``module:name``, imported now (ImportError or AttributeError when it is
    not there)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise I2IError(f"{spec!r} does not name a function as module:function")
    return getattr(importlib.import_module(module), name)


REGISTRY: dict[str, StyleBackend] = {}


def register(backend: StyleBackend) -> StyleBackend:
    """Add ``backend`` to the registry (again with the same declaration is a no-op)."""
    if not backend.rule.startswith(RULE_PREFIX):
        raise I2IError(f"style backend {backend.name}: its rule must start with {RULE_PREFIX!r}")
    if not backend.resident and not backend.render:
        raise I2IError(f"style backend {backend.name}: a pool backend names its render function")
    if backend.resident and not backend.worker:
        raise I2IError(f"style backend {backend.name}: a resident backend names its model loader")
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
