"""The workflow's onstart/onsuccess/onerror handlers, callable from a host workflow.

Snakemake runs the handlers of the main Snakefile only: when a host workflow uses i2i as a
``module``, the i2i Snakefile's own handlers never run. So the i2i Snakefile registers its
handlers here, and ``rules/hooks.smk`` (included by the i2i Snakefile, and by a host with
``include: hooks_file()``) calls them.
"""

from __future__ import annotations

from collections.abc import Callable

EVENTS = ("onstart", "onsuccess", "onerror")

_handlers: dict[str, Callable[[], None]] = {}


def register(**handlers: Callable[[], None]) -> None:
    """The workflow's handler for each event in :data:`EVENTS`."""
    unknown = set(handlers) - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown workflow event(s): {', '.join(sorted(unknown))}")
    _handlers.update(handlers)


def call(event: str) -> None:
    """Run the registered handler of ``event`` (none: the i2i workflow was not loaded)."""
    handler = _handlers.get(event)
    if handler is None:
        raise RuntimeError(f"no i2i {event} handler: include hooks_file() after the i2i module")
    handler()
