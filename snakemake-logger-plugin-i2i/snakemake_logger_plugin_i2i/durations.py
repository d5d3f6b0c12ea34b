"""Seconds per job of each rule, for the console's ETA.

A rule's expected seconds per job come from, best first: this run's finished jobs of the rule;
earlier runs (a running mean per rule in ``.i2i/durations.json`` of the working folder, written
at the end of each run); a fixed prior per rule of the i2i workflow (``PRIORS``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

HISTORY = Path(".i2i") / "durations.json"
# Seconds per job before any run has measured a rule (the sample's 640 px photos on 2 cores;
# FLUX.1-Kontext about two minutes an image on a GPU). A rule not listed gets DEFAULT_PRIOR.
# Jobs of this run that must have ended before their mean costs the jobs of unknown rules.
MIN_MEASURED = 5
PRIORS: dict[str, float] = {
    "all": 0.0,
    "inventory": 1.0,
    "metadata": 0.1,
    "places": 0.1,
    "captions": 0.1,
    "preprocess": 0.3,
    "stylize_classic": 1.0,
    "stylize_flux": 120.0,
    "watermark": 0.3,
    "style_manifest": 0.1,
    "album_catalog": 0.1,
    "catalog": 0.2,
    "contact_sheet": 1.0,
    "progress_report": 0.5,
    "publish": 0.2,
    "gallery_album": 0.2,
    "gallery": 0.5,
    "archive": 2.0,
}
DEFAULT_PRIOR = 1.0
# Rules whose jobs run one at a time (the GPU lane: resources gpu=1); a job that declares a
# ``gpu`` resource adds its rule.
SERIAL_RULES = frozenset({"stylize_flux"})
# A rule's history counts as at most this many jobs, so that newer runs move its mean.
HISTORY_JOBS = 50


@dataclass
class Mean:
    """A running mean of a rule's job seconds; ``serial``: its jobs run one at a time;
    ``last_run``: its jobs in the last run (the mix of rules a run has)."""

    jobs: int = 0
    seconds: float = 0.0
    serial: bool = False
    last_run: int = 0

    def add(self, seconds: float, jobs: int = 1) -> None:
        """Fold in ``jobs`` jobs of ``seconds`` each (on average)."""
        if jobs > 0:
            self.jobs += jobs
            self.seconds += (seconds - self.seconds) * jobs / self.jobs


def load(path: Path) -> dict[str, Mean]:
    """The history at ``path``; empty when it is missing or unreadable (then priors apply)."""
    try:
        data = json.loads(path.read_text("utf-8"))
        history = {
            str(rule): Mean(
                int(entry["jobs"]),
                float(entry["seconds"]),
                entry.get("serial") is True,
                int(entry.get("last_run", 0)),
            )
            for rule, entry in data["rules"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.debug("ignoring job durations in %s: %s", path, exc)
        return {}
    return {
        rule: mean
        for rule, mean in history.items()
        if mean.jobs > 0 and math.isfinite(mean.seconds) and mean.seconds >= 0
    }


def save(path: Path, history: dict[str, Mean]) -> None:
    """Write the history atomically (a temp file renamed over ``path``)."""
    rules = {
        rule: {"jobs": m.jobs, "seconds": round(m.seconds, 4), "last_run": m.last_run}
        | ({"serial": True} if m.serial else {})
        for rule, m in history.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump({"version": 1, "rules": dict(sorted(rules.items()))}, stream, indent=1)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


@dataclass
class Durations:
    """Expected seconds per job of each rule: this run's, else earlier runs', else a prior."""

    history: dict[str, Mean] = field(default_factory=dict)
    run: dict[str, Mean] = field(default_factory=dict)
    serial: set[str] = field(default_factory=lambda: set(SERIAL_RULES))

    @classmethod
    def load(cls, path: Path) -> Durations:
        """Durations with the history at ``path`` (see ``load``)."""
        history = load(path)
        return cls(history, serial={*SERIAL_RULES, *(r for r, m in history.items() if m.serial)})

    def expected(self, rule: str) -> float:
        for source in (self.run, self.history):
            if rule in source:
                return source[rule].seconds
        return PRIORS.get(rule, DEFAULT_PRIOR)

    def finished(self, rule: str, seconds: float) -> None:
        """A job of ``rule`` of this run took ``seconds``."""
        self.run.setdefault(rule, Mean()).add(max(seconds, 0.0))

    def merged(self) -> dict[str, Mean]:
        """The history with this run's means folded in (each rule's history capped)."""
        merged = {
            rule: Mean(min(m.jobs, HISTORY_JOBS), m.seconds) for rule, m in self.history.items()
        }
        for rule, mean in self.run.items():
            merged.setdefault(rule, Mean()).add(mean.seconds, mean.jobs)
        for rule, mean in merged.items():
            mean.serial = rule in self.serial
            mean.last_run = self.run[rule].jobs if rule in self.run else 0
        return merged

    def per_job(
        self, rules: Mapping[str, int], ended: Mapping[str, int]
    ) -> dict[bool, float] | None:
        """Expected seconds of a job whose rule is not known yet (added after a checkpoint),
        on the serial lane (``True``) and the others: the mean over the last run's mix of rules
        not in ``rules`` (the counted ones), else over this run's jobs of such rules that ended
        (``ended``, once ``MIN_MEASURED`` have: a run's first jobs also start its workers);
        None before that. The counted rules (the checkpoint and ``all``) say nothing of the
        jobs added after it."""
        mix = {r: m.last_run for r, m in self.history.items() if r not in rules and m.last_run}
        if not mix:
            mix = {r: n for r, n in ended.items() if r not in rules and n}
            if sum(mix.values()) < MIN_MEASURED:
                return None
        jobs = sum(mix.values())
        lanes = {True: 0.0, False: 0.0}
        for rule, n in mix.items():
            lanes[rule in self.serial] += n * self.expected(rule) / jobs
        return lanes
